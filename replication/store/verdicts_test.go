package store

import (
	"context"
	"github.com/crisismesh/crisismesh/crypto"
	"pgregory.net/rapid"
	"slices"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
)

// A member's entry at the largest clock the log allows must not stop
// anyone else from writing (issue 11, finding 2): honest appends go on,
// the display order stays total, and the author is charged an offence.
func TestLamportBombDoesNotStopWriters(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	mustIngest(t, s, n.keyEntry)
	mine := mustAppend(t, s, n.msg("before"))
	bomb, err := log.Build(n.fr, n.genesis.NetworkID(), log.Tip{}, log.MaxLamport-2, t0, []log.Draft{n.msg("bomb")})
	if err != nil {
		t.Fatalf("building the attacker's entry: %v", err)
	}
	if bomb[0].Header.Lamport != log.MaxLamport-1 {
		t.Fatalf("attacker's clock %d, want %d", bomb[0].Header.Lamport, uint64(log.MaxLamport-1))
	}
	if res := mustIngest(t, s, bomb...); len(res.Added) != 1 {
		t.Fatalf("the attacker's entry is valid and must be stored (one verdict everywhere): %+v", res.Rejected)
	}
	for i, text := range []string{"after 1", "after 2"} {
		es, err := s.Append(context.Background(), n.msg(text))
		if err != nil {
			t.Fatalf("honest append %d after the bomb: %v", i+1, err)
		}
		mine = append(mine, es...)
	}
	// The bomb's clock is not carried: honest entries keep their order
	// among themselves, and sort before the bomb.
	if l := mine[len(mine)-1].Header.Lamport; l >= log.MaxJump {
		t.Errorf("the honest writer's clock was dragged to %d", l)
	}
	if got := offencesOf(s, n.fr.ID()); got == 0 {
		t.Errorf("the bomb's author has no offence recorded")
	}
	if got := offencesOf(s, n.lu.ID()); got != 0 {
		t.Errorf("the honest writer has %d offences", got)
	}
	// Another node takes the honest entries after the bomb, whatever order.
	o := openStore(t, t.TempDir(), n, n.admin)
	if res := mustIngest(t, o, append(append([]*log.Entry{n.keyEntry}, mine...), bomb...)...); len(res.Rejected) != 0 {
		t.Fatalf("another node refuses: %v", res.Rejected)
	}
	if o.Digest() != s.Digest() {
		t.Error("the two nodes' digests differ")
	}
	if got, want := o.Offences(), s.Offences(); offencesOf(o, n.fr.ID()) != 1 || offencesOf(o, n.lu.ID()) != 0 || offencesOf(s, n.fr.ID()) != 1 {
		t.Errorf("offences differ between nodes or charge the wrong author: %v and %v", got, want)
	}
	// Reopened, the store still does not carry the bomb's clock.
	s.Close()
	s = openStore(t, dir, n, n.lu)
	if l := s.MaxLamport(); l >= log.MaxJump {
		t.Errorf("reopened: clock %d carries the bomb", l)
	}
	if _, err := s.Append(context.Background(), n.msg("after reopening")); err != nil {
		t.Errorf("append after reopening: %v", err)
	}
}

// revocationEntry has admin node a revoke lu naming seq keep as the last
// entry it saw of lu (keep 0: none).
func revocationEntry(t *testing.T, n *testNet, a *Store, keep *log.Entry) *log.Entry {
	t.Helper()
	spec := crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "key stolen", Created: t0}
	if keep != nil {
		spec.FeedSeq, spec.FeedHead = keep.Header.Seq, keep.ID()
	}
	return appendUpdate(t, n, a, spec)
}

// appendUpdate has the admin's node a append the roster update spec.
func appendUpdate(t *testing.T, n *testNet, a *Store, spec crypto.UpdateSpec) *log.Entry {
	t.Helper()
	u, err := crypto.NewUpdate(a.Roster(), spec, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.AppendRosterUpdate(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// One admin cannot erase a member's past entries by naming a low seq in a
// revocation (issue 11, finding 7): entries the admin's clock had passed
// stay, in whichever order a node learns of them and of the revocation;
// a thief's entries after the revocation are refused.
func TestRevocationCannotErasePast(t *testing.T) {
	n := newTestNet(t)
	lu := openStore(t, t.TempDir(), n, n.lu)
	mustIngest(t, lu, n.keyEntry)
	past := mustAppend(t, lu, n.msg("1"))
	past = append(past, mustAppend(t, lu, n.msg("2"), n.msg("3"))...)
	admin := openStore(t, t.TempDir(), n, n.admin)
	mustIngest(t, admin, n.keyEntry)
	mustIngest(t, admin, past...)
	// The admin held lu's three entries, yet names seq 1.
	revoke := revocationEntry(t, n, admin, past[0])
	if revoke.Header.Lamport <= past[2].Header.Lamport {
		t.Fatalf("test setup: the admin's clock %d is not past lu's %d", revoke.Header.Lamport, past[2].Header.Lamport)
	}
	// A thief with lu's key writes after the revocation, having seen it.
	thief, err := log.Build(n.lu, n.genesis.NetworkID(), log.Tip{Seq: 3, ID: past[2].ID(), Lamport: past[2].Header.Lamport}, revoke.Header.Lamport, t0, []log.Draft{n.msg("thief")})
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string][][]*log.Entry{
		"entries first":    {append([]*log.Entry{n.keyEntry}, past...), {revoke}, thief},
		"revocation first": {{n.keyEntry, revoke}, past, thief},
		"thief first":      {append(append([]*log.Entry{n.keyEntry}, past...), thief...), {revoke}},
		"all at once":      {append(append([]*log.Entry{revoke, n.keyEntry}, thief...), past...)},
	}
	var digests []log.Digest
	for name, calls := range orders {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), n, n.fr)
			for _, c := range calls {
				mustIngest(t, s, c...)
			}
			if h, _ := s.Head(n.lu.ID()); h.Seq != 3 || h.ID != past[2].ID() || h.Forked {
				t.Errorf("lu's feed ends at seq %d (forked %v), want its past entries 1..3 kept", h.Seq, h.Forked)
			}
			if _, err := s.Get(thief[0].ID()); err == nil {
				t.Error("the thief's entry after the revocation is held")
			}
			digests = append(digests, s.Digest())
		})
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Error("the stores' digests differ with the order of arrival")
		}
	}
	// A node that learned of the revocation first refuses the thief's
	// entry, naming the reason.
	s := openStore(t, t.TempDir(), n, n.fr)
	mustIngest(t, s, n.keyEntry, revoke)
	mustIngest(t, s, past...)
	res := mustIngest(t, s, thief...)
	if len(res.Rejected) != 1 || log.ReasonOf(res.Rejected[0].Err) != log.ReasonRevokedAuthor {
		t.Errorf("thief's entry: %+v, want refused for %s", res.Rejected, log.ReasonRevokedAuthor)
	}
}

// revocationPool is a log in which an admin revokes lu naming seq 2 while
// holding more: a fork of lu at seq 1 that the revocation settles, lu's entries below the revocation's clock (one written
// concurrently with it), a thief's entries after it, and a thief's fork
// of lu's feed at a clock past the revocation.
type revocationPool struct {
	all      []*log.Entry
	revoke   *log.Entry
	luHead   *log.Entry // what every node must end with
	refused  []*log.Entry
	frHolder *log.Entry
}

func newRevocationPool(t testing.TB, n *testNet) *revocationPool {
	t.Helper()
	net := n.genesis.NetworkID()
	build := func(who *crypto.Identity, after *log.Entry, minLamport uint64, drafts ...log.Draft) []*log.Entry {
		return buildAfter(t, who, net, after, minLamport, drafts...)
	}
	p := &revocationPool{}
	lu := build(n.lu, nil, n.keyEntry.Header.Lamport, n.msg("lu 1"), n.msg("lu 2")) // lu 1 unsigned
	lu = append(lu, build(n.lu, lu[1], 0, n.msg("lu 3"))...)
	fr := build(n.fr, nil, lu[2].Header.Lamport, n.msg("fr 1"))
	u, err := crypto.NewUpdate(n.genesis.Roster(), crypto.UpdateSpec{
		Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "key stolen", Created: t0, FeedSeq: 2, FeedHead: lu[1].ID(),
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	// lu equivocated at seq 1 before the revocation, which names the
	// branch that counts.
	luFork := build(n.lu, nil, 0, n.msg("lu 1'"))
	p.revoke = build(n.admin, n.keyEntry, fr[0].Header.Lamport+5, log.Draft{Body: log.Body{Kind: log.KindRoster, TLP: log.TLPClear, Payload: u.Bytes()}})[0]
	// lu writes seq 4 before it learns of the revocation: its clock is
	// below the revocation's.
	lu4 := build(n.lu, lu[2], fr[0].Header.Lamport, n.msg("lu 4"))[0]
	if lu4.Header.Lamport >= p.revoke.Header.Lamport {
		t.Fatal("test setup: lu 4 is not below the revocation's clock")
	}
	thief := build(n.lu, lu4, p.revoke.Header.Lamport, n.msg("thief 5"), n.msg("thief 6"))
	thiefFork := build(n.lu, lu[2], p.revoke.Header.Lamport, n.msg("thief 4'"))
	p.luHead = lu4
	p.refused = append(append(append([]*log.Entry{}, thief...), thiefFork...), luFork...)
	p.frHolder = fr[0]
	p.all = append(append(append(append(append([]*log.Entry{n.keyEntry, p.revoke, lu4}, lu...), fr...), thief...), thiefFork...), luFork...)
	return p
}

// Two stores fed the same entries in any order, the revocation before,
// among or after the entries it concerns, end with identical feeds, heads
// and digests.
func TestPropertyRevocationOrder(t *testing.T) {
	n := newTestNet(t)
	p := newRevocationPool(t, n)
	ref := openStore(t, t.TempDir(), n, n.fr)
	for _, e := range p.all { // one at a time, in pool order
		mustIngest(t, ref, e)
	}
	mustIngest(t, ref, p.all...)
	if h, _ := ref.Head(n.lu.ID()); h.Seq != 4 || h.ID != p.luHead.ID() || h.Forked {
		t.Fatalf("reference: lu's head at seq %d forked %v, want lu 4", h.Seq, h.Forked)
	}
	for _, e := range p.refused {
		if _, err := ref.Get(e.ID()); err == nil {
			t.Fatalf("reference holds the thief's entry %d", e.Header.Seq)
		}
	}
	wantDigest, wantOrder := ref.Digest(), ids(allEntries(t, ref))
	rapid.Check(t, func(rt *rapid.T) {
		s := openMemStore(rt, n, n.fr)
		defer s.Close()
		ingestRandomChunks(rt, s, p.all, 5, len(p.all))
		for _, e := range rapid.Permutation(p.all).Draw(rt, "final") {
			if _, err := s.Ingest(context.Background(), e); err != nil {
				rt.Fatal(err)
			}
		}
		// Gaps refused on the way come again once.
		res, err := s.Ingest(context.Background(), p.all...)
		if err != nil {
			rt.Fatal(err)
		}
		if h, _ := s.Head(n.lu.ID()); h.ID != p.luHead.ID() || h.Forked {
			ev, _ := s.EvidenceOf(n.lu.ID())
			for _, e := range ev {
				rt.Logf("evidence: seq %d lamport %d %s signed %v", e.Header.Seq, e.Header.Lamport, e.ID().Short(), e.Signed())
			}
			rt.Fatalf("lu's head at seq %d forked %v, want lu 4 (seq 4); last ingest refused %v", h.Seq, h.Forked, res.Rejected)
		}
		checkSameLog(rt, s, wantDigest, wantOrder)
	})
}

// A thief that backdates an entry below the revocation's clock at a seq
// the owner also wrote forks the feed: every node freezes it before that
// seq, whatever the order.
func TestRevocationBackdatedForkFreezes(t *testing.T) {
	n := newTestNet(t)
	p := newRevocationPool(t, n)
	var lu3 *log.Entry
	for _, e := range p.all {
		if e.Header.Author == n.lu.ID() && e.Header.Seq == 3 {
			lu3 = e
		}
	}
	backdated, err := log.Build(n.lu, n.genesis.NetworkID(), log.Tip{Seq: 3, ID: lu3.ID(), Lamport: lu3.Header.Lamport}, 0, t0, []log.Draft{n.msg("backdated 4")})
	if err != nil {
		t.Fatal(err)
	}
	if backdated[0].Header.Lamport >= p.revoke.Header.Lamport {
		t.Fatal("test setup: not below the revocation's clock")
	}
	all := append(slices.Clone(p.all), backdated...)
	var heads []log.Head
	for _, order := range [][]*log.Entry{all, slices.Concat(all[1:], all[:1]), {all[len(all)-1]}} {
		s := openStore(t, t.TempDir(), n, n.fr)
		for _, e := range order {
			mustIngest(t, s, e) // refused for gaps or unsigned tails as they come
		}
		mustIngest(t, s, all...)
		mustIngest(t, s, all...)
		h, _ := s.Head(n.lu.ID())
		heads = append(heads, h)
	}
	for i, h := range heads {
		if h.Seq != 3 || !h.Forked || h != heads[0] {
			t.Errorf("order %d: lu's head at seq %d forked %v, want frozen at 3 on every node", i, h.Seq, h.Forked)
		}
	}
}

// After a Lamport bomb, an honest admin's revocation of the bomber still
// has a clock of its own (not the cap), so the revocation rule keeps its
// meaning: the bomber's entries after the revocation, at the cap, are
// refused on every node, while the bomb itself, which the admin saw, is
// kept as the record of what happened.
func TestRevocationAfterLamportBomb(t *testing.T) {
	n := newTestNet(t)
	admin := openStore(t, t.TempDir(), n, n.admin)
	mustIngest(t, admin, n.keyEntry)
	bomb := buildAfter(t, n.fr, n.genesis.NetworkID(), nil, log.MaxLamport-2, n.msg("bomb"))
	mustIngest(t, admin, bomb...)
	spec := crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.fr.ID(), Reason: "Lamport bomb", Created: t0, FeedSeq: 1, FeedHead: bomb[0].ID()}
	revoke := appendUpdate(t, n, admin, spec)
	if revoke.Header.Lamport >= log.MaxJump {
		t.Fatalf("the admin's clock was dragged to %d by the bomb", revoke.Header.Lamport)
	}
	more := buildAfter(t, n.fr, n.genesis.NetworkID(), bomb[0], 0, n.msg("at the cap"))
	for _, first := range []bool{true, false} {
		s := openStore(t, t.TempDir(), n, n.lu)
		if first {
			mustIngest(t, s, n.keyEntry, revoke)
			mustIngest(t, s, slices.Concat(bomb, more)...)
		} else {
			mustIngest(t, s, slices.Concat([]*log.Entry{n.keyEntry}, bomb, more)...)
			mustIngest(t, s, revoke)
		}
		if h, _ := s.Head(n.fr.ID()); h.Seq != 1 || h.ID != bomb[0].ID() {
			t.Errorf("revocation first %v: the bomber's feed ends at seq %d, want 1 (the bomb, which the admin saw)", first, h.Seq)
		}
		if _, err := s.Append(context.Background(), n.msg("still writing")); err != nil {
			t.Errorf("revocation first %v: append: %v", first, err)
		}
	}
}

// offencesOf counts the entries of author charged as lamport jumps.
func offencesOf(s *Store, author crypto.MemberID) int {
	n := 0
	for _, o := range s.Offences() {
		if o.Author == author && o.Rule == OffenceLamportJump {
			n += o.Entries
		}
	}
	return n
}
