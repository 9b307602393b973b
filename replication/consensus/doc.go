// Package consensus keeps the crisis state consistent with hashicorp/raft:
// it hosts the pure state machine of package crisis (the FSM), bootstraps
// the cluster from the genesis, carries proposals written into the crisis
// log to the Raft quorum, and writes checkpoints back into the log.
//
// It uses only Raft's interfaces: the raft.Transport (over libp2p streams
// in production, built by package node with transport's stream layer;
// raft.InmemTransport in tests) and the store's badger-backed LogStore and
// StableStore are handed in.
//
// # Determinism
//
// Every node must apply the same commands to the same state with the same
// roster. The roster the FSM checks commands against is therefore part of
// the Raft state: the leader carries roster updates from the crisis log
// into Raft (entry type roster), and the FSM applies them in Raft order.
// Time comes from the Raft log entry (AppendedAt, set by the leader), never
// from a local clock.
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
