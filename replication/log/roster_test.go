package log

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

func (n *net) rosterEntry(t testing.TB, who *crypto.Identity, tip Tip, minLamport uint64, u *crypto.Update) *Entry {
	t.Helper()
	es, err := Build(who, n.id, tip, minLamport, t0, []Draft{{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: u.Bytes()}}})
	if err != nil {
		t.Fatal(err)
	}
	return es[0]
}

// The roster is one pure function of the genesis and the roster entries:
// the same in any order; for one version the first in display order wins;
// an update counts only in its signer's entry; the revoked member records
// the clock of that entry.
func TestDeriveRoster(t *testing.T) {
	n := newNet(t)
	lu := n.build(t, n.lu, Tip{}, n.msg("1"))
	revokeLu, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "stolen", Created: t0, FeedSeq: 1, FeedHead: lu[0].ID()}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	revokeFr, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.fr.ID(), Reason: "stolen", Created: t0}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	first := n.rosterEntry(t, n.admin, Tip{}, 10, revokeLu)        // version 1 at clock 11
	second := n.rosterEntry(t, n.admin, tipOf(first), 0, revokeFr) // version 1 too, later
	r1, _ := n.roster.Apply(revokeLu)
	revokeFr2, err := crypto.NewUpdate(r1, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.fr.ID(), Reason: "stolen", Created: t0}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	third := n.rosterEntry(t, n.admin, tipOf(second), 0, revokeFr2)
	// fr re-posts the admin's revocation of lu at a lower clock: it does
	// not count.
	relay := n.rosterEntry(t, n.fr, Tip{}, 0, revokeLu)
	all := []*Entry{lu[0], relay, third, second, first}
	for i := 0; i < 10; i++ {
		rand.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
		r, applied, refused := DeriveRoster(n.roster, all)
		if r.Version() != 2 || len(applied) != 2 || applied[0].Entry != first || applied[1].Entry != third {
			t.Fatalf("roster version %d, applied %d", r.Version(), len(applied))
		}
		m, _ := r.Member(n.lu.ID())
		if !m.Revoked || m.RevokedClock != first.Header.Lamport || m.FeedSeq != 1 {
			t.Errorf("revoked lu: %+v, want clock %d", m, first.Header.Lamport)
		}
		rules := map[string]bool{}
		for _, f := range refused {
			rules[f.Rule] = true
		}
		if len(refused) != 2 || !rules["carrier"] || !rules["superseded"] {
			t.Errorf("refused: %+v", refused)
		}
	}
}

// The revocation rule: entries up to FeedSeq stay; after it, those below
// the clock of the revocation's entry stay and the rest are refused; at
// the cap, or with no clock known, only FeedSeq counts.
func TestRevocationKeepsByClock(t *testing.T) {
	n := newNet(t)
	es := n.build(t, n.lu, Tip{}, n.msg("1"), n.msg("2"))
	es = append(es, n.build(t, n.lu, tipOf(es[1]), n.msg("3"))...)
	u, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "stolen", Created: t0, FeedSeq: 1, FeedHead: es[0].ID()}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	at := func(clock uint64) *crypto.Roster {
		r, err := n.roster.ApplyAt(u, clock)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	thief := func(clock uint64) []*Entry {
		es, err := Build(n.lu, n.id, tipOf(es[2]), clock, t0, []Draft{n.msg("thief")})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	// Revoked by an entry at clock 10: lu's seqs 2 and 3 (clocks 2, 3) stay.
	if k, err := CheckRun(n.id, at(10), Head{}, es); k != 3 || err != nil {
		t.Errorf("entries below the revocation's clock: %d valid, %v", k, err)
	}
	if _, err := CheckRun(n.id, at(10), headOf(es[2]), thief(9)); ReasonOf(err) != ReasonRevokedAuthor {
		t.Errorf("an entry at the revocation's clock: %v, want %s", err, ReasonRevokedAuthor)
	}
	// A backdated entry below the clock is kept: it sorts before the
	// revocation (the documented limit of the rule).
	if k, _ := CheckRun(n.id, at(10), headOf(es[2]), thief(5)); k != 1 {
		t.Error("an entry below the revocation's clock is refused")
	}
	for _, clock := range []uint64{0, MaxLamport} {
		if k, err := CheckRun(n.id, at(clock), Head{}, es); k != 1 || ReasonOf(err) != ReasonRevokedAuthor {
			t.Errorf("revocation clock %d: %d valid, %v; want only FeedSeq kept", clock, k, err)
		}
	}
	// An entry at FeedSeq must be the one named.
	other := n.build(t, n.lu, Tip{}, n.msg("1'"))
	if _, err := CheckRun(n.id, at(10), Head{}, other); ReasonOf(err) != ReasonRevokedAuthor {
		t.Errorf("another entry at FeedSeq: %v", err)
	}
}

// thresholdNet is newNet's members with enisa and cert-lu as admins, both
// needed for a change.
func thresholdNet(t *testing.T) *net {
	t.Helper()
	n := newNet(t)
	g, err := crypto.NewGenesis(crypto.GenesisSpec{
		Network: "test", Created: t0,
		Members: []crypto.Member{
			{Card: n.admin.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}},
			{Card: n.lu.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleCSIRT}},
			{Card: n.fr.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
		},
		Voters: []crypto.MemberID{n.admin.ID()}, Admins: []crypto.MemberID{n.admin.ID(), n.lu.ID()},
		AdminThreshold: 2, ApprovalTTL: time.Hour,
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	n.genesis, n.id, n.roster = g, g.NetworkID(), g.Roster()
	return n
}

func (n *net) approvalEntry(t testing.TB, who *crypto.Identity, tip Tip, a *crypto.Approval) *Entry {
	t.Helper()
	es, err := Build(who, n.id, tip, 0, t0, []Draft{{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: a.Bytes()}}})
	if err != nil {
		t.Fatal(err)
	}
	return es[0]
}

// With a threshold of two admins, an update is pending until a second
// admin's approval is held, in any order of arrival; an approval counts
// only in its signer's entry; an update that waited while another took
// its version is superseded.
func TestDeriveRosterWithApprovals(t *testing.T) {
	n := thresholdNet(t)
	revokeFr, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.fr.ID(), Reason: "stolen", Created: t0}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	upd := n.rosterEntry(t, n.admin, Tip{}, 0, revokeFr)
	st := DeriveRosterState(n.roster, []*Entry{upd})
	if st.Roster.Version() != 0 || len(st.Pending) != 1 || len(st.Refused) != 0 {
		t.Fatalf("one admin's update: version %d, pending %d, refused %+v", st.Roster.Version(), len(st.Pending), st.Refused)
	}
	p := st.Pending[0]
	if p.Needed != 2 || len(p.Approvers) != 1 || p.Approvers[0] != n.admin.ID() || !p.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("pending: %+v", p)
	}

	a, err := crypto.NewApproval(revokeFr, n.lu, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// fr carrying lu's approval: does not count.
	relayed := n.approvalEntry(t, n.fr, Tip{}, a)
	st = DeriveRosterState(n.roster, []*Entry{upd, relayed})
	if st.Roster.Version() != 0 || len(st.Refused) != 1 || st.Refused[0].Rule != "carrier" {
		t.Fatalf("relayed approval: version %d, refused %+v", st.Roster.Version(), st.Refused)
	}
	approved := n.approvalEntry(t, n.lu, Tip{}, a)
	all := []*Entry{relayed, approved, upd}
	for i := 0; i < 6; i++ {
		rand.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
		st = DeriveRosterState(n.roster, all)
		if st.Roster.Version() != 1 || st.Roster.Active(n.fr.ID()) || len(st.Pending) != 0 {
			t.Fatalf("approved: version %d, pending %d", st.Roster.Version(), len(st.Pending))
		}
		if len(st.Applied) != 1 || len(st.Applied[0].Approvals) != 1 || st.Applied[0].Approvals[0].Signer() != n.lu.ID() {
			t.Fatalf("applied: %+v", st.Applied)
		}
	}
	// A competing update for version 1 that waited is superseded.
	other, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{Op: crypto.OpGroup, Group: "ops", Members: []crypto.MemberID{n.admin.ID()}, Created: t0}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	otherE := n.rosterEntry(t, n.admin, tipOf(upd), 0, other)
	st = DeriveRosterState(n.roster, []*Entry{upd, approved, otherE})
	if st.Roster.Version() != 1 || len(st.Pending) != 0 || len(st.Refused) != 1 || st.Refused[0].Rule != "superseded" {
		t.Fatalf("competing update: version %d pending %d refused %+v", st.Roster.Version(), len(st.Pending), st.Refused)
	}
	// A late approval (after the hour) does not count.
	late, err := crypto.NewApproval(revokeFr, n.lu, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	st = DeriveRosterState(n.roster, []*Entry{upd, n.approvalEntry(t, n.lu, Tip{}, late)})
	if st.Roster.Version() != 0 || len(st.Pending) != 1 || len(st.Pending[0].Approvers) != 1 {
		t.Fatalf("late approval: version %d pending %+v", st.Roster.Version(), st.Pending)
	}
}
