package sim

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"os"
	"strings"
	gosync "sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/transport"
)

// Options tune a run.
type Options struct {
	Out  io.Writer // progress, one line per step; nil: none
	Dir  string    // where the data directories go; "": a temporary one, removed after
	Seed uint64    // overrides the scenario's seed when not zero
}

// A Run is one execution of a scenario.
type Run struct {
	sc     *Scenario
	seed   uint64
	rng    *rand.Rand
	out    io.Writer
	dir    string
	specs  []node.TestnetNode
	nodes  []*node.Node // nil while crashed
	faults *transport.Faults
	start  time.Time

	mu       gosync.Mutex
	acked    []ackedEntry
	forkers  []crypto.MemberID // authors made to equivocate
	forged   []log.Hash        // entries that must never be accepted
	revoked  []crypto.MemberID // members revoked by the schedule
	leaders  map[uint64]string // term → leader, as observed
	conflict string
	outcomes []string
}

type ackedEntry struct {
	id     log.Hash
	author crypto.MemberID
	seq    uint64
	node   int
	step   int
}

// Report is what a run found.
type Report struct {
	Scenario string        `json:"scenario"`
	Seed     uint64        `json:"seed"`
	Replay   string        `json:"replay"`
	Nodes    int           `json:"nodes"`
	Steps    int           `json:"steps"`
	Acked    int           `json:"acknowledged_entries"`
	Duration time.Duration `json:"duration_ns"`
	Checks   []Check       `json:"checks"`
	OK       bool          `json:"ok"`
	Commands []string      `json:"commands,omitempty"`
}

// A Check is one invariant's verdict.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Step   int    `json:"step"`
}

// Execute runs the scenario and returns its report; an error means the
// run could not be carried out (not that an invariant failed: see
// Report.OK).
func Execute(ctx context.Context, sc *Scenario, file string, o Options) (*Report, error) {
	r := &Run{sc: sc, seed: sc.Seed, out: o.Out, leaders: map[uint64]string{}, start: time.Now()}
	if o.Seed != 0 {
		r.seed = o.Seed
	}
	if r.seed == 0 {
		var b [8]byte
		cryptorand.Read(b[:])
		r.seed = binary.BigEndian.Uint64(b[:]) >> 1
	}
	if r.out == nil {
		r.out = io.Discard
	}
	r.rng = rand.New(rand.NewPCG(r.seed, 0x5eed))
	rep := &Report{Scenario: sc.Name, Seed: r.seed, Nodes: sc.Nodes, Steps: len(sc.Steps),
		Replay: fmt.Sprintf("crisismesh sim run %s --seed %d", file, r.seed)}
	fmt.Fprintf(r.out, "scenario %s, seed %d (replay: %s)\n", sc.Name, r.seed, rep.Replay)
	// libp2p logs through a process-wide handler; emulated links make it
	// complain on every dial. The report is what a person reads.
	gologshim.SetDefaultHandler(slog.DiscardHandler)

	r.dir = o.Dir
	if r.dir == "" {
		d, err := os.MkdirTemp("", "crisismesh-sim-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		r.dir = d
	}
	base, _ := cryptorand.Int(cryptorand.Reader, big.NewInt(300))
	var err error
	r.specs, err = node.Testnet(node.TestnetOptions{Dir: r.dir, Nodes: sc.Nodes, Voters: sc.Voters,
		BasePort: 20000 + int(base.Int64())*100, Now: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	r.faults = transport.NewFaults(r.seed, slog.New(slog.DiscardHandler))
	r.nodes = make([]*node.Node, sc.Nodes)
	for i := range r.nodes {
		if err := r.open(i); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, n := range r.nodes {
			if n != nil {
				n.Close()
			}
		}
	}()
	if err := r.waitUntil(ctx, 60*time.Second, func() bool { return r.leader() >= 0 && r.keyed() }); err != nil {
		return nil, fmt.Errorf("sim: the network did not come up: %w", err)
	}
	for i, st := range sc.Steps {
		r.logf("step %d: %s", i+1, describe(st))
		checks, err := r.step(ctx, i+1, st)
		if err != nil {
			return rep, fmt.Errorf("sim: step %d (%s): %w", i+1, st.Do, err)
		}
		rep.Checks = append(rep.Checks, checks...)
	}
	// The end: heal everything, restart what is down, converge, check.
	r.faults.Heal()
	for i, n := range r.nodes {
		if n == nil {
			if err := r.open(i); err != nil {
				return rep, err
			}
		}
	}
	r.logf("final: healed, all nodes up; waiting for convergence (at most %s)", sc.ConvergeWithin.Duration)
	final := r.checkAll(ctx, len(sc.Steps)+1, true)
	rep.Checks = append(rep.Checks, final...)
	rep.OK = true
	for _, c := range rep.Checks {
		if !c.OK {
			rep.OK = false
		}
	}
	r.mu.Lock()
	rep.Acked = len(r.acked)
	rep.Commands = r.outcomes
	r.mu.Unlock()
	rep.Duration = time.Since(r.start)
	return rep, nil
}

func (r *Run) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func describe(st Step) string {
	var b strings.Builder
	b.WriteString(st.Do)
	if len(st.Nodes) > 0 {
		fmt.Fprintf(&b, " nodes %v", st.Nodes)
	}
	if len(st.Groups) > 0 {
		fmt.Fprintf(&b, " groups %v", st.Groups)
	}
	if st.Kind != "" {
		b.WriteString(" " + st.Kind)
	}
	if st.For.Duration > 0 {
		fmt.Fprintf(&b, " for %s", st.For.Duration)
	}
	if st.Link != "" {
		b.WriteString(" link " + st.Link)
	}
	return b.String()
}

func (r *Run) open(i int) error {
	n, err := node.Open(r.specs[i].Dir, node.Options{Faults: r.faults})
	if err != nil {
		return fmt.Errorf("sim: open node%d: %w", i, err)
	}
	r.nodes[i] = n
	name := fmt.Sprintf("node%d", i)
	// Record who leads in which term, from Raft's own goroutine (the term is
	// exact there).
	n.Consensus().Raft().RegisterObserver(raft.NewObserver(make(chan raft.Observation, 1), false, func(o *raft.Observation) bool {
		if st, ok := o.Data.(raft.RaftState); ok && st == raft.Leader {
			term := o.Raft.CurrentTerm()
			r.mu.Lock()
			if prev, ok := r.leaders[term]; ok && prev != name {
				r.conflict = fmt.Sprintf("term %d: %s and %s", term, prev, name)
			}
			r.leaders[term] = name
			r.mu.Unlock()
		}
		return false
	}))
	return nil
}

// leader returns the index of the running node that leads, or -1.
func (r *Run) leader() int {
	for i, n := range r.nodes {
		if n != nil && n.Consensus().IsLeader() {
			return i
		}
	}
	return -1
}

func (r *Run) keyed() bool {
	for _, n := range r.nodes {
		if n != nil {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
	}
	return true
}

func (r *Run) waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (r *Run) peers(idx []int) []peer.ID {
	var out []peer.ID
	for _, i := range idx {
		out = append(out, peerOf(r.specs[i]))
	}
	return out
}

func peerOf(s node.TestnetNode) peer.ID {
	p, _ := peer.Decode(s.PeerID)
	return p
}

// step runs one action.
func (r *Run) step(ctx context.Context, idx int, st Step) ([]Check, error) {
	nodes := st.Nodes
	for k, n := range nodes {
		if n == -1 {
			nodes[k] = max(r.leader(), 0)
		}
	}
	switch st.Do {
	case DoPost:
		count := max(st.Count, 1)
		prio := st.Priority
		if prio == "" {
			prio = "routine"
		}
		targets := nodes
		if len(targets) == 0 {
			targets = []int{r.rng.IntN(len(r.nodes))}
		}
		for _, i := range targets {
			if r.nodes[i] == nil {
				continue
			}
			for k := 0; k < count; k++ {
				e, err := r.nodes[i].Post(ctx, node.PostRequest{Kind: "sitrep", TLP: "green", Priority: prio,
					Text: fmt.Sprintf("node%d step %d #%d", i, idx, k)})
				if err != nil && !r.nodes[i].Store().Roster().Active(r.nodes[i].Identity().ID()) {
					r.logf("  node%d may not write any more (revoked): %v", i, err)
					break
				}
				if err != nil {
					return nil, err
				}
				r.mu.Lock()
				r.acked = append(r.acked, ackedEntry{id: e.ID(), author: e.Header.Author, seq: e.Header.Seq, node: i, step: idx})
				r.mu.Unlock()
			}
		}
	case DoCommand:
		if len(nodes) == 0 || r.nodes[nodes[0]] == nil {
			return nil, fmt.Errorf("command needs a running node")
		}
		req := node.CommandRequest{Kind: st.Kind, Level: st.Level, Mode: st.Mode, Title: st.Title}
		cmd, err := req.ToCommand()
		if err != nil {
			return nil, err
		}
		res, err := r.nodes[nodes[0]].Command(ctx, cmd)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.outcomes = append(r.outcomes, fmt.Sprintf("step %d node%d %s: %s %s", idx, nodes[0], st.Kind, res.Status, res.Rule))
		r.mu.Unlock()
		r.logf("  node%d %s: %s %s", nodes[0], st.Kind, res.Status, res.Detail)
	case DoPartition:
		for a := 0; a < len(st.Groups); a++ {
			for b := a + 1; b < len(st.Groups); b++ {
				r.faults.Partition(r.peers(st.Groups[a]), r.peers(st.Groups[b]))
			}
		}
	case DoIsolate:
		for _, i := range nodes {
			var rest []int
			for j := range r.nodes {
				if j != i {
					rest = append(rest, j)
				}
			}
			r.faults.Partition(r.peers([]int{i}), r.peers(rest))
		}
	case DoHeal:
		r.faults.Heal()
	case DoLink:
		if st.Link != "satellite" {
			return nil, fmt.Errorf("link %q: only \"satellite\" is known", st.Link)
		}
		ids := r.peers(nodes)
		for a := range ids {
			for b := a + 1; b < len(ids); b++ {
				r.faults.SetLink(ids[a], ids[b], transport.SatelliteLink())
			}
		}
	case DoCrash:
		for _, i := range nodes {
			if r.nodes[i] != nil {
				r.nodes[i].Close()
				r.nodes[i] = nil
			}
		}
	case DoRestart:
		for _, i := range nodes {
			if r.nodes[i] == nil {
				if err := r.open(i); err != nil {
					return nil, err
				}
			}
		}
	case DoWait:
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(st.For.Duration):
		}
	case DoConverge:
		d := st.For.Duration
		if d == 0 {
			d = r.sc.ConvergeWithin.Duration
		}
		if err := r.waitUntil(ctx, d, r.converged); err != nil {
			return []Check{{Name: "converge", Step: idx, Detail: err.Error()}}, nil
		}
	case DoCheck:
		return r.checkAll(ctx, idx, false), nil
	case DoEquivocate:
		return nil, r.equivocate(ctx, idx, nodes[0], nodes[1])
	case DoForge:
		return nil, r.forge(ctx, nodes[0])
	case DoRevoke:
		return nil, r.revoke(ctx, nodes[0], nodes[1])
	}
	return nil, nil
}

// equivocate makes node a's key sign two different entries at one seq: one
// handed to node w, one posted by a itself.
func (r *Run) equivocate(ctx context.Context, idx, a, w int) error {
	na, nw := r.nodes[a], r.nodes[w]
	if na == nil || nw == nil {
		return fmt.Errorf("equivocate needs nodes %d and %d running", a, w)
	}
	id := na.Identity()
	head, _ := na.Store().Head(id.ID())
	key, ok := na.Store().CurrentKey("all")
	if !ok {
		return fmt.Errorf("node%d holds no network key", a)
	}
	rogue, err := log.Build(id, na.Store().Network(), log.Tip{Seq: head.Seq, ID: head.ID, Lamport: head.Lamport}, na.Store().MaxLamport(), time.Now(),
		[]log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPGreen, Text: fmt.Sprintf("rogue entry, step %d", idx)}, Key: key}})
	if err != nil {
		return err
	}
	res, err := nw.Store().Ingest(ctx, rogue...)
	if err != nil {
		return err
	}
	if len(res.Added) != len(rogue) {
		return fmt.Errorf("node%d did not take node%d's rogue entry (%v): it must hold node%d's feed first (add a converge step)", w, a, res.Rejected, a)
	}
	e, err := na.Post(ctx, node.PostRequest{Kind: "sitrep", TLP: "green", Text: fmt.Sprintf("node%d's own entry at the same seq, step %d", a, idx)})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.forkers = append(r.forkers, id.ID())
	r.acked = append(r.acked, ackedEntry{id: e.ID(), author: e.Header.Author, seq: e.Header.Seq, node: a, step: idx})
	r.mu.Unlock()
	return nil
}

// forge offers every node an entry that claims to be node a's but is
// signed by another member's key.
func (r *Run) forge(ctx context.Context, a int) error {
	na := r.nodes[a]
	if na == nil {
		return fmt.Errorf("forge needs node %d running", a)
	}
	var signer *node.Node
	for i, n := range r.nodes {
		if n != nil && i != a {
			signer = n
			break
		}
	}
	if signer == nil {
		return fmt.Errorf("forge needs a second running node")
	}
	// Build as the signer, then claim node a as author: the signature
	// no longer matches the author's key.
	key, _ := signer.Store().CurrentKey("all")
	es, err := log.Build(signer.Identity(), na.Store().Network(), log.Tip{}, 0, time.Now(),
		[]log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPGreen, Text: "forged"}, Key: key}})
	if err != nil {
		return err
	}
	forged, err := claimAuthor(es[0], na.Identity().ID())
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.forged = append(r.forged, forged.ID())
	r.mu.Unlock()
	for _, n := range r.nodes {
		if n != nil {
			if _, err := n.Store().Ingest(ctx, forged); err != nil {
				return err
			}
		}
	}
	return nil
}

// converged reports whether every running member's node holds the same
// log.
func (r *Run) converged() bool {
	var d log.Digest
	for k, rn := range r.running() {
		if k == 0 {
			d = rn.node.Store().Digest()
		} else if rn.node.Store().Digest() != d {
			return false
		}
	}
	return true
}

// revoke has admin node a revoke member node m, keeping m's feed up to the
// head a holds of it.
func (r *Run) revoke(ctx context.Context, a, m int) error {
	na, nm := r.nodes[a], r.nodes[m]
	if na == nil || nm == nil {
		return fmt.Errorf("revoke needs nodes %d and %d running", a, m)
	}
	target := nm.Identity().ID()
	head, _ := na.Store().Head(target)
	u, err := crypto.NewUpdate(na.Store().Roster(), crypto.UpdateSpec{Op: crypto.OpRevoke, Target: target,
		Reason: "revoked by the simulation", Created: time.Now(), FeedSeq: head.Seq, FeedHead: head.ID}, na.Identity())
	if err != nil {
		return err
	}
	if _, err := na.Store().AppendRosterUpdate(ctx, u); err != nil {
		return err
	}
	r.mu.Lock()
	r.revoked = append(r.revoked, target)
	r.mu.Unlock()
	r.logf("  node%d revoked node%d, keeping its feed up to seq %d", a, m, head.Seq)
	return nil
}
