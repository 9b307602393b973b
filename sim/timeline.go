package sim

import "time"

// A Timeline is what a run saw over time: the source of the report's
// plots. Times are offsets from the start of the schedule.
type Timeline struct {
	Nodes   []string  `json:"nodes"`   // node names, by index
	Samples []Sample  `json:"samples"` // in time order, a few per second
	Faults  []Span    `json:"faults"`  // when faults were in force
	Links   []LinkUse `json:"links"`   // bytes carried per pair of nodes, at the end
}

// A Sample is the state of every node at one instant.
type Sample struct {
	At time.Duration `json:"at_ns"`
	// Entries known by each node (by index); -1 while the node is down.
	Entries []int `json:"entries"`
	// Leader is the index of the node that leads (-1: none known); Term
	// the newest Raft term a running node is in.
	Leader int    `json:"leader"`
	Term   uint64 `json:"term"`
}

// A Span is an interval during which a fault was in force ("partition
// [[0 1] [2 3 4]]", "node3 crashed"). To is zero while it lasts (at the
// end of a run every span is closed).
type Span struct {
	From  time.Duration `json:"from_ns"`
	To    time.Duration `json:"to_ns"`
	Label string        `json:"label"`
}

// LinkUse is the traffic between two nodes (by index), both directions,
// as their sync services counted it.
type LinkUse struct {
	A     int    `json:"a"`
	B     int    `json:"b"`
	Bytes uint64 `json:"bytes"`
}
