package crisis_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// A CSIRT opens a crisis, tries to escalate it to level 3 (which is the
// CyCLONe's call) and is refused; the CyCLONe liaison escalates. In a node,
// the commands arrive through Raft and Meta comes from the log entry.
func ExampleApply() {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	certLU, _ := crypto.NewIdentity("cert-lu", now)
	cycloneLU, _ := crypto.NewIdentity("cyclone-lu", now)
	genesis, err := crypto.NewGenesis(crypto.GenesisSpec{
		Network: "example", Created: now,
		Members: []crypto.Member{
			{Card: certLU.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
			{Card: cycloneLU.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleCyclone}},
		},
		Voters: []crypto.MemberID{cycloneLU.ID()},
		Admins: []crypto.MemberID{cycloneLU.ID()},
	}, cycloneLU)
	if err != nil {
		panic(err)
	}
	roster, network := genesis.Roster(), genesis.NetworkID()

	// Each command gets 16 random bytes from its signer: Apply reads no
	// randomness, and uses the ID to count a resubmitted command once.
	newID := func() (id crisis.ID) {
		rand.Read(id[:])
		return id
	}
	var s crisis.State
	index := uint64(0)
	apply := func(who *crypto.Identity, cmd crisis.Command) error {
		cmd.ID = newID()
		signed, err := crisis.Sign(who, network, cmd)
		if err != nil {
			return err
		}
		index++
		next, err := crisis.Apply(s, signed, roster, crisis.Meta{Time: now.Add(time.Duration(index) * time.Minute), Term: 1, Index: index})
		if err != nil {
			return err
		}
		s = next
		return nil
	}

	if err := apply(certLU, crisis.Command{Kind: crisis.KindOpen, Title: "Grid outage", Level: crisis.LevelIncident}); err != nil {
		panic(err)
	}
	fmt.Println(s.Level, "/", s.Phase)

	err = apply(certLU, crisis.Command{Kind: crisis.KindEscalateLevel3, Crisis: s.Crisis})
	var refusal *crisis.Refusal
	if errors.As(err, &refusal) {
		fmt.Println("refused:", refusal.Rule, "-", refusal.Detail)
	}

	if err := apply(cycloneLU, crisis.Command{Kind: crisis.KindEscalateLevel3, Crisis: s.Crisis}); err != nil {
		panic(err)
	}
	last := s.History[len(s.History)-1]
	fmt.Println(last.ByName, last.What)
	// Output:
	// level 1 (incident under watch) / detection
	// refused: role - escalate to level 3 needs role cyclone; cert-lu has csirt
	// cyclone-lu escalated to level 3 (large-scale incident), up from level 1 (incident under watch)
}
