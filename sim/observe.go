package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/sync"
)

// counters are the numbers a node must never see go backwards, even
// across a crash and restart: its Raft term (a lower term could vote
// twice), its own feed's seq (a lower one would fork its own feed) and its
// Lamport clock (a lower one could order its next entries before ones it
// already saw).
type counters struct {
	term    uint64
	seq     uint64
	lamport uint64
	forked  bool // the member's own feed forked: frozen before the fork, its seq is not judged
	// revoked: the node knows its member revoked; what it wrote past its
	// revocation is set aside (log.RevocationKeeps), so its seq is not
	// judged either (it may write nothing more).
	revoked bool
	at      time.Duration // when read, since the schedule started (for the report)
	state   string        // Raft state when read (for the report)
}

func readCounters(n *node.Node) counters {
	h, _ := n.Store().Head(n.Identity().ID())
	rf := n.Consensus().Raft()
	m, ok := n.Store().Roster().Member(n.Identity().ID())
	return counters{term: rf.CurrentTerm(), seq: h.Seq, lamport: n.Store().MaxLamport(), forked: h.Forked, revoked: ok && m.Revoked,
		state: rf.State().String()}
}

// backwards names the counter that is lower in now than in before.
func (c counters) backwards(before counters) string {
	switch {
	case c.term < before.term:
		return fmt.Sprintf("Raft term %d after %d (%s at %s, %s at %s)", c.term, before.term,
			before.state, before.at.Round(time.Millisecond), c.state, c.at.Round(time.Millisecond))
	case c.seq < before.seq && !c.forked && !c.revoked:
		return fmt.Sprintf("own feed seq %d after %d", c.seq, before.seq)
	case c.lamport < before.lamport:
		return fmt.Sprintf("Lamport clock %d after %d", c.lamport, before.lamport)
	}
	return ""
}

// noteCounters records node i's counters and remembers the first time one
// went backwards.
func (r *netLayer) noteCounters(i int, n *node.Node, when string) {
	c := readCounters(n)
	c.at = time.Since(r.e.start)
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.counters[i]; ok {
		if b := c.backwards(prev); b != "" && r.regress == "" {
			r.regress = fmt.Sprintf("node%d %s: %s", i, when, b)
		}
	}
	r.counters[i] = c
}

func entryCount(n *node.Node) int {
	total := 0
	for _, h := range n.Store().Frontier() {
		total += int(h.Seq)
	}
	return total
}

// sampleEvery is the timeline's pace: finer for small networks.
func (r *netLayer) sampleEvery() time.Duration {
	if len(r.specs) > 10 {
		return time.Second
	}
	return 250 * time.Millisecond
}

// sampler records the timeline until ctx ends.
func (r *netLayer) sampler(ctx context.Context) {
	t := time.NewTicker(r.sampleEvery())
	defer t.Stop()
	for {
		r.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *netLayer) sample() {
	r.nodesMu.RLock()
	s := Sample{At: time.Since(r.e.start), Entries: make([]int, len(r.nodes)), Leader: -1}
	for i, n := range r.nodes { // under nodesMu: a crash waits for the sample
		if n == nil {
			s.Entries[i] = -1
			continue
		}
		s.Entries[i] = entryCount(n)
		s.Term = max(s.Term, n.Consensus().Raft().CurrentTerm()) // the newest term, led or not
		if n.Consensus().IsLeader() {
			s.Leader = i
		}
		r.noteCounters(i, n, "while running")
	}
	r.nodesMu.RUnlock()
	r.e.addSample(s)
}

// noteLinks adds what node i's sync service counted so far (it starts
// from zero when the node restarts).
func (r *netLayer) noteLinks(i int, n *node.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ps := range n.Sync().Peers() {
		j, ok := r.index[ps.Peer]
		if !ok {
			continue
		}
		r.linkBytes[[2]int{i, j}] += uint64(ps.BytesSent)
	}
	r.traffic = r.traffic.Add(n.Sync().Traffic())
}

// syncTraffic returns what every node's sync service counted, by path:
// the saved counts of crashed lives plus the current ones.
func (r *netLayer) syncTraffic() sync.Traffic {
	r.nodesMu.RLock()
	var t sync.Traffic
	for _, n := range r.nodes {
		if n != nil {
			t = t.Add(n.Sync().Traffic())
		}
	}
	r.nodesMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return t.Add(r.traffic)
}

// links returns the traffic per pair: the saved counts of crashed
// lives plus the current ones, each direction counted by its sender.
func (r *netLayer) links() []LinkUse {
	r.nodesMu.RLock()
	cur := map[[2]int]uint64{}
	for i, n := range r.nodes {
		if n == nil {
			continue
		}
		for _, ps := range n.Sync().Peers() {
			if j, ok := r.index[ps.Peer]; ok {
				cur[[2]int{i, j}] += uint64(ps.BytesSent)
			}
		}
	}
	r.nodesMu.RUnlock()
	r.mu.Lock()
	for k, v := range r.linkBytes {
		cur[k] += v
	}
	r.mu.Unlock()
	pairs := map[[2]int]uint64{}
	for k, v := range cur {
		a, b := k[0], k[1]
		if b < a {
			a, b = b, a
		}
		pairs[[2]int{a, b}] += v
	}
	var out []LinkUse
	for k, v := range pairs {
		out = append(out, LinkUse{A: k[0], B: k[1], Bytes: v})
	}
	return out
}

func (r *netLayer) indexPeers() {
	r.index = map[peer.ID]int{}
	for i, s := range r.specs {
		r.index[peerOf(s)] = i
	}
}

func totalBytes(ls []LinkUse) uint64 {
	var t uint64
	for _, l := range ls {
		t += l.Bytes
	}
	return t
}
