package crypto

import (
	"testing"
	"time"
)

// testTime is the fixed time written on test cards and documents.
var testTime = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// newTestIdentity makes a fresh identity or fails the test.
func newTestIdentity(t testing.TB, name string) *Identity {
	t.Helper()
	id, err := NewIdentity(name, testTime)
	if err != nil {
		t.Fatalf("NewIdentity(%q): %v", name, err)
	}
	return id
}

// testNetwork builds a signed genesis: admin (roles admin+cyclone) plus the
// given members (role csirt), all voters if odd in number, else the first
// len-1.
func testNetwork(t testing.TB, admin *Identity, others ...*Identity) *Genesis {
	t.Helper()
	spec := GenesisSpec{Network: "test-net", Created: testTime, Admins: []MemberID{admin.ID()}}
	spec.Members = append(spec.Members, Member{Card: admin.Card(), Roles: []Role{RoleAdmin, RoleCyclone}})
	all := []MemberID{admin.ID()}
	for _, o := range others {
		spec.Members = append(spec.Members, Member{Card: o.Card(), Roles: []Role{RoleCSIRT}})
		all = append(all, o.ID())
	}
	if len(all)%2 == 0 {
		all = all[:len(all)-1]
	}
	spec.Voters = all
	g, err := NewGenesis(spec, admin)
	if err != nil {
		t.Fatalf("NewGenesis: %v", err)
	}
	return g
}
