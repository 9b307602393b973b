package sim

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/consensus"
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
	InvNoForgery   = "nothing forged or malformed accepted"
	InvNoRevoked   = "nothing written after revocation accepted"
	InvCounters    = "counters never go backwards"
	InvReads       = "every member reads exactly what its keys allow"
	InvMembership  = "Raft configuration follows the roster"
	InvCommitted   = "no state shown that Raft did not commit"
	InvClocks      = "honest clocks not dragged"
	InvNotShown    = "nothing shown that must not be believed"
	InvNoFreeze    = "an Ed25519-only forger freezes no feed"
)

// checkAll runs every checker of the network layer over the running
// nodes (the engine adds the linearizability of the workloads' history).
// With final, it first waits (within the scenario's bound) for the logs
// and the crisis state to converge.
func (r *netLayer) checkAll(ctx context.Context, step int, final bool) []Check {
	var out []Check
	// Logs may differ while the network is cut (that is the point of an
	// available log): convergence is checked at the end, after the heal,
	// and by "converge" steps.
	if final {
		err := waitUntil(ctx, r.e.sc.ConvergeWithin.Duration, func() bool {
			return r.converged() && r.sameAppliedIndex() && checkMembership(r.running()) == nil
		})
		if err != nil {
			err = fmt.Errorf("not within %s: %w", r.e.sc.ConvergeWithin.Duration, cmp.Or(divergence(r.running()), err))
		}
		out = append(out, verdict(InvConverged, step, err))
		out = append(out, verdict(InvMembership, step, checkMembership(r.running())))
	}
	r.mu.Lock()
	acked := append([]ackedEntry(nil), r.acked...)
	conflict := r.conflict
	regress := r.regress
	forkers := append([]crypto.MemberID(nil), r.forkers...)
	forged := append([]log.Hash(nil), r.forged...)
	edForged := append([]crypto.MemberID(nil), r.edForged...)
	revoked := append([]crypto.MemberID(nil), r.revoked...)
	bombs := append([]bomb(nil), r.bombs...)
	disbelieved := append([]log.Hash(nil), r.disbelieved...)
	r.mu.Unlock()
	out = append(out, verdict(InvNoLoss, step, checkNoLoss(r.running(), acked, final)))
	if len(forged) > 0 {
		out = append(out, verdict(InvNoForgery, step, checkNoForgery(r.running(), forged)))
	}
	if final && len(edForged) > 0 {
		out = append(out, verdict(InvNoFreeze, step, checkNoFreeze(r.running(), edForged, forkers)))
	}
	if final && len(revoked) > 0 {
		out = append(out, verdict(InvNoRevoked, step, checkNoRevoked(r.running(), revoked)))
	}
	if final && len(forkers) > 0 {
		out = append(out, verdict(InvForks, step, checkForks(r.running(), forkers)))
	}
	out = append(out, verdict(InvChains, step, checkChains(r.running())))
	out = append(out, verdict(InvCommitted, step, checkShownCommitted(r.running())))
	if len(bombs) > 0 {
		out = append(out, verdict(InvClocks, step, checkClocks(r.running(), bombs)))
	}
	if len(disbelieved) > 0 {
		out = append(out, verdict(InvNotShown, step, checkNotShown(r.running(), disbelieved)))
	}
	out = append(out, verdict(InvOneLeader, step, boolErr(conflict == "", "two leaders in "+conflict)))
	out = append(out, verdict(InvCounters, step, boolErr(regress == "", regress)))
	if final {
		out = append(out, verdict(InvReads, step, checkReads(r.running(), acked)))
		out = append(out, verdict(InvCrisisState, step, checkCrisis(ctx, r.running(), r.e.sc.ConvergeWithin.Duration)))
	}
	return out
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
func (r *netLayer) running() []running {
	r.mu.Lock()
	revoked := append([]crypto.MemberID(nil), r.revoked...)
	r.mu.Unlock()
	var out []running
	for i, n := range r.snapshot() {
		if n != nil && !slices.Contains(revoked, n.Identity().ID()) {
			out = append(out, running{i, n})
		}
	}
	return out
}

func (r *netLayer) sameAppliedIndex() bool {
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
			if err := checkFeed(st.Network(), st.Roster(), head, feed[:head.Seq]); err != nil {
				return fmt.Errorf("node%d: feed of %s %w", rn.index, author.Short(), err)
			}
		}
	}
	return nil
}

// stateAt is one node's committed crisis state.
type stateAt struct {
	node  int
	index uint64
	state []byte
}

// checkFeed: a feed validates from seq 1 up to its head (a forked feed is
// frozen and judged by checkForks).
func checkFeed(network crypto.NetworkID, roster *crypto.Roster, head log.Head, feed []*log.Entry) error {
	if k, err := log.CheckRun(network, roster, log.Head{}, feed); k != len(feed) && !head.Forked {
		return fmt.Errorf("breaks at entry %d: %v", k+1, err)
	}
	return nil
}

// checkCrisis: every node's committed crisis state is the same, at the
// same index.
func checkCrisis(ctx context.Context, ns []running, d time.Duration) error {
	// Commits may still land while the other checks run (a proposal the
	// log carried to the leader late, over lossy links): wait, within d,
	// for every node to have applied the same index, and compare the
	// states there. Indexes that stay apart are reported as such.
	var views []stateAt
	var bad error
	waitUntil(ctx, d, func() bool {
		views = views[:0]
		for _, rn := range ns {
			v := rn.node.Consensus().Local()
			b, err := v.State.MarshalBinary()
			if err != nil {
				bad = err
				return true
			}
			views = append(views, stateAt{rn.index, v.Index, b})
		}
		for _, v := range views {
			if v.index != views[0].index {
				return false
			}
		}
		return true
	})
	if bad != nil {
		return bad
	}
	return sameState(views)
}

func sameState(views []stateAt) error {
	for _, v := range views[min(1, len(views)):] {
		if v.index != views[0].index || !bytes.Equal(v.state, views[0].state) {
			return fmt.Errorf("node%d holds the state at index %d, node%d at %d, and they differ", v.node, v.index, views[0].node, views[0].index)
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

// checkNoFreeze: no node holds the feed of a member an Ed25519-only
// forger wrote as frozen, unless the member really forked (forkers).
func checkNoFreeze(ns []running, victims, forkers []crypto.MemberID) error {
	for _, rn := range ns {
		if err := noFreeze(rn.index, rn.node.Store().Frontier(), victims, forkers); err != nil {
			return err
		}
	}
	return nil
}

// noFreeze is checkNoFreeze for the frontier f of node index.
func noFreeze(index int, f log.Frontier, victims, forkers []crypto.MemberID) error {
	for _, a := range victims {
		if f[a].Forked && !slices.Contains(forkers, a) {
			return fmt.Errorf("node%d froze the feed of %s after an Ed25519-only forgery", index, a.Short())
		}
	}
	return nil
}

// writtenAfterRevocation reports whether an acknowledged entry was written
// by its author past the point its revocation keeps (log.RevocationKeeps):
// the network refuses such entries by design, so they are not "lost".
func writtenAfterRevocation(n *node.Node, a ackedEntry) bool {
	m, ok := n.Store().Roster().Member(a.author)
	return ok && !log.RevocationKeeps(m, a.seq, a.lamport)
}

// checkNoRevoked: no node holds an entry of a revoked member that its
// revocation does not keep.
func checkNoRevoked(ns []running, revoked []crypto.MemberID) error {
	for _, rn := range ns {
		st := rn.node.Store()
		for _, id := range revoked {
			m, ok := st.Roster().Member(id)
			if !ok || !m.Revoked {
				return fmt.Errorf("node%d does not know that %s was revoked", rn.index, id.Short())
			}
			if h, ok := st.Head(id); ok && !log.RevocationKeeps(m, h.Seq, h.Lamport) {
				return fmt.Errorf("node%d holds %s's feed up to seq %d (Lamport %d), past what the revocation keeps (seq %d, or below Lamport %d)",
					rn.index, id.Short(), h.Seq, h.Lamport, m.FeedSeq, m.RevokedClock)
			}
		}
	}
	return nil
}

// checkReads: every node holds every acknowledged entry it is meant to
// read and can read it, and cannot read one sealed to others (it still
// holds and relays it). Entries whose loss checkNoLoss explains (evidence,
// past a revocation) are skipped.
func checkReads(ns []running, acked []ackedEntry) error {
	for _, a := range acked {
		for _, rn := range ns {
			e, err := rn.node.Store().Get(a.id)
			if err != nil {
				continue // checkNoLoss reports it if it matters
			}
			want := a.readers == nil || slices.Contains(a.readers, rn.index)
			_, rerr := rn.node.Store().Read(e)
			switch {
			case want && rerr != nil:
				return fmt.Errorf("node%d cannot read entry %s of node%d it is a recipient of: %v", rn.index, a.id.Short(), a.node, rerr)
			case !want && rerr == nil:
				return fmt.Errorf("node%d reads entry %s that node%d sealed to %v only", rn.index, a.id.Short(), a.node, a.readers)
			}
		}
	}
	return nil
}

// checkMembership: every node's Raft configuration holds exactly the
// active members, the genesis voters as voters and the others as
// non-voters.
func checkMembership(ns []running) error {
	for _, rn := range ns {
		f := rn.node.Consensus().Raft().GetConfiguration()
		if err := f.Error(); err != nil {
			return fmt.Errorf("node%d: %w", rn.index, err)
		}
		have := map[raft.ServerID]raft.ServerSuffrage{}
		for _, s := range f.Configuration().Servers {
			have[s.ID] = s.Suffrage
		}
		roster := rn.node.Store().Roster()
		for _, m := range roster.Members() {
			id := consensus.ServerID(m.Card)
			suf, in := have[id]
			delete(have, id)
			switch {
			case m.Revoked && in:
				return fmt.Errorf("node%d: revoked member %s is still in the Raft configuration", rn.index, m.Card.Name())
			case !m.Revoked && !in:
				return fmt.Errorf("node%d: member %s is not in the Raft configuration", rn.index, m.Card.Name())
			case !m.Revoked && roster.IsVoter(m.Card.ID()) != (suf == raft.Voter):
				return fmt.Errorf("node%d: member %s is a %v in Raft, the roster says voter=%v", rn.index, m.Card.Name(), suf, roster.IsVoter(m.Card.ID()))
			}
		}
		for id := range have {
			return fmt.Errorf("node%d: Raft server %s is no member", rn.index, id)
		}
	}
	return nil
}
