package crypto

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// wantRule fails unless err is a *RuleError with the rule.
func wantRule(t *testing.T, err error, rule string) {
	t.Helper()
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != rule {
		t.Fatalf("got %v; want a refusal by rule %q", err, rule)
	}
}

// rtThresholdNet is rtNewNet's members with a threshold of 2 admins.
func rtThresholdNet(t *testing.T, ttl time.Duration) *rtNet {
	t.Helper()
	n := rtNewNet(t)
	spec := GenesisSpec{
		Network: "eu-cyclone", Created: testTime,
		Members: []Member{
			{Card: n.adminEU.Card(), Roles: []Role{RoleAdmin, RoleCyclone}},
			{Card: n.adminFR.Card(), Roles: []Role{RoleAdmin}},
			{Card: n.lu.Card(), Roles: []Role{RoleCSIRT}},
			{Card: n.fr.Card(), Roles: []Role{RoleCyclone, RoleAdmin}},
			{Card: n.obs.Card(), Roles: []Role{RoleObserver}},
		},
		Voters:         []MemberID{n.adminEU.ID(), n.adminFR.ID(), n.lu.ID()},
		Admins:         []MemberID{n.adminEU.ID(), n.adminFR.ID(), n.fr.ID()},
		AdminThreshold: 2, ApprovalTTL: ttl,
	}
	var err error
	if n.g, err = NewGenesis(spec, n.adminEU); err != nil {
		t.Fatalf("NewGenesis: %v", err)
	}
	n.r = n.g.Roster()
	return n
}

func rtApprove(t *testing.T, u *Update, admin *Identity, at time.Time) *Approval {
	t.Helper()
	a, err := NewApproval(u, admin, at)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseApproval(a.Bytes())
	if err != nil {
		t.Fatalf("ParseApproval(NewApproval): %v", err)
	}
	return again
}

func TestGenesisWithoutThresholdKeepsItsBytes(t *testing.T) {
	n := rtNewNet(t)
	if n.r.Threshold() != 1 || n.r.ApprovalTTL() != DefaultApprovalTTL {
		t.Fatalf("threshold %d ttl %s; want 1 and the default", n.r.Threshold(), n.r.ApprovalTTL())
	}
	// The committed genesis of an older version parses to the same ID.
	var body genesisBody
	if err := unmarshalCanonical(rtSplit(t, n.g.Bytes()).Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Threshold != 0 || body.ApprovalTTL != 0 {
		t.Fatalf("a threshold of 1 was written: %+v", body)
	}
	th := rtThresholdNet(t, 0)
	if th.r.Threshold() != 2 || th.r.ApprovalTTL() != DefaultApprovalTTL {
		t.Fatalf("threshold %d ttl %s; want 2 and the default", th.r.Threshold(), th.r.ApprovalTTL())
	}
	again, err := ParseGenesis(th.g.Bytes())
	if err != nil || again.Roster().Threshold() != 2 {
		t.Fatalf("reparse: %v", err)
	}
}

func TestGenesisThresholdRules(t *testing.T) {
	n := rtNewNet(t)
	base := GenesisSpec{Network: "x", Created: testTime,
		Members: []Member{{Card: n.adminEU.Card(), Roles: []Role{RoleAdmin}}, {Card: n.lu.Card(), Roles: []Role{RoleCSIRT}}},
		Voters:  []MemberID{n.adminEU.ID()}, Admins: []MemberID{n.adminEU.ID()}}
	spec := base
	spec.AdminThreshold = 2
	_, err := NewGenesis(spec, n.adminEU)
	wantRule(t, err, "admin-threshold")
	spec = base
	spec.AdminThreshold = -1
	_, err = NewGenesis(spec, n.adminEU)
	wantRule(t, err, "admin-threshold")
	// A threshold of 1 written out is not the canonical form.
	var body genesisBody
	g, err := NewGenesis(base, n.adminEU)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalCanonical(rtSplit(t, g.Bytes()).Body, &body); err != nil {
		t.Fatal(err)
	}
	body.Threshold = 1
	b, err := marshal(&body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseGenesis(rtSignDoc(t, b, n.adminEU, ContextRoster)); !errors.Is(err, ErrNonCanonical) {
		t.Fatalf("explicit threshold 1: %v; want ErrNonCanonical", err)
	}
}

func TestThresholdNeedsApprovals(t *testing.T) {
	n := rtThresholdNet(t, time.Hour)
	de := newTestIdentity(t, "cert-de")
	u := rtUpdate(t, n.r, UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}}, Created: testTime}, n.adminEU)
	_, err := n.r.Apply(u)
	wantRule(t, err, "approvals")

	// The proposer approving its own update does not count twice.
	self := rtApprove(t, u, n.adminEU, testTime)
	_, err = n.r.ApplyApproved(u, []*Approval{self, self}, 0)
	wantRule(t, err, "approvals")
	// A non-admin's approval does not count.
	_, err = n.r.ApplyApproved(u, []*Approval{rtApprove(t, u, n.lu, testTime)}, 0)
	wantRule(t, err, "approvals")
	if err := n.r.CheckApproval(u, rtApprove(t, u, n.lu, testTime)); err == nil {
		t.Fatal("a non-admin's approval counts")
	} else {
		wantRule(t, err, "signer-admin")
	}
	// An approval made after the update expired does not count.
	late := rtApprove(t, u, n.adminFR, testTime.Add(time.Hour+time.Second))
	wantRule(t, n.r.CheckApproval(u, late), "approval-expired")
	_, err = n.r.ApplyApproved(u, []*Approval{late}, 0)
	wantRule(t, err, "approvals")
	// An approval of another update does not count.
	other := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "left", Created: testTime}, n.adminEU)
	wrong := rtApprove(t, other, n.adminFR, testTime)
	wantRule(t, n.r.CheckApproval(u, wrong), "approval-update")
	// A forged approval (signature by another key under the admin's ID).
	forged := rtApprove(t, u, n.adminFR, testTime)
	w := rtSplit(t, forged.Bytes())
	sig, err := n.lu.Sign(ContextApproval, w.Body)
	if err != nil {
		t.Fatal(err)
	}
	w.Sig = sig
	raw, err := marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	fa, err := ParseApproval(raw)
	if err != nil {
		t.Fatal(err)
	}
	wantRule(t, n.r.CheckApproval(u, fa), "signature")
	_, err = n.r.ApplyApproved(u, []*Approval{fa, wrong, late}, 0)
	wantRule(t, err, "approvals")

	// A second admin's approval within the time: in force.
	next, err := n.r.ApplyApproved(u, []*Approval{wrong, rtApprove(t, u, n.adminFR, testTime.Add(time.Minute))}, 0)
	if err != nil {
		t.Fatalf("two admins: %v", err)
	}
	if _, ok := next.ByName("cert-de"); !ok {
		t.Fatal("cert-de not admitted")
	}
	if got := n.r.Approvers(u, []*Approval{rtApprove(t, u, n.fr, testTime)}); !slices.Equal(got, []MemberID{n.adminEU.ID(), n.fr.ID()}) {
		t.Fatalf("approvers %v", got)
	}
}

func TestRevokeKeepsThresholdReachable(t *testing.T) {
	n := rtThresholdNet(t, 0)
	u := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.fr.ID(), Reason: "left", Created: testTime}, n.adminEU)
	r1, err := n.r.ApplyApproved(u, []*Approval{rtApprove(t, u, n.adminFR, testTime)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Two admins left where two must agree: the next admin revocation
	// would leave one.
	u2 := rtUpdate(t, r1, UpdateSpec{Op: OpRevoke, Target: n.adminFR.ID(), Reason: "left", Created: testTime}, n.adminEU)
	_, err = r1.ApplyApproved(u2, []*Approval{rtApprove(t, u2, n.adminFR, testTime)}, 0)
	wantRule(t, err, "admin-threshold")
}

func TestBreakGlassSelfRevocation(t *testing.T) {
	for _, threshold := range []bool{false, true} {
		n := rtNewNet(t)
		if threshold {
			n = rtThresholdNet(t, 0)
		}
		u := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.lu.ID(), Reason: "laptop stolen", Created: testTime}, n.lu)
		if !u.SelfRevocation() {
			t.Fatal("not a self-revocation")
		}
		next, err := n.r.Apply(u)
		if err != nil {
			t.Fatalf("threshold %v: self-revocation: %v", threshold, err)
		}
		if next.Active(n.lu.ID()) {
			t.Fatal("still active")
		}
		// Once revoked it cannot do it again, nor revoke anyone else.
		u2 := rtUpdate(t, next, UpdateSpec{Op: OpRevoke, Target: n.lu.ID(), Reason: "again", Created: testTime}, n.lu)
		_, err = next.Apply(u2)
		wantRule(t, err, "target-active")
		u3 := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "x", Created: testTime}, n.lu)
		_, err = n.r.Apply(u3)
		wantRule(t, err, "signer-admin")
	}
	// The last admin cannot break glass on itself: the network would have
	// no admin.
	n := rtNewNet(t)
	g := testNetwork(t, n.adminEU, n.lu)
	u := rtUpdate(t, g.Roster(), UpdateSpec{Op: OpRevoke, Target: n.adminEU.ID(), Reason: "x", Created: testTime}, n.adminEU)
	_, err := g.Roster().Apply(u)
	wantRule(t, err, "last-admin")
}

func TestGroups(t *testing.T) {
	n := rtNewNet(t)
	set := func(r *Roster, name string, ids ...MemberID) (*Roster, error) {
		u := rtUpdate(t, r, UpdateSpec{Op: OpGroup, Group: name, Members: ids, Created: testTime}, n.adminEU)
		again, err := ParseUpdate(u.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return r.Apply(again)
	}
	r1, err := set(n.r, "ops", n.lu.ID(), n.fr.ID())
	if err != nil {
		t.Fatal(err)
	}
	got, ok := r1.Group("ops")
	if !ok || len(got) != 2 || !slices.Equal(r1.Groups(), []string{"ops"}) {
		t.Fatalf("group ops: %v %v", got, ok)
	}
	_, err = set(r1, "all", n.lu.ID())
	wantRule(t, err, "group-name")
	_, err = set(r1, "Bad Name", n.lu.ID())
	wantRule(t, err, "group-name")
	_, err = set(r1, "nope")
	wantRule(t, err, "group-unknown")
	stranger := newTestIdentity(t, "stranger")
	_, err = set(r1, "ops", stranger.ID())
	wantRule(t, err, "members-active")

	// Revoking a member takes it out of every group; rotating swaps its ID.
	rev := rtUpdate(t, r1, UpdateSpec{Op: OpRevoke, Target: n.fr.ID(), Reason: "left", Created: testTime}, n.adminEU)
	r2 := rtApply(t, r1, rev)
	if got, _ := r2.Group("ops"); !slices.Equal(got, []MemberID{n.lu.ID()}) {
		t.Fatalf("after revoke: %v", got)
	}
	luNew := newTestIdentity(t, "cert-lu")
	rot := rtUpdate(t, r2, UpdateSpec{Op: OpRotate, Target: n.lu.ID(), NewCard: luNew.Card(), Created: testTime}, n.adminEU)
	r3 := rtApply(t, r2, rot)
	if got, _ := r3.Group("ops"); !slices.Equal(got, []MemberID{luNew.ID()}) {
		t.Fatalf("after rotate: %v", got)
	}
	// The last member revoked: the group is gone.
	rev2 := rtUpdate(t, r3, UpdateSpec{Op: OpRevoke, Target: luNew.ID(), Reason: "left", Created: testTime}, n.adminEU)
	if r4 := rtApply(t, r3, rev2); len(r4.Groups()) != 0 {
		t.Fatalf("groups %v", r4.Groups())
	}
	// Removing a group.
	r5, err := set(r1, "ops")
	if err != nil || len(r5.Groups()) != 0 {
		t.Fatalf("remove: %v %v", err, r5.Groups())
	}
	// Only admins change groups.
	u := rtUpdate(t, n.r, UpdateSpec{Op: OpGroup, Group: "x", Members: []MemberID{n.lu.ID()}, Created: testTime}, n.lu)
	_, err = n.r.Apply(u)
	wantRule(t, err, "signer-admin")
}

func TestVoterChanges(t *testing.T) {
	n := rtNewNet(t)
	set := func(ids ...MemberID) (*Roster, error) {
		return n.r.Apply(rtUpdate(t, n.r, UpdateSpec{Op: OpVoters, Members: ids, Created: testTime}, n.adminEU))
	}
	r, err := set(n.adminEU.ID(), n.adminFR.ID(), n.lu.ID(), n.fr.ID(), n.obs.ID())
	if err != nil || len(r.Voters()) != 5 {
		t.Fatalf("five voters: %v", err)
	}
	_, err = set(n.adminEU.ID(), n.adminFR.ID())
	wantRule(t, err, "voters-odd")
	_, err = set()
	wantRule(t, err, "voters-odd")
	_, err = set(newTestIdentity(t, "stranger").ID())
	wantRule(t, err, "members-active")

	// Adding a voter: refused when the count would be even.
	de := newTestIdentity(t, "cert-de")
	_, err = n.r.Apply(rtUpdate(t, n.r, UpdateSpec{Op: OpAdd, Voter: true, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}}, Created: testTime}, n.adminEU))
	wantRule(t, err, "voters-odd")
	// An admin-role member added becomes an admin.
	r, err = n.r.Apply(rtUpdate(t, n.r, UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleAdmin}}, Created: testTime}, n.adminEU))
	if err != nil || !r.IsAdmin(de.ID()) {
		t.Fatalf("admin added: %v", err)
	}
}

func TestParseApprovalRefuses(t *testing.T) {
	n := rtNewNet(t)
	u := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "x", Created: testTime}, n.adminEU)
	a := rtApprove(t, u, n.adminFR, testTime)
	for _, bad := range [][]byte{nil, {0xa0}, a.Bytes()[:len(a.Bytes())-1], u.Bytes()} {
		if _, err := ParseApproval(bad); err == nil {
			t.Fatalf("ParseApproval(%x) accepted", bad)
		}
	}
	if _, err := ParseUpdate(a.Bytes()); err == nil {
		t.Fatal("an approval parses as an update")
	}
}

func TestApprovedUpdateRoundTrip(t *testing.T) {
	n := rtThresholdNet(t, 0)
	u := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "x", Created: testTime}, n.adminEU)
	// Alone: its own bytes, as before thresholds.
	b, err := ApprovedUpdate{Update: u}.Bytes()
	if err != nil || string(b) != string(u.Bytes()) {
		t.Fatalf("bare update: %v", err)
	}
	as := []*Approval{rtApprove(t, u, n.adminFR, testTime), rtApprove(t, u, n.adminFR, testTime), rtApprove(t, u, n.lu, testTime)}
	counting := n.r.Counting(u, as)
	if len(counting) != 1 || counting[0].Signer() != n.adminFR.ID() {
		t.Fatalf("counting: %d", len(counting))
	}
	b, err = ApprovedUpdate{Update: u, Approvals: counting}.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	au, err := ParseApprovedUpdate(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.r.ApplyApprovedUpdate(au, 0); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if _, err := n.r.ApplyApprovedUpdate(ApprovedUpdate{Update: u}, 0); err == nil {
		t.Fatal("applied without its approval")
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], as[0].Bytes()} {
		if _, err := ParseApprovedUpdate(bad); err == nil {
			t.Fatalf("ParseApprovedUpdate(%x) accepted", bad)
		}
	}
}
