// Package consensus keeps the crisis state consistent with hashicorp/raft:
// it hosts the pure state machine of package crisis (the FSM), bootstraps
// the cluster from the genesis, carries proposals written into the crisis
// log to the Raft quorum, and writes checkpoints back into the log.
//
// It uses only Raft's interfaces: the raft.Transport (over libp2p streams
// in production, built by package node with transport's stream layer;
// raft.InmemTransport in tests) and the store's badger-backed LogStore and
// StableStore are handed in. Raft gets them behind a gate: hashicorp/raft
// v1.8.0 handles heartbeats on the transport's goroutines, beside its main
// goroutine, and two leaders' heartbeats arriving together could set a
// node's term back; the gate lets only heartbeats of the node's own term
// take that fast path and sends the others to the main goroutine (see
// heartbeatGate).
//
// # Determinism
//
// Every node must apply the same commands to the same state with the same
// roster. The roster the FSM checks commands against is therefore part of
// the Raft state: the leader carries roster updates from the crisis log
// into Raft (entry type roster), and the FSM applies them in Raft order.
// Time comes from the Raft log entry, never from a local clock: the
// leader's engine stamps its clock (Config.Now) into every entry it
// submits (entries of earlier versions carry only hashicorp/raft's
// AppendedAt, the leader's process clock, which is used for them).
//
// # Clocks
//
// Clocks may be wrong; what a skewed clock can and cannot do:
//
//   - Order is by Raft index for the crisis state and by Lamport clock for
//     the crisis log: no clock changes either.
//   - The committed time of a command (decisions, Reserve request times
//     and their 24-hour deadlines, the state's Updated) is the time the
//     leader stamped, but never earlier than the last committed time: the
//     FSM applies max(stamp, state.Updated), so committed time never goes
//     backwards, also when a leader whose clock is behind takes over.
//     Every node computes it from the same entry and state, so all agree.
//     A Reserve deadline is always 24 h after its request's committed
//     time.
//   - A leader whose clock is ahead moves committed time ahead by its
//     skew, and later leaders with correct clocks stamp that time until
//     their clocks catch up: committed time stands still meanwhile (and
//     deadlines come out later than they should by at most the skew). The
//     leader logs a warning when its clock is behind the committed time.
//   - Author times in log entries (posts, keys, roster updates,
//     checkpoints) are the author's clock: informative only.
//   - How old a view is: measured on the monotonic clock for Raft
//     contact; for a checkpoint it is this node's clock minus the
//     author's, so skew between the two shows up in the age.
//   - Timeouts, elections and checkpoint coalescing use the monotonic
//     clock and are not affected by Config.Now.
//
// # Proposals
//
// A command is signed by the member who asks. The leader applies it
// directly. Any other node writes it into the crisis log as a proposal
// entry; sync carries it, and whichever node is leader when it sees the
// proposal submits it to Raft. Duplicates (the same proposal seen by two
// leaders) are refused by the FSM by command ID. A proposal is provisional
// until its outcome (committed at term/index, or refused by a named rule)
// is known.
//
// # Checkpoints
//
// After a committed change the leader writes a signed checkpoint entry
// (state, term, index, recent outcomes) into the crisis log, coalesced to
// at most one per second, so a node that cannot reach any voter still
// learns the latest committed state through store-and-forward.
//
// # Reads
//
// Linearizable reads confirm leadership with a quorum first. Local reads
// return the newest state this node knows, from Raft or from a checkpoint,
// with its index and the age of the last contact with a leader: a stale
// view is never presented as current.
//
// # Trust
//
// Voters are trusted to take snapshots honestly: a snapshot installed from
// the leader replaces the state without replaying commands. Commands
// themselves are re-checked (signature, signer, role) by every node.
package consensus
