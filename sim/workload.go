package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	gosync "sync"
	"time"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// A Target is what a workload's clients talk to: a network of nodes that
// keep the crisis state. Its methods are called from many goroutines.
type Target interface {
	// Nodes is how many nodes there are; Up reports whether node i runs.
	Nodes() int
	Up(i int) bool
	// Change adds (add=true) or removes state from the affected member
	// states of the open crisis, as node i's member, and waits for the
	// outcome. An error that wraps ErrNoEffect means the command certainly
	// changed nothing (it was never sent, or it was refused by a rule other
	// than "nothing to change"); any other error leaves the outcome unknown.
	Change(ctx context.Context, i int, state string, add bool) (Outcome, error)
	// Read returns the affected states of the open crisis by a
	// linearizable read on node i; an error means the read did not happen
	// (e.g. not the leader) and is not recorded.
	Read(ctx context.Context, i int) ([]string, error)
}

// Outcome is what became of a change.
type Outcome int

// The outcomes of a change.
const (
	// OutcomeCommitted: the change was committed and changed the set.
	OutcomeCommitted Outcome = iota
	// OutcomeRefused: refused because there was nothing to change (the
	// state was already present, or absent).
	OutcomeRefused
	// OutcomeUnknown: not known (leadership lost on the way, a timeout, a
	// proposal still travelling): it may take effect, or not, at any time.
	OutcomeUnknown
)

func (o Outcome) String() string {
	switch o {
	case OutcomeCommitted:
		return "committed"
	case OutcomeRefused:
		return "refused"
	case OutcomeUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ErrNoEffect marks a change that certainly had no effect on the set: the
// workload leaves it out of the history (a no-op says nothing about the
// set, and leaving it out never hides a violation that it would show).
var ErrNoEffect = errors.New("sim: the change had no effect")

// workloadStates is how many member states a workload plays with: few, so
// that adds and removes of the same state collide often.
const workloadStates = 4

// maxPause bounds the pause of a client between two operations.
const maxPause = 200 * time.Millisecond

// runWorkload runs clients concurrent clients against t until ctx is done,
// recording every operation in h; it returns once every client has
// stopped. Each client, in a loop, pauses a little, picks a running node
// at random and adds or removes one of a few member states or reads the
// set there. Every random choice comes from seed.
//
// What is recorded: a change is recorded from before it is sent to when
// its outcome is known; one that ends with an error is recorded as
// unknown (the command may have landed), except errors that wrap
// ErrNoEffect, which are dropped. A read is recorded only when it
// succeeded. A change still running when a check looks at the history
// counts as unknown there.
func runWorkload(ctx context.Context, t Target, clients int, seed uint64, h *History) {
	rng := rand.New(rand.NewPCG(seed, 0x301c))
	all := crisis.MemberStates()
	states := make([]string, 0, workloadStates)
	for _, k := range rng.Perm(len(all))[:min(workloadStates, len(all))] {
		states = append(states, all[k].Value)
	}
	first := h.reserveClients(clients)
	var wg gosync.WaitGroup
	for c := range clients {
		cseed := rng.Uint64()
		wg.Go(func() { runClient(ctx, t, first+c, rand.New(rand.NewPCG(cseed, 0xc11e)), states, h) })
	}
	wg.Wait()
}

// runClient is one client of runWorkload.
func runClient(ctx context.Context, t Target, client int, rng *rand.Rand, states []string, h *History) {
	for {
		pause := time.NewTimer(time.Duration(rng.Int64N(int64(maxPause))))
		select {
		case <-ctx.Done():
			pause.Stop()
			return
		case <-pause.C:
		}
		// Draw everything first, so that the sequence of choices does not
		// depend on which nodes happen to be up.
		pick, op, state := rng.IntN(1<<16), rng.IntN(4), states[rng.IntN(len(states))]
		var up []int
		for i := range t.Nodes() {
			if t.Up(i) {
				up = append(up, i)
			}
		}
		if len(up) == 0 {
			continue
		}
		i := up[pick%len(up)]
		if op < 2 { // half reads: most land on a member that does not lead
			call := h.stamp()
			set, err := t.Read(ctx, i)
			if err == nil {
				h.read(client, call, set)
			}
			continue
		}
		add := op == 2
		kind := OpRemove
		if add {
			kind = OpAdd
		}
		id := h.begin(client, kind, state)
		out, err := t.Change(ctx, i, state, add)
		switch {
		case errors.Is(err, ErrNoEffect):
			h.drop(id)
		case err != nil:
			h.end(id, OutcomeUnknown)
		default:
			h.end(id, out)
		}
	}
}
