package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testNet is a network of an admin and two CSIRTs with a whole-network key.
type testNet struct {
	admin, lu, fr *crypto.Identity
	genesis       *crypto.Genesis
	key           *crypto.GroupKey
	keyEntry      *log.Entry // the admin's seq 1: n.key sealed to all three
}

var (
	netOnce   sync.Once
	sharedNet *testNet
)

// newTestNet returns a network shared by the tests of this package (making
// identities costs milliseconds; the stores are always fresh).
func newTestNet(t testing.TB) *testNet {
	t.Helper()
	netOnce.Do(func() { sharedNet, _ = makeTestNet("test") })
	return sharedNet
}

// makeTestNet makes a network named network of enisa (admin and the one
// voter), cert-lu, cert-fr and one more CSIRT for each of extra (returned
// in that order), with a whole-network key sealed to all of them. It
// panics on error: it runs once, under a sync.Once.
func makeTestNet(network string, extra ...string) (*testNet, []*crypto.Identity) {
	n := &testNet{}
	mk := func(name string) *crypto.Identity {
		id, err := crypto.NewIdentity(name, t0)
		if err != nil {
			panic(err)
		}
		return id
	}
	n.admin, n.lu, n.fr = mk("enisa"), mk("cert-lu"), mk("cert-fr")
	members := []crypto.Member{
		{Card: n.admin.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}},
		{Card: n.lu.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
		{Card: n.fr.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
	}
	rs := n.recipients()
	var more []*crypto.Identity
	for _, name := range extra {
		id := mk(name)
		more = append(more, id)
		members = append(members, crypto.Member{Card: id.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}})
		rs = append(rs, id.Card().Recipient())
	}
	g, err := crypto.NewGenesis(crypto.GenesisSpec{
		Network: network, Created: t0, Members: members,
		Voters: []crypto.MemberID{n.admin.ID()}, Admins: []crypto.MemberID{n.admin.ID()},
	}, n.admin)
	if err != nil {
		panic(err)
	}
	n.genesis = g
	if n.key, err = crypto.NewGroupKey("all", 1); err != nil {
		panic(err)
	}
	if n.keyEntry, err = buildKeyEntry(n.admin, g.NetworkID(), n.key, rs); err != nil {
		panic(err)
	}
	return n, more
}

// buildKeyEntry builds, as author's seq 1, a key entry that seals key to
// exactly rs.
func buildKeyEntry(author *crypto.Identity, net crypto.NetworkID, key *crypto.GroupKey, rs []crypto.Recipient) (*log.Entry, error) {
	ke, err := crypto.NewKeyEnvelope(net, key, rs)
	if err != nil {
		return nil, err
	}
	es, err := log.Build(author, net, log.Tip{}, 0, t0, []log.Draft{{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: ke.Bytes()}}})
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

func (n *testNet) recipients() []crypto.Recipient {
	return []crypto.Recipient{n.admin.Card().Recipient(), n.lu.Card().Recipient(), n.fr.Card().Recipient()}
}

func openStore(t testing.TB, dir string, n *testNet, self *crypto.Identity) *Store {
	t.Helper()
	s, err := Open(dir, n.genesis, self, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (n *testNet) msg(text string) log.Draft {
	return log.Draft{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: text}, Key: n.key}
}

func allEntries(t testing.TB, s *Store) []*log.Entry {
	t.Helper()
	es, err := s.Entries(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func ids(es []*log.Entry) []log.Hash {
	out := make([]log.Hash, len(es))
	for i, e := range es {
		out[i] = e.ID()
	}
	return out
}

// buildAfter builds drafts as who's entries in net, chained after the
// entry after (nil: the start of who's feed), with clocks from minLamport.
func buildAfter(tb testing.TB, who *crypto.Identity, net crypto.NetworkID, after *log.Entry, minLamport uint64, drafts ...log.Draft) []*log.Entry {
	tb.Helper()
	var tip log.Tip
	if after != nil {
		tip = log.Tip{Seq: after.Header.Seq, ID: after.ID(), Lamport: after.Header.Lamport}
	}
	es, err := log.Build(who, net, tip, minLamport, t0, drafts)
	if err != nil {
		tb.Fatal(err)
	}
	return es
}

func mustIngest(t testing.TB, s *Store, es ...*log.Entry) *IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), es...)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

func mustAppend(t testing.TB, s *Store, drafts ...log.Draft) []*log.Entry {
	t.Helper()
	es, err := s.Append(context.Background(), drafts...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return es
}

func TestAppendReopenRead(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	if res := mustIngest(t, s, n.keyEntry); len(res.Added) != 1 {
		t.Fatalf("key entry: %+v", res)
	}
	es := mustAppend(t, s, n.msg("one"), n.msg("two"), n.msg("three"))
	if es[2].Header.Seq != 3 || !es[2].Signed() || es[0].Signed() {
		t.Fatalf("append: seqs/signatures wrong")
	}
	if es[0].Header.Lamport <= n.keyEntry.Header.Lamport {
		t.Error("Lamport clock did not move past the held entries")
	}
	b, err := s.Read(es[1])
	if err != nil || b.Text != "two" {
		t.Fatalf("Read: %v %v", b, err)
	}
	digest, frontier := s.Digest(), s.Frontier()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, n, n.lu)
	if s2.Digest() != digest || s2.Digest() != frontier.Digest() || len(s2.Frontier()) != 2 {
		t.Error("frontier or digest changed across reopen")
	}
	if _, ok := s2.CurrentKey("all"); !ok {
		t.Error("group key not relearned at open")
	}
	got := allEntries(t, s2)
	if len(got) != 4 || got[0].ID() != n.keyEntry.ID() || got[3].ID() != es[2].ID() {
		t.Errorf("entries after reopen: %d", len(got))
	}
	feed, err := s2.Feed(n.lu.ID(), 1, 0)
	if err != nil || len(feed) != 2 || feed[0].Header.Seq != 2 {
		t.Errorf("Feed(after 1): %d entries, %v", len(feed), err)
	}
	more := mustAppend(t, s2, n.msg("four"))
	if more[0].Header.Seq != 4 || more[0].Header.Prev != es[2].ID() {
		t.Error("append after reopen does not chain")
	}
	if _, err := s2.Get(log.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown): %v", err)
	}
	after := got[1].Order()
	page, _ := s2.Entries(&after, 2)
	if len(page) != 2 || page[0].ID() != got[2].ID() {
		t.Error("Entries(after, limit) paging is wrong")
	}
}

// IDsWithPrefix finds an entry by the first bytes of its ID, and the
// frontier and digest read together agree.
func TestIDsWithPrefix(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.lu)
	mustIngest(t, s, n.keyEntry)
	es := mustAppend(t, s, n.msg("one"), n.msg("two"))
	for _, e := range es {
		id := e.ID()
		got, err := s.IDsWithPrefix(id[:4], 10)
		if err != nil || !slices.Contains(got, id) {
			t.Errorf("IDsWithPrefix(%x): %v, %v; want %s among them", id[:4], got, err, id.Short())
		}
	}
	if got, err := s.IDsWithPrefix(nil, 2); err != nil || len(got) != 2 {
		t.Errorf("IDsWithPrefix(nil, 2) = %d IDs, %v; want 2 (the limit)", len(got), err)
	}
	f, d := s.FrontierDigest()
	if d != s.Digest() || d != f.Digest() {
		t.Errorf("FrontierDigest: the digest does not match the frontier")
	}
}

func TestWrongNetwork(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	s.Close()
	other, err := crypto.NewGenesis(crypto.GenesisSpec{
		Network: "other", Created: t0,
		Members: []crypto.Member{{Card: n.admin.Card(), Roles: []crypto.Role{crypto.RoleAdmin}}},
		Voters:  []crypto.MemberID{n.admin.ID()}, Admins: []crypto.MemberID{n.admin.ID()},
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, other, n.admin, Options{}); !errors.Is(err, ErrWrongNetwork) {
		t.Errorf("got %v, want ErrWrongNetwork", err)
	}
}

func TestGroupCommit(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.lu)
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	acked := make(chan *log.Entry, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				es, err := s.Append(context.Background(), n.msg(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				acked <- es[0]
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(acked)
	for err := range errs {
		t.Fatal(err)
	}
	feed, err := s.Feed(n.lu.ID(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) != writers*each {
		t.Fatalf("feed has %d entries, want %d", len(feed), writers*each)
	}
	for e := range acked {
		if got, err := s.Get(e.ID()); err != nil || got.ID() != e.ID() {
			t.Fatalf("acknowledged entry %d missing", e.Header.Seq)
		}
	}
	signed := 0
	for _, e := range feed {
		if e.Signed() {
			signed++
		}
	}
	if k, err := log.CheckRun(s.Network(), s.Roster(), log.Head{}, feed); k != len(feed) || err != nil {
		t.Fatalf("feed does not validate: %d %v", k, err)
	}
	t.Logf("%d entries from %d concurrent appenders: %d signatures (group commit)", len(feed), writers, signed)
}

// Commit delay: a leader that saw several writers at the last commit waits
// for as many to queue, so the writers just acknowledged and those that
// queued meanwhile share one commit (one signature, one fsync) instead of
// taking turns; a lone writer never waits. The delay is made long here so
// that the outcome does not depend on the machine's speed.
func TestCommitDelayGathersTheLastCommitsWriters(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.lu)
	s.commitDelay = time.Hour
	if _, err := s.Append(context.Background(), n.msg("alone")); err != nil {
		t.Fatal(err) // one writer at the last commit (none): no wait
	}
	const writers = 6
	s.qmu.Lock()
	s.writers = writers // as if the last commit had seen six
	s.qmu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(context.Background(), n.msg(fmt.Sprint("w", w))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	feed, err := s.Feed(n.lu.ID(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) != 1+writers {
		t.Fatalf("feed has %d entries, want %d", len(feed), 1+writers)
	}
	for _, e := range feed[1:writers] {
		if e.Signed() {
			t.Fatalf("entry %d is signed: the %d writers were not committed as one batch", e.Header.Seq, writers)
		}
	}
	if !feed[writers].Signed() {
		t.Fatalf("the batch's last entry (seq %d) is not signed", feed[writers].Header.Seq)
	}
	// All six waited at that commit's end: the next lone append would wait
	// for six again, up to the delay; with a short delay it goes alone.
	s.qmu.Lock()
	got := s.writers
	s.commitDelay = time.Millisecond
	s.qmu.Unlock()
	if got != writers {
		t.Errorf("writers seen at the last commit: got %d, want %d", got, writers)
	}
	if _, err := s.Append(context.Background(), n.msg("after")); err != nil {
		t.Fatal(err)
	}
}

// Two stores converge: B ingests A's entries in any order, twice.
func TestIngestConverges(t *testing.T) {
	n := newTestNet(t)
	a := openStore(t, t.TempDir(), n, n.lu)
	b := openStore(t, t.TempDir(), n, n.fr)
	mustIngest(t, a, n.keyEntry)
	var drafts []log.Draft
	for i := 0; i < 10; i++ {
		drafts = append(drafts, n.msg(fmt.Sprint(i)))
	}
	mustAppend(t, a, drafts[:4]...)
	mustAppend(t, a, drafts[4:]...)
	mustAppend(t, b, n.msg("from fr"))
	es := allEntries(t, a)
	shuffled := slices.Clone(es)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	res := mustIngest(t, b, shuffled...)
	if len(res.Added) != len(es) || len(res.Rejected) != 0 {
		t.Fatalf("ingest: %d added, rejected %v", len(res.Added), res.Rejected)
	}
	res = mustIngest(t, b, shuffled...)
	if len(res.Added) != 0 || res.Duplicates != len(es) {
		t.Errorf("second ingest: %d added, %d duplicates", len(res.Added), res.Duplicates)
	}
	mustIngest(t, a, allEntries(t, b)...)
	if a.Digest() != b.Digest() {
		t.Fatal("digests differ after exchanging everything")
	}
	if !slices.Equal(ids(allEntries(t, a)), ids(allEntries(t, b))) {
		t.Fatal("display order differs")
	}
	// b can read a's entries: it holds the key from the admin's key entry.
	body, err := b.Read(es[3])
	if err != nil || body.Kind != log.KindMessage {
		t.Errorf("b reads a's entry: %v", err)
	}
}

func TestIngestRefusesInvalid(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.fr)
	outsider, _ := crypto.NewIdentity("cert-xx", t0)
	foreign, err := log.Build(outsider, s.Network(), log.Tip{}, 0, t0, []log.Draft{n.msg("hi")})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := log.Build(n.lu, s.Network(), log.Tip{}, 0, t0, []log.Draft{n.msg("1"), n.msg("2"), n.msg("3")})
	tests := []struct {
		name string
		es   []*log.Entry
		want log.Reason
	}{
		{"unknown author", foreign, log.ReasonUnknownAuthor},
		{"unsigned tail", good[:2], log.ReasonUnsignedTail},
		{"gap", good[2:], log.ReasonGap},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mustIngest(t, s, tc.es...)
			if len(res.Added) != 0 || len(res.Rejected) == 0 || log.ReasonOf(res.Rejected[0].Err) != tc.want {
				t.Errorf("got added=%d rejected=%v, want reason %s", len(res.Added), res.Rejected, tc.want)
			}
		})
	}
	if len(s.Frontier()) != 0 || len(allEntries(t, s)) != 0 {
		t.Error("an invalid entry was stored")
	}
	// The valid prefix of a run is kept, the rest reported.
	bad, _ := log.Build(n.lu, s.Network(), log.Tip{Seq: 3, ID: good[2].ID(), Lamport: good[2].Header.Lamport}, 0, t0, []log.Draft{n.msg("4")})
	forged, _ := log.Decode(bad[0].Unsigned().Bytes())
	res := mustIngest(t, s, append(slices.Clone(good), forged)...)
	if len(res.Added) != 3 || len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonUnsignedTail {
		t.Errorf("prefix: added %d, rejected %v", len(res.Added), res.Rejected)
	}
}

// The same identity used on two machines writes two different seq 1: a
// third node keeps both as evidence and freezes the feed.
func TestFork(t *testing.T) {
	n := newTestNet(t)
	a1 := openStore(t, t.TempDir(), n, n.lu)
	a2 := openStore(t, t.TempDir(), n, n.lu)
	b := openStore(t, t.TempDir(), n, n.fr)
	x := mustAppend(t, a1, n.msg("x1"), n.msg("x2"))
	y := mustAppend(t, a2, n.msg("y1"))
	mustIngest(t, b, x...)
	res := mustIngest(t, b, y...)
	if len(res.Forks) != 1 || res.Forks[0].Seq != 1 {
		t.Fatalf("fork not found: %+v", res)
	}
	h, _ := b.Head(n.lu.ID())
	if !h.Forked || h.Seq != 0 {
		t.Errorf("head after fork: %+v, want frozen at 0", h)
	}
	ev, err := b.Evidence()
	if err != nil || len(ev) != 3 {
		t.Errorf("evidence: %d entries, %v; want x1, x2 and y1", len(ev), err)
	}
	if len(b.Forks()) != 1 {
		t.Error("Forks() does not list the fork")
	}
	// Nothing more of the author is accepted.
	more, _ := log.Build(n.lu, b.Network(), log.Tip{}, 0, t0, []log.Draft{n.msg("z")})
	res = mustIngest(t, b, more...)
	if len(res.Added) != 0 {
		t.Error("a forked author's entry was accepted")
	}
	// Another node that only saw one branch converges once it gets the
	// evidence.
	// Whichever order the evidence comes in.
	for _, order := range [][]*log.Entry{{ev[0], ev[1], ev[2]}, {ev[2], ev[1], ev[0]}, {ev[1], ev[0], ev[2]}} {
		c := openStore(t, t.TempDir(), n, n.admin)
		mustIngest(t, c, y...)
		mustIngest(t, c, order...)
		if c.Digest() != b.Digest() {
			t.Error("digests differ after exchanging fork evidence")
		}
	}
	// Reopen keeps the fork.
	dir := t.TempDir()
	d := openStore(t, dir, n, n.admin)
	mustIngest(t, d, x...)
	mustIngest(t, d, y...)
	d.Close()
	d2 := openStore(t, dir, n, n.admin)
	if len(d2.Forks()) != 1 {
		t.Error("fork forgotten after reopen")
	}
}

// A key that arrives after the entries makes them readable, no re-ingest.
func TestLateKey(t *testing.T) {
	n := newTestNet(t)
	a := openStore(t, t.TempDir(), n, n.lu)
	b := openStore(t, t.TempDir(), n, n.fr)
	es := mustAppend(t, a, n.msg("secret"))
	mustIngest(t, b, es...)
	if _, err := b.Read(es[0]); !errors.Is(err, ErrSealed) {
		t.Fatalf("before the key: got %v, want ErrSealed", err)
	}
	mustIngest(t, b, n.keyEntry)
	body, err := b.Read(es[0])
	if err != nil || body.Text != "secret" {
		t.Errorf("after the key: %v %v", body, err)
	}
}

// A key for the whole network or a need-to-know group from a non-admin is
// ignored; any member issues a key for a recipient set it is in.
func TestAllKeyOnlyFromAdmins(t *testing.T) {
	n := newTestNet(t)
	a := openStore(t, t.TempDir(), n, n.lu)
	evil, _ := crypto.NewGroupKey("all", 99)
	if _, err := a.AppendKey(context.Background(), evil, n.recipients()); err != nil {
		t.Fatal(err)
	}
	if k, ok := a.CurrentKey("all"); ok && k.Epoch() == 99 {
		t.Error("a non-admin's key for group all was adopted")
	}
	ntk, _ := crypto.NewGroupKey("need-to-know/1", 1)
	if _, err := a.AppendKey(context.Background(), ntk, []crypto.Recipient{n.fr.Card().Recipient()}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.CurrentKey("need-to-know/1"); ok {
		t.Error("a non-admin's key for a need-to-know group was adopted")
	}
	red, _ := crypto.NewGroupKey(log.RecipientGroup([]crypto.MemberID{n.lu.ID(), n.fr.ID()}), 1)
	if _, err := a.AppendKey(context.Background(), red, []crypto.Recipient{n.fr.Card().Recipient()}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.KeyFor([]crypto.MemberID{n.fr.ID(), n.lu.ID()}); !ok {
		t.Error("the author of a recipient-set group does not hold its key")
	}
}

// Revocation keeps the entries up to the named seq and sets aside the rest,
// whether the entries or the revocation arrive first.
func TestRevocation(t *testing.T) {
	n := newTestNet(t)
	lu := openStore(t, t.TempDir(), n, n.lu)
	es := mustAppend(t, lu, n.msg("1"))
	es = append(es, mustAppend(t, lu, n.msg("2"))...)
	es = append(es, mustAppend(t, lu, n.msg("3"))...)
	u, err := crypto.NewUpdate(n.genesis.Roster(), crypto.UpdateSpec{
		Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "key stolen", Created: t0, FeedSeq: 2, FeedHead: es[1].ID(),
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	admin := openStore(t, t.TempDir(), n, n.admin)
	rosterEntry, err := admin.AppendRosterUpdate(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	// Entries first, then the revocation.
	b := openStore(t, t.TempDir(), n, n.fr)
	mustIngest(t, b, es...)
	mustIngest(t, b, rosterEntry)
	if h, _ := b.Head(n.lu.ID()); h.Seq != 2 {
		t.Errorf("entries first: head %d, want 2", h.Seq)
	}
	if b.Roster().Active(n.lu.ID()) {
		t.Error("revoked member still active")
	}
	// Revocation first, then the entries.
	c := openStore(t, t.TempDir(), n, n.fr)
	mustIngest(t, c, rosterEntry)
	res := mustIngest(t, c, es...)
	if len(res.Added) != 2 || len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonRevokedAuthor {
		t.Errorf("revocation first: added %d, rejected %v", len(res.Added), res.Rejected)
	}
	if h, _ := c.Head(n.lu.ID()); h.Seq != 2 {
		t.Errorf("revocation first: head %d, want 2", h.Seq)
	}
	if _, err := lu.Append(context.Background(), n.msg("4")); err != nil {
		// lu does not know it was revoked yet: it may still write locally.
		t.Fatal(err)
	}
	mustIngest(t, lu, rosterEntry)
	if _, err := lu.Append(context.Background(), n.msg("5")); err == nil {
		t.Error("a revoked member could still append")
	}
}

func TestClosed(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, filepath.Join(t.TempDir(), "db"), n, n.lu)
	s.Close()
	if _, err := s.Append(context.Background(), n.msg("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.Ingest(context.Background(), n.keyEntry); !errors.Is(err, ErrClosed) {
		t.Errorf("Ingest after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSubscribeAndKeyRecipients(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.lu)
	sub := s.Subscribe(4)
	mustIngest(t, s, n.keyEntry)
	es := mustAppend(t, s, n.msg("a"), n.msg("b"))
	got := <-sub.C
	if len(got) != 1 || got[0].ID() != n.keyEntry.ID() {
		t.Fatalf("first batch: %d entries", len(got))
	}
	got = <-sub.C
	if len(got) != 2 || got[1].ID() != es[1].ID() {
		t.Fatalf("second batch: %d entries", len(got))
	}
	rec := s.KeyRecipients(n.key.ID())
	if len(rec) != 3 {
		t.Errorf("KeyRecipients: %d, want 3", len(rec))
	}
	sub.Close()
	if _, ok := <-sub.C; ok {
		t.Error("channel open after Close")
	}
	// A slow subscriber loses batches, never blocks the writer.
	slow := s.Subscribe(1)
	for i := 0; i < 3; i++ {
		mustAppend(t, s, n.msg("x"))
	}
	if slow.Lagged() != 2 {
		t.Errorf("Lagged = %d, want 2", slow.Lagged())
	}
}

// A batch too large for one badger transaction is split; all of it lands.
func TestLargeBatchSplitsTransactions(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.fr)
	big := strings.Repeat("x", 600<<10)
	drafts := make([]log.Draft, 12)
	for i := range drafts {
		drafts[i] = n.msg(big)
	}
	es, err := log.Build(n.lu, s.Network(), log.Tip{}, 0, t0, drafts)
	if err != nil {
		t.Fatal(err)
	}
	res := mustIngest(t, s, es...)
	if len(res.Added) != len(es) || len(res.Rejected) != 0 {
		t.Fatalf("added %d of %d, rejected %v", len(res.Added), len(es), res.Rejected)
	}
	mine := mustAppend(t, s, drafts...)
	if len(mine) != 12 {
		t.Fatalf("appended %d", len(mine))
	}
}

// A post of a few KiB of text, with its composite signature, stays below
// the value threshold: its commit syncs badger's write-ahead log only,
// not the value log as well.
func TestPostsOfSomeKiBStayInTheLSMTree(t *testing.T) {
	n := newTestNet(t)
	s := openStore(t, t.TempDir(), n, n.lu)
	mustIngest(t, s, n.keyEntry)
	for _, size := range []int{1 << 10, 4 << 10, 8 << 10} {
		e := mustAppend(t, s, n.msg(strings.Repeat("x", size)))[0]
		if e.Size() >= valueThreshold {
			t.Errorf("an entry of %d bytes of text is %d bytes, want under the value threshold %d", size, e.Size(), valueThreshold)
		}
	}
	if got := badgerOptions(t.TempDir(), Options{}, nil).ValueThreshold; got != valueThreshold {
		t.Errorf("badger's value threshold is %d, want %d", got, valueThreshold)
	}
}
