package crypto

// Tests of roster updates (update.go). Helpers are prefixed "rt"; see
// roster_test.go.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rtNet is a network for update tests:
//
//	admin-eu   admin, cyclone  voter  admin  one address
//	admin-fr   admin           voter  admin
//	cert-lu    csirt           voter         two addresses
//	cyclone-fr cyclone
//	observer-x observer
type rtNet struct {
	adminEU, adminFR, lu, fr, obs *Identity
	g                             *Genesis
	r                             *Roster
}

var (
	rtAddrsEU = []string{"/ip4/192.0.2.1/udp/4001/quic-v1"}
	rtAddrsLU = []string{"/ip4/192.0.2.3/tcp/4001", "/dns4/cert.example.lu/udp/4001/quic-v1"}
)

func rtNewNet(t testing.TB) *rtNet {
	t.Helper()
	n := &rtNet{
		adminEU: newTestIdentity(t, "admin-eu"),
		adminFR: newTestIdentity(t, "admin-fr"),
		lu:      newTestIdentity(t, "cert-lu"),
		fr:      newTestIdentity(t, "cyclone-fr"),
		obs:     newTestIdentity(t, "observer-x"),
	}
	spec := GenesisSpec{
		Network: "eu-cyclone",
		Created: testTime,
		Members: []Member{
			{Card: n.adminEU.Card(), Roles: []Role{RoleAdmin, RoleCyclone}, Addrs: rtAddrsEU},
			{Card: n.adminFR.Card(), Roles: []Role{RoleAdmin}},
			{Card: n.lu.Card(), Roles: []Role{RoleCSIRT}, Addrs: rtAddrsLU},
			{Card: n.fr.Card(), Roles: []Role{RoleCyclone}},
			{Card: n.obs.Card(), Roles: []Role{RoleObserver}},
		},
		Voters: []MemberID{n.adminEU.ID(), n.adminFR.ID(), n.lu.ID()},
		Admins: []MemberID{n.adminEU.ID(), n.adminFR.ID()},
	}
	var err error
	if n.g, err = NewGenesis(spec, n.adminEU); err != nil {
		t.Fatalf("NewGenesis: %v", err)
	}
	n.r = n.g.Roster()
	return n
}

// rtUpdate makes an update to r or fails the test.
func rtUpdate(t testing.TB, r *Roster, spec UpdateSpec, admin *Identity) *Update {
	t.Helper()
	u, err := NewUpdate(r, spec, admin)
	if err != nil {
		t.Fatalf("NewUpdate(%s): %v", spec.Op, err)
	}
	return u
}

// rtApply applies u to r or fails the test.
func rtApply(t testing.TB, r *Roster, u *Update) *Roster {
	t.Helper()
	next, err := r.Apply(u)
	if err != nil {
		t.Fatalf("Apply(%s v%d): %v", u.Op(), u.Version(), err)
	}
	return next
}

// rtChain applies updates in order, each made by make from the roster it
// applies to; it returns the updates and every roster (versions 0 to n).
func rtChain(t testing.TB, r *Roster, makers ...func(r *Roster) *Update) ([]*Update, []*Roster) {
	t.Helper()
	us := []*Update{}
	rs := []*Roster{r}
	for _, mk := range makers {
		u := mk(r)
		r = rtApply(t, r, u)
		us = append(us, u)
		rs = append(rs, r)
	}
	return us, rs
}

// rtCraftUpdate re-signs the body of base after f changed it, so tests can
// make updates NewUpdate never makes. f must replace, not modify, the
// body's slices and pointers.
func rtCraftUpdate(t testing.TB, base *Update, f func(b *updateBody), signer *Identity) *Update {
	t.Helper()
	b := base.body
	f(&b)
	u, err := ParseUpdate(rtSignDoc(t, rtMarshal(t, &b), signer, ContextRosterUpdate))
	if err != nil {
		t.Fatalf("ParseUpdate(crafted): %v", err)
	}
	return u
}

// rtResign changes the signed wire form of u (not its body) and parses it.
func rtResign(t testing.TB, u *Update, f func(w *signedWire)) *Update {
	t.Helper()
	w := rtSplit(t, u.Bytes())
	w.Sig = slices.Clone(w.Sig)
	w.Signer = slices.Clone(w.Signer)
	f(&w)
	out, err := ParseUpdate(rtMarshal(t, &w))
	if err != nil {
		t.Fatalf("ParseUpdate(re-signed): %v", err)
	}
	return out
}

type rtMemberSnap struct {
	Name      string
	ID        MemberID
	Roles     []Role
	Addrs     []string
	Revoked   bool
	Reason    string
	RevokedAt uint64
}

type rtRosterSnap struct {
	Network NetworkID
	Name    string
	Version uint64
	Members []rtMemberSnap
	Voters  []MemberID
	Admins  []MemberID
	Active  map[string]bool // by member ID
}

// rtSnapshot captures everything r reports, for comparison with cmp.
func rtSnapshot(r *Roster) rtRosterSnap {
	s := rtRosterSnap{
		Network: r.NetworkID(), Name: r.Name(), Version: r.Version(),
		Voters: r.Voters(), Admins: r.Admins(), Active: map[string]bool{},
	}
	for _, m := range r.Members() {
		id := m.Card.ID()
		s.Members = append(s.Members, rtMemberSnap{
			Name: m.Card.Name(), ID: id, Roles: m.Roles, Addrs: m.Addrs,
			Revoked: m.Revoked, Reason: m.Reason, RevokedAt: m.RevokedAt,
		})
		s.Active[id.String()] = r.Active(id)
	}
	return s
}

func TestApplyAdd(t *testing.T) {
	n := rtNewNet(t)
	de := newTestIdentity(t, "cert-de")
	spec := UpdateSpec{
		Op:      OpAdd,
		Member:  &Member{Card: de.Card(), Roles: []Role{RoleObserver, RoleCSIRT, RoleCSIRT}, Addrs: []string{"/ip6/2001:db8::1/udp/4001/quic-v1"}},
		Created: testTime,
	}
	u := rtUpdate(t, n.r, spec, n.adminFR)
	if u.Op() != OpAdd || u.Version() != 1 || u.Signer() != n.adminFR.ID() {
		t.Errorf("update Op, Version, Signer = %s, %d, %s; want add, 1, %s", u.Op(), u.Version(), u.Signer().Short(), n.adminFR.ID().Short())
	}
	r := rtApply(t, n.r, u)

	if got := r.Version(); got != 1 {
		t.Errorf("Version() = %d, want 1", got)
	}
	if got := r.NetworkID(); got != n.g.NetworkID() {
		t.Errorf("NetworkID() = %x, want the genesis's %x", got, n.g.NetworkID())
	}
	wantNames := []string{"admin-eu", "admin-fr", "cert-lu", "cyclone-fr", "observer-x", "cert-de"}
	if diff := cmp.Diff(wantNames, rtNames(r.Members())); diff != "" {
		t.Errorf("Members() names, in order of admission (-want +got):\n%s", diff)
	}
	m, ok := r.Member(de.ID())
	if !ok {
		t.Fatal("Member(cert-de) not found after add")
	}
	want := rtMemberSnap{Name: "cert-de", ID: de.ID(), Roles: []Role{RoleCSIRT, RoleObserver}, Addrs: spec.Member.Addrs}
	got := rtMemberSnap{Name: m.Card.Name(), ID: m.Card.ID(), Roles: m.Roles, Addrs: m.Addrs, Revoked: m.Revoked, Reason: m.Reason, RevokedAt: m.RevokedAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Member(cert-de) (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		name string
		got  bool
		want bool
	}{
		{"Active", r.Active(de.ID()), true},
		{"HasRole(csirt)", r.HasRole(de.ID(), RoleCSIRT), true},
		{"HasRole(observer)", r.HasRole(de.ID(), RoleObserver), true},
		{"HasRole(admin)", r.HasRole(de.ID(), RoleAdmin), false},
		{"IsVoter", r.IsVoter(de.ID()), false},
		{"IsAdmin", r.IsAdmin(de.ID()), false},
	} {
		if c.got != c.want {
			t.Errorf("cert-de %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if bn, ok := r.ByName("cert-de"); !ok || bn.Card.ID() != de.ID() {
		t.Errorf("ByName(cert-de) = %v, %v; want the new member", bn, ok)
	}
	if bp, ok := r.ByPeer(de.PeerID()); !ok || bp.Card.ID() != de.ID() {
		t.Errorf("ByPeer(cert-de's peer) = %v, %v; want the new member", bp, ok)
	}
	if diff := cmp.Diff(n.r.Voters(), r.Voters()); diff != "" {
		t.Errorf("Voters() changed by an add (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(n.r.Admins(), r.Admins()); diff != "" {
		t.Errorf("Admins() changed by an add (-before +after):\n%s", diff)
	}
}

func TestApplyRevoke(t *testing.T) {
	n := rtNewNet(t)
	tests := []struct {
		name   string
		target *Identity
		signer *Identity
		role   Role
		voter  bool
	}{
		{"member", n.lu, n.adminEU, RoleCSIRT, true},
		{"non-voter", n.obs, n.adminEU, RoleObserver, false},
		{"other admin", n.adminFR, n.adminEU, RoleAdmin, true},
		{"admin revokes itself", n.adminEU, n.adminEU, RoleAdmin, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.target.ID()
			u := rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: id, Reason: "key compromised", Created: testTime}, tc.signer)
			r := rtApply(t, n.r, u)

			m, ok := r.Member(id)
			if !ok {
				t.Fatal("Member(target) not found after revoke: revoked members stay listed")
			}
			if !m.Revoked || m.Reason != "key compromised" || m.RevokedAt != 1 {
				t.Errorf("Member(target) Revoked, Reason, RevokedAt = %v, %q, %d; want true, %q, 1", m.Revoked, m.Reason, m.RevokedAt, "key compromised")
			}
			if !m.HasRole(tc.role) {
				t.Errorf("Member.HasRole(%s) = false, want true (roles are kept, revoked or not)", tc.role)
			}
			for _, c := range []struct {
				name string
				got  bool
				want bool
			}{
				{"Active", r.Active(id), false},
				{"HasRole", r.HasRole(id, tc.role), false},
				{"IsAdmin", r.IsAdmin(id), false},
				{"IsVoter (voters keep revoked members)", r.IsVoter(id), tc.voter},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if m, ok := r.ByPeer(tc.target.PeerID()); ok {
				t.Errorf("ByPeer(target) = %s, want nothing for a revoked member", m.Card.Name())
			}
			if m, ok := r.ByName(tc.target.Name()); !ok || !m.Revoked || m.Card.ID() != id {
				t.Errorf("ByName(target) = %v, %v; want the revoked member", m, ok)
			}
			if got, want := len(r.Members()), len(n.r.Members()); got != want {
				t.Errorf("len(Members()) = %d, want %d", got, want)
			}
		})
	}
}

func TestApplyRotate(t *testing.T) {
	n := rtNewNet(t)
	tests := []struct {
		name     string
		target   *Identity
		signer   *Identity
		keepPeer bool // the new card keeps the node's peer key
	}{
		{"voter", n.lu, n.adminEU, false},
		{"voter keeping its peer key", n.lu, n.adminEU, true},
		{"non-voter", n.fr, n.adminFR, false},
		{"admin by itself", n.adminEU, n.adminEU, false},
		{"admin by the other admin", n.adminEU, n.adminFR, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oldID := tc.target.ID()
			old, _ := n.r.Member(oldID)
			var card *Card
			if tc.keepPeer {
				card = rtCard(t, tc.target.Name(), nil, nil, tc.target.peer.GetPublic())
			} else {
				card = rtCard(t, tc.target.Name(), nil, nil, nil)
			}
			newID := card.ID()
			u := rtUpdate(t, n.r, UpdateSpec{Op: OpRotate, Target: oldID, NewCard: card, Created: testTime}, tc.signer)
			r := rtApply(t, n.r, u)

			om, ok := r.Member(oldID)
			if !ok || !om.Revoked || om.Reason != "rotated" || om.RevokedAt != 1 {
				t.Errorf("old member = %+v, %v; want revoked with reason %q at version 1", om, ok, "rotated")
			}
			nm, ok := r.Member(newID)
			if !ok {
				t.Fatal("new member not found after rotate")
			}
			if nm.Revoked || !nm.Card.Equal(card) {
				t.Errorf("new member Revoked = %v, card equal = %v; want false, true", nm.Revoked, nm.Card.Equal(card))
			}
			if diff := cmp.Diff(old.Roles, nm.Roles); diff != "" {
				t.Errorf("new member roles (-old +new):\n%s", diff)
			}
			if diff := cmp.Diff(old.Addrs, nm.Addrs); diff != "" {
				t.Errorf("new member addresses (-old +new):\n%s", diff)
			}
			wasVoter, wasAdmin := n.r.IsVoter(oldID), n.r.IsAdmin(oldID)
			for _, c := range []struct {
				name string
				got  bool
				want bool
			}{
				{"old Active", r.Active(oldID), false},
				{"new Active", r.Active(newID), true},
				{"old IsVoter", r.IsVoter(oldID), false},
				{"new IsVoter", r.IsVoter(newID), wasVoter},
				{"old IsAdmin", r.IsAdmin(oldID), false},
				{"new IsAdmin", r.IsAdmin(newID), wasAdmin},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			for _, role := range old.Roles {
				if r.HasRole(oldID, role) || !r.HasRole(newID, role) {
					t.Errorf("HasRole(%s): old %v, new %v; want false, true", role, r.HasRole(oldID, role), r.HasRole(newID, role))
				}
			}
			// Voters and admins: the old ID replaced by the new, still sorted.
			swap := func(ids []MemberID) []MemberID {
				out := slices.Clone(ids)
				if i := slices.Index(out, oldID); i >= 0 {
					out[i] = newID
				}
				slices.SortFunc(out, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) })
				return out
			}
			if diff := cmp.Diff(swap(n.r.Voters()), r.Voters()); diff != "" {
				t.Errorf("Voters() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(swap(n.r.Admins()), r.Admins()); diff != "" {
				t.Errorf("Admins() (-want +got):\n%s", diff)
			}
			if m, ok := r.ByName(tc.target.Name()); !ok || m.Card.ID() != newID {
				t.Errorf("ByName = %v, %v; want the new card", m, ok)
			}
			if m, ok := r.ByPeer(card.PeerID()); !ok || m.Card.ID() != newID {
				t.Errorf("ByPeer(new peer) = %v, %v; want the new card", m, ok)
			}
			if !tc.keepPeer {
				if m, ok := r.ByPeer(tc.target.PeerID()); ok {
					t.Errorf("ByPeer(old peer) = %s, want nothing", m.Card.ID().Short())
				}
			}
			if got, want := len(r.Members()), len(n.r.Members())+1; got != want {
				t.Errorf("len(Members()) = %d, want %d", got, want)
			}
		})
	}
}

// TestApplyRotatedAdminSigns checks that after an admin rotates its keys
// the new key signs updates and the old one no longer does.
func TestApplyRotatedAdminSigns(t *testing.T) {
	admin := newTestIdentity(t, "admin-eu")
	lu := newTestIdentity(t, "cert-lu")
	fr := newTestIdentity(t, "cyclone-fr")
	g := testNetwork(t, admin, lu, fr)
	admin2, err := NewIdentity("admin-eu", testTime)
	if err != nil {
		t.Fatal(err)
	}
	r1 := rtApply(t, g.Roster(), rtUpdate(t, g.Roster(), UpdateSpec{Op: OpRotate, Target: admin.ID(), NewCard: admin2.Card(), Created: testTime}, admin))

	revoke := UpdateSpec{Op: OpRevoke, Target: lu.ID(), Reason: "left", Created: testTime}
	if _, err := r1.Apply(rtUpdate(t, r1, revoke, admin2)); err != nil {
		t.Errorf("update signed by the rotated admin's new key: got error %v, want none", err)
	}
	_, err = r1.Apply(rtUpdate(t, r1, revoke, admin))
	if got := rtRule(err); got != "signer-admin" {
		t.Errorf("update signed by the rotated admin's old key: got rule %q (error %v), want %q", got, err, "signer-admin")
	}
}

func TestApplyUpdates(t *testing.T) {
	n := rtNewNet(t)
	de := newTestIdentity(t, "cert-de")
	enisa := newTestIdentity(t, "enisa-x")
	lu2 := newTestIdentity(t, "cert-lu")
	eu2 := newTestIdentity(t, "admin-eu")
	us, rs := rtChain(t, n.r,
		func(r *Roster) *Update {
			return rtUpdate(t, r, UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}}, Created: testTime}, n.adminEU)
		},
		func(r *Roster) *Update {
			return rtUpdate(t, r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "left", Created: testTime}, n.adminFR)
		},
		func(r *Roster) *Update {
			return rtUpdate(t, r, UpdateSpec{Op: OpRotate, Target: n.lu.ID(), NewCard: lu2.Card(), Created: testTime}, n.adminEU)
		},
		func(r *Roster) *Update {
			return rtUpdate(t, r, UpdateSpec{Op: OpRotate, Target: n.adminEU.ID(), NewCard: eu2.Card(), Created: testTime}, n.adminEU)
		},
		func(r *Roster) *Update {
			return rtUpdate(t, r, UpdateSpec{Op: OpAdd, Member: &Member{Card: enisa.Card(), Roles: []Role{RoleENISA}}, Created: testTime}, eu2)
		},
	)
	for i, u := range us {
		if got, want := u.Version(), uint64(i+1); got != want {
			t.Errorf("update %d Version() = %d, want %d", i, got, want)
		}
	}

	got, err := ApplyUpdates(n.r, us)
	if err != nil {
		t.Fatalf("ApplyUpdates: %v", err)
	}
	if diff := cmp.Diff(rtSnapshot(rs[len(rs)-1]), rtSnapshot(got)); diff != "" {
		t.Errorf("ApplyUpdates differs from Apply one by one (-Apply +ApplyUpdates):\n%s", diff)
	}
	if got.Version() != 5 {
		t.Errorf("Version() = %d, want 5", got.Version())
	}
	wantNames := []string{"admin-eu", "admin-fr", "cert-lu", "cyclone-fr", "observer-x", "cert-de", "cert-lu", "admin-eu", "enisa-x"}
	if diff := cmp.Diff(wantNames, rtNames(got.Members())); diff != "" {
		t.Errorf("Members() names (-want +got):\n%s", diff)
	}

	// A prefix applies to the matching version; the rest applies after it.
	for k := 0; k <= len(us); k++ {
		mid, err := ApplyUpdates(n.r, us[:k])
		if err != nil {
			t.Fatalf("ApplyUpdates(first %d): %v", k, err)
		}
		if diff := cmp.Diff(rtSnapshot(rs[k]), rtSnapshot(mid)); diff != "" {
			t.Errorf("ApplyUpdates(first %d) (-want +got):\n%s", k, diff)
		}
		end, err := ApplyUpdates(mid, us[k:])
		if err != nil {
			t.Fatalf("ApplyUpdates(rest after %d): %v", k, err)
		}
		if diff := cmp.Diff(rtSnapshot(got), rtSnapshot(end)); diff != "" {
			t.Errorf("ApplyUpdates in two parts split at %d (-want +got):\n%s", k, diff)
		}
	}
}

// TestApplyRefusals covers every rule Apply enforces, through ApplyUpdates
// (which must report the index of the refused update) and through Apply
// on the roster just before it (which must report no index).
func TestApplyRefusals(t *testing.T) {
	n := rtNewNet(t)
	de := newTestIdentity(t, "cert-de")
	outsider := newTestIdentity(t, "outsider")
	luNew := newTestIdentity(t, "cert-lu")
	luNewer := newTestIdentity(t, "cert-lu")
	euNew := newTestIdentity(t, "admin-eu")
	addDe := UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}}, Created: testTime}
	revoke := func(who *Identity, reason string) UpdateSpec {
		return UpdateSpec{Op: OpRevoke, Target: who.ID(), Reason: reason, Created: testTime}
	}
	rotate := func(who *Identity, card *Card) UpdateSpec {
		return UpdateSpec{Op: OpRotate, Target: who.ID(), NewCard: card, Created: testTime}
	}
	add := func(m Member) UpdateSpec { return UpdateSpec{Op: OpAdd, Member: &m, Created: testTime} }
	// one is a single update on the genesis roster.
	one := func(spec UpdateSpec, signer *Identity) func(t *testing.T) []*Update {
		return func(t *testing.T) []*Update { return []*Update{rtUpdate(t, n.r, spec, signer)} }
	}
	// two is an accepted update followed by one made on its result.
	two := func(first UpdateSpec, firstSigner *Identity, second UpdateSpec, secondSigner *Identity) func(t *testing.T) []*Update {
		return func(t *testing.T) []*Update {
			u1 := rtUpdate(t, n.r, first, firstSigner)
			return []*Update{u1, rtUpdate(t, rtApply(t, n.r, u1), second, secondSigner)}
		}
	}
	// tampered is addDe by admin-eu with its signed wire form changed.
	tampered := func(f func(w *signedWire)) func(t *testing.T) []*Update {
		return func(t *testing.T) []*Update { return []*Update{rtResign(t, rtUpdate(t, n.r, addDe, n.adminEU), f)} }
	}
	// crafted is a genesis-roster update of op with its body changed.
	crafted := func(spec UpdateSpec, f func(b *updateBody)) func(t *testing.T) []*Update {
		return func(t *testing.T) []*Update {
			return []*Update{rtCraftUpdate(t, rtUpdate(t, n.r, spec, n.adminEU), f, n.adminEU)}
		}
	}
	// rotateMember is lu's rotation to luNew with change made to a copy of
	// the member it carries.
	rotateMember := func(change func(mw *memberWire)) func(t *testing.T) []*Update {
		return crafted(rotate(n.lu, luNew.Card()), func(b *updateBody) {
			mw := *b.Member
			change(&mw)
			b.Member = &mw
		})
	}

	tests := []struct {
		name    string
		updates func(t *testing.T) []*Update // on n.r
		rule    string
		first   bool // the first update is refused, not the last
	}{
		{
			name: "update for another network",
			updates: func(t *testing.T) []*Update {
				other := testNetwork(t, n.adminEU, n.lu, n.fr)
				return []*Update{rtUpdate(t, other.Roster(), addDe, n.adminEU)}
			},
			rule: "network",
		},
		{
			name: "update for another network with the same members",
			updates: func(t *testing.T) []*Update {
				// Same body, new (hedged) signature: another network ID.
				twin, err := ParseGenesis(rtSignDoc(t, rtSplit(t, n.g.Bytes()).Body, n.adminEU, ContextRoster))
				if err != nil {
					t.Fatal(err)
				}
				if twin.NetworkID() == n.g.NetworkID() {
					t.Fatal("re-signed genesis has the same network ID")
				}
				return []*Update{rtUpdate(t, twin.Roster(), addDe, n.adminEU)}
			},
			rule: "network",
		},
		{
			name: "update applied twice",
			updates: func(t *testing.T) []*Update {
				u := rtUpdate(t, n.r, addDe, n.adminEU)
				return []*Update{u, u}
			},
			rule: "version",
		},
		{
			name: "revoke replayed after a rotate",
			updates: func(t *testing.T) []*Update {
				u1 := rtUpdate(t, n.r, revoke(n.obs, "left"), n.adminEU)
				r1 := rtApply(t, n.r, u1)
				u2 := rtUpdate(t, r1, addDe, n.adminEU)
				return []*Update{u1, u2, u1}
			},
			rule: "version",
		},
		{
			name: "updates out of order",
			updates: func(t *testing.T) []*Update {
				us := two(addDe, n.adminEU, revoke(n.obs, "left"), n.adminEU)(t)
				return []*Update{us[1], us[0]}
			},
			rule:  "version",
			first: true,
		},
		{
			name: "update skipped",
			updates: func(t *testing.T) []*Update {
				us := two(addDe, n.adminEU, revoke(n.obs, "left"), n.adminEU)(t)
				return us[1:]
			},
			rule: "version",
		},
		{name: "signed by a member who is not an admin", updates: one(addDe, n.lu), rule: "signer-admin"},
		{name: "signed by a member with no admin role", updates: one(revoke(n.lu, "left"), n.obs), rule: "signer-admin"},
		{name: "signed by a stranger", updates: one(addDe, outsider), rule: "signer-admin"},
		{name: "signed by a revoked admin", updates: two(revoke(n.adminFR, "left"), n.adminEU, addDe, n.adminFR), rule: "signer-admin"},
		{name: "signed by an admin's rotated-away key", updates: two(rotate(n.adminEU, euNew.Card()), n.adminEU, addDe, n.adminEU), rule: "signer-admin"},
		{name: "ML-DSA half of signature flipped", updates: tampered(func(w *signedWire) { w.Sig[10] ^= 1 }), rule: "signature"},
		{name: "Ed25519 half of signature flipped", updates: tampered(func(w *signedWire) { w.Sig[len(w.Sig)-2] ^= 1 }), rule: "signature"},
		{name: "signature truncated", updates: tampered(func(w *signedWire) { w.Sig = w.Sig[:len(w.Sig)-1] }), rule: "signature"},
		{
			name:    "signer swapped to the other admin",
			updates: tampered(func(w *signedWire) { id := n.adminFR.ID(); w.Signer = id[:] }),
			rule:    "signature",
		},
		{
			name: "signed in the genesis context",
			updates: func(t *testing.T) []*Update {
				u := rtUpdate(t, n.r, addDe, n.adminEU)
				v, err := ParseUpdate(rtSignDoc(t, rtSplit(t, u.Bytes()).Body, n.adminEU, ContextRoster))
				if err != nil {
					t.Fatal(err)
				}
				return []*Update{v}
			},
			rule: "signature",
		},
		{name: "add of an active member's name", updates: one(add(Member{Card: luNew.Card(), Roles: []Role{RoleCSIRT}}), n.adminEU), rule: "unique-name"},
		{
			name:    "add of a revoked member's name",
			updates: two(revoke(n.lu, "left"), n.adminEU, add(Member{Card: luNew.Card(), Roles: []Role{RoleCSIRT}}), n.adminEU),
			rule:    "unique-name",
		},
		{
			name:    "add of the name of rotated-away keys",
			updates: two(rotate(n.lu, luNew.Card()), n.adminEU, add(Member{Card: luNewer.Card(), Roles: []Role{RoleCSIRT}}), n.adminEU),
			rule:    "unique-name",
		},
		{name: "add of a member's card again", updates: one(add(Member{Card: n.fr.Card(), Roles: []Role{RoleCyclone}}), n.adminEU), rule: "unique-id"},
		{
			name: "add of a revoked member's card again",
			updates: two(revoke(n.obs, "left"), n.adminEU,
				add(Member{Card: n.obs.Card(), Roles: []Role{RoleObserver}}), n.adminEU),
			rule: "unique-id",
		},
		{
			name: "add of a card with a member's peer key",
			updates: func(t *testing.T) []*Update {
				c := rtCard(t, "cert-de", nil, nil, n.fr.peer.GetPublic())
				return one(add(Member{Card: c, Roles: []Role{RoleCSIRT}}), n.adminEU)(t)
			},
			rule: "unique-peer",
		},
		{name: "add without role", updates: one(add(Member{Card: de.Card()}), n.adminEU), rule: "roles-nonempty"},
		{name: "add with an unknown role", updates: one(add(Member{Card: de.Card(), Roles: []Role{"root"}}), n.adminEU), rule: "roles-valid"},
		{
			name:    "add with an address that is not a multiaddr",
			updates: one(add(Member{Card: de.Card(), Roles: []Role{RoleCSIRT}, Addrs: []string{"cert.example.de:4001"}}), n.adminEU),
			rule:    "addrs-valid",
		},
		{
			// Apply returns the card's own error; ApplyUpdates names it
			// by the rule "member".
			name:    "add of bytes that are not a card",
			updates: one(add(Member{Card: &Card{raw: []byte{0x01}}, Roles: []Role{RoleCSIRT}}), n.adminEU),
			rule:    "member",
		},
		{name: "revoke without reason", updates: one(revoke(n.lu, ""), n.adminEU), rule: "revoke-reason"},
		{name: "revoke twice", updates: two(revoke(n.lu, "left"), n.adminEU, revoke(n.lu, "left again"), n.adminFR), rule: "target-active"},
		{name: "revoke of rotated-away keys", updates: two(rotate(n.lu, luNew.Card()), n.adminEU, revoke(n.lu, "left"), n.adminEU), rule: "target-active"},
		{name: "rotate of a revoked member", updates: two(revoke(n.lu, "left"), n.adminEU, rotate(n.lu, luNew.Card()), n.adminEU), rule: "target-active"},
		{name: "rotate of rotated-away keys", updates: two(rotate(n.lu, luNew.Card()), n.adminEU, rotate(n.lu, luNewer.Card()), n.adminEU), rule: "target-active"},
		{name: "revoke of a stranger", updates: one(revoke(outsider, "never joined"), n.adminEU), rule: "target"},
		{name: "revoke of the zero ID", updates: one(UpdateSpec{Op: OpRevoke, Reason: "none", Created: testTime}, n.adminEU), rule: "target"},
		{name: "rotate of a stranger", updates: one(rotate(outsider, outsider.Card()), n.adminEU), rule: "target"},
		{
			name:    "revoke without target",
			updates: crafted(revoke(n.lu, "left"), func(b *updateBody) { b.Target = nil }),
			rule:    "target",
		},
		{name: "revoke of the last admin by itself", updates: two(revoke(n.adminFR, "left"), n.adminEU, revoke(n.adminEU, "retiring"), n.adminEU), rule: "last-admin"},
		{name: "revoke of the last admin, the other revoked by it", updates: two(revoke(n.adminEU, "left"), n.adminFR, revoke(n.adminFR, "retiring"), n.adminFR), rule: "last-admin"},
		{name: "rotate to a card of another name", updates: one(rotate(n.lu, de.Card()), n.adminEU), rule: "rotate-name"},
		{name: "rotate to another member's card", updates: one(rotate(n.lu, n.fr.Card()), n.adminEU), rule: "rotate-name"},
		{name: "rotate to the same card", updates: one(rotate(n.lu, n.lu.Card()), n.adminEU), rule: "unique-id"},
		{
			name: "rotate to a card with another member's peer key",
			updates: func(t *testing.T) []*Update {
				c := rtCard(t, "cert-lu", nil, nil, n.fr.peer.GetPublic())
				return one(rotate(n.lu, c), n.adminEU)(t)
			},
			rule: "unique-peer",
		},
		{name: "rotate carrying roles", updates: rotateMember(func(mw *memberWire) { mw.Roles = []string{"admin"} }), rule: "rotate-shape"},
		{name: "rotate carrying addresses", updates: rotateMember(func(mw *memberWire) { mw.Addrs = []string{"/ip4/192.0.2.9/tcp/1"} }), rule: "rotate-shape"},
		{name: "rotate without card", updates: crafted(rotate(n.lu, luNew.Card()), func(b *updateBody) { b.Member = nil }), rule: "rotate-shape"},
		{name: "add without member", updates: crafted(addDe, func(b *updateBody) { b.Member = nil }), rule: "add-shape"},
		{
			name:    "add with a target",
			updates: crafted(addDe, func(b *updateBody) { id := n.lu.ID(); b.Target = id[:] }),
			rule:    "add-shape",
		},
		{
			name: "revoke carrying a member",
			updates: crafted(revoke(n.lu, "left"), func(b *updateBody) {
				b.Member = &memberWire{Card: de.Card().Bytes(), Roles: []string{"csirt"}}
			}),
			rule: "revoke-shape",
		},
		{name: "unknown operation", updates: crafted(addDe, func(b *updateBody) { b.Op = "promote" }), rule: "op"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			us := tc.updates(t)
			index := len(us) - 1
			if tc.first {
				index = 0
			}
			before := rtSnapshot(n.r)

			got, err := ApplyUpdates(n.r, us)
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ApplyUpdates: got %v, %v; want a *RuleError %q", got, err, tc.rule)
			}
			if got != nil {
				t.Errorf("ApplyUpdates: got a roster along with error %v, want nil", err)
			}
			if re.Rule != tc.rule || re.Index != index {
				t.Errorf("ApplyUpdates: got rule %q at index %d, want rule %q at index %d (error %v)", re.Rule, re.Index, tc.rule, index, err)
			}
			if !errors.Is(err, ErrRule) {
				t.Errorf("errors.Is(%v, ErrRule) = false, want true", err)
			}
			if want := fmt.Sprintf("roster update %d refused by rule %s", index, tc.rule); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}

			// The same update, applied alone to the roster before it.
			prev, err := ApplyUpdates(n.r, us[:index])
			if err != nil {
				t.Fatalf("ApplyUpdates(first %d): %v", index, err)
			}
			_, err = prev.Apply(us[index])
			if tc.rule == "member" {
				if err == nil || rtRule(err) != "" || !errors.Is(err, ErrMalformed) {
					t.Errorf("Apply: got error %v, want the card's ErrMalformed, not a RuleError", err)
				}
			} else {
				if !errors.As(err, &re) || re.Rule != tc.rule || re.Index != -1 {
					t.Errorf("Apply: got %v, want rule %q at index -1", err, tc.rule)
				}
			}
			if diff := cmp.Diff(before, rtSnapshot(n.r)); diff != "" {
				t.Errorf("refused updates changed the genesis roster (-before +after):\n%s", diff)
			}
		})
	}
}

// TestApplyLastAdmin checks that the only admin of a network cannot revoke
// itself, and that revoking a member who is not an admin is unaffected.
func TestApplyLastAdmin(t *testing.T) {
	admin := newTestIdentity(t, "admin-eu")
	lu := newTestIdentity(t, "cert-lu")
	r := testNetwork(t, admin, lu).Roster()
	tests := []struct {
		name   string
		target *Identity
		want   string
	}{
		{"the only admin", admin, "last-admin"},
		{"a member", lu, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := rtUpdate(t, r, UpdateSpec{Op: OpRevoke, Target: tc.target.ID(), Reason: "retiring", Created: testTime}, admin)
			_, err := ApplyUpdates(r, []*Update{u})
			if got := rtRule(err); got != tc.want {
				t.Errorf("ApplyUpdates: got rule %q (error %v), want %q", got, err, tc.want)
			}
			if !r.IsAdmin(admin.ID()) || !r.Active(tc.target.ID()) {
				t.Error("the refused or accepted update changed the input roster")
			}
		})
	}
}

// TestApplyPure checks that Apply leaves its input alone and that the same
// roster and update always give the same result.
func TestApplyPure(t *testing.T) {
	n := rtNewNet(t)
	de := newTestIdentity(t, "cert-de")
	lu2 := newTestIdentity(t, "cert-lu")
	eu2 := newTestIdentity(t, "admin-eu")
	revokeFR := UpdateSpec{Op: OpRevoke, Target: n.adminFR.ID(), Reason: "left", Created: testTime}
	afterFR := rtApply(t, n.r, rtUpdate(t, n.r, revokeFR, n.adminEU))
	tests := []struct {
		name   string
		base   *Roster // nil: n.r
		spec   UpdateSpec
		signer *Identity
	}{
		{"add", nil, UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}, Addrs: []string{"/ip4/192.0.2.8/tcp/4001"}}, Created: testTime}, n.adminEU},
		{"revoke member", nil, UpdateSpec{Op: OpRevoke, Target: n.lu.ID(), Reason: "left", Created: testTime}, n.adminEU},
		{"revoke admin", nil, UpdateSpec{Op: OpRevoke, Target: n.adminFR.ID(), Reason: "left", Created: testTime}, n.adminEU},
		{"rotate member", nil, UpdateSpec{Op: OpRotate, Target: n.lu.ID(), NewCard: lu2.Card(), Created: testTime}, n.adminFR},
		{"rotate admin", nil, UpdateSpec{Op: OpRotate, Target: n.adminEU.ID(), NewCard: eu2.Card(), Created: testTime}, n.adminEU},
		{"after a revoke: rotate the other admin", afterFR, UpdateSpec{Op: OpRotate, Target: n.adminEU.ID(), NewCard: eu2.Card(), Created: testTime}, n.adminEU},
		{"refused: revoke without reason", nil, UpdateSpec{Op: OpRevoke, Target: n.lu.ID(), Created: testTime}, n.adminEU},
		{"refused: last admin", afterFR, UpdateSpec{Op: OpRevoke, Target: n.adminEU.ID(), Reason: "x", Created: testTime}, n.adminEU},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := n.r
			if tc.base != nil {
				r = tc.base
			}
			before := rtSnapshot(r)
			members := r.Members()
			u := rtUpdate(t, r, tc.spec, tc.signer)

			r1, err1 := r.Apply(u)
			r2, err2 := r.Apply(u)
			if diff := cmp.Diff(before, rtSnapshot(r)); diff != "" {
				t.Errorf("Apply changed its input roster (-before +after):\n%s", diff)
			}
			for i, m := range members {
				now, ok := r.Member(m.Card.ID())
				if !ok || now.Revoked != m.Revoked || now.Reason != m.Reason || !slices.Equal(now.Roles, m.Roles) {
					t.Errorf("member %d (%s) of the input roster changed: %+v, want %+v", i, m.Card.Name(), now, m)
				}
			}
			if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
				t.Fatalf("Apply twice: errors %v and %v, want the same", err1, err2)
			}
			if strings.HasPrefix(tc.name, "refused") {
				if err1 == nil {
					t.Fatal("Apply: got no error, want a refusal")
				}
				return
			}
			if err1 != nil {
				t.Fatalf("Apply: %v", err1)
			}
			if r1 == r2 {
				t.Error("Apply twice returned the same *Roster, want two independent rosters")
			}
			s1, s2 := rtSnapshot(r1), rtSnapshot(r2)
			if diff := cmp.Diff(s1, s2); diff != "" {
				t.Errorf("Apply twice gave different rosters (-first +second):\n%s", diff)
			}
			if s1.Version != before.Version+1 {
				t.Errorf("Version() = %d, want %d", s1.Version, before.Version+1)
			}
			// Rosters from one Apply do not share state with each other.
			var admin *Identity
			for _, a := range []*Identity{n.adminFR, n.adminEU, eu2} {
				if r1.IsAdmin(a.ID()) {
					admin = a
				}
			}
			if r3 := rtApply(t, r1, rtUpdate(t, r1, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "left", Created: testTime}, admin)); !r2.Active(n.obs.ID()) || r3.Active(n.obs.ID()) {
				t.Errorf("revoking on one result: Active(observer-x) = %v there, %v on the other; want false, true", r3.Active(n.obs.ID()), r2.Active(n.obs.ID()))
			}
		})
	}
}

// TestRosterConcurrentUse reads and applies to one roster from several
// goroutines; run with -race.
func TestRosterConcurrentUse(t *testing.T) {
	n := rtNewNet(t)
	de := newTestIdentity(t, "cert-de")
	lu2 := newTestIdentity(t, "cert-lu")
	us := []*Update{
		rtUpdate(t, n.r, UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}}, Created: testTime}, n.adminEU),
		rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "left", Created: testTime}, n.adminEU),
		rtUpdate(t, n.r, UpdateSpec{Op: OpRotate, Target: n.lu.ID(), NewCard: lu2.Card(), Created: testTime}, n.adminEU),
	}
	want := make([]rtRosterSnap, len(us))
	for i, u := range us {
		want[i] = rtSnapshot(rtApply(t, n.r, u))
	}
	before := rtSnapshot(n.r)

	const workers = 8
	got := make([]rtRosterSnap, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			_ = rtSnapshot(n.r)
			n.r.ByName("cert-lu")
			n.r.ByPeer(n.fr.PeerID())
			n.r.HasRole(n.lu.ID(), RoleCSIRT)
			var r *Roster
			r, errs[w] = n.r.Apply(us[w%len(us)])
			if errs[w] == nil {
				got[w] = rtSnapshot(r)
			}
		})
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Errorf("worker %d: Apply: %v", w, errs[w])
			continue
		}
		if diff := cmp.Diff(want[w%len(us)], got[w]); diff != "" {
			t.Errorf("worker %d (-want +got):\n%s", w, diff)
		}
	}
	if diff := cmp.Diff(before, rtSnapshot(n.r)); diff != "" {
		t.Errorf("concurrent Apply changed the roster (-before +after):\n%s", diff)
	}
}

func TestParseUpdate(t *testing.T) {
	n := rtNewNet(t)
	de := newTestIdentity(t, "cert-de")
	lu2 := newTestIdentity(t, "cert-lu")
	updates := []struct {
		name string
		u    *Update
	}{
		{"add", rtUpdate(t, n.r, UpdateSpec{Op: OpAdd, Member: &Member{Card: de.Card(), Roles: []Role{RoleCSIRT}, Addrs: []string{"/ip4/192.0.2.8/tcp/4001"}}, Created: testTime}, n.adminEU)},
		{"revoke", rtUpdate(t, n.r, UpdateSpec{Op: OpRevoke, Target: n.obs.ID(), Reason: "left", Created: testTime}, n.adminFR)},
		{"rotate", rtUpdate(t, n.r, UpdateSpec{Op: OpRotate, Target: n.lu.ID(), NewCard: lu2.Card(), Created: testTime}, n.adminEU)},
	}
	for _, tc := range updates {
		t.Run("round trip "+tc.name, func(t *testing.T) {
			got, err := ParseUpdate(tc.u.Bytes())
			if err != nil {
				t.Fatalf("ParseUpdate(u.Bytes()): %v", err)
			}
			if !bytes.Equal(got.Bytes(), tc.u.Bytes()) {
				t.Errorf("ParseUpdate(u.Bytes()).Bytes() differs from u.Bytes()")
			}
			if got.Op() != tc.u.Op() || got.Version() != tc.u.Version() || got.Signer() != tc.u.Signer() {
				t.Errorf("parsed Op, Version, Signer = %s, %d, %s; want %s, %d, %s",
					got.Op(), got.Version(), got.Signer().Short(), tc.u.Op(), tc.u.Version(), tc.u.Signer().Short())
			}
			if got.Op() != UpdateOp(tc.name) || got.Version() != 1 {
				t.Errorf("Op, Version = %s, %d; want %s, 1", got.Op(), got.Version(), tc.name)
			}
			// The parsed update applies exactly like the original.
			a, b := rtApply(t, n.r, tc.u), rtApply(t, n.r, got)
			if diff := cmp.Diff(rtSnapshot(a), rtSnapshot(b)); diff != "" {
				t.Errorf("parsed update applies differently (-original +parsed):\n%s", diff)
			}
		})
	}

	base := updates[1].u // a revoke
	valid := base.Bytes()
	body := func(f func(b *updateBody)) []byte {
		b := base.body
		f(&b)
		return rtSignDoc(t, rtMarshal(t, &b), n.adminFR, ContextRosterUpdate)
	}
	outer := func(f func(w *signedWire)) []byte {
		w := rtSplit(t, valid)
		f(&w)
		return rtMarshal(t, &w)
	}
	refusals := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"trailing byte", append(slices.Clone(valid), 0), ErrMalformed},
		{"truncated", valid[:len(valid)-1], ErrMalformed},
		{"outer map keys out of order", rtReorder(t, valid), ErrNonCanonical},
		{"body length not in shortest form", rtNonMinimalBody(t, valid), ErrNonCanonical},
		{"body map keys out of order", rtSignDoc(t, rtReorder(t, rtSplit(t, valid).Body), n.adminFR, ContextRosterUpdate), ErrNonCanonical},
		{"unknown suite", body(func(b *updateBody) { b.Suite = "crisismesh-roster-v0" }), ErrMalformed},
		{"network ID of 31 bytes", body(func(b *updateBody) { b.Network = b.Network[:31] }), ErrMalformed},
		{"target ID of 31 bytes", body(func(b *updateBody) { b.Target = b.Target[:31] }), ErrMalformed},
		{"no signer", outer(func(w *signedWire) { w.Signer = nil }), ErrMalformed},
		{"signer ID of 33 bytes", outer(func(w *signedWire) { w.Signer = append(slices.Clone(w.Signer), 0) }), ErrMalformed},
		{"a card, not an update", n.lu.Card().Bytes(), ErrMalformed},
		{"a genesis, not an update", n.g.Bytes(), ErrMalformed},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUpdate(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseUpdate: got %v, %v; want error %v", u, err, tc.want)
			}
			if u != nil {
				t.Errorf("ParseUpdate: got an update along with error %v", err)
			}
		})
	}
}

func TestNewUpdateRefuses(t *testing.T) {
	n := rtNewNet(t)
	tests := []struct {
		name string
		spec UpdateSpec
	}{
		{"add without member", UpdateSpec{Op: OpAdd}},
		{"add of a member without card", UpdateSpec{Op: OpAdd, Member: &Member{Roles: []Role{RoleCSIRT}}}},
		{"rotate without card", UpdateSpec{Op: OpRotate, Target: n.lu.ID()}},
		{"unknown operation", UpdateSpec{Op: "promote", Target: n.lu.ID()}},
		{"no operation", UpdateSpec{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := NewUpdate(n.r, tc.spec, n.adminEU)
			if err == nil || u != nil {
				t.Errorf("NewUpdate: got %v, %v; want an error", u, err)
			}
		})
	}
}

// A forged update signature is a signature rule and an ErrBadSignature.
func TestApplyBadSignatureIsErrBadSignature(t *testing.T) {
	admin, other := newTestIdentity(t, "enisa"), newTestIdentity(t, "cert-lu")
	g := testNetwork(t, admin)
	u, err := NewUpdate(g.Roster(), UpdateSpec{Op: OpAdd, Member: &Member{Card: other.Card(), Roles: []Role{RoleCSIRT}}, Created: testTime}, admin)
	if err != nil {
		t.Fatal(err)
	}
	var w signedWire
	if err := unmarshalCanonical(u.Bytes(), &w); err != nil {
		t.Fatal(err)
	}
	w.Sig[7] ^= 1
	raw, _ := marshal(&w)
	forged, err := ParseUpdate(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Roster().Apply(forged)
	if !errors.Is(err, ErrBadSignature) || !errors.Is(err, ErrRule) {
		t.Errorf("got %v, want ErrRule and ErrBadSignature", err)
	}
}
