package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"pgregory.net/rapid"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Waiting entries (narrow links): package doc, "Waiting entries (narrow
// links)"; log doc, "Narrow links".

// openWaitStore opens a store of n for self in dir ("" for one in
// memory) whose clock says now().
func openWaitStore(t testing.TB, dir string, n *testNet, self *crypto.Identity, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(dir, n.genesis, self, Options{InMemory: dir == "", Now: now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// authorPosts has who's own store append k posts, each on its own (so
// each carries its composite signature, as a narrow-link author's do),
// and returns the store and the entries.
func authorPosts(t testing.TB, n *testNet, who *crypto.Identity, k int) (*Store, []*log.Entry) {
	t.Helper()
	a := openWaitStore(t, "", n, who, nil)
	mustIngest(t, a, n.keyEntry)
	var es []*log.Entry
	for i := range k {
		es = append(es, mustAppend(t, a, n.msg(strings.Repeat("p", i+1)))...)
	}
	return a, es
}

// provisionalOf returns es carrying their provisional signatures.
func provisionalOf(t testing.TB, es ...*log.Entry) []*log.Entry {
	t.Helper()
	out := make([]*log.Entry, len(es))
	for i, e := range es {
		p, err := e.WithProvisional()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func coverOf(t testing.TB, e *log.Entry) log.Cover {
	t.Helper()
	c, err := log.CoverOf(e)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCover(t testing.TB, s *Store, c log.Cover) *IngestResult {
	t.Helper()
	res, err := s.Cover(context.Background(), c)
	if err != nil {
		t.Fatalf("Cover: %v", err)
	}
	return res
}

// waitingIDs returns the IDs of s's waiting entries of author.
func waitingIDs(s *Store, author crypto.MemberID) []log.Hash {
	var out []log.Hash
	for _, w := range s.WaitingOf(author) {
		out = append(out, w.Entry.ID())
	}
	return out
}

// snapshot is everything of a store that is acted on.
type snapshot struct {
	frontier   log.Frontier
	digest     log.Digest
	maxLamport uint64
	order      []log.Hash
	roster     *crypto.Roster
	evidence   int
}

func snap(t testing.TB, s *Store) snapshot {
	t.Helper()
	ev, err := s.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{frontier: s.Frontier(), digest: s.Digest(), maxLamport: s.MaxLamport(), order: ids(allEntries(t, s)), roster: s.Roster(), evidence: len(ev)}
}

func (a snapshot) differs(b snapshot) string {
	switch {
	case !maps(a.frontier, b.frontier):
		return "frontier"
	case a.digest != b.digest:
		return "digest"
	case a.maxLamport != b.maxLamport:
		return "carried clock"
	case !slices.Equal(a.order, b.order):
		return "entries"
	case a.roster != b.roster:
		return "roster"
	case a.evidence != b.evidence:
		return "evidence"
	}
	return ""
}

// Waiting entries change nothing that is acted on; a cover promotes them
// into the feed, where they are the author's entries byte for byte.
func TestWaitingNotActedOnUntilCovered(t *testing.T) {
	n := newTestNet(t)
	a, es := authorPosts(t, n, n.lu, 3)
	t1 := t0.Add(time.Hour)
	r := openWaitStore(t, "", n, n.fr, fixedClock(t1))
	mustIngest(t, r, n.keyEntry)
	sub := r.Subscribe(8)
	before := snap(t, r)

	ps := provisionalOf(t, es...)
	res := mustIngest(t, r, ps...)
	if !slices.Equal(ids(res.Waiting), ids(es)) || len(res.Added) != 0 || len(res.Rejected) != 0 {
		t.Fatalf("provisional 1..3: waiting %d, added %d, rejected %v; want 3 waiting", len(res.Waiting), len(res.Added), res.Rejected)
	}
	if what := snap(t, r).differs(before); what != "" {
		t.Errorf("waiting entries changed the %s", what)
	}
	if _, ok := r.Head(n.lu.ID()); ok {
		t.Error("waiting entries made a feed head")
	}
	if feed, err := r.Feed(n.lu.ID(), 0, 0); err != nil || len(feed) != 0 {
		t.Errorf("Feed: %d entries, %v; want none", len(feed), err)
	}
	for _, e := range es {
		if _, err := r.Get(e.ID()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(waiting %d) = %v, want ErrNotFound", e.Header.Seq, err)
		}
		id := e.ID()
		if got, err := r.IDsWithPrefix(id[:], 1); err != nil || len(got) != 0 {
			t.Errorf("IDsWithPrefix(waiting %d) = %v, %v; want none", e.Header.Seq, got, err)
		}
	}
	select {
	case b := <-sub.C:
		t.Fatalf("a subscriber got %d waiting entries", len(b))
	default:
	}
	w := r.WaitingOf(n.lu.ID())
	if len(w) != 3 {
		t.Fatalf("WaitingOf: %d entries, want 3", len(w))
	}
	for i, we := range w {
		if we.Entry.ID() != es[i].ID() || !we.Entry.Provisional() || !we.Since.Equal(t1) || we.Conflicting {
			t.Errorf("waiting %d: %s provisional %v since %v conflicting %v; want seq %d as received, since %v, not conflicting",
				i, we.Entry.ID().Short(), we.Entry.Provisional(), we.Since, we.Conflicting, i+1, t1)
		}
	}
	if all := r.Waiting(); len(all) != 3 {
		t.Errorf("Waiting: %d entries, want 3", len(all))
	}
	if h, ok := r.WaitingHead(n.lu.ID()); !ok || h != headOf(es[2]) {
		t.Errorf("WaitingHead = %+v, %v; want seq 3", h, ok)
	}
	if _, ok := r.WaitingHead(n.admin.ID()); ok {
		t.Error("WaitingHead of an author with nothing waiting reports one")
	}

	res = mustCover(t, r, coverOf(t, es[2]))
	if !slices.Equal(ids(res.Added), ids(es)) || len(res.Rejected) != 0 {
		t.Fatalf("cover of 3: added %d, rejected %v; want 1..3 in seq order", len(res.Added), res.Rejected)
	}
	select {
	case b := <-sub.C:
		if !slices.Equal(ids(b), ids(es)) {
			t.Errorf("subscriber got %d entries, want 1..3", len(b))
		}
	default:
		t.Error("the subscriber did not get the promoted entries")
	}
	if len(r.WaitingOf(n.lu.ID())) != 0 || len(r.Waiting()) != 0 {
		t.Error("promoted entries still waiting")
	}
	if r.Digest() != a.Digest() {
		t.Error("digest differs from the author's store's")
	}
	// The entry carrying the composite is stored as the author holds it;
	// those it covers are stored unsigned, as a group commit's are: no
	// provisional signature enters the feed.
	for i, e := range es {
		got, err := r.Get(e.ID())
		if err != nil {
			t.Fatal(err)
		}
		want := e.Unsigned()
		if i == 2 {
			mine, err := a.Get(e.ID())
			if err != nil {
				t.Fatal(err)
			}
			want = mine
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) || got.Provisional() {
			t.Errorf("seq %d stored as %d bytes (provisional %v), want %d", i+1, got.Size(), got.Provisional(), want.Size())
		}
	}
	if m := r.MaxLamport(); m != es[2].Header.Lamport {
		t.Errorf("carried clock %d after promotion, want %d", m, es[2].Header.Lamport)
	}
}

// Provisional 1..3, then 4 with its composite by Ingest: 4 covers them
// all, also when it comes alone (the waiting area fills the gap). Held
// entries sent again are duplicates.
func TestWaitingPromotedByCoveredSuccessor(t *testing.T) {
	n := newTestNet(t)
	a, es := authorPosts(t, n, n.lu, 4)
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry)
	ps := provisionalOf(t, es[:3]...)
	if res := mustIngest(t, r, ps[0], ps[2], ps[1]); len(res.Waiting) != 3 {
		t.Fatalf("provisional 1..3 in any order: %d waiting, rejected %v", len(res.Waiting), res.Rejected)
	}
	if res := mustIngest(t, r, ps...); res.Duplicates != 3 || len(res.Waiting) != 0 || len(res.Rejected) != 0 {
		t.Errorf("again: %d duplicates, %d waiting, %v; want 3 duplicates", res.Duplicates, len(res.Waiting), res.Rejected)
	}
	res := mustIngest(t, r, es[3])
	if !slices.Equal(ids(res.Added), ids(es)) || len(res.Rejected) != 0 || len(res.Waiting) != 0 {
		t.Fatalf("4 with its composite: added %d, rejected %v; want 1..4", len(res.Added), res.Rejected)
	}
	if r.Digest() != a.Digest() || len(r.Waiting()) != 0 {
		t.Error("after promotion: digest differs from the author's, or entries still wait")
	}
	if res := mustIngest(t, r, ps...); res.Duplicates != 3 {
		t.Errorf("promoted entries again: %d duplicates, want 3", res.Duplicates)
	}

	// In one call: 1..3 provisional and 4 covered.
	r2 := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r2, n.keyEntry)
	if res := mustIngest(t, r2, append(slices.Clone(ps), es[3])...); len(res.Added) != 4 || len(res.Waiting) != 0 {
		t.Errorf("1..3 provisional with 4 covered in one call: added %d, waiting %d", len(res.Added), len(res.Waiting))
	}
	// Unsigned entries wait when a provisional successor vouches for them.
	r3 := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r3, n.keyEntry)
	res = mustIngest(t, r3, es[0].Unsigned(), es[1].Unsigned(), ps[2])
	if len(res.Waiting) != 3 || res.Waiting[0].Signature() != nil || res.Waiting[0].Provisional() {
		t.Errorf("unsigned 1, 2 and provisional 3: %d waiting, rejected %v; want 1..3, held as received", len(res.Waiting), res.Rejected)
	}
	// Unsigned entries with nothing vouching for them are refused as
	// before (sync carries them).
	res = mustIngest(t, r3, es[3].Unsigned())
	if len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonUnsignedTail || len(res.Waiting) != 0 {
		t.Errorf("unsigned 4: rejected %v, waiting %d; want unsigned-tail", res.Rejected, len(res.Waiting))
	}
}

// A covered copy from a wide link advances the feed; waiting entries the
// head passes are dropped, those after it stay.
func TestWaitingDroppedWhenHeadPasses(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 3)
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry)
	mustIngest(t, r, provisionalOf(t, es...)...)
	res := mustIngest(t, r, es[0], es[1])
	if len(res.Added) != 2 {
		t.Fatalf("covered 1, 2: added %d, rejected %v", len(res.Added), res.Rejected)
	}
	if got := waitingIDs(r, n.lu.ID()); !slices.Equal(got, ids(es[2:])) {
		t.Errorf("waiting after the head moved to 2: %d entries, want seq 3 only", len(got))
	}
	if stored, _ := r.Get(es[1].ID()); stored == nil || !stored.Signed() {
		t.Error("a covered copy lost its composite signature")
	}
}

// Waiting entries survive a restart with their Since, and are promoted
// after it.
func TestWaitingSurvivesRestart(t *testing.T) {
	n := newTestNet(t)
	a, es := authorPosts(t, n, n.lu, 3)
	dir := t.TempDir()
	t1, t2 := t0.Add(time.Minute), t0.Add(time.Hour)
	r := openWaitStore(t, dir, n, n.fr, fixedClock(t1))
	mustIngest(t, r, n.keyEntry)
	mustIngest(t, r, provisionalOf(t, es[:2]...)...)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openWaitStore(t, dir, n, n.fr, fixedClock(t2))
	w := r.WaitingOf(n.lu.ID())
	if len(w) != 2 || w[0].Entry.ID() != es[0].ID() || !w[0].Since.Equal(t1) || !w[1].Since.Equal(t1) || !w[1].Entry.Provisional() {
		t.Fatalf("after reopening: %+v; want 1, 2 as received, since %v", w, t1)
	}
	res := mustIngest(t, r, es[2])
	if len(res.Added) != 3 {
		t.Fatalf("3 covered after reopening: added %d, rejected %v", len(res.Added), res.Rejected)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openWaitStore(t, dir, n, n.fr, nil)
	if len(r.Waiting()) != 0 || r.Digest() != a.Digest() {
		t.Error("after promotion and reopening: entries still wait, or the digest differs from the author's")
	}
}

// An adversary holding an author's Ed25519 key but not its ML-DSA key
// makes an entry in the author's name at seq 2 with a valid provisional
// signature. It is held waiting, conflicting with the honest candidate,
// never a fork proof; its cover attempts are refused; the honest
// author's composite puts the honest branch in the feed and drops it.
// Only a composite on the other branch too proves a fork, as before.
func TestWaitingEd25519OnlyForger(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 3)
	// Built with the author's identity, of which the forger keeps the
	// provisional signature only: the store cannot tell the difference.
	forged := buildAfter(t, n.lu, n.genesis.NetworkID(), es[0], 0, n.msg("forged"))[0]
	pf := provisionalOf(t, forged)[0]
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry)
	ps := provisionalOf(t, es...)
	mustIngest(t, r, ps[0], ps[1])
	res := mustIngest(t, r, pf)
	if len(res.Waiting) != 1 || res.Waiting[0].ID() != forged.ID() {
		t.Fatalf("forged provisional: waiting %d, rejected %v; want it held", len(res.Waiting), res.Rejected)
	}
	mustIngest(t, r, ps[2])
	conflicting := 0
	for _, w := range r.WaitingOf(n.lu.ID()) {
		if w.Conflicting != (w.Entry.Header.Seq == 2) {
			t.Errorf("seq %d: conflicting %v", w.Entry.Header.Seq, w.Conflicting)
		}
		if w.Conflicting {
			conflicting++
		}
	}
	if conflicting != 2 || len(r.Forks()) != 0 {
		t.Errorf("%d conflicting, %d forks; want 2 conflicting candidates at seq 2 and no fork", conflicting, len(r.Forks()))
	}
	if _, ok := r.Head(n.lu.ID()); ok {
		t.Error("the forger's candidate gave the author a head")
	}
	before := snap(t, r)
	waitingBefore := waitingIDs(r, n.lu.ID())
	// The forger's covers: a composite of another entry under its
	// entry's ID, and one for an entry nobody holds.
	for _, c := range []log.Cover{{ID: forged.ID(), Sig: es[1].Signature()}, {ID: log.Hash{7}, Sig: es[1].Signature()}} {
		res, err := r.Cover(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rejected) != 1 || len(res.Added) != 0 {
			t.Errorf("forger's cover of %s: %+v; want it refused", c.ID.Short(), res)
		}
		if what := snap(t, r).differs(before); what != "" || !slices.Equal(waitingIDs(r, n.lu.ID()), waitingBefore) {
			t.Errorf("a refused cover changed the %s or the waiting area", what)
		}
	}
	// The honest composite arrives: its branch joins the feed, the forged
	// candidate is dropped, nothing is frozen.
	res = mustCover(t, r, coverOf(t, es[2]))
	if !slices.Equal(ids(res.Added), ids(es)) {
		t.Fatalf("honest cover: added %d, rejected %v; want 1..3", len(res.Added), res.Rejected)
	}
	if h, _ := r.Head(n.lu.ID()); h.Forked || h.Seq != 3 || len(r.Waiting()) != 0 || len(r.Forks()) != 0 {
		t.Errorf("after the honest cover: head %+v, %d waiting, %d forks; want seq 3, none waiting, no fork", h, len(r.Waiting()), len(r.Forks()))
	}
	// Had the "forger" the ML-DSA key as well (the author equivocated):
	// the other branch covered proves the fork, as ever.
	res = mustIngest(t, r, forged)
	if len(res.Forks) != 1 {
		t.Errorf("covered second branch: %d forks, want 1", len(res.Forks))
	}
	if h, _ := r.Head(n.lu.ID()); !h.Forked || h.Seq != 1 {
		t.Errorf("head after the covered fork: %+v, want frozen at 1", h)
	}
	// A frozen author's entries wait no more.
	more := buildAfter(t, n.lu, n.genesis.NetworkID(), es[2], 0, n.msg("after"))
	if res := mustIngest(t, r, provisionalOf(t, more...)...); len(res.Waiting) != 0 || len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonForked {
		t.Errorf("provisional entry of a forked author: waiting %d, rejected %v; want refused (forked)", len(res.Waiting), res.Rejected)
	}
}

// A fork frozen while candidates wait drops them.
func TestWaitingDroppedByFork(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 2)
	other := buildAfter(t, n.lu, n.genesis.NetworkID(), nil, 0, n.msg("other 1"))
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry, es[0])
	mustIngest(t, r, provisionalOf(t, es[1])...)
	if len(r.Waiting()) != 1 {
		t.Fatal("seq 2 not waiting")
	}
	if res := mustIngest(t, r, other...); len(res.Forks) != 1 {
		t.Fatalf("no fork: %+v", res)
	}
	if len(r.Waiting()) != 0 {
		t.Error("a forked author's entries still wait")
	}
}

// A revoked author's waiting entries are dropped, and new ones refused.
func TestWaitingDroppedByRevocation(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 3)
	admin := openWaitStore(t, "", n, n.admin, nil)
	mustIngest(t, admin, n.keyEntry, es[0])
	revoke := revocationEntry(t, n, admin, es[0])
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry, es[0])
	mustIngest(t, r, provisionalOf(t, es[1])...)
	if len(r.Waiting()) != 1 {
		t.Fatal("seq 2 not waiting")
	}
	mustIngest(t, r, revoke)
	if m, _ := r.Roster().Member(n.lu.ID()); !m.Revoked {
		t.Fatal("test setup: lu not revoked")
	}
	if len(r.Waiting()) != 0 {
		t.Error("a revoked author's entries still wait")
	}
	if res := mustIngest(t, r, provisionalOf(t, es[1], es[2])...); len(res.Waiting) != 0 || len(res.Rejected) != 2 {
		t.Errorf("provisional entries of a revoked author: waiting %d, rejected %v; want both refused", len(res.Waiting), res.Rejected)
	}
}

// System kinds never wait: a provisional signature on one is refused,
// and a waiting run stops before one.
func TestWaitingNeverSystemKinds(t *testing.T) {
	n := newTestNet(t)
	net := n.genesis.NetworkID()
	key, err := crypto.NewKeyEnvelope(net, n.key, n.recipients())
	if err != nil {
		t.Fatal(err)
	}
	keyDraft := log.Draft{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: key.Bytes()}}
	sys := buildAfter(t, n.lu, net, nil, 0, keyDraft)[0]
	if sys.Header.Priority != log.Control {
		t.Fatal("test setup: a key entry is not at control priority")
	}
	half, err := crypto.ProvisionalOf(sys.Signature())
	if err != nil {
		t.Fatal(err)
	}
	provSys, err := sys.WithSignature(half)
	if err != nil {
		t.Fatal(err)
	}
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry)
	res := mustIngest(t, r, provSys)
	if len(res.Waiting) != 0 || len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonProvisionalSystem {
		t.Errorf("provisional key entry: waiting %d, rejected %v; want refused (%s)", len(res.Waiting), res.Rejected, log.ReasonProvisionalSystem)
	}

	// 1 message, 2 key entry (unsigned), 3 message: the provisional
	// signature of 3 vouches for 1 through 2, but 2 never waits, nor
	// anything after it.
	e1 := buildAfter(t, n.lu, net, nil, 0, n.msg("1"))[0]
	e2 := buildAfter(t, n.lu, net, e1, 0, keyDraft)[0]
	e3 := buildAfter(t, n.lu, net, e2, 0, n.msg("3"))[0]
	res = mustIngest(t, r, provisionalOf(t, e1)[0], e2.Unsigned(), provisionalOf(t, e3)[0])
	if !slices.Equal(ids(res.Waiting), ids([]*log.Entry{e1})) || len(res.Rejected) != 2 {
		t.Fatalf("waiting %d, rejected %v; want 1 waiting, 2 and 3 refused", len(res.Waiting), res.Rejected)
	}
	for _, rj := range res.Rejected {
		if log.ReasonOf(rj.Err) != log.ReasonUnsignedTail {
			t.Errorf("seq %d refused for %v, want %s", rj.Seq, rj.Err, log.ReasonUnsignedTail)
		}
	}
	// Covered, the key entry joins the feed as ever.
	if res := mustIngest(t, r, e2); len(res.Added) != 2 {
		t.Errorf("key entry covered: added %d, rejected %v; want 1 and 2", len(res.Added), res.Rejected)
	}
}

// At most log.MaxWaiting entries of one author wait; more are refused
// with ErrWaitingFull, which is no offence.
func TestWaitingBoundEntries(t *testing.T) {
	n := newTestNet(t)
	net := n.genesis.NetworkID()
	var es []*log.Entry
	var prev *log.Entry
	for range log.MaxWaiting + 1 {
		prev = buildAfter(t, n.lu, net, prev, 0, n.msg("x"))[0]
		es = append(es, prev)
	}
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry)
	res := mustIngest(t, r, provisionalOf(t, es...)...)
	if len(res.Waiting) != log.MaxWaiting || len(res.Rejected) != 1 {
		t.Fatalf("%d provisional: %d waiting, %d rejected; want %d and 1", len(es), len(res.Waiting), len(res.Rejected), log.MaxWaiting)
	}
	checkFull(t, res.Rejected[0], es[log.MaxWaiting])
	if len(r.Waiting()) != log.MaxWaiting {
		t.Errorf("%d waiting, want %d", len(r.Waiting()), log.MaxWaiting)
	}
	// Another candidate is refused too, and the composite still covers.
	other := buildAfter(t, n.lu, net, nil, 0, n.msg("other"))
	if res := mustIngest(t, r, provisionalOf(t, other...)...); len(res.Rejected) != 1 {
		t.Errorf("a candidate beyond the bound: %+v", res)
	}
	if res := mustIngest(t, r, es[log.MaxWaiting]); len(res.Added) != log.MaxWaiting+1 || len(r.Waiting()) != 0 {
		t.Errorf("the composite of the last: added %d, %d still waiting", len(res.Added), len(r.Waiting()))
	}
}

// At most log.MaxUnsignedRun bytes of one author wait.
func TestWaitingBoundBytes(t *testing.T) {
	n := newTestNet(t)
	net := n.genesis.NetworkID()
	big := strings.Repeat("b", log.MaxEntrySize-8<<10)
	var es []*log.Entry
	var prev *log.Entry
	size := 0
	for size <= log.MaxUnsignedRun {
		prev = buildAfter(t, n.lu, net, prev, 0, n.msg(big))[0]
		es = append(es, prev)
		size += prev.Size() - crypto.SignatureSize + crypto.ProvisionalSize
	}
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry)
	res := mustIngest(t, r, provisionalOf(t, es...)...)
	if len(res.Waiting) != len(es)-1 || len(res.Rejected) != 1 {
		t.Fatalf("%d entries of %d bytes: %d waiting, %d rejected; want all but the last waiting", len(es), es[0].Size(), len(res.Waiting), len(res.Rejected))
	}
	checkFull(t, res.Rejected[0], es[len(es)-1])
}

func checkFull(t *testing.T, rj Rejection, want *log.Entry) {
	t.Helper()
	if rj.ID != want.ID() || !errors.Is(rj.Err, ErrWaitingFull) || log.ReasonOf(rj.Err) != "" || !strings.Contains(rj.Err.Error(), "come back covered") {
		t.Errorf("refused %s: %v; want seq %d refused with ErrWaitingFull, no offence, saying what happens", rj.ID.Short(), rj.Err, want.Header.Seq)
	}
}

// Cover: an unknown ID is ErrNotWaiting, an ID in the feed a duplicate, a
// signature that does not verify a bad-signature rejection; none changes
// anything.
func TestCoverRefusals(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 3)
	r := openWaitStore(t, "", n, n.fr, nil)
	mustIngest(t, r, n.keyEntry, es[0])
	mustIngest(t, r, provisionalOf(t, es[1:]...)...)
	before, waiting := snap(t, r), waitingIDs(r, n.lu.ID())
	unchanged := func(what string) {
		t.Helper()
		if d := snap(t, r).differs(before); d != "" || !slices.Equal(waitingIDs(r, n.lu.ID()), waiting) {
			t.Errorf("%s changed the %s or the waiting area", what, d)
		}
	}
	res := mustCover(t, r, log.Cover{ID: log.Hash{1}, Sig: es[0].Signature()})
	if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, ErrNotWaiting) || log.ReasonOf(res.Rejected[0].Err) != "" {
		t.Errorf("unknown ID: %+v; want a rejection wrapping ErrNotWaiting", res.Rejected)
	}
	unchanged("a cover of an unknown ID")
	if res := mustCover(t, r, coverOf(t, es[0])); res.Duplicates != 1 || len(res.Rejected) != 0 {
		t.Errorf("ID in the feed: %+v; want a duplicate", res)
	}
	unchanged("a cover of an entry in the feed")
	res = mustCover(t, r, log.Cover{ID: es[2].ID(), Sig: es[1].Signature()})
	if len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonBadSignature || !errors.Is(res.Rejected[0].Err, log.ErrInvalid) {
		t.Errorf("bad signature: %+v; want a log.InvalidError (%s)", res.Rejected, log.ReasonBadSignature)
	}
	unchanged("a bad cover")
	if res := mustCover(t, r, log.Cover{ID: es[2].ID(), Sig: []byte{1, 2, 3}}); len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonBadSignature {
		t.Errorf("short signature: %+v", res.Rejected)
	}
	unchanged("a short cover")
	// The cover of 2 covers 2 only; 3 waits on.
	if res := mustCover(t, r, coverOf(t, es[1])); len(res.Added) != 1 || !slices.Equal(waitingIDs(r, n.lu.ID()), ids(es[2:])) {
		t.Errorf("cover of 2: added %d, waiting %d; want 2 added, 3 waiting", len(res.Added), len(r.Waiting()))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cover(context.Background(), coverOf(t, es[2])); !errors.Is(err, ErrClosed) {
		t.Errorf("Cover on a closed store: %v, want ErrClosed", err)
	}
}

// A damaged waiting record makes Open fail with ErrCorrupt, naming it.
func TestWaitingCorruptRecord(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 1)
	for name, damage := range map[string]func(k, v []byte) ([]byte, []byte){
		"truncated entry": func(k, v []byte) ([]byte, []byte) { return k, v[:len(v)/2] },
		"no time":         func(k, v []byte) ([]byte, []byte) { return k, v[:3] },
		"wrong place": func(k, v []byte) ([]byte, []byte) {
			k = slices.Clone(k)
			k[40]++ // the seq
			return k, v
		},
		"short key": func(k, v []byte) ([]byte, []byte) { return k[:40], v },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := openWaitStore(t, dir, n, n.fr, nil)
			mustIngest(t, r, n.keyEntry)
			mustIngest(t, r, provisionalOf(t, es...)...)
			p := provisionalOf(t, es...)[0]
			k := waitingKey(n.lu.ID(), 1, p.ID())
			bk, bv := damage(k, encodeWaiting(t0, p))
			if err := r.db.Update(func(txn *badger.Txn) error {
				if err := txn.Delete(k); err != nil {
					return err
				}
				return txn.Set(bk, bv)
			}); err != nil {
				t.Fatal(err)
			}
			r.Close()
			_, err := Open(dir, n.genesis, n.fr, Options{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "waiting entry") || !strings.Contains(err.Error(), "re-syncs") {
				t.Errorf("Open: %v; want ErrCorrupt naming the waiting entry and how to recover", err)
			}
		})
	}
}

// waitPool is what TestPropertyWaiting delivers: two authors' feeds, each
// entry individually signed, in three forms, their covers, and a forger's
// two-entry branch at lu's seq 2 (provisional and unsigned only).
type waitPool struct {
	covered, forms []*log.Entry
	provisional    []*log.Entry // of the honest entries
	covers         []log.Cover
	heads          []*log.Entry
}

func newWaitPool(t testing.TB, n *testNet) *waitPool {
	net := n.genesis.NetworkID()
	p := &waitPool{}
	for _, who := range []struct {
		id *crypto.Identity
		k  int
	}{{n.lu, 5}, {n.fr, 4}} {
		var prev *log.Entry
		for i := range who.k {
			prev = buildAfter(t, who.id, net, prev, uint64(i*3), n.msg(who.id.Name()))[0]
			p.covered = append(p.covered, prev)
			p.provisional = append(p.provisional, provisionalOf(t, prev)...)
			p.forms = append(p.forms, prev, provisionalOf(t, prev)[0], prev.Unsigned())
			p.covers = append(p.covers, coverOf(t, prev))
		}
		p.heads = append(p.heads, prev)
	}
	f2 := buildAfter(t, n.lu, net, p.covered[0], 0, n.msg("forged 2"))[0]
	f3 := buildAfter(t, n.lu, net, f2, 0, n.msg("forged 3"))[0]
	for _, f := range []*log.Entry{f2, f3} {
		p.forms = append(p.forms, provisionalOf(t, f)[0], f.Unsigned())
	}
	// The forger's covers: another entry's composite under its ID.
	p.covers = append(p.covers, log.Cover{ID: f3.ID(), Sig: p.covered[2].Signature()}, log.Cover{ID: f2.ID(), Sig: p.covered[1].Signature()})
	return p
}

// Any interleaving of provisional, unsigned and covered copies, covers
// and a forger's candidates ends with the feed of a store that got only
// the covered entries; after every step the feed is a prefix of it,
// nothing waits at or below a head or off its chain, the waiting area is
// within its bounds, no provisional signature is in the feed and the
// carried clock comes from the feed only.
func TestPropertyWaiting(t *testing.T) {
	n := newTestNet(t)
	p := newWaitPool(t, n)
	ref := openWaitStore(t, "", n, n.admin, nil)
	mustIngest(t, ref, n.keyEntry)
	mustIngest(t, ref, p.covered...)
	wantDigest, wantOrder := ref.Digest(), ids(allEntries(t, ref))
	if len(wantOrder) != len(p.covered)+1 {
		t.Fatalf("reference holds %d entries, want %d", len(wantOrder), len(p.covered)+1)
	}
	refFeed := map[crypto.MemberID][]log.Hash{}
	for _, e := range append([]*log.Entry{n.keyEntry}, p.covered...) {
		refFeed[e.Header.Author] = append(refFeed[e.Header.Author], e.ID())
	}
	rapid.Check(t, func(rt *rapid.T) {
		s := openMemStore(rt, n, n.fr)
		defer s.Close()
		if _, err := s.Ingest(context.Background(), n.keyEntry); err != nil {
			rt.Fatal(err)
		}
		steps := rapid.IntRange(1, 10).Draw(rt, "steps")
		for range steps {
			var err error
			switch rapid.IntRange(0, 3).Draw(rt, "action") {
			case 0, 1:
				_, err = s.Ingest(context.Background(), rapid.SliceOfN(rapid.SampledFrom(p.forms), 1, 8).Draw(rt, "forms")...)
			case 2:
				_, err = s.Cover(context.Background(), rapid.SampledFrom(p.covers).Draw(rt, "cover"))
			case 3:
				_, err = s.Ingest(context.Background(), rapid.SliceOfN(rapid.SampledFrom(p.covered), 1, 3).Draw(rt, "covered")...)
			}
			if err != nil {
				rt.Fatal(err)
			}
			checkWaitingInvariants(rt, s, refFeed)
		}
		// Finally every honest entry provisionally, and the cover of each
		// head: the feed is the reference's.
		if _, err := s.Ingest(context.Background(), rapid.Permutation(p.provisional).Draw(rt, "final")...); err != nil {
			rt.Fatal(err)
		}
		for _, h := range p.heads {
			c, err := log.CoverOf(h)
			if err != nil {
				rt.Fatal(err)
			}
			if _, err := s.Cover(context.Background(), c); err != nil {
				rt.Fatal(err)
			}
		}
		checkWaitingInvariants(rt, s, refFeed)
		checkSameLog(rt, s, wantDigest, wantOrder)
		for _, w := range s.Waiting() {
			rt.Fatalf("%s/%d still waits with every head covered", w.Entry.Header.Author.Short(), w.Entry.Header.Seq)
		}
	})
}

func checkWaitingInvariants(rt *rapid.T, s *Store, refFeed map[crypto.MemberID][]log.Hash) {
	f, d := s.FrontierDigest()
	if f.Digest() != d {
		rt.Fatalf("digest does not match the frontier")
	}
	var clock uint64
	for author, h := range f {
		if h.Forked {
			rt.Fatalf("%s forked: a forger without the ML-DSA key froze a feed", author.Short())
		}
		feed, err := s.Feed(author, 0, 0)
		if err != nil {
			rt.Fatal(err)
		}
		if len(feed) > len(refFeed[author]) || !slices.Equal(ids(feed), refFeed[author][:len(feed)]) {
			rt.Fatalf("feed of %s is no prefix of the reference's", author.Short())
		}
		for _, e := range feed {
			if e.Provisional() {
				rt.Fatalf("%s/%d is in the feed with a provisional signature", author.Short(), e.Header.Seq)
			}
			clock = max(clock, e.Header.Lamport)
		}
	}
	if got := s.MaxLamport(); got != clock {
		rt.Fatalf("carried clock %d, the feed's largest is %d", got, clock)
	}
	count, size := map[crypto.MemberID]int{}, map[crypto.MemberID]int{}
	onChain := map[log.Hash]bool{}
	for _, w := range s.Waiting() {
		e := w.Entry
		a := e.Header.Author
		h := f[a]
		count[a]++
		size[a] += e.Size()
		if e.Header.Seq <= h.Seq || !(e.Header.Seq == h.Seq+1 && (h.Seq == 0 || e.Header.Prev == h.ID)) && !onChain[e.Header.Prev] {
			rt.Fatalf("%s/%d waits off the chain from the head at %d", a.Short(), e.Header.Seq, h.Seq)
		}
		onChain[e.ID()] = true
		if count[a] > log.MaxWaiting || size[a] > log.MaxUnsignedRun {
			rt.Fatalf("%s: %d entries, %d bytes waiting: over the bounds", a.Short(), count[a], size[a])
		}
	}
}

// Holding waiting entries is a write like any: refused on a full disk,
// writing nothing, and resumed when space is back.
func TestWaitingDiskFull(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 2)
	disk := newFakeDisk(1 << 40)
	r := openGuarded(t, t.TempDir(), n, n.fr, disk)
	mustIngest(t, r, n.keyEntry)
	disk.free.Store(testReserve - 1)
	_, err := r.Ingest(context.Background(), provisionalOf(t, es...)...)
	wantDiskFull(t, "holding waiting entries", err)
	if len(r.Waiting()) != 0 {
		t.Error("entries held on a full disk")
	}
	disk.free.Store(1 << 40)
	if res := mustIngest(t, r, provisionalOf(t, es...)...); len(res.Waiting) != 2 {
		t.Errorf("after space came back: %d waiting, want 2", len(res.Waiting))
	}
}

// At open, waiting records the feed has passed, or that do not chain from
// its head, are dropped (from disk too); the others stay.
func TestWaitingStaleDroppedAtOpen(t *testing.T) {
	n := newTestNet(t)
	_, es := authorPosts(t, n, n.lu, 3)
	forged := buildAfter(t, n.lu, n.genesis.NetworkID(), nil, 0, n.msg("forged 1"))
	offChain := buildAfter(t, n.lu, n.genesis.NetworkID(), forged[0], 0, n.msg("forged 2"))
	dir := t.TempDir()
	r := openWaitStore(t, dir, n, n.fr, nil)
	mustIngest(t, r, n.keyEntry, es[0])
	mustIngest(t, r, provisionalOf(t, es[1:]...)...)
	// Records no ingest leaves behind: one at the head's seq, one after a
	// candidate the feed passed.
	err := r.db.Update(func(txn *badger.Txn) error {
		for _, e := range provisionalOf(t, es[0], offChain[0]) {
			if err := txn.Set(waitingKey(n.lu.ID(), e.Header.Seq, e.ID()), encodeWaiting(t0, e)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for range 2 {
		r = openWaitStore(t, dir, n, n.fr, nil)
		if got := waitingIDs(r, n.lu.ID()); !slices.Equal(got, ids(es[1:])) {
			t.Errorf("after reopening: %d waiting, want seqs 2 and 3", len(got))
		}
		stale := 0
		err := r.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pWaiting}})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				stale++
			}
			return nil
		})
		if err != nil || stale != 2 {
			t.Errorf("%d waiting records on disk, %v; want 2", stale, err)
		}
		r.Close()
	}
}

// Several candidates per seq: the composite that arrives covers the
// branch its hash chain names, whichever candidates wait beside it and
// whatever arrives with it.
func TestWaitingFollowsHashChain(t *testing.T) {
	n := newTestNet(t)
	net := n.genesis.NetworkID()
	_, es := authorPosts(t, n, n.lu, 3)
	f2 := buildAfter(t, n.lu, net, es[0], 0, n.msg("forged 2"))[0]
	f3 := buildAfter(t, n.lu, net, f2, 0, n.msg("forged 3"))[0]
	for _, order := range [][]*log.Entry{{f3, es[2]}, {es[2], f3}} {
		r := openWaitStore(t, "", n, n.fr, nil)
		mustIngest(t, r, n.keyEntry)
		mustIngest(t, r, provisionalOf(t, f2, es[0], es[1])...)
		in := []*log.Entry{provisionalOf(t, order[0])[0], order[1]}
		if order[0] == es[2] {
			in = []*log.Entry{order[0], provisionalOf(t, order[1])[0]}
		}
		res := mustIngest(t, r, in...)
		if !slices.Equal(ids(res.Added), ids(es)) {
			t.Errorf("added %d, rejected %v; want the honest 1..3", len(res.Added), res.Rejected)
		}
		if h, _ := r.Head(n.lu.ID()); h.Seq != 3 || h.Forked || len(r.Waiting()) != 0 || len(r.Forks()) != 0 {
			t.Errorf("head %+v, %d waiting, %d forks; want seq 3, none, none", h, len(r.Waiting()), len(r.Forks()))
		}
	}
}
