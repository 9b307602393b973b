package sim

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
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
// Cuts are directed: a cut {a, b} means that a's requests no longer reach
// b (InmemTransport routes per direction: a cannot call b, while b can
// still call a and hear its answers). The engine lays them out (see
// geometry.go); the layer routes every running member's transport to
// exactly the running members its links reach.
//
// A crash shuts the engine down (no drain, no leadership transfer) and
// keeps its stores (the Raft log and stable store, the snapshots and the
// crisis log), as a data directory survives a crashed process; a restart
// starts a new engine on them with a new transport.
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
	carryEvery    = 100 * time.Millisecond // the emulated sync's period
	changeTimeout = 5 * time.Second        // how long a client waits for an outcome
	outcomePoll   = 20 * time.Millisecond
	upWithin      = 30 * time.Second // bound on the first election
)

// raftMember is one member of the Raft layer. Its stores survive crashes.
type raftMember struct {
	name  string
	id    *crypto.Identity
	addr  raft.ServerAddress
	store *store.Store
	logs  *raft.InmemStore // Raft log and stable store
	snaps *raft.InmemSnapshotStore

	// Guarded by raftLayer.mu; nil while the member is down.
	trans *raft.InmemTransport
	eng   *consensus.Engine
}

// leaderObs is one observation: node became leader in term.
type leaderObs struct {
	term uint64
	node string
}

// raftLayer is the Raft layer of one run.
type raftLayer struct {
	e       *engine
	genesis *crypto.Genesis
	members []*raftMember
	// wrap, when set, wraps the workloads' target (tests inject bugs).
	wrap func(*raftLayer, Target) Target

	bgCtx    context.Context // the carrier's
	bgCancel context.CancelFunc
	carrier  gosync.WaitGroup
	sampler  gosync.WaitGroup

	mu      gosync.Mutex
	cut     cutSet // the cuts in force
	leaders []leaderObs
}

// runRaft plays e's scenario on the Raft layer; wrap, when set, wraps the
// workloads' target.
func runRaft(ctx context.Context, e *engine, o Options, wrap func(*raftLayer, Target) Target) (*Report, error) {
	sc, rep := e.sc, e.rep
	r := &raftLayer{e: e, wrap: wrap, cut: cutSet{}}
	e.htmlDir = o.Dir
	if e.htmlDir == "" {
		e.htmlDir = os.TempDir()
	}
	r.bgCtx, r.bgCancel = context.WithCancel(ctx)
	defer r.close()
	if err := r.setup(); err != nil {
		return nil, err
	}
	r.carrier.Go(r.carry)
	if err := waitUntil(ctx, upWithin, func() bool { return r.leader() >= 0 }); err != nil {
		return nil, fmt.Errorf("sim: no Raft leader came up: %w", err)
	}
	var names []string
	for _, m := range r.members {
		names = append(names, m.name)
	}
	e.begin(ctx, r, names)
	defer e.stopBackground()
	sampling, stopSampling := context.WithCancel(r.bgCtx)
	defer stopSampling()
	r.sampler.Go(func() { r.sample(sampling) })
	if err := e.play(ctx); err != nil {
		return rep, err
	}
	// The end: stop the workloads, heal, restart what is down, converge,
	// check.
	if err := e.settle(); err != nil {
		return rep, err
	}
	e.logf("final: healed, all members up; waiting for the same applied index (at most %s)", sc.ConvergeWithin.Duration)
	rep.Checks = append(rep.Checks, e.check(ctx, len(sc.Steps)+1, true)...)
	stopSampling()
	r.sampler.Wait()
	e.conclude(rep)
	if o.Report != "" {
		writeReport(rep, o.Report, e.logf)
	}
	return rep, nil
}

// sample records the timeline until ctx ends: every member's crisis-log
// entries (-1 while down), and who leads in which term.
func (r *raftLayer) sample(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s := Sample{At: time.Since(r.e.start), Entries: make([]int, len(r.members)), Leader: -1}
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
		r.e.addSample(s)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// simRoles is the cycle of roles, node0 first (node0 is also admin), as the
// testnet's. Every member also holds csirt, so that any node's member may
// change the affected member states (the workload's command).
var simRoles = []crypto.Role{crypto.RolePresidency, crypto.RoleCyclone, crypto.RoleCSIRT, crypto.RoleCommission, crypto.RoleENISA}

// setup makes the cast (identities, genesis with the roster's voters, the
// network key) and starts every member.
func (r *raftLayer) setup() error {
	now := time.Now()
	n := r.e.sc.Nodes
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
		if i < r.e.sc.Voters {
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
func (r *raftLayer) startMember(m *raftMember) error {
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
func (r *raftLayer) crash(i int) (bool, error) {
	r.mu.Lock()
	m := r.members[i]
	eng, trans := m.eng, m.trans
	m.eng, m.trans = nil, nil
	r.mu.Unlock()
	if eng == nil {
		return false, nil
	}
	trans.DisconnectAll()
	r.applyLinks() // the others stop reaching it
	if err := eng.Close(); err != nil {
		return true, fmt.Errorf("sim: crash %s: %w", m.name, err)
	}
	return true, nil
}

// restart starts member i again on its stores.
func (r *raftLayer) restart(i int) (bool, error) {
	if r.engine(i) != nil {
		return false, nil
	}
	return true, r.startMember(r.members[i])
}

// close stops everything the run started and waits for it.
func (r *raftLayer) close() {
	r.bgCancel()
	r.carrier.Wait()
	for i := range r.members {
		r.crash(i)
	}
	for _, m := range r.members {
		m.store.Close()
	}
}

// engine returns member i's running engine, or nil.
func (r *raftLayer) engine(i int) *consensus.Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[i].eng
}

// leader returns the index of a running member that leads, or -1.
func (r *raftLayer) leader() int {
	for i := range r.members {
		if e := r.engine(i); e != nil && e.IsLeader() {
			return i
		}
	}
	return -1
}

// applyLinks makes every running member's transport route exactly to the
// running members its links reach.
func (r *raftLayer) applyLinks() {
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

// setCuts routes every running member's transport as c says.
func (r *raftLayer) setCuts(c cutSet) {
	r.mu.Lock()
	r.cut = c
	r.mu.Unlock()
	r.applyLinks()
}

// carry emulates sync: until the run ends, every carryEvery, each running
// member hands every running member it reaches the log entries it lacks.
func (r *raftLayer) carry() {
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

// act refuses the steps of the network layer alone (Parse refuses them
// first).
func (r *raftLayer) act(_ context.Context, _ int, st Step, _ []int) ([]Check, error) {
	return nil, fmt.Errorf("%s is not an action of the raft layer", st.Do)
}

// command issues a crisis command as node i's member, as the node's
// Command does (its ID drawn from the schedule).
func (r *raftLayer) command(ctx context.Context, i int, st Step, after uint64) (commandResult, error) {
	e := r.engine(i)
	if e == nil {
		return commandResult{}, errors.New("command needs a running node")
	}
	_ = waitUntil(ctx, outcomeWait, func() bool { return e.Local().Index >= after })
	cmd, err := node.ToCommand(st.request())
	if err != nil {
		return commandResult{}, err
	}
	binary.BigEndian.PutUint64(cmd.ID[:8], r.e.rng.Uint64())
	binary.BigEndian.PutUint64(cmd.ID[8:], r.e.rng.Uint64())
	if cmd.Kind != crisis.KindOpen {
		cmd.Crisis = e.Local().State.Crisis
	}
	sc, err := crisis.Sign(r.members[i].id, r.genesis.NetworkID(), cmd)
	if err != nil {
		return commandResult{status: consensus.StatusRefused, rule: "malformed", detail: "malformed: " + err.Error()}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, changeTimeout)
	res, err := e.Propose(cctx, sc)
	cancel()
	var ref *crisis.Refusal
	switch {
	case err == nil:
		return commandResult{status: consensus.StatusCommitted, detail: fmt.Sprintf("at term %d, index %d", res.Term, res.Index), index: res.Index}, nil
	case errors.Is(err, consensus.ErrProposed):
		return commandResult{status: consensus.StatusPending}, nil
	case errors.As(err, &ref):
		return commandResult{status: consensus.StatusRefused, rule: ref.Rule, detail: ref.Rule + ": " + ref.Detail}, nil
	}
	return commandResult{status: statusUnknown, detail: err.Error()}, nil
}

// target is the workloads' view of the layer (wrapped when tests inject a
// bug).
func (r *raftLayer) target() Target {
	var t Target = &raftTarget{r: r}
	if r.wrap != nil {
		t = r.wrap(r, t)
	}
	return t
}

// memberView is one member's committed crisis state, for the checkers.
type memberView struct {
	node   string
	index  uint64 // the Raft index of the state
	source string // "raft", or "checkpoint" when the FSM lags the log
	state  []byte // State.MarshalBinary
}

func (r *raftLayer) views() ([]memberView, error) {
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
func (r *raftLayer) waitConverged(ctx context.Context, d time.Duration) ([]memberView, error) {
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

// check runs the checkers of the Raft layer. With final, it first waits
// (within the scenario's bound) until every member applied the same index.
func (r *raftLayer) check(ctx context.Context, step int, final bool) []Check {
	var vs []memberView
	var err error
	if final {
		if vs, err = r.waitConverged(ctx, r.e.sc.ConvergeWithin.Duration); err != nil {
			err = fmt.Errorf("the members did not reach the same applied index: %w", err)
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
	return []Check{verdict(InvOneLeader, step, checkOneLeader(obs)), verdict(InvCrisisState, step, err)}
}

// raftTarget is the workload's view of the Raft layer.
type raftTarget struct{ r *raftLayer }

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
