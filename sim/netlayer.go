package sim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
	"github.com/crisismesh/crisismesh/replication/sync"
	"github.com/crisismesh/crisismesh/transport"
)

// The network layer (the default): real nodes, each opened by node.Open
// as `crisismesh run` opens it, on real libp2p on 127.0.0.1 with one
// shared transport.Faults, badger in data directories that survive a
// crash, real crypto.

// netLayer is the network layer of one run.
type netLayer struct {
	e      *engine
	dir    string
	specs  []node.TestnetNode
	index  map[peer.ID]int
	faults *transport.Faults
	logs   *nodeLogs
	cuts   cutSet // what faults holds now: the schedule's goroutine only

	nodesMu gosync.RWMutex
	nodes   []*node.Node // nil while crashed

	mu          gosync.Mutex
	acked       []ackedEntry
	forkers     []crypto.MemberID // authors made to equivocate
	forged      []log.Hash        // entries that must never be accepted
	edForged    []crypto.MemberID // members an Ed25519-only forger wrote as (forge)
	revoked     []crypto.MemberID // members revoked by the schedule
	bombs       []bomb            // entries at the top of the Lamport clock
	disbelieved []log.Hash        // valid entries no node may show (red-to-all)
	pending     []pendingCommand  // commands expected to stay pending for now
	leaders     map[uint64]string // term → leader, as observed
	conflict    string
	counters    map[int]counters
	regress     string
	linkBytes   map[[2]int]uint64
	traffic     sync.Traffic // what crashed nodes' sync services counted
	paused      map[int]time.Time
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

// A pendingCommand is a command expected to stay pending (its node cut
// off from the leader): convergence includes its being decided.
type pendingCommand struct {
	node int
	id   crisis.ID
}

// netHooks let the demo narrate a run: up runs once the network is up,
// before the schedule; end runs after the verdict, while the nodes still
// run.
type netHooks struct {
	up  func(r *netLayer)
	end func(ctx context.Context, r *netLayer, rep *Report) error
}

func newNetLayer(e *engine) *netLayer {
	return &netLayer{e: e, cuts: cutSet{}, leaders: map[uint64]string{}, counters: map[int]counters{},
		linkBytes: map[[2]int]uint64{}, paused: map[int]time.Time{}, skew: map[int]time.Duration{}, diskFull: map[int]bool{}}
}

// runNetwork plays e's scenario on real nodes.
func runNetwork(ctx context.Context, e *engine, o Options, h *netHooks) (*Report, error) {
	sc, rep := e.sc, e.rep
	r := newNetLayer(e)
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
	e.htmlDir = r.dir
	base, err := node.FreeBasePort(sc.Nodes)
	if err != nil {
		return nil, err
	}
	var narrow *node.NarrowConfig
	if sc.NarrowInterval.Duration > 0 {
		narrow = &node.NarrowConfig{Interval: sc.NarrowInterval.Duration}
	}
	r.specs, err = node.Testnet(node.TestnetOptions{Dir: r.dir, Nodes: sc.Nodes, Voters: sc.Voters,
		BasePort: base, Now: time.Now().UTC(), Narrow: narrow})
	if err != nil {
		return nil, err
	}
	r.indexPeers()
	r.logs, err = newNodeLogs(filepath.Join(r.dir, "logs"), sc.Nodes)
	if err != nil {
		return nil, err
	}
	defer r.logs.Close()
	r.faults = transport.NewFaults(e.seed, slog.New(slog.DiscardHandler))
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
	names := make([]string, sc.Nodes)
	for i, s := range r.specs {
		names[i] = s.Name
	}
	e.begin(ctx, r, names)
	sctx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); r.sampler(sctx) }()
	defer func() { stopSampler(); <-samplerDone }()
	defer e.stopBackground()
	if h != nil && h.up != nil {
		h.up(r)
	}

	if err := e.play(ctx); err != nil {
		return rep, fmt.Errorf("%w%s", err, r.keepLogs())
	}
	// The end: stop the workloads, heal everything, free the disks,
	// restart what is down, converge, check.
	if err := e.stopBackground(); err != nil {
		return rep, fmt.Errorf("sim: background work: %w%s", err, r.keepLogs())
	}
	bytes0, traffic0, healed := totalBytes(r.links()), r.syncTraffic(), time.Now()
	r.mu.Lock()
	clear(r.diskFull)
	r.mu.Unlock()
	if err := e.settle(); err != nil {
		return rep, err
	}
	e.logf("final: healed, all nodes up; waiting for convergence (at most %s)", sc.ConvergeWithin.Duration)
	if waitUntil(ctx, sc.ConvergeWithin.Duration, r.converged) == nil {
		rep.ConvergedIn = time.Since(healed)
		rep.BytesToConverge = totalBytes(r.links()) - bytes0
		t := r.syncTraffic().Sub(traffic0)
		rep.Traffic = &t
		e.logf("converged %s after the final heal, %d bytes exchanged", rep.ConvergedIn.Round(time.Millisecond), rep.BytesToConverge)
	}
	rep.Checks = append(rep.Checks, e.check(ctx, len(sc.Steps)+1, true)...)
	stopSampler()
	<-samplerDone
	links := r.links()
	e.mu.Lock()
	e.timeline.Links = links
	e.mu.Unlock()
	r.mu.Lock()
	rep.Acked = len(r.acked)
	r.mu.Unlock()
	e.conclude(rep)
	r.keep(rep, o)
	if h != nil && h.end != nil {
		if err := h.end(ctx, r, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// keep draws the plots and writes the report into o.Report, and, on
// failure, keeps the evidence there (or in a new temporary directory).
func (r *netLayer) keep(rep *Report, o Options) {
	out := o.Report
	if out == "" && !rep.OK {
		d, err := os.MkdirTemp("", "crisismesh-sim-failed-")
		if err != nil {
			r.e.logf("cannot keep the evidence: %v", err)
			return
		}
		out = d
	}
	if out == "" {
		return
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		r.e.logf("report directory: %v", err)
		return
	}
	if o.Report != "" {
		writeReport(rep, out, r.e.logf)
	}
	if !rep.OK {
		r.logs.Close()
		files, err := r.logs.CopyTo(filepath.Join(out, "logs"))
		if err != nil {
			r.e.logf("keeping the node logs: %v", err)
		}
		rep.Files = append(rep.Files, files...)
		for _, c := range rep.Checks {
			if c.File != "" {
				dst := filepath.Join(out, filepath.Base(c.File))
				if err := copyFile(c.File, dst); err != nil {
					r.e.logf("keeping %s: %v", c.File, err)
					continue
				}
				rep.Files = append(rep.Files, dst)
			}
		}
		r.e.logf("evidence kept in %s", out)
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
func (r *netLayer) keepLogs() string {
	d, err := os.MkdirTemp("", "crisismesh-sim-failed-")
	if err != nil {
		return ""
	}
	if _, err := r.logs.CopyTo(d); err != nil {
		return ""
	}
	return " (node logs kept in " + d + ")"
}

func (r *netLayer) closeAll() {
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
func (r *netLayer) node(i int) *node.Node {
	r.nodesMu.RLock()
	defer r.nodesMu.RUnlock()
	return r.nodes[i]
}

func (r *netLayer) open(i int) error {
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
func (r *netLayer) noteLeader(term uint64, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.leaders[term]; ok && prev != name && r.conflict == "" {
		r.conflict = fmt.Sprintf("term %d: %s and %s", term, prev, name)
	}
	r.leaders[term] = name
}

// setCuts makes the faults hold exactly c. A link that loses a cut is
// reconnected first; then each link is cut as c says: both ways (a
// partition) or one way (a one-way cut). No cut at all is a heal, which
// also has every host reconnect at once.
func (r *netLayer) setCuts(c cutSet) {
	old := r.cuts
	r.cuts = c
	if len(c) == 0 {
		r.faults.Heal()
		return
	}
	for _, p := range allPairs(indexes(len(r.specs))) {
		a, b := p[0], p[1]
		was := [2]bool{old[[2]int{a, b}], old[[2]int{b, a}]}
		now := [2]bool{c[[2]int{a, b}], c[[2]int{b, a}]}
		if was == now {
			continue
		}
		pa, pb := peerOf(r.specs[a]), peerOf(r.specs[b])
		if (was[0] && !now[0]) || (was[1] && !now[1]) {
			r.faults.Reconnect(pa, pb)
			was = [2]bool{}
		}
		switch {
		case now[0] && now[1]:
			r.faults.Partition([]peer.ID{pa}, []peer.ID{pb})
		case now[0] && !was[0]:
			r.faults.CutOneWay(pa, pb)
		case now[1] && !was[1]:
			r.faults.CutOneWay(pb, pa)
		}
	}
}

// crash closes node i without drain, keeping what it counted.
func (r *netLayer) crash(i int) (bool, error) {
	r.nodesMu.Lock()
	n := r.nodes[i]
	r.nodes[i] = nil
	r.nodesMu.Unlock()
	if n == nil {
		return false, nil
	}
	r.noteCounters(i, n, "before crash")
	r.noteLinks(i, n)
	n.Close()
	return true, nil
}

// restart reopens node i from its directory.
func (r *netLayer) restart(i int) (bool, error) {
	if r.node(i) != nil {
		return false, nil
	}
	return true, r.open(i)
}

// snapshot returns the nodes as they are now (nil: down).
func (r *netLayer) snapshot() []*node.Node {
	r.nodesMu.RLock()
	defer r.nodesMu.RUnlock()
	return append([]*node.Node(nil), r.nodes...)
}

// leader returns the index of the running node that leads, or -1.
func (r *netLayer) leader() int {
	for i, n := range r.snapshot() {
		if n != nil && n.Consensus().IsLeader() {
			return i
		}
	}
	return -1
}

func (r *netLayer) keyed() bool {
	for _, n := range r.snapshot() {
		if n != nil {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
	}
	return true
}

func (r *netLayer) peers(idx []int) []peer.ID {
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

func (r *netLayer) target() Target { return netTarget{r} }

func (r *netLayer) check(ctx context.Context, step int, final bool) []Check {
	return r.checkAll(ctx, step, final)
}

// command issues the step's command through node i's Command, as the CLI
// and the API do. Proposed through the log, it waits a little for the
// outcome, as a person would before the next command (on a minority side
// it stays pending), unless it is expected to stay pending.
func (r *netLayer) command(ctx context.Context, i int, st Step, after uint64) (commandResult, error) {
	n := r.node(i)
	if n == nil {
		return commandResult{}, errors.New("command needs a running node")
	}
	_ = waitUntil(ctx, outcomeWait, func() bool { return n.Consensus().Local().Index >= after })
	cmd, err := node.ToCommand(st.request())
	if err != nil {
		return commandResult{}, err
	}
	res, err := n.Command(ctx, cmd)
	if err != nil {
		return commandResult{}, err
	}
	switch {
	case res.Status == node.StatusPending && st.Expect == "pending":
		if id, err := crisis.ParseID(res.ID); err == nil {
			r.mu.Lock()
			r.pending = append(r.pending, pendingCommand{node: i, id: id})
			r.mu.Unlock()
		}
	case res.Status == node.StatusPending:
		r.e.logf("  node%d proposes %s through the log (not the leader): pending", i, st.Kind)
		awaitOutcome(ctx, n, &res)
	}
	out := commandResult{status: consensus.Status(res.Status), rule: res.Rule, detail: res.Detail, index: res.Index}
	if res.Status == node.StatusCommitted {
		out.detail = fmt.Sprintf("at term %d, index %d", res.Term, res.Index)
	}
	return out, nil
}

// act runs the steps of the network layer alone.
func (r *netLayer) act(ctx context.Context, idx int, st Step, nodes []int) ([]Check, error) {
	switch st.Do {
	case DoPost:
		if st.Every.Duration > 0 {
			// A rate: post in the background, Every apart, for For (or
			// until the end of the schedule).
			// Its own generator, seeded now: the schedule's goes on
			// with the next steps meanwhile.
			rng := rand.New(rand.NewPCG(r.e.rng.Uint64(), 0x9057))
			r.e.background(st.For.Duration, func(ctx context.Context) error { return r.postEvery(ctx, idx, st, nodes, rng) })
			return nil, nil
		}
		return nil, r.post(ctx, idx, st, nodes, max(st.Count, 1), r.e.rng)
	case DoLink:
		ids := r.peers(nodes)
		for a := range ids {
			for b := a + 1; b < len(ids); b++ {
				r.faults.SetLink(ids[a], ids[b], linkOf(st))
			}
		}
		if st.Link == "satellite" {
			// As the operators of a satellite member pin its peers'
			// profile (its round trip is measured only slowly): the
			// satellite profile's timeouts, and a narrow link.
			for _, a := range nodes {
				for _, b := range nodes {
					if n := r.node(a); n != nil && a != b {
						if err := n.Host().PinProfile(peerOf(r.specs[b]), transport.ProfileSatellite); err != nil {
							return nil, err
						}
					}
				}
			}
		}
		r.e.openSpan(spanLink, fmt.Sprintf("%s link %v", st.Link, nodes), 0)
	case DoOutage:
		others := nodes[1:]
		if len(others) == 0 {
			for i := range r.specs {
				if i != nodes[0] {
					others = append(others, i)
				}
			}
		}
		for _, o := range others {
			r.faults.Stall(peerOf(r.specs[nodes[0]]), peerOf(r.specs[o]), st.For.Duration)
		}
		r.e.openSpan(spanTimed, fmt.Sprintf("outage node%d–%v %s", nodes[0], others, st.For.Duration), st.For.Duration)
	case DoPause:
		for _, i := range nodes {
			for j := range r.specs {
				if j != i {
					r.faults.Stall(peerOf(r.specs[i]), peerOf(r.specs[j]), st.For.Duration)
				}
			}
			r.setPaused(i, st.For.Duration)
		}
		r.e.openSpan(spanTimed, fmt.Sprintf("node%v paused %s", nodes, st.For.Duration), st.For.Duration)
	case DoConverge:
		d := st.For.Duration
		if d == 0 {
			d = r.e.sc.ConvergeWithin.Duration
		}
		converged, diverged := r.converged, func() error { return cmp.Or(divergence(r.running()), r.undecided()) }
		if len(st.Groups) > 0 {
			diverged = func() error { return r.groupsDiverge(st.Groups) }
			converged = func() bool { return diverged() == nil }
		}
		if err := waitUntil(ctx, d, converged); err != nil {
			c := Check{Name: InvConverged, Step: idx, Detail: fmt.Sprintf("not within %s: %v", d, cmp.Or(diverged(), err))}
			r.e.logf("  check %-40s FAILED: %s", c.Name, c.Detail)
			return []Check{c}, nil
		}
		r.e.logf("  converged")
	case DoShow:
		r.show(ctx, nodes)
	case DoEquivocate:
		return nil, r.equivocate(ctx, idx, nodes[0], nodes[1])
	case DoForge:
		return nil, r.forge(ctx, nodes[0])
	case DoRevoke:
		return nil, r.revoke(ctx, nodes[0], nodes[1])
	case DoVoters, DoGroup:
		return nil, r.changeRoster(ctx, st, nodes[0], nodes[1:])
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
		r.e.openSpan(spanLink, fmt.Sprintf("clock of node%v %+v", nodes, st.Skew.Duration), 0)
	case DoDiskFull, DoDiskFree:
		r.mu.Lock()
		for _, i := range nodes {
			r.diskFull[i] = st.Do == DoDiskFull
		}
		r.mu.Unlock()
		if st.Do == DoDiskFull {
			r.e.openSpan(spanDisk, fmt.Sprintf("disk of node%v full", nodes), 0)
		} else {
			r.e.closeSpans(spanDisk)
		}
	default:
		return nil, fmt.Errorf("%s: not an action of the network layer", st.Do)
	}
	return nil, nil
}

// namedLinks are the links a "link" step names.
var namedLinks = map[string]func() transport.Link{
	"satellite": transport.SatelliteLink,
	// narrow: a thin terrestrial backup line (an ISDN-era leased line,
	// a congested VPN): 64 kbit/s, 50 ms each way.
	"narrow": func() transport.Link { return transport.Link{Latency: 50 * time.Millisecond, Bandwidth: 64_000} },
	// internet: a long-distance path with room to spare.
	"internet": func() transport.Link { return transport.Link{Latency: 20 * time.Millisecond, Bandwidth: 10_000_000} },
}

// linkOf is the link a "link" step lays.
func linkOf(st Step) transport.Link {
	if st.Link == "custom" {
		return transport.Link{Latency: st.Latency.Duration, Bandwidth: st.Bandwidth, Loss: st.Loss}
	}
	return namedLinks[st.Link]()
}

// show prints what nodes (every running one when none is named) hold:
// their log digest and the crisis state they show.
func (r *netLayer) show(ctx context.Context, nodes []int) {
	if len(nodes) == 0 {
		nodes = indexes(len(r.specs))
	}
	for _, i := range nodes {
		n := r.node(i)
		if n == nil {
			r.e.logf("  node%d is down", i)
			continue
		}
		cv, _ := n.Crisis(ctx, false)
		r.e.logf("  node%d: log digest %s… (%d entries), crisis: %s", i, n.Store().Digest().String()[:12], entryCount(n), cv.Summary)
	}
}

// post has each of nodes (one drawn from rng when none) post count
// entries.
func (r *netLayer) post(ctx context.Context, idx int, st Step, nodes []int, count int, rng *rand.Rand) error {
	prio := st.Priority
	if prio == "" {
		prio = "routine"
	}
	targets := nodes
	if len(targets) == 0 {
		targets = []int{rng.IntN(len(r.specs))}
	}
	req := node.PostRequest{Kind: cmp.Or(st.Kind, "sitrep"), TLP: cmp.Or(st.TLP, "green"), Priority: prio}
	var readers []int
	if len(st.To) > 0 {
		req.TLP = "red"
		for _, t := range st.To {
			req.To = append(req.To, r.specs[t].Name)
		}
		readers = st.To
	}
	req.Group = st.Group
	for _, i := range targets {
		n := r.node(i)
		if n == nil || r.isPaused(i) {
			continue
		}
		if st.Group != "" {
			// A person posts to a group once their node shows them in it.
			err := waitUntil(ctx, r.e.sc.ConvergeWithin.Duration, func() bool {
				ids, _ := n.Store().Roster().Group(st.Group)
				return slices.Contains(ids, n.Identity().ID())
			})
			if err != nil {
				return fmt.Errorf("node%d is not in group %s: %w", i, st.Group, err)
			}
		}
		for k := 0; k < count; k++ {
			req.Text = fmt.Sprintf("node%d step %d #%d", i, idx, k)
			if st.Text != "" {
				req.Text = strings.ReplaceAll(st.Text, "{n}", fmt.Sprint(k+1))
			}
			var before []crypto.MemberID
			if st.Group != "" {
				before, _ = n.Store().Roster().Group(st.Group)
			}
			e, err := n.Post(ctx, req)
			if err != nil && !n.Store().Roster().Active(n.Identity().ID()) {
				r.e.logf("  node%d may not write any more (revoked): %v", i, err)
				break
			}
			if err != nil && r.node(i) != n {
				break // crashed meanwhile: nothing was acknowledged
			}
			if errors.Is(err, store.ErrDiskFull) {
				r.e.logf("  node%d refuses to write, as it must: %v", i, err)
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
			if st.Group != "" {
				// Sealed to exactly the group as the node knew it just
				// before or just after the post (a roster update may land
				// in between): those members read it, nobody else.
				sealed := sortedMembers(n.Store().KeyRecipients(e.Header.KeyID))
				after, _ := n.Store().Roster().Group(st.Group)
				if !slices.Equal(sealed, sortedMembers(before)) && !slices.Equal(sealed, sortedMembers(after)) {
					r.mu.Unlock()
					return fmt.Errorf("node%d sealed a post to group %s under a key of %d members; the group had %d before and %d after", i, st.Group, len(sealed), len(before), len(after))
				}
				a.readers = r.readersOf(n, sealed)
			}
			r.acked = append(r.acked, a)
			r.mu.Unlock()
			if st.Text != "" { // a narrated post
				r.e.logf("  node%d posts %s TLP:%s %s: %q", i, req.Kind, strings.ToUpper(req.TLP), prio, req.Text)
			}
		}
	}
	return nil
}

// postEvery posts Count entries (default 1) Every apart until ctx ends.
func (r *netLayer) postEvery(ctx context.Context, idx int, st Step, nodes []int, rng *rand.Rand) error {
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
func (r *netLayer) clockSkew(i int) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skew[i]
}

// freeSpace is what node i's disk reports: nothing while the schedule
// says it is full, else plenty (the simulation's disk is a temporary
// directory; a really full one is the store's own tests' business).
func (r *netLayer) freeSpace(i int) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.diskFull[i] {
		return 0
	}
	return 1 << 40
}

func (r *netLayer) setPaused(i int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused[i] = time.Now().Add(d)
}

func (r *netLayer) isPaused(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Now().Before(r.paused[i])
}

// equivocate makes node a's key sign two different entries at one seq: one
// handed to node w, one posted by a itself.
func (r *netLayer) equivocate(ctx context.Context, idx, a, w int) error {
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
// log, and every command expected to stay pending was decided on its node
// (when it runs).
func (r *netLayer) converged() bool { return divergence(r.running()) == nil && r.undecided() == nil }

// groupsDiverge names a running node whose log differs from another's in
// its group, if any (a partition's sides converging each on its own).
func (r *netLayer) groupsDiverge(groups [][]int) error {
	ns := r.running()
	for _, g := range groups {
		var in []running
		for _, rn := range ns {
			if slices.Contains(g, rn.index) {
				in = append(in, rn)
			}
		}
		if err := divergence(in); err != nil {
			return err
		}
	}
	return nil
}

// undecided names a command expected to stay pending that its running
// node has not seen decided yet, if any.
func (r *netLayer) undecided() error {
	r.mu.Lock()
	pending := append([]pendingCommand(nil), r.pending...)
	r.mu.Unlock()
	for _, p := range pending {
		if n := r.node(p.node); n != nil {
			if _, ok := n.Consensus().Outcome(p.id); !ok {
				return fmt.Errorf("node%d's command %s is not decided yet", p.node, p.id)
			}
		}
	}
	return nil
}

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

// changeRoster has admin node a make nodes the voters (DoVoters) or the
// members of group st.Group (DoGroup), in one roster update.
func (r *netLayer) changeRoster(ctx context.Context, st Step, a int, nodes []int) error {
	na := r.node(a)
	if na == nil {
		return fmt.Errorf("%s needs node %d running", st.Do, a)
	}
	roster := na.Store().Roster()
	var ids []crypto.MemberID
	for _, i := range nodes {
		m, ok := roster.ByName(r.specs[i].Name)
		if !ok {
			return fmt.Errorf("%s: node%d is not in node%d's roster", st.Do, i, a)
		}
		ids = append(ids, m.Card.ID())
	}
	spec := crypto.UpdateSpec{Op: crypto.OpVoters, Members: ids, Created: time.Now()}
	if st.Do == DoGroup {
		spec = crypto.UpdateSpec{Op: crypto.OpGroup, Group: st.Group, Members: ids, Created: time.Now()}
	}
	u, err := crypto.NewUpdate(na.Store().Roster(), spec, na.Identity())
	if err != nil {
		return err
	}
	if _, err := na.Store().AppendRosterUpdate(ctx, u); err != nil {
		return err
	}
	r.e.logf("  node%d sets %s to nodes %v (roster version %d)", a, cmp.Or(st.Group, "the voters"), nodes, u.Version())
	return nil
}

// readersOf returns the nodes whose members (in node n's roster) are ids.
func (r *netLayer) readersOf(n *node.Node, ids []crypto.MemberID) []int {
	roster := n.Store().Roster()
	var out []int
	for i, spec := range r.specs {
		if m, ok := roster.ByName(spec.Name); ok && slices.Contains(ids, m.Card.ID()) {
			out = append(out, i)
		}
	}
	return out
}

func sortedMembers(ids []crypto.MemberID) []crypto.MemberID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b crypto.MemberID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// revoke has admin node a revoke member node m, keeping m's feed up to the
// head a holds of it.
func (r *netLayer) revoke(ctx context.Context, a, m int) error {
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
	r.e.logf("  node%d revoked node%d, keeping its feed up to seq %d", a, m, head.Seq)
	return nil
}
