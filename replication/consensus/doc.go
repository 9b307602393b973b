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
// is known. Before proposing, [Engine.Precheck] refuses at once what the
// leader would refuse in any state (crisis.Check); what depends on the
// state the leader decides, since a follower's view lags its commits and
// a refusal from it would not be linearizable.
// [Engine.Refusals] reads the refused commands back from the Raft log, so
// a history can say who was refused.
//
// # Checkpoints
//
// After a committed change the leader writes a checkpoint entry (state,
// term, index, roster version, recent outcomes) into the crisis log,
// coalesced to at most one per second, so a node that cannot reach any
// voter still learns the latest committed state through store-and-forward.
// A checkpoint is believed only when a majority of the voters in force at
// its index stands behind it (a quorum certificate):
//
//   - A vote is a composite signature (context crypto.ContextCheckpoint)
//     over the statement (network, term, index, roster version, digest);
//     the digest hashes the state, the recent outcomes, the hash of the
//     older outcomes and the hash of the roster updates applied: all that
//     decides what the state machine does next.
//   - The leader's checkpoint carries its own vote. Every other voter that
//     sees it and has applied that index itself with the same term, roster
//     version and digest writes a vote entry (a checkpoint without the
//     state), once per index and only forwards. A voter never signs a
//     state it has not computed itself. Only the votes a majority needs
//     are written at once (by rank in member-ID order); the other voters
//     hold theirs back and vote only if the state is still uncertified
//     two checkpoint intervals later.
//   - Every node gathers the votes of the log per claimed state and
//     believes the state once the votes of a majority of the voters of the
//     roster version it names are in, who are also a majority of the
//     voters of the roster the node holds now (an old version with fewer
//     voters cannot be named to make one vote a majority). Votes of non-voters, of members
//     revoked or rotated since, repeated votes and signatures over another
//     statement do not count. A node that does not hold the roster version
//     a checkpoint names yet waits for it.
//   - A checkpoint and every vote also carry the Raft entries their
//     writer's state machine applied since its snapshot base (the newest
//     certified checkpoint it verified) up to the index: every committed
//     command with its member's signature, every roster update carried
//     into Raft (the newest 512 KiB of them). Raft compacts its log; so
//     the crisis log keeps every decision, and an after-action archive
//     replays them from the genesis against the certified digests
//     (offline.go: ParseClaim, Replayer; package replication/archive).
//     The tail is not part of the digest (two voters' bases may differ)
//     and needs no trust: a tail that does not replay to the certified
//     state is ignored there.
//   - A certified state replaces the shown state only when its index is
//     higher than both this node's own state machine and the certified
//     state it holds: a stale but genuine certificate never rolls a node
//     back. A lone voter, hostile or not, certifies nothing.
//
// # Reads
//
// Linearizable reads confirm leadership with a quorum first. Local reads
// return the newest state this node knows, from Raft or from a checkpoint,
// with its index and the age of the last contact with a leader: a stale
// view is never presented as current.
//
// # Snapshots
//
// A snapshot carries the newest quorum certificate the state machine
// verified against its own history (or none: the genesis at index 0) and
// every Raft entry applied after it. Whoever restores a snapshot from a
// leader checks the certificate, re-applies the entries (each command's
// signature and role checked again) and installs the result only if it is
// the state the snapshot claims; otherwise Restore fails naming the rule
// (ErrSnapshotRefused: snapshot-certificate, snapshot-tail,
// snapshot-mismatch, snapshot-uncertified) and Raft keeps the node where
// it was. The entries since the last certificate are kept in memory:
// certificates come about a second after each change, so they are few.
// A snapshot of an earlier version (the state alone) is read only from
// this node's own disk at start.
//
// # Duties
//
// One goroutine of the engine reads proposals and checkpoints from the
// crisis log and does the duties: forget decided proposals, vote, move
// the snapshot base to the newest certificate, and as leader carry roster
// updates into Raft, keep Raft's membership in line with the roster,
// submit pending proposals (once per term) and write checkpoints. What to
// do is decided by a pure step (state and the monotonic time in, actions
// out: leader.go); the goroutine gathers its input and carries out its
// actions. A node the roster demotes or removes keeps running Raft as a
// follower (a demoted leader steps down and goes on receiving the log as
// a non-voter; Raft is not shut down on removal).
//
// # Trust
//
// One voter, even the leader, cannot make another node show a state that
// a quorum did not commit through the crisis log or a snapshot:
// checkpoints need a majority's votes, snapshots are re-derived, and a
// linearizable read returns the state machine's own state, never a
// checkpoint. Commands themselves are re-checked (signature, signer,
// role) by every node. What one hostile leader can still do is what Raft
// lets any leader do: choose the order of genuine signed commands, delay
// or drop proposals, force elections, and (Raft tolerating crashes, not
// lies) pose as leader to a follower with a somewhat higher term and have
// it apply a command no quorum committed. The certificates expose that:
// the honest majority certifies another state at that index, and the
// follower reports that it diverged (View.Diverged, an error in the log)
// and shows the certified state instead of its own. It cannot exhaust the
// Raft term (termguard.go).
package consensus
