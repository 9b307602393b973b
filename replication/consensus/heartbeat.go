package consensus

import "github.com/hashicorp/raft"

// withoutHeartbeatFastPath returns t with its heartbeat fast path hidden
// from Raft, so that Raft handles heartbeats on its main goroutine, in
// order with every other RPC.
//
// hashicorp/raft v1.8.0 registers a heartbeat handler with the transport
// (NewRaft: SetHeartbeatHandler), and raft.NetworkTransport calls it on
// the goroutine of the connection the heartbeat came in on. That handler
// is appendEntries, which reads the current term, compares it with the
// heartbeat's and stores the heartbeat's if it is newer: a check and a
// set with nothing serialising them against Raft's main goroutine or
// against heartbeats on other connections. A node in term 4 that gets the
// heartbeats of the leaders of terms 5 and 6 at once (a leader deposed
// and its successor, both still sending) can let both pass the check and
// store 5 last: its term goes back from 6 to 5, in its stable store too,
// and from then on it would take term 5's appends and grant term 5's
// votes again. The simulation's counters check saw exactly that on a
// non-voter of the 50-node scenario (TestHeartbeatsDoNotLowerTheTerm
// replays it). hashicorp/raft#695 reports the same unsynchronised path
// from a leader's side (a heartbeat's term bump under the leader loop;
// diverging logs), open upstream at the time of writing.
//
// Without a registered handler, raft.NetworkTransport hands heartbeats to
// Raft's main goroutine like any other RPC (raft.InmemTransport, which
// hashicorp/raft's own tests use, never has a fast path). The cost: a
// heartbeat waits behind the RPC the main goroutine is busy with (a log
// write), which the successful append entries that keep it busy also
// count as contact with the leader.
func withoutHeartbeatFastPath(t raft.Transport) raft.Transport {
	base := noHeartbeatFastPath{t}
	if pv, ok := t.(raft.WithPreVote); ok {
		// Raft uses pre-vote only when the transport offers it.
		return noHeartbeatFastPathPreVote{base, pv}
	}
	return base
}

type noHeartbeatFastPath struct{ raft.Transport }

// SetHeartbeatHandler registers nothing: see withoutHeartbeatFastPath.
func (noHeartbeatFastPath) SetHeartbeatHandler(func(raft.RPC)) {}

// Close closes the transport if it can be closed (raft.WithClose: Raft
// closes it on shutdown), as Raft would have done unwrapped.
func (t noHeartbeatFastPath) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

type noHeartbeatFastPathPreVote struct {
	noHeartbeatFastPath
	pv raft.WithPreVote
}

func (t noHeartbeatFastPathPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.pv.RequestPreVote(id, target, args, resp)
}
