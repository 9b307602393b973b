// Package sim runs many real crisismesh nodes in one process (real libp2p on
// 127.0.0.1, real Raft, real badger in temporary directories, real crypto)
// through a scenario: a file that declares the network and a schedule of
// workloads and faults. After the schedule, and at every "check" step, the
// checkers verify the invariants the network promises: no acknowledged
// entry lost, every author's chain intact, identical logs after heal, one
// Raft leader per term, the same committed crisis state everywhere.
//
// A seed fixes every random choice of the scenario (which node posts, the
// fault injector's losses); every run prints the command that replays it.
//
// Scenarios are TOML (the format of the node's own config): see
// sim/scenarios/ for one file per fault family.
//
// sim imports node, transport, replication/* and crypto; only cmd imports
// sim.
package sim
