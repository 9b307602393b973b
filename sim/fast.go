package sim

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// The Raft layer ("layer = raft"): only the Raft members of the crisis
// state, each with an in-memory crisis-log store and Raft stores, over
// Raft's in-memory transport. No sockets, no disk, no wall clock of its
// own: under tests it runs inside a testing/synctest bubble, where a minute
// of faults takes well under a second.
//
// Links are directed: cut[a→b] means that a's requests no longer reach b
// (InmemTransport routes per direction: a cannot call b, while b can still
// call a and hear its answers). A partition or an isolation cuts both
// directions; one-way cuts one. Partition, isolate and one-way add cuts
// to those in force; ring, bridge and flap replace them (each lays out a
// whole network: a ring in index order, a bridge between the other members
// split in two in index order); heal removes them all.
//
// A crash shuts the engine down (no drain, no leadership transfer) and
// keeps its stores (the Raft log and stable store, the snapshots and the
// crisis log), as a data directory survives a crashed process; a restart
// starts a new engine on them with a new transport. A restart that names
// no nodes restarts every member that is down.
//
// The crisis log is carried between members as sync would carry it, over
// the same links (every carryEvery, each member hands every member it
// reaches the entries that member lacks): proposals written by members
// that do not lead reach the leader, and checkpoints reach everyone.
//
// A replay (--seed) repeats the schedule and every random choice of the
// faults and workloads; Raft's own election timers and the goroutine
// schedule are not under the seed, so a replay follows the same plan but
// not necessarily the same interleaving.

const (
	carryEvery     = 100 * time.Millisecond // the emulated sync's period
	changeTimeout  = 5 * time.Second        // how long a client waits for an outcome
	outcomePoll    = 20 * time.Millisecond
	upWithin       = 30 * time.Second // bound on the first election
	defaultSwizzle = 500 * time.Millisecond
	defaultFlap    = time.Second
)

// raftMember is one member of the Raft layer. Its stores survive crashes.
type raftMember struct {
	name  string
	id    *crypto.Identity
	addr  raft.ServerAddress
	store *store.Store
	logs  *raft.InmemStore // Raft log and stable store
	snaps *raft.InmemSnapshotStore

	// Guarded by raftRun.mu; nil while the member is down.
	trans *raft.InmemTransport
	eng   *consensus.Engine
}

// leaderObs is one observation: node became leader in term.
type leaderObs struct {
	term uint64
	node string
}

// raftRun is one execution of a Raft-layer scenario.
type raftRun struct {
	sc      *Scenario
	seed    uint64
	rng     *rand.Rand // the schedule's: used by the step goroutine only
	out     io.Writer
	htmlDir string
	start   time.Time
	genesis *crypto.Genesis
	members []*raftMember
	hist    History
	// wrap, when set, wraps the workloads' target (tests inject bugs).
	wrap func(*raftRun, Target) Target

	bgCtx     context.Context
	bgCancel  context.CancelFunc
	workloads gosync.WaitGroup
	carrier   gosync.WaitGroup

	mu       gosync.Mutex
	cut      map[[2]int]bool // [from, to]: from's requests do not reach to
	leaders  []leaderObs
	outcomes []string
	stops    []context.CancelFunc // of the running workloads
	timeline Timeline
	stepName string // the step running, to label the faults it lays
	cutSince int    // index of the open "links cut" span, -1 when none
	sampler  gosync.WaitGroup
}

// executeRaft runs a scenario of the Raft layer and returns its report; an
// error means the run could not be carried out (not that an invariant
// failed: see Report.OK). The seed rule, the report and the progress lines
// are Execute's.
func executeRaft(ctx context.Context, sc *Scenario, file string, o Options) (*Report, error) {
	return runRaft(ctx, sc, file, o, nil)
}

// runRaft is executeRaft with an optional wrapper of the workloads' target.
func runRaft(ctx context.Context, sc *Scenario, file string, o Options, wrap func(*raftRun, Target) Target) (*Report, error) {
	seed := pickSeed(sc, o)
	r := &raftRun{sc: sc, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), out: o.Out, htmlDir: o.Dir,
		start: time.Now(), wrap: wrap, cut: map[[2]int]bool{}}
	if r.out == nil {
		r.out = io.Discard
	}
	if r.htmlDir == "" {
		r.htmlDir = os.TempDir()
	}
	rep := &Report{Scenario: sc.Name, Seed: seed, Nodes: sc.Nodes, Steps: len(sc.Steps),
		Replay: fmt.Sprintf("crisismesh sim run %s --seed %d", file, seed)}
	fmt.Fprintf(r.out, "scenario %s, seed %d (replay: %s)\n", sc.Name, seed, rep.Replay)

	r.bgCtx, r.bgCancel = context.WithCancel(ctx)
	defer r.close()
	if err := r.setup(); err != nil {
		return nil, err
	}
	r.carrier.Go(r.carry)
	if err := waitUntil(ctx, upWithin, func() bool { return r.leader() >= 0 }); err != nil {
		return nil, fmt.Errorf("sim: no Raft leader came up: %w", err)
	}
	r.start = time.Now() // the timeline starts with the schedule
	r.cutSince = -1
	for _, m := range r.members {
		r.timeline.Nodes = append(r.timeline.Nodes, m.name)
	}
	sampling, stopSampling := context.WithCancel(r.bgCtx)
	defer stopSampling()
	r.sampler.Go(func() { r.sample(sampling) })
	for i, st := range sc.Steps {
		r.mu.Lock()
		r.stepName = fmt.Sprintf("step %d: %s", i+1, describe(st))
		r.mu.Unlock()
		r.logf("step %d: %s", i+1, describe(st))
		checks, err := r.step(ctx, i+1, st)
		if err != nil {
			return rep, fmt.Errorf("sim: step %d (%s): %w", i+1, st.Do, err)
		}
		rep.Checks = append(rep.Checks, checks...)
	}
	// The end: stop the workloads, heal, restart what is down, converge,
	// check.
	r.mu.Lock()
	for _, stop := range r.stops {
		stop()
	}
	r.mu.Unlock()
	r.workloads.Wait()
	r.mu.Lock()
	clear(r.cut)
	r.mu.Unlock()
	for i, m := range r.members {
		if r.engine(i) == nil {
			if err := r.startMember(m); err != nil {
				return rep, err
			}
		}
	}
	r.applyLinks()
	r.logf("final: healed, all members up; waiting for the same applied index (at most %s)", sc.ConvergeWithin.Duration)
	rep.Checks = append(rep.Checks, r.checkAll(ctx, len(sc.Steps)+1, true)...)
	rep.OK = true
	for _, c := range rep.Checks {
		if !c.OK {
			rep.OK = false
		}
	}
	stopSampling()
	r.sampler.Wait()
	r.mu.Lock()
	rep.Commands = r.outcomes
	if r.cutSince >= 0 {
		r.timeline.Faults[r.cutSince].To = time.Since(r.start)
	}
	tl := r.timeline
	r.mu.Unlock()
	rep.Timeline = &tl
	rep.Duration = time.Since(r.start)
	for _, c := range rep.Checks {
		if !c.OK && rep.Failed == "" {
			rep.Failed = fmt.Sprintf("%s (step %d): %s", c.Name, c.Step, c.Detail)
		}
	}
	if o.Report != "" {
		writeReport(rep, o.Report, r.logf)
	}
	return rep, nil
}

// sample records the timeline until ctx ends: every member's crisis-log
// entries (-1 while down), who leads in which term, and while any link is
// cut, a fault span named after the step that cut it.
func (r *raftRun) sample(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s := Sample{At: time.Since(r.start), Entries: make([]int, len(r.members)), Leader: -1}
		for i, m := range r.members {
			e := r.engine(i)
			if e == nil {
				s.Entries[i] = -1
				continue
			}
			for _, h := range m.store.Frontier() {
				s.Entries[i] += int(h.Seq)
			}
			s.Term = max(s.Term, e.Raft().CurrentTerm()) // the newest term, led or not
			if e.IsLeader() {
				s.Leader = i
			}
		}
		r.mu.Lock()
		r.timeline.Samples = append(r.timeline.Samples, s)
		switch {
		case len(r.cut) > 0 && r.cutSince < 0:
			r.timeline.Faults = append(r.timeline.Faults, Span{From: s.At, Label: "links cut (" + r.stepName + ")"})
			r.cutSince = len(r.timeline.Faults) - 1
		case len(r.cut) == 0 && r.cutSince >= 0:
			r.timeline.Faults[r.cutSince].To = s.At
			r.cutSince = -1
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *raftRun) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// simRoles is the cycle of roles, node0 first (node0 is also admin), as the
// testnet's. Every member also holds csirt, so that any node's member may
// change the affected member states (the workload's command).
var simRoles = []crypto.Role{crypto.RolePresidency, crypto.RoleCyclone, crypto.RoleCSIRT, crypto.RoleCommission, crypto.RoleENISA}

// setup makes the cast (identities, genesis with the roster's voters, the
// network key) and starts every member.
func (r *raftRun) setup() error {
	now := time.Now()
	n := r.sc.Nodes
	ids := make([]*crypto.Identity, n)
	spec := crypto.GenesisSpec{Network: "sim-raft", Created: now}
	var recips []crypto.Recipient
	for i := range ids {
		id, err := crypto.NewIdentity(fmt.Sprintf("node%d", i), now)
		if err != nil {
			return fmt.Errorf("sim: identity of node%d: %w", i, err)
		}
		ids[i] = id
		roles := []crypto.Role{simRoles[i%len(simRoles)]}
		if roles[0] != crypto.RoleCSIRT && roles[0] != crypto.RoleCyclone {
			roles = append(roles, crypto.RoleCSIRT)
		}
		if i == 0 {
			roles = append(roles, crypto.RoleAdmin)
			spec.Admins = []crypto.MemberID{id.ID()}
		}
		spec.Members = append(spec.Members, crypto.Member{Card: id.Card(), Roles: roles})
		if i < r.sc.Voters {
			spec.Voters = append(spec.Voters, id.ID())
		}
		recips = append(recips, id.Card().Recipient())
	}
	g, err := crypto.NewGenesis(spec, ids[0])
	if err != nil {
		return fmt.Errorf("sim: genesis: %w", err)
	}
	r.genesis = g
	key, err := crypto.NewGroupKey("all", 1)
	if err != nil {
		return fmt.Errorf("sim: network key: %w", err)
	}
	env, err := crypto.NewKeyEnvelope(g.NetworkID(), key, recips)
	if err != nil {
		return fmt.Errorf("sim: network key: %w", err)
	}
	keyEntry, err := log.Build(ids[0], g.NetworkID(), log.Tip{}, 0, now,
		[]log.Draft{{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: env.Bytes()}}})
	if err != nil {
		return fmt.Errorf("sim: key entry: %w", err)
	}
	for i, id := range ids {
		st, err := store.Open("", g, id, store.Options{InMemory: true})
		if err != nil {
			return fmt.Errorf("sim: store of node%d: %w", i, err)
		}
		m := &raftMember{name: fmt.Sprintf("node%d", i), id: id, addr: raft.ServerAddress(consensus.ServerID(id.Card())),
			store: st, logs: raft.NewInmemStore(), snaps: raft.NewInmemSnapshotStore()}
		r.members = append(r.members, m)
		if _, err := st.Ingest(context.Background(), keyEntry...); err != nil {
			return fmt.Errorf("sim: key entry on node%d: %w", i, err)
		}
	}
	for _, m := range r.members {
		if err := r.startMember(m); err != nil {
			return err
		}
	}
	r.applyLinks()
	return nil
}

// config is the engine configuration over m's stores.
func (m *raftMember) config(g *crypto.Genesis, trans raft.Transport) consensus.Config {
	return consensus.Config{Store: m.store, Identity: m.id, Genesis: g, Transport: trans, Snapshots: m.snaps,
		RaftLogs: m.logs, RaftStable: m.logs}
}

// startMember starts a new engine, with a new transport, on m's stores,
// and links it as the current cuts say.
func (r *raftRun) startMember(m *raftMember) error {
	_, trans := raft.NewInmemTransport(m.addr)
	eng, err := consensus.New(m.config(r.genesis, trans))
	if err != nil {
		return fmt.Errorf("sim: start %s: %w", m.name, err)
	}
	// Record who leads in which term, from Raft's own goroutine (the term
	// is exact there).
	name := m.name
	eng.Raft().RegisterObserver(raft.NewObserver(make(chan raft.Observation, 1), false, func(o *raft.Observation) bool {
		if st, ok := o.Data.(raft.RaftState); ok && st == raft.Leader {
			term := o.Raft.CurrentTerm()
			r.mu.Lock()
			r.leaders = append(r.leaders, leaderObs{term: term, node: name})
			r.mu.Unlock()
		}
		return false
	}))
	r.mu.Lock()
	m.trans, m.eng = trans, eng
	r.mu.Unlock()
	r.applyLinks()
	return nil
}

// crash shuts member i down without a drain; its stores stay.
func (r *raftRun) crash(i int) error {
	r.mu.Lock()
	m := r.members[i]
	eng, trans := m.eng, m.trans
	m.eng, m.trans = nil, nil
	r.mu.Unlock()
	if eng == nil {
		return nil
	}
	trans.DisconnectAll()
	r.applyLinks() // the others stop reaching it
	if err := eng.Close(); err != nil {
		return fmt.Errorf("sim: crash %s: %w", m.name, err)
	}
	return nil
}

// close stops everything the run started and waits for it.
func (r *raftRun) close() {
	r.bgCancel()
	r.workloads.Wait()
	r.carrier.Wait()
	for i := range r.members {
		r.crash(i)
	}
	for _, m := range r.members {
		m.store.Close()
	}
}

// engine returns member i's running engine, or nil.
func (r *raftRun) engine(i int) *consensus.Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[i].eng
}

// leader returns the index of a running member that leads, or -1.
func (r *raftRun) leader() int {
	for i := range r.members {
		if e := r.engine(i); e != nil && e.IsLeader() {
			return i
		}
	}
	return -1
}

// applyLinks makes every running member's transport route exactly to the
// running members its links reach.
func (r *raftRun) applyLinks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for a, ma := range r.members {
		if ma.trans == nil {
			continue
		}
		for b, mb := range r.members {
			switch {
			case a == b:
			case mb.trans == nil || r.cut[[2]int{a, b}]:
				ma.trans.Disconnect(mb.addr)
			default:
				ma.trans.Connect(mb.addr, mb.trans)
			}
		}
	}
}

// cutBetween cuts (or restores, with cut false) both directions between
// every member of as and every member of bs.
func (r *raftRun) cutBetween(as, bs []int, cut bool) {
	r.mu.Lock()
	for _, a := range as {
		for _, b := range bs {
			if a == b {
				continue
			}
			for _, k := range [][2]int{{a, b}, {b, a}} {
				if cut {
					r.cut[k] = true
				} else {
					delete(r.cut, k)
				}
			}
		}
	}
	r.mu.Unlock()
	r.applyLinks()
}

func (r *raftRun) heal() {
	r.mu.Lock()
	clear(r.cut)
	r.mu.Unlock()
	r.applyLinks()
}

// carry emulates sync: until the run ends, every carryEvery, each running
// member hands every running member it reaches the log entries it lacks.
func (r *raftRun) carry() {
	tick := time.NewTicker(carryEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.bgCtx.Done():
			return
		case <-tick.C:
		}
		var pairs [][2]*raftMember
		r.mu.Lock()
		for a, ma := range r.members {
			for b, mb := range r.members {
				if a != b && ma.eng != nil && mb.eng != nil && !r.cut[[2]int{a, b}] {
					pairs = append(pairs, [2]*raftMember{ma, mb})
				}
			}
		}
		r.mu.Unlock()
		for _, p := range pairs {
			carryEntries(r.bgCtx, p[0].store, p[1].store)
		}
	}
}

// carryEntries hands to the entries of from that to lacks, author by
// author. Failures are left to the next round, as sync leaves them.
func carryEntries(ctx context.Context, from, to *store.Store) {
	have := to.Frontier()
	for author, h := range from.Frontier() {
		if h.Seq <= have[author].Seq {
			continue
		}
		es, err := from.Feed(author, have[author].Seq, 0)
		if err != nil || len(es) == 0 {
			continue
		}
		to.Ingest(ctx, es...)
	}
}

// resolve returns a copy of nodes with -1 replaced by the leader (node 0
// when none leads).
func (r *raftRun) resolve(nodes []int) []int {
	out := slices.Clone(nodes)
	for k, n := range out {
		if n == -1 {
			out[k] = max(r.leader(), 0)
		}
	}
	return out
}

// step runs one action.
func (r *raftRun) step(ctx context.Context, idx int, st Step) ([]Check, error) {
	nodes := r.resolve(st.Nodes)
	all := make([]int, len(r.members))
	for i := range all {
		all[i] = i
	}
	switch st.Do {
	case DoCommand:
		return nil, r.command(ctx, idx, st, nodes)
	case DoPartition:
		for a := range st.Groups {
			for b := a + 1; b < len(st.Groups); b++ {
				r.cutBetween(st.Groups[a], st.Groups[b], true)
			}
		}
	case DoIsolate:
		for _, i := range nodes {
			r.cutBetween([]int{i}, all, true)
			r.logf("  node%d isolated", i)
		}
	case DoHeal:
		r.heal()
	case DoOneWay:
		if nodes[0] == nodes[1] {
			r.logf("  node%d to itself: nothing to cut", nodes[0])
			break
		}
		r.mu.Lock()
		r.cut[[2]int{nodes[0], nodes[1]}] = true
		r.mu.Unlock()
		r.applyLinks()
		r.logf("  node%d's requests no longer reach node%d; the other way still works", nodes[0], nodes[1])
	case DoRing:
		// A ring in index order: each member keeps its two neighbours.
		n := len(r.members)
		r.mu.Lock()
		clear(r.cut)
		for a := range n {
			for b := range n {
				if d := (a - b + n) % n; a != b && d != 1 && d != n-1 {
					r.cut[[2]int{a, b}] = true
				}
			}
		}
		r.mu.Unlock()
		r.applyLinks()
		r.logf("  ring %v", all)
	case DoBridge:
		// The others, in index order, split in two halves.
		var rest []int
		for _, i := range all {
			if i != nodes[0] {
				rest = append(rest, i)
			}
		}
		h1, h2 := rest[:(len(rest)+1)/2], rest[(len(rest)+1)/2:]
		r.heal()
		r.cutBetween(h1, h2, true)
		r.logf("  %v | node%d | %v", h1, nodes[0], h2)
	case DoSwizzle:
		return nil, r.swizzle(ctx, st)
	case DoFlap:
		return nil, r.flap(ctx, st)
	case DoCrash:
		for _, i := range nodes {
			if err := r.crash(i); err != nil {
				return nil, err
			}
			r.logf("  node%d crashed", i)
		}
	case DoRestart:
		if len(nodes) == 0 {
			nodes = all // every member that is down
		}
		for _, i := range nodes {
			if r.engine(i) == nil {
				if err := r.startMember(r.members[i]); err != nil {
					return nil, err
				}
				r.logf("  node%d restarted", i)
			}
		}
	case DoWait:
		return nil, sleep(ctx, st.For.Duration)
	case DoCheck:
		return r.checkAll(ctx, idx, false), nil
	case DoWorkload:
		r.startWorkload(st)
	default:
		return nil, fmt.Errorf("%s is not an action of the raft layer", st.Do)
	}
	return nil, nil
}

// swizzle cuts every link one by one in a random order, Every apart, then
// restores them one by one in another random order.
func (r *raftRun) swizzle(ctx context.Context, st Step) error {
	every := st.Every.Duration
	if every <= 0 {
		every = defaultSwizzle
	}
	var links [][2]int
	for a := range r.members {
		for b := a + 1; b < len(r.members); b++ {
			links = append(links, [2]int{a, b})
		}
	}
	for _, cut := range []bool{true, false} {
		for k, p := range r.rng.Perm(len(links)) {
			if k > 0 || !cut {
				if err := sleep(ctx, every); err != nil {
					return err
				}
			}
			l := links[p]
			r.cutBetween([]int{l[0]}, []int{l[1]}, cut)
			verb := "restored"
			if cut {
				verb = "cut"
			}
			r.logf("  link node%d–node%d %s", l[0], l[1], verb)
		}
	}
	return nil
}

// flap cuts the network in two random halves and heals it, alternately,
// every Every for For; it ends healed.
func (r *raftRun) flap(ctx context.Context, st Step) error {
	every := st.Every.Duration
	if every <= 0 {
		every = defaultFlap
	}
	end := time.Now().Add(st.For.Duration)
	for cut := true; time.Now().Before(end); cut = !cut {
		if cut {
			p := r.rng.Perm(len(r.members))
			h1, h2 := p[:len(p)/2], p[len(p)/2:]
			slices.Sort(h1)
			slices.Sort(h2)
			r.heal()
			r.cutBetween(h1, h2, true)
			r.logf("  %v | %v", h1, h2)
		} else {
			r.heal()
			r.logf("  healed")
		}
		if err := sleep(ctx, min(every, time.Until(end))); err != nil {
			return err
		}
	}
	r.heal()
	return nil
}

// command issues a crisis command from nodes[0]'s member, as the node's
// Command does.
func (r *raftRun) command(ctx context.Context, idx int, st Step, nodes []int) error {
	if len(nodes) == 0 || r.engine(nodes[0]) == nil {
		return errors.New("command needs a running node")
	}
	i := nodes[0]
	e, m := r.engine(i), r.members[i]
	cmd, err := node.CommandRequest{Kind: st.Kind, Level: st.Level, Mode: st.Mode, Title: st.Title}.ToCommand()
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(cmd.ID[:8], r.rng.Uint64())
	binary.BigEndian.PutUint64(cmd.ID[8:], r.rng.Uint64())
	if cmd.Kind != crisis.KindOpen {
		cmd.Crisis = e.Local().State.Crisis
	}
	var status, detail string
	sc, err := crisis.Sign(m.id, r.genesis.NetworkID(), cmd)
	if err != nil {
		status, detail = "refused", "malformed: "+err.Error()
	} else {
		cctx, cancel := context.WithTimeout(ctx, changeTimeout)
		res, err := e.Propose(cctx, sc)
		cancel()
		var ref *crisis.Refusal
		switch {
		case err == nil:
			status, detail = "committed", fmt.Sprintf("at term %d, index %d", res.Term, res.Index)
		case errors.Is(err, consensus.ErrProposed):
			status = "pending"
		case errors.As(err, &ref):
			status, detail = "refused", ref.Rule+": "+ref.Detail
		default:
			status, detail = "unknown", err.Error()
		}
	}
	r.mu.Lock()
	r.outcomes = append(r.outcomes, fmt.Sprintf("step %d node%d %s: %s %s", idx, i, st.Kind, status, detail))
	r.mu.Unlock()
	r.logf("  node%d %s: %s %s", i, st.Kind, status, detail)
	return nil
}

// startWorkload starts a workload in the background, for For or until the
// end of the schedule.
func (r *raftRun) startWorkload(st Step) {
	clients := st.Clients
	if clients <= 0 {
		clients = 3
	}
	seed := r.rng.Uint64()
	ctx, stop := context.WithCancel(r.bgCtx)
	if st.For.Duration > 0 {
		ctx, stop = context.WithTimeout(r.bgCtx, st.For.Duration)
	}
	r.mu.Lock()
	r.stops = append(r.stops, stop)
	r.mu.Unlock()
	var t Target = &raftTarget{r: r}
	if r.wrap != nil {
		t = r.wrap(r, t)
	}
	r.workloads.Go(func() {
		defer stop()
		runWorkload(ctx, t, clients, seed, &r.hist)
	})
	r.logf("  %d clients (workload seed %d)", clients, seed)
}

// memberView is one member's committed crisis state, for the checkers.
type memberView struct {
	node   string
	index  uint64 // the Raft index of the state
	source string // "raft", or "checkpoint" when the FSM lags the log
	state  []byte // State.MarshalBinary
}

func (r *raftRun) views() ([]memberView, error) {
	var out []memberView
	for i, m := range r.members {
		e := r.engine(i)
		if e == nil {
			continue
		}
		v := e.Local()
		b, err := v.State.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		out = append(out, memberView{node: m.name, index: v.Index, source: v.Source, state: b})
	}
	return out, nil
}

// waitConverged waits, within d, until every member runs, a leader leads,
// and every member's state machine has applied the same index, twice in a
// row (proposals still travelling may be committed after the workload
// stopped). It returns the views of the last poll.
func (r *raftRun) waitConverged(ctx context.Context, d time.Duration) ([]memberView, error) {
	var prev, vs []memberView
	err := waitUntil(ctx, d, func() bool {
		prev = vs
		var err error
		if vs, err = r.views(); err != nil || len(vs) != len(r.members) || r.leader() < 0 {
			vs = nil
			return false
		}
		for _, v := range vs {
			if v.source != "raft" || v.index != vs[0].index {
				return false
			}
		}
		return len(prev) > 0 && prev[0].index == vs[0].index
	})
	return vs, err
}

// checkOneLeader: no two members became leader in the same term.
func checkOneLeader(obs []leaderObs) error {
	by := map[uint64]string{}
	for _, o := range obs {
		if prev, ok := by[o.term]; ok && prev != o.node {
			return fmt.Errorf("two leaders in term %d: %s and %s", o.term, prev, o.node)
		}
		by[o.term] = o.node
	}
	return nil
}

// checkSameState: members whose state machines stand at the same index
// hold the same crisis state; with all, every member stands at the same
// index too.
func checkSameState(vs []memberView, all bool) error {
	at := map[uint64]memberView{}
	for _, v := range vs {
		if v.source != "raft" {
			continue // a checkpoint is another member's word, not this FSM's
		}
		if all && v.index != vs[0].index {
			return fmt.Errorf("%s applied index %d, %s index %d", v.node, v.index, vs[0].node, vs[0].index)
		}
		if w, ok := at[v.index]; ok && !bytes.Equal(w.state, v.state) {
			return fmt.Errorf("%s and %s hold different crisis states at index %d", w.node, v.node, v.index)
		}
		at[v.index] = v
	}
	return nil
}

// checkAll runs the checkers. With final, it first waits (within the
// scenario's bound) until every member applied the same index, and adds
// one last linearizable read to the history.
func (r *raftRun) checkAll(ctx context.Context, step int, final bool) []Check {
	var vs []memberView
	var err error
	if final {
		if vs, err = r.waitConverged(ctx, r.sc.ConvergeWithin.Duration); err != nil {
			err = fmt.Errorf("the members did not reach the same applied index: %w", err)
		} else {
			r.finalRead(ctx)
		}
	} else {
		vs, err = r.views()
	}
	if err == nil {
		err = checkSameState(vs, final)
	}
	r.mu.Lock()
	obs := slices.Clone(r.leaders)
	r.mu.Unlock()
	out := []Check{verdict(InvOneLeader, step, checkOneLeader(obs))}
	out = append(out, verdict(InvCrisisState, step, err))
	if n := r.hist.Len(); n > 0 {
		if final {
			var reads, unknown int
			for _, op := range r.hist.Ops() {
				switch {
				case op.Kind == OpRead:
					reads++
				case op.Outcome == OutcomeUnknown:
					unknown++
				}
			}
			r.logf("  history: %d operations (%d reads, %d changes of unknown outcome)", n, reads, unknown)
		}
		out = append(out, verdict(InvLinearizable, step, checkLinearizable(&r.hist, r.htmlPath(step))))
	}
	for _, c := range out {
		mark := "ok"
		if !c.OK {
			mark = "FAILED: " + c.Detail
		}
		r.logf("  check %-40s %s", c.Name, mark)
	}
	return out
}

// finalRead adds a linearizable read on the leader, after convergence, to
// a history that has changes: every committed change must show in it.
func (r *raftRun) finalRead(ctx context.Context) {
	if r.hist.Len() == 0 {
		return
	}
	var t Target = &raftTarget{r: r}
	if r.wrap != nil {
		t = r.wrap(r, t)
	}
	client := r.hist.reserveClients(1)
	for range 20 {
		call := r.hist.stamp()
		if set, err := t.Read(ctx, max(r.leader(), 0)); err == nil {
			r.hist.read(client, call, set)
			return
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

// htmlPath is where a failed porcupine check's visualisation goes.
func (r *raftRun) htmlPath(step int) string {
	name := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '_'
	}, r.sc.Name)
	return filepath.Join(r.htmlDir, fmt.Sprintf("linearizability-%s-seed%d-step%d.html", name, r.seed, step))
}

// raftTarget is the workload's view of the Raft layer.
type raftTarget struct{ r *raftRun }

func (t *raftTarget) Nodes() int    { return len(t.r.members) }
func (t *raftTarget) Up(i int) bool { return t.r.engine(i) != nil }

// Change signs the command as node i's member and proposes it on node i.
// Where node i does not lead, the command travels as a proposal in the
// crisis log; Change then waits (at most changeTimeout) for node i to learn
// its outcome.
func (t *raftTarget) Change(ctx context.Context, i int, state string, add bool) (Outcome, error) {
	e := t.r.engine(i)
	if e == nil {
		return OutcomeUnknown, fmt.Errorf("node%d is down: %w", i, ErrNoEffect)
	}
	v := e.Local()
	if v.State.Status != crisis.StatusOpen {
		return OutcomeUnknown, fmt.Errorf("node%d knows no open crisis: %w", i, ErrNoEffect)
	}
	cmd := crisis.Command{Kind: crisis.KindAffected, Crisis: v.State.Crisis}
	if add {
		cmd.Add = []string{state}
	} else {
		cmd.Remove = []string{state}
	}
	cryptorand.Read(cmd.ID[:])
	sc, err := crisis.Sign(t.r.members[i].id, t.r.genesis.NetworkID(), cmd)
	if err != nil {
		return OutcomeUnknown, fmt.Errorf("sign: %w: %w", err, ErrNoEffect)
	}
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	_, err = e.Propose(ctx, sc)
	var ref *crisis.Refusal
	switch {
	case err == nil:
		return OutcomeCommitted, nil
	case errors.As(err, &ref):
		return refusal(ref.Rule, ref.Error())
	case !errors.Is(err, consensus.ErrProposed):
		return OutcomeUnknown, err
	}
	tick := time.NewTicker(outcomePoll)
	defer tick.Stop()
	for {
		// The member may have crashed and restarted since: ask the
		// engine that runs now.
		if e := t.r.engine(i); e != nil {
			if o, ok := e.Outcome(sc.ID()); ok {
				if o.Refused == "" {
					return OutcomeCommitted, nil
				}
				rule := ""
				if _, rest, ok := strings.Cut(o.Refused, "refused by rule "); ok {
					rule, _, _ = strings.Cut(rest, ":")
				}
				return refusal(rule, o.Refused)
			}
		}
		select {
		case <-ctx.Done():
			return OutcomeUnknown, fmt.Errorf("node%d did not learn the outcome of its proposal: %w", i, ctx.Err())
		case <-tick.C:
		}
	}
}

// refusal maps a refusal to an outcome: "nothing to change" is the model's
// refusal; any other rule changed nothing either, and says nothing about
// the set.
func refusal(rule, text string) (Outcome, error) {
	switch rule {
	case crisis.RuleNoChange:
		return OutcomeRefused, nil
	case crisis.RuleDuplicate:
		// A fresh command ID cannot be a duplicate: something is off.
		return OutcomeUnknown, errors.New(text)
	}
	return OutcomeUnknown, fmt.Errorf("%s: %w", text, ErrNoEffect)
}

// Read reads linearizably on node i.
func (t *raftTarget) Read(ctx context.Context, i int) ([]string, error) {
	e := t.r.engine(i)
	if e == nil {
		return nil, fmt.Errorf("node%d is down", i)
	}
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	v, err := e.Linearizable(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.State.Affected), nil
}
