package sim

import (
	"cmp"
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"time"

	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/sync"
)

// The scenario engine: one interpreter of a schedule, over a layer. It
// owns what both layers share: the seed and the schedule's generator,
// the fault geometry (geometry.go: which links are cut, laid out once for
// both layers), "the leader" (-1) in a step's nodes, crashes and restarts,
// crisis commands and their outcomes, workloads and other background
// work, the linearizability check, the timeline's fault spans, and the
// end of every run (stop the background, heal, restart what is down).
// Each layer sets itself up, carries out what the engine asks, runs the
// steps only it knows, and judges its own invariants.

// A layer is what the engine plays a schedule on: the network layer (real
// nodes, netlayer.go) or the Raft layer (raftlayer.go). Its methods are
// called from the schedule's goroutine, but target's, whose Target
// workloads call from many.
type layer interface {
	// setCuts makes exactly the cuts in c hold (c is the layer's to keep).
	setCuts(c cutSet)
	// crash stops node i without drain; restart reopens node i from what
	// it kept. Each reports whether it changed anything (a crashed node
	// cannot crash, a running one cannot restart).
	crash(i int) (bool, error)
	restart(i int) (bool, error)
	// leader returns the index of a running node that leads, or -1.
	leader() int
	// command issues a command step as node i's member, once node i has
	// applied index after (waiting at most outcomeWait: a person issues a
	// command after seeing the last decision), and says what became of it.
	command(ctx context.Context, i int, st Step, after uint64) (commandResult, error)
	// target is the workloads' view of the layer.
	target() Target
	// check runs the layer's checkers; final: after the end's heal.
	check(ctx context.Context, step int, final bool) []Check
	// act runs a step that only this layer knows (posts, links, attacks…).
	act(ctx context.Context, step int, st Step, nodes []int) ([]Check, error)
}

// commandResult is what became of a command.
type commandResult struct {
	status consensus.Status // or statusUnknown
	rule   string           // the rule that refused it
	detail string           // for people
	index  uint64           // the Raft index it committed at, when known
}

// statusUnknown: a command of the Raft layer that was neither committed,
// nor proposed through the log, nor refused before changeTimeout.
const statusUnknown consensus.Status = "unknown"

// Defaults of the fault steps.
const (
	defaultSwizzle = 500 * time.Millisecond // swizzle's Every
	defaultFlap    = time.Second            // flap's Every
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
	// Traffic splits what the sync services sent and received over the
	// same span by path (sessions, pushes, offers), with the entries
	// received twice (nil when the logs did not converge).
	Traffic *sync.Traffic `json:"sync_traffic,omitempty"`
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
	e := newEngine(sc, file, o)
	if sc.Layer == LayerRaft {
		return runRaft(ctx, e, o, nil)
	}
	return runNetwork(ctx, e, o, nil)
}

// engine is one run of a schedule.
type engine struct {
	sc      *Scenario
	seed    uint64
	rng     *rand.Rand // the schedule's: the schedule's goroutine only
	out     io.Writer
	rep     *Report
	l       layer
	htmlDir string // where porcupine's visualisation of a failed check goes
	// start is when the schedule started: set before any goroutine that
	// reads it runs, then only read.
	start time.Time

	// The schedule's goroutine only.
	cuts      cutSet
	committed uint64 // the highest index a command of the schedule committed at

	hist     History // the workloads' crisis history
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       gosync.WaitGroup

	mu       gosync.Mutex
	bgErr    error
	outcomes []string
	timeline Timeline
	spans    []openSpan
}

// newEngine applies the seed rule and prints the line that replays the
// run.
func newEngine(sc *Scenario, file string, o Options) *engine {
	e := &engine{sc: sc, seed: pickSeed(sc, o), out: o.Out, start: time.Now(), cuts: cutSet{}}
	if e.out == nil {
		e.out = io.Discard
	}
	e.rng = rand.New(rand.NewPCG(e.seed, 0x5eed))
	e.rep = &Report{Scenario: sc.Name, Seed: e.seed, Nodes: sc.Nodes, Steps: len(sc.Steps), Replay: replayLine(file, e.seed)}
	fmt.Fprintf(e.out, "scenario %s, seed %d (replay: %s)\n", sc.Name, e.seed, e.rep.Replay)
	return e
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

func (e *engine) logf(format string, args ...any) {
	fmt.Fprintf(e.out, "[%6.1fs] %s\n", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
}

// begin starts the schedule's clock, once the network is up: the
// timeline starts with the schedule.
func (e *engine) begin(ctx context.Context, l layer, names []string) {
	e.l = l
	e.start = time.Now()
	e.timeline.Nodes = names
	e.bgCtx, e.bgCancel = context.WithCancel(ctx)
}

// play runs the steps in order. A step that cannot be carried out ends
// the run with an error naming it.
func (e *engine) play(ctx context.Context) error {
	for i, st := range e.sc.Steps {
		what := "step " + fmt.Sprint(i+1) + ": " + describe(st)
		if st.Say != "" {
			what = st.Say
		}
		e.logf("%s", what)
		checks, err := e.step(ctx, i+1, st)
		if err != nil {
			return fmt.Errorf("sim: step %d (%s): %w", i+1, st.Do, err)
		}
		e.rep.Checks = append(e.rep.Checks, checks...)
	}
	return nil
}

// settle ends the schedule: it stops the background work, heals every
// cut and restarts every node that is down.
func (e *engine) settle() error {
	if err := e.stopBackground(); err != nil {
		return fmt.Errorf("sim: background work: %w", err)
	}
	e.heal()
	for i := range e.sc.Nodes {
		if err := e.restart(i); err != nil {
			return err
		}
	}
	return nil
}

// conclude closes the timeline and sets the verdict.
func (e *engine) conclude(rep *Report) {
	for _, k := range []spanKind{spanNetwork, spanNode, spanLink, spanDisk} {
		e.closeSpans(k)
	}
	e.mu.Lock()
	rep.Commands = e.outcomes
	tl := e.timeline
	e.mu.Unlock()
	rep.Timeline = &tl
	rep.Duration = time.Since(e.start)
	rep.OK = true
	for _, c := range rep.Checks {
		if !c.OK {
			rep.OK = false
			if rep.Failed == "" {
				rep.Failed = fmt.Sprintf("%s (step %d): %s", c.Name, c.Step, c.Detail)
			}
		}
	}
}

// resolve returns a copy of nodes with -1 replaced by the leader (node 0
// when none leads).
func (e *engine) resolve(nodes []int) []int {
	out := append([]int(nil), nodes...)
	for k, n := range out {
		if n == -1 {
			out[k] = max(e.l.leader(), 0)
		}
	}
	return out
}

// step runs one action.
func (e *engine) step(ctx context.Context, idx int, st Step) ([]Check, error) {
	nodes := e.resolve(st.Nodes)
	n := e.sc.Nodes
	switch st.Do {
	case DoPartition:
		c := maps.Clone(e.cuts)
		for a := range st.Groups {
			for b := a + 1; b < len(st.Groups); b++ {
				c.cutBoth(st.Groups[a], st.Groups[b], true)
			}
		}
		e.lay(c, false, fmt.Sprintf("partition %v", st.Groups))
	case DoIsolate:
		for _, i := range nodes {
			c := maps.Clone(e.cuts)
			c.cutBoth([]int{i}, indexes(n), true)
			e.lay(c, false, fmt.Sprintf("node%d isolated", i))
		}
	case DoOneWay:
		from, to := nodes[0], nodes[1]
		if from == to {
			e.logf("  node%d to itself: nothing to cut", from)
			break
		}
		c := maps.Clone(e.cuts)
		c[[2]int{from, to}] = true
		e.lay(c, false, fmt.Sprintf("one-way cut node%d→node%d (what node%d sends no longer reaches node%d; the other way still works)", from, to, from, to))
	case DoRing:
		e.lay(ringCuts(n), true, fmt.Sprintf("majority ring: each node keeps %d neighbours on either side", ringKeep(n)))
	case DoBridge:
		left, right := bridgeHalves(n, nodes[0])
		e.lay(bridgeCuts(n, nodes[0]), true, fmt.Sprintf("bridge node%d between %v and %v", nodes[0], left, right))
	case DoHeal:
		e.heal()
	case DoSwizzle:
		return nil, e.swizzle(ctx, st)
	case DoFlap:
		return nil, e.flap(ctx, st)
	case DoCrash:
		for _, i := range nodes {
			down, err := e.l.crash(i)
			if err != nil {
				return nil, err
			}
			if down {
				e.openNodeSpan(spanNode, i, fmt.Sprintf("node%d down", i), 0)
				e.logf("  node%d crashed", i)
			}
		}
	case DoRestart:
		if len(nodes) == 0 {
			nodes = indexes(n) // every node that is down
		}
		for _, i := range nodes {
			if err := e.restart(i); err != nil {
				return nil, err
			}
		}
	case DoWait:
		return nil, sleep(ctx, st.For.Duration)
	case DoCheck:
		return e.check(ctx, idx, false), nil
	case DoCommand:
		return nil, e.command(ctx, idx, st, nodes)
	case DoWorkload:
		e.workload(st)
	default:
		return e.l.act(ctx, idx, st, nodes)
	}
	return nil, nil
}

// lay makes c the cuts in force, as a fault of its own (label); with
// whole, c lays out the whole network and ends the faults before it.
func (e *engine) lay(c cutSet, whole bool, label string) {
	if whole {
		e.closeSpans(spanNetwork)
	}
	e.cuts = c
	e.l.setCuts(maps.Clone(c))
	e.openSpan(spanNetwork, label, 0)
	e.logf("  %s", label)
}

// heal removes every cut.
func (e *engine) heal() {
	e.cuts = cutSet{}
	e.l.setCuts(cutSet{})
	e.closeSpans(spanNetwork)
}

func (e *engine) restart(i int) error {
	up, err := e.l.restart(i)
	if err != nil {
		return err
	}
	if up {
		e.closeNodeSpans(spanNode, i)
		e.logf("  node%d restarted", i)
	}
	return nil
}

// swizzle cuts every link one by one in an order drawn from the schedule,
// Every apart, then restores them one by one in another: it ends healed.
func (e *engine) swizzle(ctx context.Context, st Step) error {
	every := st.Every.Duration
	if every <= 0 {
		every = defaultSwizzle
	}
	e.openSpan(spanNetwork, "swizzle", 0)
	for _, cut := range []bool{true, false} {
		verb := map[bool]string{true: "cut", false: "restored"}[cut]
		for k, l := range swizzleOrder(e.rng, e.sc.Nodes) {
			if k > 0 || !cut {
				if err := sleep(ctx, every); err != nil {
					return err
				}
			}
			c := maps.Clone(e.cuts)
			c.cutBoth([]int{l[0]}, []int{l[1]}, cut)
			e.cuts = c
			e.l.setCuts(maps.Clone(c))
			e.logf("  link node%d–node%d %s", l[0], l[1], verb)
		}
	}
	e.closeSpans(spanNetwork)
	return nil
}

// flap cuts the network in two random halves and heals it, alternately,
// every Every for For; it ends healed.
func (e *engine) flap(ctx context.Context, st Step) error {
	every := st.Every.Duration
	if every <= 0 {
		every = defaultFlap
	}
	end := time.Now().Add(st.For.Duration)
	for cut := true; time.Now().Before(end); cut = !cut {
		if cut {
			a, b := flapHalves(e.rng, e.sc.Nodes)
			c := cutSet{}
			c.cutBoth(a, b, true)
			e.lay(c, true, fmt.Sprintf("flap %v|%v", a, b))
		} else {
			e.heal()
			e.logf("  healed")
		}
		if err := sleep(ctx, min(every, time.Until(end))); err != nil {
			return err
		}
	}
	e.heal()
	return nil
}

// command issues a crisis command from nodes[0]'s member and checks its
// outcome against the step's expectation.
func (e *engine) command(ctx context.Context, idx int, st Step, nodes []int) error {
	if len(nodes) == 0 {
		return errors.New("command needs a running node")
	}
	i := nodes[0]
	res, err := e.l.command(ctx, i, st, e.committed)
	if err != nil {
		return err
	}
	if (res.status == consensus.StatusRefused) != (st.Expect == "refused") || (st.Expect == "pending" && res.status != consensus.StatusPending) {
		return fmt.Errorf("node%d %s: %s (%s), expected %s: check the scenario (roles: node0 presidency and admin, then cyclone, csirt, commission, enisa in turn)",
			i, st.Kind, res.status, cmp.Or(res.detail, res.rule), cmp.Or(st.Expect, "committed or pending"))
	}
	if res.status == consensus.StatusCommitted {
		e.committed = max(e.committed, res.index)
	}
	e.mu.Lock()
	e.outcomes = append(e.outcomes, strings.TrimSpace(fmt.Sprintf("step %d node%d %s: %s %s", idx, i, st.Kind, res.status, res.rule)))
	e.mu.Unlock()
	e.logf("  %s", strings.TrimSpace(fmt.Sprintf("node%d %s: %s %s", i, st.Kind, res.status, res.detail)))
	return nil
}

// workload starts Clients clients (default 3) in the background, for For
// or to the end of the schedule.
func (e *engine) workload(st Step) {
	clients := st.Clients
	if clients <= 0 {
		clients = 3
	}
	seed := e.rng.Uint64()
	t := e.l.target()
	e.background(st.For.Duration, func(ctx context.Context) error {
		runWorkload(ctx, t, clients, seed, &e.hist)
		return nil
	})
	e.logf("  %d clients (workload seed %d)", clients, seed)
}

// background runs f until the schedule ends, or for d when d > 0.
func (e *engine) background(d time.Duration, f func(ctx context.Context) error) {
	e.bg.Go(func() {
		ctx := e.bgCtx
		if d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		if err := f(ctx); err != nil && ctx.Err() == nil {
			e.mu.Lock()
			if e.bgErr == nil {
				e.bgErr = err
			}
			e.mu.Unlock()
		}
	})
}

// stopBackground ends every background workload and returns the first
// error one met.
func (e *engine) stopBackground() error {
	if e.bgCancel != nil {
		e.bgCancel()
	}
	e.bg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bgErr
}

// check runs the layer's checkers and, when workloads ran, the
// linearizability of their history (after a last read on the leader, at
// the end), and prints the verdicts.
func (e *engine) check(ctx context.Context, step int, final bool) []Check {
	out := e.l.check(ctx, step, final)
	if n := e.hist.Len(); n > 0 {
		if final {
			e.finalRead(ctx)
			var reads, unknown int
			for _, op := range e.hist.Ops() {
				switch {
				case op.Kind == OpRead:
					reads++
				case op.Outcome == OutcomeUnknown:
					unknown++
				}
			}
			e.logf("  history: %d operations (%d reads, %d changes of unknown outcome)", e.hist.Len(), reads, unknown)
		} else {
			e.logf("  history: %d operations", n)
		}
		out = append(out, e.checkHistory(step))
	}
	for _, c := range out {
		mark := "ok"
		if !c.OK {
			mark = "FAILED: " + c.Detail
		}
		e.logf("  check %-40s %s", c.Name, mark)
	}
	return out
}

// finalRead adds a linearizable read on the leader, after convergence, to
// the history: every committed change must show in it.
func (e *engine) finalRead(ctx context.Context) {
	t := e.l.target()
	client := e.hist.reserveClients(1)
	for range 20 {
		call := e.hist.stamp()
		if set, err := t.Read(ctx, max(e.l.leader(), 0)); err == nil {
			e.hist.read(client, call, set)
			return
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
	e.logf("  no final read: no leader answered")
}

func verdict(name string, step int, err error) Check {
	if err != nil {
		return Check{Name: name, Step: step, Detail: err.Error()}
	}
	return Check{Name: name, Step: step, OK: true}
}

// addSample adds a sample to the timeline.
func (e *engine) addSample(s Sample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timeline.Samples = append(e.timeline.Samples, s)
}

// Kinds of fault spans: network spans end at a heal, node spans when the
// node restarts, timed spans by themselves, disk spans when the disk is
// freed, link (and clock) spans at the end.
type spanKind int

const (
	spanNetwork spanKind = iota
	spanNode
	spanTimed
	spanLink
	spanDisk
)

type openSpan struct {
	kind spanKind
	node int // for node spans
	at   int // index in timeline.Faults
}

// openSpan starts a span; a timed span (d > 0) is closed d from now.
func (e *engine) openSpan(kind spanKind, label string, d time.Duration) {
	e.openNodeSpan(kind, -1, label, d)
}

func (e *engine) openNodeSpan(kind spanKind, nodeIdx int, label string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Since(e.start)
	sp := Span{From: now, Label: label}
	if d > 0 {
		sp.To = now + d
	}
	e.timeline.Faults = append(e.timeline.Faults, sp)
	if d == 0 {
		e.spans = append(e.spans, openSpan{kind: kind, node: nodeIdx, at: len(e.timeline.Faults) - 1})
	}
}

// closeSpans ends the open spans of a kind (of one node for node spans;
// node -1: all).
func (e *engine) closeSpans(kind spanKind) { e.closeNodeSpans(kind, -1) }

func (e *engine) closeNodeSpans(kind spanKind, nodeIdx int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Since(e.start)
	keep := e.spans[:0]
	for _, s := range e.spans {
		if s.kind == kind && (nodeIdx < 0 || s.node == nodeIdx) {
			e.timeline.Faults[s.at].To = now
			continue
		}
		keep = append(keep, s)
	}
	e.spans = keep
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitUntil polls cond until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
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
