// Package sim runs crisismesh networks through scheduled faults and checks
// the invariants the network promises. It is what `crisismesh sim run`
// executes, in CI and as a drill before an exercise.
//
// # One engine, two layers
//
// One engine (engine.go) interprets every scenario: it draws every random
// choice of the schedule from the seed, lays out the faults (which links
// are cut: geometry.go), resolves "the leader", crashes and restarts
// nodes, issues crisis commands and checks their outcome against the
// step's expectation, runs workloads and checks their history, keeps the
// timeline's fault spans, and ends every run the same way (stop the
// background, heal, restart what is down, check). It plays the schedule
// on a layer through a small interface (cuts, crash, restart, leader,
// command, the workloads' target, the layer's own checkers and steps).
//
// The network layer (the default, netlayer.go) runs many real nodes in
// one process: real libp2p on 127.0.0.1 with post-quantum TLS and the
// roster gate, real Raft, real badger in temporary directories, real
// crypto, each node opened by node.Open as `crisismesh run` opens it.
// Faults go through one shared transport.Faults: partitions, one-way
// cuts, emulated links (latency, bandwidth, loss, outages), plus the
// node's own clock and disk hooks.
//
// The Raft layer (layer = "raft", raftlayer.go) runs only the consensus
// members of the crisis state over Raft's in-memory transport, for
// scenarios about consensus alone. Under `go test` it runs inside
// testing/synctest, in virtual time: a minute of elections and faults
// takes a second. From the command line it runs in real time.
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
// a member (and so changing the Raft configuration) during faults, an
// admin changing the voters or a need-to-know group while the network is
// cut (posts to the group are checked to be read by its members only),
// and a
// hostile member's attacks (attack.go): a voter's forged checkpoint, a
// Lamport clock bomb, TLP:RED sealed to everyone, a substituted group key.
// See the Do constants and sim/scenarios/, one file per fault family (and
// 7-node variants of the ring, the bridge and flapping).
//
// # Fault geometry
//
// Both layers cut the same links for the same step (a cut is directed:
// what a sends no longer reaches b; most faults cut both directions):
//   - partition: every pair across the groups, added to the cuts in force;
//     isolate: each node named from every other; one-way: [from, to].
//   - ring (at least 4 nodes; among 3, no symmetric ring gives every node a
//     majority without one reaching all): the nodes in index order, each
//     keeping the ⌈⌊n/2⌋/2⌉ nearest on either side. Every node reaches a
//     majority counting itself, none reaches all, no two the same set:
//     5 nodes keep 1 per side (3 of 5), 7 keep 2 (5 of 7), 50 keep 13
//     (27 of 50).
//   - bridge: the other nodes, in index order, in two sides as even as
//     possible (the first ⌊(n-1)/2⌋, then the rest); only the bridge
//     reaches both.
//   - flap: every Every (default 1 s) for For, alternately two halves drawn
//     from the seed (a permutation: its first ⌊n/2⌋ nodes against the
//     rest) and healed; it ends healed.
//   - swizzle: every link cut one by one in an order drawn from the seed,
//     Every apart (default 500 ms), then restored in another; it ends
//     healed.
//
// Ring, bridge and flap lay out the whole network (they replace the cuts
// in force); heal removes every cut (emulated links, stalls, skews and full
// disks are not cuts).
//
// # The demo
//
// `crisismesh demo` is the scenario scenarios/demo.toml (embedded),
// narrated (a step's "say" replaces its description; "show" prints what
// nodes hold) and checked as any scenario, followed by the timeline and
// the proof of convergence (Demo).
//
// A seed fixes every random choice of the schedule (which node posts,
// random halves, swizzle orders, workload choices, link losses); every
// run prints the command that replays it. Real sockets and goroutine
// scheduling are not replayed: a replay follows the same plan.
//
// # Campaigns
//
// `crisismesh sim run --seeds N` replays scenarios with new seeds. Under
// `go test`, TestCampaign (run by .ci/run with -campaign set to the
// commit) plays every Raft-layer scenario in virtual time and the quick
// network-layer ones in real time, with seeds derived from the commit,
// until its budget is spent; it prints every failure with its replay
// lines and does not gate CI. TestRegressions replays the seeds listed in
// scenarios/regressions.txt (FILE SEED  # why) and does.
//
// # Checkers
//
// After "check" steps and at the end (after healing everything, freeing
// disks and restarting what is down): identical logs within the stated
// bound; no acknowledged entry lost; every author's chain intact; forks
// detected, not merged; nothing forged accepted (an Ed25519-only forgery
// included) and no feed frozen by one; nothing written after a
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
// bytes per link: the Raft layer has no link traffic), its timeline and
// its report; a failing run of the network layer always keeps its
// evidence (node logs, porcupine's HTML) and names where; the Raft layer
// writes porcupine's HTML to Options.Dir (default: the temporary
// directory) and names it in the failed check.
//
// sim imports node, transport, replication/* and crypto; only cmd imports
// sim.
package sim
