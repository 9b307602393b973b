package sim

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Invariant names, as reports and tests name them.
const (
	InvConverged   = "identical logs"
	InvNoLoss      = "no acknowledged entry lost"
	InvChains      = "every author's chain intact"
	InvOneLeader   = "one leader per term"
	InvCrisisState = "same committed crisis state"
	InvForks       = "forks detected, not merged"
	InvNoForgery   = "nothing forged accepted"
	InvNoRevoked   = "nothing written after revocation accepted"
)

// checkAll runs every checker over the running nodes. With final, it first
// waits (within the scenario's bound) for the logs and the crisis state to
// converge.
func (r *Run) checkAll(ctx context.Context, step int, final bool) []Check {
	var out []Check
	// Logs may differ while the network is cut (that is the point of an
	// available log): convergence is checked at the end, after the heal,
	// and by "converge" steps.
	if final {
		err := r.waitUntil(ctx, r.sc.ConvergeWithin.Duration, func() bool { return r.converged() && r.sameAppliedIndex() })
		out = append(out, verdict(InvConverged, step, err))
	}
	r.mu.Lock()
	acked := append([]ackedEntry(nil), r.acked...)
	conflict := r.conflict
	forkers := append([]crypto.MemberID(nil), r.forkers...)
	forged := append([]log.Hash(nil), r.forged...)
	revoked := append([]crypto.MemberID(nil), r.revoked...)
	r.mu.Unlock()
	out = append(out, verdict(InvNoLoss, step, checkNoLoss(r.running(), acked, final)))
	if len(forged) > 0 {
		out = append(out, verdict(InvNoForgery, step, checkNoForgery(r.running(), forged)))
	}
	if final && len(revoked) > 0 {
		out = append(out, verdict(InvNoRevoked, step, checkNoRevoked(r.running(), revoked)))
	}
	if final && len(forkers) > 0 {
		out = append(out, verdict(InvForks, step, checkForks(r.running(), forkers)))
	}
	out = append(out, verdict(InvChains, step, checkChains(r.running())))
	out = append(out, verdict(InvOneLeader, step, boolErr(conflict == "", "two leaders in "+conflict)))
	if final {
		out = append(out, verdict(InvCrisisState, step, checkCrisis(r.running())))
	}
	for _, c := range out {
		mark := "ok"
		if !c.OK {
			mark = "FAILED: " + c.Detail
		}
		r.logf("  check %-30s %s", c.Name, mark)
	}
	return out
}

func verdict(name string, step int, err error) Check {
	if err != nil {
		return Check{Name: name, Step: step, Detail: err.Error()}
	}
	return Check{Name: name, Step: step, OK: true}
}

func boolErr(ok bool, msg string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s", msg)
}

type running struct {
	index int
	node  *node.Node
}

// running returns the nodes the checkers judge: those up and not revoked.
// A revoked member's node is outside the network by design (the roster
// gate refuses it), so its own view is not expected to converge.
func (r *Run) running() []running {
	r.mu.Lock()
	revoked := append([]crypto.MemberID(nil), r.revoked...)
	r.mu.Unlock()
	var out []running
	for i, n := range r.nodes {
		if n != nil && !slices.Contains(revoked, n.Identity().ID()) {
			out = append(out, running{i, n})
		}
	}
	return out
}

func (r *Run) sameAppliedIndex() bool {
	var idx uint64
	first := true
	for _, rn := range r.running() {
		v := rn.node.Consensus().Local()
		if first {
			idx, first = v.Index, false
		} else if v.Index != idx {
			return false
		}
	}
	return true
}

// checkNoLoss: every acknowledged entry is held by the node that
// acknowledged it (always) and, at the end, by every node.
func checkNoLoss(ns []running, acked []ackedEntry, everywhere bool) error {
	for _, a := range acked {
		for _, rn := range ns {
			if !everywhere && rn.index != a.node {
				continue
			}
			if _, err := rn.node.Store().Get(a.id); err != nil && !heldAsEvidence(rn.node, a.id) && !writtenAfterRevocation(rn.node, a) {
				return fmt.Errorf("node%d lacks entry %s acknowledged by node%d at step %d", rn.index, a.id.Short(), a.node, a.step)
			}
		}
	}
	return nil
}

// checkChains: on every node, every author's feed validates from seq 1.
func checkChains(ns []running) error {
	for _, rn := range ns {
		st := rn.node.Store()
		for author, head := range st.Frontier() {
			feed, err := st.Feed(author, 0, 0)
			if err != nil {
				return fmt.Errorf("node%d: feed of %s: %v", rn.index, author.Short(), err)
			}
			// The node is live: entries may have been added since the
			// frontier was read. The feed must hold at least the head.
			if uint64(len(feed)) < head.Seq {
				return fmt.Errorf("node%d: feed of %s holds %d entries, its head says %d", rn.index, author.Short(), len(feed), head.Seq)
			}
			feed = feed[:head.Seq]
			if k, err := log.CheckRun(st.Network(), st.Roster(), log.Head{}, feed); k != len(feed) && !head.Forked {
				return fmt.Errorf("node%d: feed of %s breaks at entry %d: %v", rn.index, author.Short(), k+1, err)
			}
		}
	}
	return nil
}

// checkCrisis: every node's committed crisis state is the same, at the
// same index.
func checkCrisis(ns []running) error {
	var want []byte
	var at uint64
	for k, rn := range ns {
		v := rn.node.Consensus().Local()
		b, err := v.State.MarshalBinary()
		if err != nil {
			return err
		}
		if k == 0 {
			want, at = b, v.Index
			continue
		}
		if v.Index != at || !bytes.Equal(b, want) {
			return fmt.Errorf("node%d holds the state at index %d, node%d at %d, and they differ", rn.index, v.Index, ns[0].index, at)
		}
	}
	return nil
}

// heldAsEvidence reports whether the node keeps id as evidence (an entry
// of an author who forked, set aside but not lost).
func heldAsEvidence(n *node.Node, id log.Hash) bool {
	ev, err := n.Store().Evidence()
	if err != nil {
		return false
	}
	for _, e := range ev {
		if e.ID() == id {
			return true
		}
	}
	return false
}

// checkForks: every node knows every equivocating author forked.
func checkForks(ns []running, forkers []crypto.MemberID) error {
	for _, rn := range ns {
		f := rn.node.Store().Frontier()
		for _, a := range forkers {
			if !f[a].Forked {
				return fmt.Errorf("node%d does not know that %s forked its feed", rn.index, a.Short())
			}
		}
	}
	return nil
}

// checkNoForgery: no node holds a forged entry.
func checkNoForgery(ns []running, forged []log.Hash) error {
	for _, rn := range ns {
		for _, id := range forged {
			if _, err := rn.node.Store().Get(id); err == nil {
				return fmt.Errorf("node%d accepted forged entry %s", rn.index, id.Short())
			}
		}
	}
	return nil
}

// writtenAfterRevocation reports whether an acknowledged entry was written
// by its author past the point its revocation keeps: the network refuses
// such entries by design, so they are not "lost".
func writtenAfterRevocation(n *node.Node, a ackedEntry) bool {
	m, ok := n.Store().Roster().Member(a.author)
	return ok && m.Revoked && a.seq > m.FeedSeq
}

// checkNoRevoked: no node holds an entry a revoked member wrote past the
// seq its revocation keeps.
func checkNoRevoked(ns []running, revoked []crypto.MemberID) error {
	for _, rn := range ns {
		st := rn.node.Store()
		for _, id := range revoked {
			m, ok := st.Roster().Member(id)
			if !ok || !m.Revoked {
				return fmt.Errorf("node%d does not know that %s was revoked", rn.index, id.Short())
			}
			if h, ok := st.Head(id); ok && h.Seq > m.FeedSeq {
				return fmt.Errorf("node%d holds %s's feed up to seq %d, past the revocation's %d", rn.index, id.Short(), h.Seq, m.FeedSeq)
			}
		}
	}
	return nil
}
