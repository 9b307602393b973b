package consensus

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Raft terms a peer can push on this node.
//
// hashicorp/raft adopts any higher term it sees in a request or in a vote
// response, and a candidate's next term is the current one plus one. A
// hostile voter could therefore send a term near 2^64 and exhaust the
// counter: the next election wraps to term 0 and terms already used come
// back, which breaks Raft's safety. The guard refuses, before Raft sees
// them, requests and vote responses whose term is beyond maxTerm or more
// than maxTermJump above this node's current term. No honest cluster
// comes near either: with pre-vote a term grows only with elections a
// majority agreed to start, one per election timeout at the most, and
// 2^62 elections take longer than the universe has existed. Reaching
// maxTerm in jumps of maxTermJump takes 2^42 accepted requests.
//
// What a hostile voter can still do is what Raft lets any voter do: force
// elections, and pose as a leader with a somewhat higher term (Raft
// tolerates crashes, not lies); quorum certificates show what it changed
// (see the package doc).
const (
	maxTerm     = 1 << 62
	maxTermJump = 1 << 20
)

// errTermOutOfRange is the error a refused RPC gets.
var errTermOutOfRange = errors.New("consensus: Raft term out of range: refused (a peer pushing terms far ahead is faulty or hostile)")

// termGuard wraps the Raft transport handed to the engine.
type termGuard struct {
	raft.Transport
	current  func() uint64 // this node's current term (0 before Raft runs)
	consumer chan raft.RPC
	stop     chan struct{}
	refused  func(term uint64, what string)
}

// termGuardPreVote is a termGuard for a transport that supports pre-vote.
type termGuardPreVote struct {
	*termGuard
	pv raft.WithPreVote
}

func newTermGuard(t raft.Transport, current func() uint64, refused func(term uint64, what string)) raft.Transport {
	g := &termGuard{Transport: t, current: current, consumer: make(chan raft.RPC), stop: make(chan struct{}), refused: refused}
	go g.forward()
	if pv, ok := t.(raft.WithPreVote); ok {
		return &termGuardPreVote{termGuard: g, pv: pv}
	}
	return g
}

// ok reports whether a term a peer sent may reach Raft.
func (g *termGuard) ok(term uint64, what string) bool {
	cur := g.current()
	if term < maxTerm && (term <= cur || term-cur <= maxTermJump) {
		return true
	}
	if g.refused != nil {
		g.refused(term, what)
	}
	return false
}

// response passes on the error of a call to a peer, or, when the call
// succeeded, errTermOutOfRange if the term the peer answered with (read
// only now, after the call) may not reach Raft.
func (g *termGuard) response(err error, term *uint64, what string) error {
	if err != nil {
		return err
	}
	if !g.ok(*term, what) {
		return errTermOutOfRange
	}
	return nil
}

func rpcTerm(cmd any) (uint64, bool) {
	switch c := cmd.(type) {
	case *raft.AppendEntriesRequest:
		return c.Term, true
	case *raft.RequestVoteRequest:
		return c.Term, true
	case *raft.RequestPreVoteRequest:
		return c.Term, true
	case *raft.InstallSnapshotRequest:
		return c.Term, true
	}
	return 0, false
}

// forward passes requests within range on to Raft.
func (g *termGuard) forward() {
	in := g.Transport.Consumer()
	for {
		select {
		case <-g.stop:
			return
		case rpc := <-in:
			if t, ok := rpcTerm(rpc.Command); ok && !g.ok(t, fmt.Sprintf("%T", rpc.Command)) {
				rpc.Respond(nil, errTermOutOfRange)
				continue
			}
			select {
			case g.consumer <- rpc:
			case <-g.stop:
				return
			}
		}
	}
}

func (g *termGuard) Consumer() <-chan raft.RPC { return g.consumer }

func (g *termGuard) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.Transport.SetHeartbeatHandler(nil)
		return
	}
	g.Transport.SetHeartbeatHandler(func(rpc raft.RPC) {
		if t, ok := rpcTerm(rpc.Command); ok && !g.ok(t, "heartbeat") {
			rpc.Respond(nil, errTermOutOfRange)
			return
		}
		cb(rpc)
	})
}

func (g *termGuard) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return g.response(g.Transport.RequestVote(id, target, args, resp), &resp.Term, "vote response")
}

func (g *termGuard) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return g.response(g.Transport.AppendEntries(id, target, args, resp), &resp.Term, "append response")
}

// AppendEntriesPipeline refuses: Raft then replicates to each follower
// with one AppendEntries at a time (each carrying up to MaxAppendEntries
// entries), whose response the guard checks. Two reasons:
//
//   - hashicorp/raft's pipeline can deadlock (hashicorp/raft#612): when a
//     follower answers Success=false, the pipeline's consumer returns, its
//     decoder then blocks handing the next answer to nobody, and the
//     sender blocks handing the decoder the next request. The follower
//     never receives another entry from this leader, while heartbeats
//     (sent apart) keep it from calling an election; and Shutdown waits
//     for the sender forever. A network-layer campaign (a satellite link,
//     where many requests are in flight) hung 15 minutes in Node.Close on
//     exactly these two goroutines.
//   - The pipeline's responses would reach Raft without the guard's term
//     check.
//
// The cost is throughput to a slow follower (one round trip per batch
// instead of many in flight); crisis commands are few and small, and the
// benchmarks in BENCHMARKS.md ("Raft commit") show what it costs.
func (g *termGuard) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// halt stops forwarding (Raft did not start).
func (g *termGuard) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
}

// Close stops the guard and closes the transport if it can be closed.
func (g *termGuard) Close() error {
	g.halt()
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

func (g *termGuardPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.response(g.pv.RequestPreVote(id, target, args, resp), &resp.Term, "pre-vote response")
}
