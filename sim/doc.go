// Package sim runs crisismesh networks through scheduled faults and checks
// the invariants the network promises. It is what `crisismesh sim run`
// executes, in CI and as a drill before an exercise.
//
// # Two layers
//
// The network layer (the default) runs many real nodes in one process:
// real libp2p on 127.0.0.1 with post-quantum TLS and the roster gate, real
// Raft, real badger in temporary directories, real crypto, each node opened
// by node.Open as `crisismesh run` opens it. Faults go through one shared
// transport.Faults: partitions, one-way cuts, emulated links (latency,
// bandwidth, loss, outages), plus the node's own clock and disk hooks.
//
// The Raft layer (layer = "raft") runs only the consensus members of the
// crisis state over Raft's in-memory transport, for scenarios about
// consensus alone. Under `go test` it runs inside testing/synctest, in
// virtual time: a minute of elections and faults takes a second. From the
// command line it runs in real time.
//
// # Scenarios
//
// A scenario is a TOML file: the network (nodes, voters, seed, layer, the
// bound on convergence) and a list of steps, run in order. Steps post
// entries (at once or at a rate, in the clear or sealed to some members),
// issue crisis commands, start background workloads (clients changing and
// linearizably reading the crisis state through random nodes), and inject
// faults: partitions, isolating the leader while it still takes traffic,
// one-way cuts, a majority ring, a bridge, flapping and swizzling, emulated
// satellite, narrow and internet links, link outages (70 s and more),
// pauses, crashes without drain and restarts from the same directory, clock
// skew, full disks, a member that equivocates or forges, an admin revoking
// a member (and so changing the Raft configuration) during faults, and a
// hostile member's attacks (attack.go): a voter's forged checkpoint, a
// Lamport clock bomb, TLP:RED sealed to everyone, a substituted group key.
// See the Do constants and sim/scenarios/, one file per fault family.
//
// A seed fixes every random choice of the schedule (which node posts,
// random halves, swizzle orders, workload choices, link losses); every
// run prints the command that replays it. Real sockets and goroutine
// scheduling are not replayed: a replay follows the same plan.
//
// # Checkers
//
// After "check" steps and at the end (after healing everything, freeing
// disks and restarting what is down): identical logs within the stated
// bound; no acknowledged entry lost; every author's chain intact; forks
// detected, not merged; nothing forged accepted; nothing written after a
// revocation accepted; every member reads exactly what its keys allow; one
// Raft leader per term (observed from Raft's own goroutine); Raft terms,
// feed seqs and Lamport clocks never going backwards, across restarts too;
// the Raft configuration following the roster; the same committed crisis
// state on every node; no node showing a state beyond what Raft applied;
// no honest clock built on a bomb; nothing shown that must not be
// believed; the workload's history linearizable (porcupine).
// Each checker has a test that injects the bug it guards against.
//
// # Reports
//
// A Report (text or JSON) names every verdict with its step, and the first
// broken invariant. With Options.Report, a run leaves plots there (entries
// per node over time with the faults shaded, leader and term over time,
// bytes per link: the Raft layer has no links and shades the time any link
// is cut), its timeline and its report; a failing run of the network layer
// always keeps its evidence (node logs, porcupine's HTML) and names where;
// the Raft layer writes porcupine's HTML to Options.Dir (default: the
// temporary directory) and names it in the failed check.
//
// sim imports node, transport, replication/* and crypto; only cmd imports
// sim.
package sim
