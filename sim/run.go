package sim

import (
	"cmp"
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
	"github.com/crisismesh/crisismesh/transport"
)

// Options tune a run.
type Options struct {
	Out  io.Writer // progress, one line per step; nil: none
	Dir  string    // where the data directories go; "": a temporary one, removed after
	Seed uint64    // overrides the scenario's seed when not zero
	// Report is where the plots, the timeline and (on failure) the node
	// logs and porcupine's HTML go; "": plots are not drawn, and a failing
	// run keeps its evidence in a new temporary directory it names.
	Report string
}

// A Run is one execution of a scenario.
type Run struct {
	sc     *Scenario
	seed   uint64
	rng    *rand.Rand
	out    io.Writer
	dir    string
	specs  []node.TestnetNode
	index  map[peer.ID]int
	faults *transport.Faults
	start  time.Time
	logs   *nodeLogs

	nodesMu gosync.RWMutex
	nodes   []*node.Node // nil while crashed

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       gosync.WaitGroup
	bgErr    error

	mu          gosync.Mutex
	acked       []ackedEntry
	forkers     []crypto.MemberID // authors made to equivocate
	forged      []log.Hash        // entries that must never be accepted
	revoked     []crypto.MemberID // members revoked by the schedule
	bombs       []bomb            // entries at the top of the Lamport clock
	disbelieved []log.Hash        // valid entries no node may show (red-to-all)
	leaders     map[uint64]string // term → leader, as observed
	conflict    string
	outcomes    []string
	timeline    Timeline
	spans       []openSpan
	counters    map[int]counters
	regress     string
	linkBytes   map[[2]int]uint64
	paused      map[int]time.Time
	hist        History // the workloads' crisis history
	skew        map[int]time.Duration
	diskFull    map[int]bool
}

type ackedEntry struct {
	id      log.Hash
	author  crypto.MemberID
	seq     uint64
	lamport uint64
	node    int
	step    int
	readers []int // nodes whose members may read it; nil: every member
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
	// ConvergedIn is how long identical logs took after the final heal,
	// and BytesToConverge what the sync services sent meanwhile (zero
	// when the logs did not converge).
	ConvergedIn     time.Duration `json:"converged_in_ns"`
	BytesToConverge uint64        `json:"bytes_to_converge"`
	// Failed names the first broken invariant and its step ("" when OK).
	Failed string `json:"failed,omitempty"`
	// Timeline is what the run saw over time (the plots' data; written
	// to timeline.json in the report directory, not into the report).
	Timeline *Timeline `json:"-"`
	// Files the run left: plots, and on failure the node logs and the
	// porcupine visualisation.
	Files []string `json:"files,omitempty"`
}

// A Check is one invariant's verdict.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Step   int    `json:"step"`
	// File holds the evidence when there is some (porcupine's HTML).
	File string `json:"file,omitempty"`
}

// Execute runs the scenario and returns its report; an error means the
// run could not be carried out (not that an invariant failed: see
// Report.OK).
func Execute(ctx context.Context, sc *Scenario, file string, o Options) (*Report, error) {
	if sc.Layer == LayerRaft {
		return executeRaft(ctx, sc, file, o)
	}
	r := &Run{sc: sc, seed: pickSeed(sc, o), out: o.Out, leaders: map[uint64]string{}, start: time.Now(),
		counters: map[int]counters{}, linkBytes: map[[2]int]uint64{}, paused: map[int]time.Time{},
		skew: map[int]time.Duration{}, diskFull: map[int]bool{}}
	if r.out == nil {
		r.out = io.Discard
	}
	r.rng = rand.New(rand.NewPCG(r.seed, 0x5eed))
	rep := &Report{Scenario: sc.Name, Seed: r.seed, Nodes: sc.Nodes, Steps: len(sc.Steps), Replay: replayLine(file, r.seed)}
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
	base, err := node.FreeBasePort(sc.Nodes)
	if err != nil {
		return nil, err
	}
	r.specs, err = node.Testnet(node.TestnetOptions{Dir: r.dir, Nodes: sc.Nodes, Voters: sc.Voters,
		BasePort: base, Now: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	r.indexPeers()
	r.logs, err = newNodeLogs(filepath.Join(r.dir, "logs"), sc.Nodes)
	if err != nil {
		return nil, err
	}
	defer r.logs.Close()
	r.timeline.Nodes = make([]string, sc.Nodes)
	for i, s := range r.specs {
		r.timeline.Nodes[i] = s.Name
	}
	r.faults = transport.NewFaults(r.seed, slog.New(slog.DiscardHandler))
	r.nodes = make([]*node.Node, sc.Nodes)
	defer r.closeAll()
	for i := range r.nodes {
		if err := r.open(i); err != nil {
			return nil, err
		}
	}
	if err := waitUntil(ctx, 60*time.Second+time.Duration(sc.Nodes)*time.Second, func() bool { return r.leader() >= 0 && r.keyed() }); err != nil {
		return nil, fmt.Errorf("sim: the network did not come up: %w", err)
	}
	r.start = time.Now() // the timeline starts with the schedule
	sctx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); r.sampler(sctx) }()
	defer func() { stopSampler(); <-samplerDone }()
	r.bgCtx, r.bgCancel = context.WithCancel(ctx)
	defer r.stopBackground()

	for i, st := range sc.Steps {
		r.logf("step %d: %s", i+1, describe(st))
		checks, err := r.step(ctx, i+1, st)
		if err != nil {
			return rep, fmt.Errorf("sim: step %d (%s): %w%s", i+1, st.Do, err, r.keepLogs())
		}
		rep.Checks = append(rep.Checks, checks...)
	}
	// The end: stop the workloads, heal everything, restart what is down,
	// converge, check.
	if err := r.stopBackground(); err != nil {
		return rep, fmt.Errorf("sim: background work: %w%s", err, r.keepLogs())
	}
	bytes0, healed := totalBytes(r.links()), time.Now()
	r.mu.Lock()
	clear(r.diskFull)
	r.mu.Unlock()
	r.faults.Heal()
	r.closeSpans(spanNetwork)
	for i := range r.nodes {
		if r.node(i) == nil {
			if err := r.open(i); err != nil {
				return rep, err
			}
		}
	}
	r.logf("final: healed, all nodes up; waiting for convergence (at most %s)", sc.ConvergeWithin.Duration)
	if waitUntil(ctx, sc.ConvergeWithin.Duration, r.converged) == nil {
		rep.ConvergedIn = time.Since(healed)
		rep.BytesToConverge = totalBytes(r.links()) - bytes0
		r.logf("converged %s after the final heal, %d bytes exchanged", rep.ConvergedIn.Round(time.Millisecond), rep.BytesToConverge)
	}
	final := r.checkAll(ctx, len(sc.Steps)+1, true)
	rep.Checks = append(rep.Checks, final...)
	stopSampler()
	<-samplerDone
	r.finishTimeline()
	r.mu.Lock()
	rep.Acked = len(r.acked)
	rep.Commands = r.outcomes
	tl := r.timeline
	r.mu.Unlock()
	rep.Timeline = &tl
	rep.Duration = time.Since(r.start)
	r.conclude(rep, o)
	return rep, nil
}

// pickSeed applies the seed rule: the option overrides the scenario; none
// draws one (and the report prints it).
func pickSeed(sc *Scenario, o Options) uint64 {
	seed := sc.Seed
	if o.Seed != 0 {
		seed = o.Seed
	}
	if seed == 0 {
		var b [8]byte
		cryptorand.Read(b[:])
		seed = binary.BigEndian.Uint64(b[:]) >> 1
	}
	return seed
}

func replayLine(file string, seed uint64) string {
	return fmt.Sprintf("crisismesh sim run %s --seed %d", file, seed)
}

// conclude sets the verdict, draws the plots and, on failure, keeps the
// evidence.
func (r *Run) conclude(rep *Report, o Options) {
	rep.OK = true
	for _, c := range rep.Checks {
		if !c.OK {
			rep.OK = false
			if rep.Failed == "" {
				rep.Failed = fmt.Sprintf("%s (step %d): %s", c.Name, c.Step, c.Detail)
			}
		}
	}
	out := o.Report
	if out == "" && !rep.OK {
		d, err := os.MkdirTemp("", "crisismesh-sim-failed-")
		if err != nil {
			r.logf("cannot keep the evidence: %v", err)
			return
		}
		out = d
	}
	if out == "" {
		return
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		r.logf("report directory: %v", err)
		return
	}
	if o.Report != "" {
		writeReport(rep, out, r.logf)
	}
	if !rep.OK {
		r.logs.Close()
		files, err := r.logs.CopyTo(filepath.Join(out, "logs"))
		if err != nil {
			r.logf("keeping the node logs: %v", err)
		}
		rep.Files = append(rep.Files, files...)
		for _, c := range rep.Checks {
			if c.File != "" {
				dst := filepath.Join(out, filepath.Base(c.File))
				if err := copyFile(c.File, dst); err != nil {
					r.logf("keeping %s: %v", c.File, err)
					continue
				}
				rep.Files = append(rep.Files, dst)
			}
		}
		r.logf("evidence kept in %s", out)
	}
}

// writeReport draws the plots and writes the timeline and the report into
// out, adding the files to rep.Files.
func writeReport(rep *Report, out string, logf func(string, ...any)) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		logf("report directory: %v", err)
		return
	}
	files, err := rep.Timeline.WritePlots(out)
	if err != nil {
		logf("plots: %v", err)
	}
	rep.Files = append(rep.Files, files...)
	for _, f := range []struct {
		name string
		v    any
	}{{"timeline.json", rep.Timeline}, {"report.json", rep}} {
		if err := writeJSON(filepath.Join(out, f.name), f.v); err != nil {
			logf("%s: %v", f.name, err)
			continue
		}
		rep.Files = append(rep.Files, filepath.Join(out, f.name))
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// keepLogs copies the node logs of a run that could not go on into a
// temporary directory, and says where (for the error it ends with).
func (r *Run) keepLogs() string {
	d, err := os.MkdirTemp("", "crisismesh-sim-failed-")
	if err != nil {
		return ""
	}
	if _, err := r.logs.CopyTo(d); err != nil {
		return ""
	}
	return " (node logs kept in " + d + ")"
}

func (r *Run) closeAll() {
	r.nodesMu.Lock()
	ns := r.nodes
	r.nodes = make([]*node.Node, len(ns))
	r.nodesMu.Unlock()
	for _, n := range ns {
		if n != nil {
			n.Close()
		}
	}
}

// node returns node i, or nil while it is down.
func (r *Run) node(i int) *node.Node {
	r.nodesMu.RLock()
	defer r.nodesMu.RUnlock()
	return r.nodes[i]
}

// background runs f until the schedule ends (or f returns).
func (r *Run) background(f func(ctx context.Context) error) {
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		if err := f(r.bgCtx); err != nil && r.bgCtx.Err() == nil {
			r.mu.Lock()
			if r.bgErr == nil {
				r.bgErr = err
			}
			r.mu.Unlock()
		}
	}()
}

// stopBackground ends every background workload and returns the first
// error one met.
func (r *Run) stopBackground() error {
	if r.bgCancel != nil {
		r.bgCancel()
	}
	r.bg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bgErr
}

// finishTimeline closes the spans still open and adds the link counts.
func (r *Run) finishTimeline() {
	for _, k := range []spanKind{spanNetwork, spanNode, spanLink, spanDisk} {
		r.closeSpans(k)
	}
	links := r.links()
	r.mu.Lock()
	r.timeline.Links = links
	r.mu.Unlock()
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
	if st.Every.Duration > 0 {
		fmt.Fprintf(&b, " every %s", st.Every.Duration)
	}
	if st.Clients > 0 {
		fmt.Fprintf(&b, " clients %d", st.Clients)
	}
	if st.Skew.Duration != 0 {
		fmt.Fprintf(&b, " skew %s", st.Skew.Duration)
	}
	if len(st.To) > 0 {
		fmt.Fprintf(&b, " to %v", st.To)
	}
	return b.String()
}

func (r *Run) open(i int) error {
	n, err := node.Open(r.specs[i].Dir, node.Options{Faults: r.faults, Logger: r.logs.Logger(i),
		Now: func() time.Time { return time.Now().Add(r.clockSkew(i)) }, FreeSpace: func() (uint64, error) { return r.freeSpace(i), nil }})
	if err != nil {
		return fmt.Errorf("sim: open node%d: %w", i, err)
	}
	// A restarted node must not count backwards (see counters).
	r.noteCounters(i, n, "after restart")
	r.nodesMu.Lock()
	r.nodes[i] = n
	r.nodesMu.Unlock()
	r.closeNodeSpans(spanNode, i)
	name := fmt.Sprintf("node%d", i)
	// Record who leads in which term, from Raft's own goroutine (the term is
	// exact there).
	n.Consensus().Raft().RegisterObserver(raft.NewObserver(make(chan raft.Observation, 1), false, func(o *raft.Observation) bool {
		if st, ok := o.Data.(raft.RaftState); ok && st == raft.Leader {
			r.noteLeader(o.Raft.CurrentTerm(), name)
		}
		return false
	}))
	return nil
}

// noteLeader records that name led in term, and the first term that had
// two leaders.
func (r *Run) noteLeader(term uint64, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.leaders[term]; ok && prev != name && r.conflict == "" {
		r.conflict = fmt.Sprintf("term %d: %s and %s", term, prev, name)
	}
	r.leaders[term] = name
}

// crash closes node i without drain, keeping what it counted.
func (r *Run) crash(i int) {
	r.nodesMu.Lock()
	n := r.nodes[i]
	r.nodes[i] = nil
	r.nodesMu.Unlock()
	if n == nil {
		return
	}
	r.noteCounters(i, n, "before crash")
	r.noteLinks(i, n)
	n.Close()
	r.openNodeSpan(spanNode, i, fmt.Sprintf("node%d down", i), 0)
}

// snapshot returns the nodes as they are now (nil: down).
func (r *Run) snapshot() []*node.Node {
	r.nodesMu.RLock()
	defer r.nodesMu.RUnlock()
	return append([]*node.Node(nil), r.nodes...)
}

// leader returns the index of the running node that leads, or -1.
func (r *Run) leader() int {
	for i, n := range r.snapshot() {
		if n != nil && n.Consensus().IsLeader() {
			return i
		}
	}
	return -1
}

func (r *Run) keyed() bool {
	for _, n := range r.snapshot() {
		if n != nil {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
	}
	return true
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
	nodes := append([]int(nil), st.Nodes...)
	for k, n := range nodes {
		if n == -1 {
			nodes[k] = max(r.leader(), 0)
		}
	}
	if handled, err := r.networkFault(ctx, st, nodes); handled {
		return nil, err
	}
	switch st.Do {
	case DoPost:
		if st.Every.Duration > 0 {
			// A rate: post in the background, Every apart, for For (or
			// until the end of the schedule).
			// Its own generator, seeded now: the schedule's goes on
			// with the next steps meanwhile.
			rng := rand.New(rand.NewPCG(r.rng.Uint64(), 0x9057))
			r.background(func(ctx context.Context) error { return r.postEvery(ctx, idx, st, nodes, rng) })
			return nil, nil
		}
		return nil, r.post(ctx, idx, st, nodes, max(st.Count, 1), r.rng)
	case DoCommand:
		if len(nodes) == 0 || r.node(nodes[0]) == nil {
			return nil, fmt.Errorf("command needs a running node")
		}
		req := node.CommandRequest{Kind: st.Kind, Level: st.Level, Mode: st.Mode, Title: st.Title}
		cmd, err := req.ToCommand()
		if err != nil {
			return nil, err
		}
		n := r.node(nodes[0])
		res, err := n.Command(ctx, cmd)
		if err != nil {
			return nil, err
		}
		// Proposed through the log: wait a little for the outcome, as a
		// person would before the next command (on a minority side it
		// stays pending).
		awaitOutcome(ctx, n, &res)
		if (res.Status == "refused") != (st.Expect == "refused") {
			return nil, fmt.Errorf("node%d %s: %s (%s), expected %s: check the scenario (roles: node0 presidency and admin, then cyclone, csirt, commission, enisa in turn)",
				nodes[0], st.Kind, res.Status, res.Detail, cmp.Or(st.Expect, "committed or pending"))
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
		r.openSpan(spanNetwork, fmt.Sprintf("partition %v", st.Groups), 0)
	case DoIsolate:
		for _, i := range nodes {
			var rest []int
			for j := range r.specs {
				if j != i {
					rest = append(rest, j)
				}
			}
			r.faults.Partition(r.peers([]int{i}), r.peers(rest))
			r.openSpan(spanNetwork, fmt.Sprintf("node%d isolated", i), 0)
		}
	case DoHeal:
		r.faults.Heal()
		r.closeSpans(spanNetwork)
	case DoLink:
		ids := r.peers(nodes)
		for a := range ids {
			for b := a + 1; b < len(ids); b++ {
				r.faults.SetLink(ids[a], ids[b], linkOf(st))
			}
		}
		r.openSpan(spanLink, fmt.Sprintf("%s link %v", st.Link, nodes), 0)
	case DoCrash:
		for _, i := range nodes {
			r.crash(i)
		}
	case DoRestart:
		for _, i := range nodes {
			if r.node(i) == nil {
				if err := r.open(i); err != nil {
					return nil, err
				}
			}
		}
	case DoWait:
		return nil, sleep(ctx, st.For.Duration)
	case DoConverge:
		d := st.For.Duration
		if d == 0 {
			d = r.sc.ConvergeWithin.Duration
		}
		if err := waitUntil(ctx, d, r.converged); err != nil {
			c := Check{Name: InvConverged, Step: idx, Detail: fmt.Sprintf("not within %s: %v", d, cmp.Or(divergence(r.running()), err))}
			r.logf("  check %-30s FAILED: %s", c.Name, c.Detail)
			return []Check{c}, nil
		}
		r.logf("  converged")
	case DoCheck:
		return r.checkAll(ctx, idx, false), nil
	case DoEquivocate:
		return nil, r.equivocate(ctx, idx, nodes[0], nodes[1])
	case DoForge:
		return nil, r.forge(ctx, nodes[0])
	case DoRevoke:
		return nil, r.revoke(ctx, nodes[0], nodes[1])
	case DoForgeCheckpoint:
		return nil, r.forgeCheckpoint(ctx, nodes[0])
	case DoLamportBomb:
		return nil, r.lamportBomb(ctx, nodes[0])
	case DoRedToAll:
		return nil, r.redToAll(ctx, nodes[0])
	case DoSubstituteKey:
		return nil, r.substituteKey(ctx, nodes[0], nodes[1:])
	case DoSkew:
		r.mu.Lock()
		for _, i := range nodes {
			r.skew[i] = st.Skew.Duration
		}
		r.mu.Unlock()
		r.openSpan(spanLink, fmt.Sprintf("clock of node%v %+v", nodes, st.Skew.Duration), 0)
	case DoDiskFull, DoDiskFree:
		r.mu.Lock()
		for _, i := range nodes {
			r.diskFull[i] = st.Do == DoDiskFull
		}
		r.mu.Unlock()
		if st.Do == DoDiskFull {
			r.openSpan(spanDisk, fmt.Sprintf("disk of node%v full", nodes), 0)
		} else {
			r.closeSpans(spanDisk)
		}
	case DoWorkload:
		clients := st.Clients
		if clients == 0 {
			clients = 3
		}
		seed := r.rng.Uint64()
		r.background(func(ctx context.Context) error {
			if st.For.Duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, st.For.Duration)
				defer cancel()
			}
			runWorkload(ctx, netTarget{r}, clients, seed, &r.hist)
			return nil
		})
		r.logf("  %d clients (workload seed %d)", clients, seed)
	default:
		return nil, fmt.Errorf("%s: not supported on the network layer yet", st.Do)
	}
	return nil, nil
}

// post has each of nodes (one drawn from rng when none) post count
// entries.
func (r *Run) post(ctx context.Context, idx int, st Step, nodes []int, count int, rng *rand.Rand) error {
	prio := st.Priority
	if prio == "" {
		prio = "routine"
	}
	targets := nodes
	if len(targets) == 0 {
		targets = []int{rng.IntN(len(r.specs))}
	}
	req := node.PostRequest{Kind: "sitrep", TLP: "green", Priority: prio}
	var readers []int
	if len(st.To) > 0 {
		req.TLP = "red"
		for _, t := range st.To {
			req.To = append(req.To, r.specs[t].Name)
		}
		readers = st.To
	}
	for _, i := range targets {
		n := r.node(i)
		if n == nil || r.isPaused(i) {
			continue
		}
		for k := 0; k < count; k++ {
			req.Text = fmt.Sprintf("node%d step %d #%d", i, idx, k)
			e, err := n.Post(ctx, req)
			if err != nil && !n.Store().Roster().Active(n.Identity().ID()) {
				r.logf("  node%d may not write any more (revoked): %v", i, err)
				break
			}
			if err != nil && r.node(i) != n {
				break // crashed meanwhile: nothing was acknowledged
			}
			if errors.Is(err, store.ErrDiskFull) {
				r.logf("  node%d refuses to write, as it must: %v", i, err)
				break // a clear error, nothing acknowledged
			}
			if err != nil {
				return err
			}
			r.mu.Lock()
			a := ackedEntry{id: e.ID(), author: e.Header.Author, seq: e.Header.Seq, lamport: e.Header.Lamport, node: i, step: idx}
			if readers != nil {
				a.readers = append([]int{i}, readers...)
			}
			r.acked = append(r.acked, a)
			r.mu.Unlock()
		}
	}
	return nil
}

// postEvery posts Count entries (default 1) Every apart, for For or
// until the schedule ends.
func (r *Run) postEvery(ctx context.Context, idx int, st Step, nodes []int, rng *rand.Rand) error {
	if st.For.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.For.Duration)
		defer cancel()
	}
	t := time.NewTicker(st.Every.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.post(ctx, idx, st, nodes, max(st.Count, 1), rng); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// clockSkew is how far node i's clock is off.
func (r *Run) clockSkew(i int) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skew[i]
}

// freeSpace is what node i's disk reports: nothing while the schedule
// says it is full, else plenty (the simulation's disk is a temporary
// directory; a really full one is the store's own tests' business).
func (r *Run) freeSpace(i int) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.diskFull[i] {
		return 0
	}
	return 1 << 40
}

func (r *Run) setPaused(i int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused[i] = time.Now().Add(d)
}

func (r *Run) isPaused(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Now().Before(r.paused[i])
}

// equivocate makes node a's key sign two different entries at one seq: one
// handed to node w, one posted by a itself.
func (r *Run) equivocate(ctx context.Context, idx, a, w int) error {
	na, nw := r.node(a), r.node(w)
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
	r.acked = append(r.acked, ackedEntry{id: e.ID(), author: e.Header.Author, seq: e.Header.Seq, lamport: e.Header.Lamport, node: a, step: idx})
	r.mu.Unlock()
	return nil
}

// converged reports whether every running member's node holds the same
// log.
func (r *Run) converged() bool { return divergence(r.running()) == nil }

type nodeDigest struct {
	node    int
	digest  log.Digest
	entries int
}

// divergence names two running nodes whose logs differ, if any.
func divergence(ns []running) error {
	var ds []nodeDigest
	for _, rn := range ns {
		ds = append(ds, nodeDigest{rn.index, rn.node.Store().Digest(), entryCount(rn.node)})
	}
	return sameDigests(ds)
}

func sameDigests(ds []nodeDigest) error {
	for _, d := range ds[min(1, len(ds)):] {
		if d.digest != ds[0].digest {
			return fmt.Errorf("node%d's log (%d entries) differs from node%d's (%d entries)", d.node, d.entries, ds[0].node, ds[0].entries)
		}
	}
	return nil
}

// revoke has admin node a revoke member node m, keeping m's feed up to the
// head a holds of it.
func (r *Run) revoke(ctx context.Context, a, m int) error {
	na, nm := r.node(a), r.node(m)
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
