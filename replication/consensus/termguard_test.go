package consensus

import (
	"context"
	"math"
	"sync/atomic"
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

// The pipeline deadlock of hashicorp/raft#612, on the in-memory transport
// (whose pipeline is built like the network one): the follower answers
// Success=false, Raft takes that answer and stops consuming, and goes on
// sending. Unguarded, the sender blocks for good (until the pipeline is
// closed, which Raft does only after the send returns); behind the guard
// every send returns. An answer whose term is out of range reaches Raft
// as a failed answer in the request's term.
func TestPipelineDoesNotDeadlock(t *testing.T) {
	for _, guarded := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			_, a := raft.NewInmemTransport("a")
			_, b := raft.NewInmemTransport("b")
			a.Connect("b", b)
			stop := make(chan struct{})
			defer close(stop)
			var answerTerm atomic.Uint64
			answerTerm.Store(1)
			go func() { // the follower refuses every append
				for {
					select {
					case rpc := <-b.Consumer():
						rpc.Respond(&raft.AppendEntriesResponse{Term: answerTerm.Load(), Success: false}, nil)
					case <-stop:
						return
					}
				}
			}()
			var tr raft.Transport = a
			if guarded {
				tr = newTermGuard(a, func() uint64 { return 1 }, nil)
			}
			p, err := tr.AppendEntriesPipeline("b", "b")
			if err != nil {
				t.Fatal(err)
			}
			req := func() *raft.AppendEntriesRequest { return &raft.AppendEntriesRequest{Term: 1} }
			if _, err := p.AppendEntries(req(), &raft.AppendEntriesResponse{}); err != nil {
				t.Fatal(err)
			}
			if first := <-p.Consumer(); first.Response().Success {
				t.Fatal("the follower accepted")
			}
			// Raft has stopped consuming; its sender goes on.
			sent := make(chan int, 1)
			go func() {
				n := 0
				for range 100 {
					if _, err := p.AppendEntries(req(), &raft.AppendEntriesResponse{}); err != nil {
						break
					}
					n++
				}
				sent <- n
			}()
			synctest.Wait()
			select {
			case n := <-sent:
				if !guarded {
					t.Fatalf("unguarded, all %d sends returned: the test no longer shows the deadlock", n)
				}
			default:
				if guarded {
					t.Fatal("behind the guard, the sender is blocked")
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if guarded {
				// A term bomb in an answer does not reach Raft.
				answerTerm.Store(1 << 63)
				p, err := tr.AppendEntriesPipeline("b", "b")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.AppendEntries(req(), &raft.AppendEntriesResponse{}); err != nil {
					t.Fatal(err)
				}
				if got := (<-p.Consumer()).Response(); got.Term != 1 || got.Success {
					t.Errorf("an answer of term 2^63 reached Raft as %+v", got)
				}
				p.Close()
				tr.(raft.WithClose).Close()
			}
		})
	}
}
