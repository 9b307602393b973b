package consensus

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/raft"
)

// A hostile voter pushes a term near 2^64 (a "term bomb"): the next
// election would wrap the term to 0 and reuse terms. Followers refuse it
// and the cluster keeps committing.
func TestTermBombRefused(t *testing.T) {
	for _, term := range []uint64{math.MaxUint64 - 1, maxTerm, 1 << 40} {
		synctest.Test(t, func(t *testing.T) {
			c, cl := startCluster(t, 3, 3)
			l := cl.leader()
			others := without(cl.members, l)
			h, f := others[0], others[1]
			req := &raft.AppendEntriesRequest{
				RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(ServerID(h.id.Card())), Addr: []byte(h.trans.LocalAddr())},
				Term:      term,
			}
			var resp raft.AppendEntriesResponse
			err := h.trans.AppendEntries(ServerID(f.id.Card()), f.trans.LocalAddr(), req, &resp)
			if err == nil {
				t.Errorf("term %d: the follower took the request", term)
			}
			if got := f.eng.raft.CurrentTerm(); got >= 1<<20 {
				t.Fatalf("term %d: the follower is at term %d", term, got)
			}
			if f.eng.TermRefusals() == 0 {
				t.Errorf("term %d: the refusal was not counted", term)
			}
			l = cl.leader()
			if _, err := l.eng.Propose(context.Background(), openCmd(t, c, "cert-lu")); err != nil {
				t.Errorf("term %d: the cluster no longer commits: %v", term, err)
			}
		})
	}
}

// Terms within range pass: a follower adopts a somewhat higher term, as
// Raft requires.
func TestTermGuardPassesHonestTerms(t *testing.T) {
	g := &termGuard{current: func() uint64 { return 7 }}
	for _, tc := range []struct {
		term uint64
		ok   bool
	}{{0, true}, {7, true}, {8, true}, {7 + maxTermJump, true}, {8 + maxTermJump, false}, {maxTerm, false}, {math.MaxUint64, false}} {
		if got := g.ok(tc.term, "test"); got != tc.ok {
			t.Errorf("term %d at 7: ok %v, want %v", tc.term, got, tc.ok)
		}
	}
}

// Raft replicates one AppendEntries at a time per follower, never through
// hashicorp/raft's pipeline (see AppendEntriesPipeline): the transport the
// engine hands Raft (the term guard over the heartbeat gate) refuses it,
// so Raft falls back to AppendEntries, whose response the guard checks.
func TestNoPipelineReplication(t *testing.T) {
	_, tr := raft.NewInmemTransport("a")
	_, peer := raft.NewInmemTransport("b")
	tr.Connect("b", peer)
	if _, err := tr.AppendEntriesPipeline("b", "b"); err != nil {
		t.Fatalf("the in-memory transport itself pipelines (the check below would prove nothing): %v", err)
	}
	gate := newHeartbeatGate()
	defer gate.close()
	g := newTermGuard(gate.transport(tr), func() uint64 { return 1 }, nil)
	defer g.(raft.WithClose).Close()
	p, err := g.AppendEntriesPipeline("b", "b")
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) || p != nil {
		t.Errorf("AppendEntriesPipeline gave %v, %v; want ErrPipelineReplicationNotSupported", p, err)
	}
}
