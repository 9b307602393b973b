package consensus

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// A command refused once keeps its refusal when it is submitted again
// (directly, then as a proposal after a leadership loss; or by two leaders
// one after the other): a command counts once however often it is
// submitted, and its first outcome stands, refusals included.
func TestRefusedCommandIsNotAppliedLater(t *testing.T) {
	c := newCast(t, 3)
	f := newFSM(c.genesis)
	net := c.genesis.NetworkID()
	who := c.byName["cert-lu"]
	open := command(t, who, net, crisis.Command{Kind: crisis.KindOpen, Title: "x", Level: 1})
	index := uint64(0)
	apply := func(sc *crisis.SignedCommand) *ApplyResult {
		t.Helper()
		index++
		data, err := encodeEntry(entryCommand, sc.Bytes(), t0)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Index: index, Term: 1, Data: data, AppendedAt: t0}).(*ApplyResult)
	}
	res := apply(open)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	id := res.State.Crisis
	add := command(t, who, net, crisis.Command{Kind: crisis.KindAffected, Crisis: id, Add: []string{"LU"}})
	if res := apply(add); res.Err != nil {
		t.Fatal(res.Err)
	}
	// A second add of LU, with its own ID: nothing to change, refused.
	again := command(t, who, net, crisis.Command{Kind: crisis.KindAffected, Crisis: id, Add: []string{"LU"}})
	if res := apply(again); !errors.Is(res.Err, crisis.ErrRefused) {
		t.Fatalf("adding LU twice: got %v, want a refusal", res.Err)
	}
	first, _ := f.outcome(again.ID())
	if res := apply(command(t, who, net, crisis.Command{Kind: crisis.KindAffected, Crisis: id, Remove: []string{"LU"}})); res.Err != nil {
		t.Fatal(res.Err)
	}
	// The refused command comes in again (a proposal resubmitted by a new
	// leader whose state machine had not yet applied the refusal).
	res = apply(again)
	if res.Err == nil {
		t.Errorf("a refused command was applied when submitted again: affected now %v", res.State.Affected)
	}
	if o, _ := f.outcome(again.ID()); o != first {
		t.Errorf("outcome changed from %+v to %+v", first, o)
	}
	if got := f.state.Affected; len(got) != 0 {
		t.Errorf("affected states %v, want none", got)
	}
}
