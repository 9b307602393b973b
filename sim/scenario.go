package sim

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// A Scenario is a network and a schedule. Field names are the file's keys.
type Scenario struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	Nodes       int    `toml:"nodes"`  // default 5
	Voters      int    `toml:"voters"` // default 3
	Seed        uint64 `toml:"seed"`   // default: drawn, printed
	// Layer is "network" (the default: real libp2p, badger, crypto) or
	// "raft": only the Raft members of the crisis state, over Raft's
	// in-memory transport, for scenarios about consensus alone (under
	// tests they run in virtual time, inside testing/synctest).
	Layer string `toml:"layer"`
	// ConvergeWithin bounds the wait for identical logs after the final
	// heal. Default 60 s.
	ConvergeWithin Duration `toml:"converge_within"`
	// NarrowInterval is the nodes' narrow-link window T ([narrow]
	// interval in config.toml; default 120 s): over satellite links a
	// member's own entries wait for their composite signature at most
	// about that long, so a scenario's converge bound must exceed it.
	NarrowInterval Duration `toml:"narrow_interval"`
	Steps          []Step   `toml:"step"`
}

// A Step is one action of the schedule, run in order.
type Step struct {
	Do string `toml:"do"` // see the Do constants
	// Nodes the step acts on (indexes); Groups for a partition, and for
	// a converge that waits for each group (a partition's side) to hold
	// one log of its own.
	Nodes  []int   `toml:"nodes"`
	Groups [][]int `toml:"groups"`
	// Count, Priority, TLP and Text for posts (by default: a sitrep at
	// TLP:GREEN, routine, its text naming node, step and number; Kind
	// names another entry kind; "{n}" in Text is the entry's number, 1 to
	// Count); Kind and its fields for commands.
	Count    int      `toml:"count"`
	Priority string   `toml:"priority"`
	TLP      string   `toml:"tlp"`
	Text     string   `toml:"text"`
	Kind     string   `toml:"kind"`
	Level    int      `toml:"level"`
	Mode     string   `toml:"mode"`
	Title    string   `toml:"title"`
	Phase    string   `toml:"phase"`
	Add      []string `toml:"add"`      // affected member states to add
	Sector   string   `toml:"sector"`   // of a Reserve request
	Services []string `toml:"services"` // of a Reserve request
	// For for waits, pauses, outages and workloads; Every for the pace of
	// flapping and swizzling; Link for link emulation ("satellite",
	// "narrow", "internet", or "custom").
	For   Duration `toml:"for"`
	Every Duration `toml:"every"`
	Link  string   `toml:"link"`
	// Latency (one way), Bandwidth (bits per second) and Loss (the share
	// of 16 KiB segments retransmitted) describe a link = "custom".
	Latency   Duration `toml:"latency"`
	Bandwidth int64    `toml:"bandwidth"`
	Loss      float64  `toml:"loss"`
	// Skew shifts the clock of Nodes ("-4m", "90s").
	Skew Duration `toml:"skew"`
	// Clients is how many concurrent clients a workload runs (default 3).
	Clients int `toml:"clients"`
	// Expect "refused" when a command step is meant to be refused (any
	// other refusal stops the run: it is a mistake in the scenario), or
	// "pending" when its node is cut off from the leader: the step does
	// not wait for the outcome, and convergence (a converge step, the end)
	// includes its being decided.
	Expect string `toml:"expect"`
	// To seals posts to these nodes' members only (TLP:RED): the others
	// must hold the entries and not be able to read them.
	To []int `toml:"to"`
	// Group names a named need-to-know group: the group a "group" step
	// sets, or the group a post is sealed to (its members read it, the
	// others hold it unread).
	Group string `toml:"group"`
	// Say narrates the step: printed instead of its description.
	Say string `toml:"say"`
}

// request is the command a command step issues.
func (st Step) request() node.CommandRequest {
	return node.CommandRequest{Kind: st.Kind, Level: st.Level, Mode: st.Mode, Title: st.Title, Phase: st.Phase,
		Add: st.Add, Sector: st.Sector, Services: st.Services}
}

// The actions.
const (
	// DoPost: Nodes each post Count entries (default 1) at Priority,
	// sealed To some members only when To is set; with Every, they post
	// in the background, Every apart, for For (or to the end).
	DoPost      = "post"
	DoCommand   = "command"   // Nodes[0] issues a crisis command
	DoPartition = "partition" // cut between Groups (all pairs across groups)
	DoIsolate   = "isolate"   // cut Nodes from everyone else ("leader" in Nodes: -1)
	DoHeal      = "heal"      // remove every cut (emulated links stay)
	DoLink      = "link"      // emulate Link between every pair of Nodes
	DoCrash     = "crash"     // close Nodes without drain
	DoRestart   = "restart"   // reopen Nodes from their directories
	DoWait      = "wait"      // let time pass: For
	DoConverge  = "converge"  // wait until all running nodes (of each of Groups, if given) hold the same log
	DoCheck     = "check"     // run the checkers now
	// DoShow prints what Nodes (default: all) hold now: their log digest
	// and the crisis state they show (to narrate a run).
	DoShow = "show"
	// DoEquivocate: Nodes[0]'s key signs a second entry at its next seq,
	// handed to Nodes[1] (as if the key were used on another machine),
	// while Nodes[0] posts its own: a fork every node must detect.
	DoEquivocate = "equivocate"
	// DoForge: entries no node may accept are offered to every node: one
	// claiming to be Nodes[0]'s but signed by another key, two that
	// Nodes[0]'s key signs but that are malformed (not chaining onto its
	// feed; for another network), and one an Ed25519-only forger makes in
	// Nodes[0]'s name at its next seq (a provisional signature only: held
	// waiting at most, and it must freeze no feed).
	DoForge = "forge"
	// DoRevoke: Nodes[0] (an admin) revokes Nodes[1], keeping its feed up
	// to the head the admin holds; entries it writes later must be refused
	// everywhere.
	DoRevoke = "revoke"
	// DoVoters: Nodes[0] (an admin) makes Nodes[1:] the Raft voters, in
	// one roster update (an odd number); Raft's configuration must follow.
	DoVoters = "voters"
	// DoGroup: Nodes[0] (an admin) sets the members of group Group to
	// Nodes[1:] (creating it); posts with Group are then readable by its
	// members only, and a change of the group starts a new key epoch.
	DoGroup = "group"
	// DoForgeCheckpoint: Nodes[0], a voter turned hostile, writes a
	// checkpoint claiming the crisis closed at index 2^62, with its own
	// vote: no node may show it (a lone voter certifies nothing).
	DoForgeCheckpoint = "forge-checkpoint"
	// DoLamportBomb: Nodes[0] writes an entry at the top of the Lamport
	// clock: honest members must keep writing, their clocks not dragged.
	DoLamportBomb = "lamport-bomb"
	// DoRedToAll: Nodes[0] writes a TLP:RED entry sealed to the whole
	// network: stored and relayed, never shown.
	DoRedToAll = "red-to-all"
	// DoSubstituteKey: Nodes[0] issues a newer key for the recipient group
	// of Nodes[1:], sealed to them and to itself: nobody may take it, so
	// Nodes[0] cannot read what they post to each other at TLP:RED.
	DoSubstituteKey = "substitute-key"

	// DoOneWay: Nodes = [from, to]: data from "from" stops reaching "to";
	// the other direction flows. Connections stay open.
	DoOneWay = "one-way"
	// DoRing: a majority ring (at least 4 nodes): each node keeps links
	// only to its nearest neighbours in index order, so every node reaches
	// a majority, none reaches all, and no two reach the same set.
	DoRing = "ring"
	// DoBridge: Nodes = [bridge]: the other nodes split in two halves
	// (as even as possible, in index order) that only the bridge reaches.
	DoBridge = "bridge"
	// DoSwizzle: cut every link one by one in a random order, Every apart
	// (default 500 ms), then restore them one by one in another random
	// order; it ends healed.
	DoSwizzle = "swizzle"
	// DoFlap: for For, every Every (default 1 s), cut the network in two
	// random halves or heal it, alternately; it ends healed.
	DoFlap = "flap"
	// DoOutage: the links between Nodes[0] and Nodes[1:] (every other
	// node when alone) go silent for For, connections open, then resume.
	DoOutage = "outage"
	// DoPause: Nodes stop answering for For (every link silent, as peers
	// see a paused process), then resume.
	DoPause = "pause"
	// DoSkew: Nodes' clocks move by Skew from now on.
	DoSkew = "skew"
	// DoDiskFull: Nodes' disks report no free space; DoDiskFree ends it.
	DoDiskFull = "disk-full"
	DoDiskFree = "disk-free"
	// DoWorkload: Clients concurrent clients issue crisis commands and
	// linearizable reads on random running nodes, in the background, for
	// For (default: until the end of the schedule); the history is checked
	// with porcupine at the end.
	DoWorkload = "workload"
)

// postKinds are the entry kinds a post step may write.
var postKinds = []string{"incident", "sitrep", "request", "decision", "message", "ack"}

// Layers.
const (
	LayerNetwork = "network"
	LayerRaft    = "raft"
)

// Duration is a time.Duration written as "2s", "500ms".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// Load reads a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(string(b))
}

// Parse reads a scenario and checks it, reporting every problem at once.
func Parse(text string) (*Scenario, error) {
	var s Scenario
	md, err := toml.Decode(text, &s)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("scenario: unknown keys %v", und)
	}
	if s.Nodes == 0 {
		s.Nodes = 5
	}
	if s.Voters == 0 {
		s.Voters = min(3, s.Nodes)
		if s.Voters%2 == 0 {
			s.Voters--
		}
	}
	if s.ConvergeWithin.Duration == 0 {
		s.ConvergeWithin.Duration = 60 * time.Second
	}
	var problems []string
	if s.Nodes < 1 || s.Nodes > 64 {
		problems = append(problems, fmt.Sprintf("nodes = %d: want 1 to 64", s.Nodes))
	}
	if s.Voters%2 == 0 || s.Voters > s.Nodes {
		problems = append(problems, fmt.Sprintf("voters = %d: want an odd number up to nodes", s.Voters))
	}
	if d := s.NarrowInterval.Duration; d < 0 || d >= s.ConvergeWithin.Duration {
		problems = append(problems, fmt.Sprintf("narrow_interval = %v: want more than 0 and less than converge_within (%v): entries wait for their composite up to that long", d, s.ConvergeWithin.Duration))
	}
	if s.Layer == "" {
		s.Layer = LayerNetwork
	}
	valid := map[string]bool{DoPost: true, DoCommand: true, DoPartition: true, DoIsolate: true, DoHeal: true, DoLink: true,
		DoCrash: true, DoRestart: true, DoWait: true, DoConverge: true, DoCheck: true, DoEquivocate: true, DoForge: true, DoRevoke: true,
		DoVoters: true, DoGroup: true, DoOneWay: true, DoRing: true, DoBridge: true, DoSwizzle: true, DoFlap: true, DoOutage: true, DoPause: true,
		DoSkew: true, DoDiskFull: true, DoDiskFree: true, DoWorkload: true,
		DoForgeCheckpoint: true, DoLamportBomb: true, DoRedToAll: true, DoSubstituteKey: true, DoShow: true}
	switch s.Layer {
	case LayerNetwork:
	case LayerRaft:
		// The Raft layer has no log, links, disks or clocks of its own.
		raftOnly := map[string]bool{DoCommand: true, DoPartition: true, DoIsolate: true, DoHeal: true, DoCrash: true,
			DoRestart: true, DoWait: true, DoCheck: true, DoOneWay: true, DoRing: true, DoBridge: true, DoSwizzle: true,
			DoFlap: true, DoWorkload: true}
		for i, st := range s.Steps {
			if valid[st.Do] && !raftOnly[st.Do] {
				problems = append(problems, fmt.Sprintf("step %d: %s needs layer = \"network\"", i+1, st.Do))
			}
		}
	default:
		problems = append(problems, fmt.Sprintf("layer = %q: want \"network\" or \"raft\"", s.Layer))
	}
	for i, st := range s.Steps {
		if !valid[st.Do] {
			problems = append(problems, fmt.Sprintf("step %d: unknown action %q", i+1, st.Do))
		}
		for _, n := range append(append([]int(nil), st.Nodes...), st.To...) {
			if n < -1 || n >= s.Nodes {
				problems = append(problems, fmt.Sprintf("step %d: node %d out of range", i+1, n))
			}
		}
		if (st.Do == DoForgeCheckpoint || st.Do == DoLamportBomb || st.Do == DoRedToAll) && len(st.Nodes) != 1 {
			problems = append(problems, fmt.Sprintf("step %d: %s needs nodes = [attacker]", i+1, st.Do))
		}
		if st.Do == DoSubstituteKey && len(st.Nodes) < 3 {
			problems = append(problems, fmt.Sprintf("step %d: %s needs nodes = [attacker, member, member, …]", i+1, st.Do))
		}
		if ((st.Do == DoEquivocate || st.Do == DoRevoke) && len(st.Nodes) != 2) || (st.Do == DoForge && len(st.Nodes) != 1) {
			problems = append(problems, fmt.Sprintf("step %d: %s needs nodes = [author, witness] (equivocate), [admin, member] (revoke) or [author] (forge)", i+1, st.Do))
		}
		if (st.Do == DoVoters || st.Do == DoGroup) && len(st.Nodes) < 2 {
			problems = append(problems, fmt.Sprintf("step %d: %s needs nodes = [admin, member, …]", i+1, st.Do))
		}
		if st.Do == DoVoters && len(st.Nodes)%2 == 1 {
			problems = append(problems, fmt.Sprintf("step %d: voters sets %d voters: want an odd number", i+1, len(st.Nodes)-1))
		}
		if st.Do == DoGroup && st.Group == "" {
			problems = append(problems, fmt.Sprintf("step %d: group needs group = \"NAME\"", i+1))
		}
		if st.Do == DoPost && st.Group != "" && len(st.To) > 0 {
			problems = append(problems, fmt.Sprintf("step %d: a post goes to a group or to members (to), not both", i+1))
		}
		if st.Do == DoCommand && !slices.Contains(crisis.Kinds(), crisis.Kind(st.Kind)) {
			problems = append(problems, fmt.Sprintf("step %d: command kind %q: want one of %v", i+1, st.Kind, crisis.Kinds()))
		}
		if st.Expect != "" && st.Expect != "refused" && st.Expect != "pending" {
			problems = append(problems, fmt.Sprintf("step %d: expect = %q: only \"refused\" or \"pending\" can be expected", i+1, st.Expect))
		}
		if st.Do == DoPost && st.Kind != "" && !slices.Contains(postKinds, st.Kind) {
			problems = append(problems, fmt.Sprintf("step %d: post kind %q: want one of %v", i+1, st.Kind, postKinds))
		}
		if st.Do == DoPost && len(st.To) > 0 && st.TLP != "" && st.TLP != "red" {
			problems = append(problems, fmt.Sprintf("step %d: a post sealed to some members (to) is TLP:RED, not %q", i+1, st.TLP))
		}
		if st.Do == DoOneWay && len(st.Nodes) != 2 {
			problems = append(problems, fmt.Sprintf("step %d: one-way needs nodes = [from, to]", i+1))
		}
		if st.Do == DoBridge && len(st.Nodes) != 1 {
			problems = append(problems, fmt.Sprintf("step %d: bridge needs nodes = [bridge]", i+1))
		}
		if st.Do == DoBridge && s.Nodes < 3 {
			problems = append(problems, fmt.Sprintf("step %d: bridge needs at least 3 nodes", i+1))
		}
		if st.Do == DoRing && s.Nodes < ringMin {
			problems = append(problems, fmt.Sprintf("step %d: ring needs at least %d nodes (among 3, no ring gives each node a majority without one reaching all)", i+1, ringMin))
		}
		if (st.Do == DoOutage || st.Do == DoPause || st.Do == DoFlap) && st.For.Duration <= 0 {
			problems = append(problems, fmt.Sprintf("step %d: %s needs for = \"…\" (how long)", i+1, st.Do))
		}
		if (st.Do == DoOutage || st.Do == DoPause || st.Do == DoSkew || st.Do == DoDiskFull || st.Do == DoDiskFree) && len(st.Nodes) == 0 {
			problems = append(problems, fmt.Sprintf("step %d: %s needs nodes", i+1, st.Do))
		}
		if st.Do == DoSkew && st.Skew.Duration == 0 {
			problems = append(problems, fmt.Sprintf("step %d: skew needs skew = \"…\" (e.g. \"-4m\")", i+1))
		}
		if st.Do == DoLink && st.Link != "satellite" && st.Link != "narrow" && st.Link != "internet" && st.Link != "custom" {
			problems = append(problems, fmt.Sprintf("step %d: link %q: want satellite, narrow, internet or custom (with latency, bandwidth, loss)", i+1, st.Link))
		}
		if (st.Latency.Duration != 0 || st.Bandwidth != 0 || st.Loss != 0) && st.Link != "custom" {
			problems = append(problems, fmt.Sprintf("step %d: latency, bandwidth and loss go with link = \"custom\"", i+1))
		}
		if st.Latency.Duration < 0 || st.Bandwidth < 0 || st.Loss < 0 || st.Loss >= 1 {
			problems = append(problems, fmt.Sprintf("step %d: latency and bandwidth must not be negative, loss must be in [0, 1)", i+1))
		}
		if st.Do == DoPartition && len(st.Groups) < 2 {
			problems = append(problems, fmt.Sprintf("step %d: a partition needs at least two groups", i+1))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, errors.New(strings.Join(problems, "; ")))
	}
	return &s, nil
}
