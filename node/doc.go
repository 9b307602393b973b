// Package node is one crisismesh participant: its data directory, its
// identity and network files, and (as the project grows) the wiring of the
// log, sync, consensus and transport, the local API and the dashboard. It
// owns every goroutine it starts.
//
// Only cmd/crisismesh and sim may import node. It may import replication/*,
// transport and crypto, never the other way round.
//
// Today it holds what a person does before any node runs: make an identity
// ([Keygen]) and found a network ([CreateNetwork]).
package node
