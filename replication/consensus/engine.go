package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Errors of the engine.
var (
	// ErrNotLeader: a linearizable read or a direct apply needs the leader.
	ErrNotLeader = errors.New("consensus: this node is not the Raft leader")
	// ErrNoQuorum: the leader could not confirm its leadership in time.
	ErrNoQuorum = errors.New("consensus: no quorum reachable")
)

// Engine runs this node's Raft member. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	logger *slog.Logger
	raft   *raft.Raft
	fsm    *fsm
	logs   raft.LogStore // the Raft log, read for refused commands
	group  string        // group key used to seal proposals and checkpoints

	mu         gosync.Mutex
	pending    map[crisis.ID]*Pending  // proposals seen in the log, not yet decided
	checkpoint *Checkpoint             // newest certified checkpoint seen in the log
	ballots    map[ballotKey]*ballot   // votes for checkpoints not certified yet
	toVote     map[ballotKey]time.Time // claimed states this voter may vote for, since when
	lastVoted  uint64                  // the highest index this voter voted for
	diverged   uint64                  // index of a certificate that contradicts this node's own state (0: none)

	termRefusals atomic.Uint64 // Raft RPCs refused for a term out of range

	stop chan struct{}
	wg   gosync.WaitGroup
	sub  *store.Subscription
}

// Pending is a provisional decision: a proposal seen in the log whose
// outcome is not known yet.
type Pending struct {
	Command crisis.Command
	Signer  crypto.MemberID
	Entry   log.Hash
	Seen    time.Time
	signed  *crisis.SignedCommand
}

// ServerID is the Raft server ID (and address) of a member: its peer ID.
func ServerID(c *crypto.Card) raft.ServerID { return raft.ServerID(c.PeerID().String()) }

// New starts the Raft member. On a fresh store it bootstraps the cluster
// deterministically from the genesis: every node computes the same
// configuration of the roster's voters.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg: cfg, logger: cfg.Logger.With("component", "consensus"), fsm: newFSM(cfg.Genesis),
		group: "all", pending: map[crisis.ID]*Pending{}, stop: make(chan struct{}),
		ballots: map[ballotKey]*ballot{}, toVote: map[ballotKey]time.Time{},
	}
	e.fsm.floor = cfg.Store.Roster
	rc := raft.DefaultConfig()
	rc.LocalID = ServerID(cfg.Identity.Card())
	rc.HeartbeatTimeout = cfg.Timing.Heartbeat
	rc.ElectionTimeout = cfg.Timing.Election
	rc.LeaderLeaseTimeout = cfg.Timing.LeaderLease
	rc.CommitTimeout = cfg.Timing.Commit
	rc.SnapshotThreshold = 1024
	// A server the roster removes or demotes keeps running Raft as a
	// follower: hashicorp/raft's default shuts down a leader whose own
	// vote the committed configuration takes away (it treats demoted as
	// removed), and a shut-down Raft never learns the configurations that
	// follow, so a demoted leader would be stuck in the past for good.
	// A removed member stays harmless: it is no longer in any voter's
	// configuration, may not stand for election, and the transport gate
	// refuses it.
	rc.ShutdownOnRemove = false
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	rc.Logger = newHCLogger(e.logger)
	var logs raft.LogStore = cfg.Store.Raft()
	var stable raft.StableStore = cfg.Store.Raft()
	if cfg.RaftLogs != nil {
		logs = cfg.RaftLogs
	}
	if cfg.RaftStable != nil {
		stable = cfg.RaftStable
	}
	e.logs = logs
	has, err := raft.HasExistingState(logs, stable, cfg.Snapshots)
	if err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	if !has {
		var servers []raft.Server
		r := cfg.Genesis.Roster()
		for _, id := range r.Voters() {
			m, _ := r.Member(id)
			sid := ServerID(m.Card)
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: sid, Address: raft.ServerAddress(sid)})
		}
		if err := raft.BootstrapCluster(rc, logs, stable, cfg.Snapshots, cfg.Transport, raft.Configuration{Servers: servers}); err != nil {
			return nil, fmt.Errorf("consensus: bootstrap: %w", err)
		}
	}
	// Heartbeats on the transport's fast path only in a steady term: two
	// leaders' heartbeats could otherwise set the term back (see
	// heartbeatGate). Above the gate, the term guard refuses terms a
	// hostile peer pushes out of range (see termguard.go).
	gate := newHeartbeatGate()
	if stable, err = gate.stable(stable); err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	guard := newTermGuard(gate.transport(cfg.Transport), func() uint64 {
		if r := gate.raft.Load(); r != nil {
			return r.CurrentTerm()
		}
		return 0
	}, e.termRefused)
	e.raft, err = raft.NewRaft(rc, e.fsm, logs, stable, cfg.Snapshots, guard)
	if err != nil {
		guard.(interface{ halt() }).halt()
		gate.close()
		return nil, fmt.Errorf("consensus: start Raft: %w", err)
	}
	gate.raft.Store(e.raft)
	// NewRaft restored this node's own newest snapshot, if any: every
	// snapshot from now on comes from a leader (see snapshot.go).
	e.fsm.markStarted()
	e.sub = cfg.Store.Subscribe(256)
	e.wg.Add(1)
	go e.loop()
	return e, nil
}

// Close stops the Raft member and every goroutine of the engine.
func (e *Engine) Close() error {
	select {
	case <-e.stop:
		return nil
	default:
	}
	close(e.stop)
	e.sub.Close()
	e.wg.Wait()
	if err := e.raft.Shutdown().Error(); err != nil {
		return fmt.Errorf("consensus: shutdown: %w", err)
	}
	return nil
}

// Raft exposes the Raft member for observation (state, stats, leader).
func (e *Engine) Raft() *raft.Raft { return e.raft }

// RosterVersion is the roster version Raft has committed: the one the
// crisis state's rules apply (the crisis log's roster may be ahead until
// the leader carries its updates into Raft).
func (e *Engine) RosterVersion() uint64 { return e.fsm.status().roster.Version() }

// IsLeader reports whether this node leads.
func (e *Engine) IsLeader() bool { return e.raft.State() == raft.Leader }

// Result is a committed command.
type Result struct {
	State crisis.State
	Term  uint64
	Index uint64
}

// Propose submits a signed command. On the leader it is applied through
// Raft and the result (or refusal) returned once committed. On any other
// node it is written into the crisis log as a proposal entry, which the
// leader picks up; Propose then returns ErrProposed, and Local lists the
// command as provisional until its outcome is known.
func (e *Engine) Propose(ctx context.Context, sc *crisis.SignedCommand) (Result, error) {
	if e.IsLeader() {
		res, err := e.apply(ctx, entryCommand, sc.Bytes())
		if !errors.Is(err, ErrNotLeader) {
			return res, err
		}
		// Leadership was lost on the way (a partition, say). The command
		// may or may not have been committed; proposing it through the log
		// is safe either way: a second copy is refused by ID, and the
		// first outcome stands.
	}
	if err := e.writeProposal(ctx, sc); err != nil {
		return Result{}, err
	}
	return Result{}, ErrProposed
}

// Precheck refuses at once, with the [*crisis.Refusal] that Raft would
// give it, a command no leader would commit whatever the state: by the
// rules that need no state (crisis.Check, against roster, the newest
// roster this node holds; roles never change, so one that lacks Raft's
// newest updates judges them alike). On the leader it returns nil:
// Propose applies at once.
//
// It does not judge by this node's own view of the state, however fresh:
// a follower's state lags the leader's commits by up to a round trip, so
// a refusal from it could contradict a change already acknowledged to
// someone else (sim's linearizable scenario, seed 46, found exactly that
// when a follower that had heard from the leader within one heartbeat
// refused "no change"). Such commands are proposed, and the leader
// decides.
func (e *Engine) Precheck(sc *crisis.SignedCommand, roster *crypto.Roster) error {
	if e.IsLeader() {
		return nil
	}
	return crisis.Check(sc, roster)
}

// ErrProposed reports a command written to the log as a proposal because
// this node is not the leader; its outcome comes later.
var ErrProposed = errors.New("consensus: proposed through the crisis log; waiting for the leader")

// Status is what became of a command a member asked for: the one word the
// API's JSON and the command line print. Its values are a contract.
type Status string

// The statuses of a command.
const (
	// StatusCommitted: Raft committed the command (Propose returned a
	// Result with its term and index).
	StatusCommitted Status = "committed"
	// StatusPending: the command was written into the crisis log as a
	// proposal (Propose returned ErrProposed); it stays provisional until
	// a leader commits or refuses it.
	StatusPending Status = "pending"
	// StatusRefused: the state machine refused the command by a named
	// rule (a *crisis.Refusal), or it could not be signed.
	StatusRefused Status = "refused"
)

// stamp is the time the leader writes into an entry: its clock, or the
// last committed time if its clock is behind that (the FSM enforces the
// same bound; stamping it keeps the log itself monotonic too).
func (e *Engine) stamp() time.Time {
	now := e.cfg.Now()
	last := e.fsm.updated()
	if now.Before(last) {
		e.logger.Warn("this node's clock is behind the last committed time: stamping the committed time instead", "clock", now, "committed", last, "behind", last.Sub(now))
		return last
	}
	return now
}

func (e *Engine) apply(ctx context.Context, typ uint8, payload []byte) (Result, error) {
	data, err := encodeEntry(typ, payload, e.stamp())
	if err != nil {
		return Result{}, err
	}
	timeout := 10 * e.cfg.Timing.Election
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := e.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return Result{}, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return Result{}, fmt.Errorf("consensus: apply: %w", err)
	}
	res, _ := f.Response().(*ApplyResult)
	if res == nil {
		return Result{}, errors.New("consensus: no result from the state machine")
	}
	return Result{State: res.State, Term: res.Term, Index: res.Index}, res.Err
}

// sealKey is the key proposals and checkpoints are sealed under: for the
// network group, the one every active member holds (store.NetworkKey).
func (e *Engine) sealKey() (*crypto.GroupKey, bool) {
	if e.group == log.GroupAll {
		return e.cfg.Store.NetworkKey()
	}
	return e.cfg.Store.CurrentKey(e.group)
}

func (e *Engine) writeProposal(ctx context.Context, sc *crisis.SignedCommand) error {
	key, ok := e.sealKey()
	if !ok {
		return fmt.Errorf("consensus: cannot write a proposal: this node holds no key of group %q yet", e.group)
	}
	es, err := e.cfg.Store.Append(ctx, log.Draft{Body: log.Body{Kind: log.KindProposal, TLP: log.TLPAmber, Payload: sc.Bytes()}, Key: key})
	if err != nil {
		return err
	}
	e.notePending(sc, es[0].ID())
	return nil
}

func (e *Engine) notePending(sc *crisis.SignedCommand, entry log.Hash) {
	if _, done := e.fsm.outcome(sc.ID()); done {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.pending[sc.ID()]; !ok {
		e.pending[sc.ID()] = &Pending{Command: sc.Command(), Signer: sc.Signer(), Entry: entry, Seen: e.cfg.Now(), signed: sc}
	}
}

// Where a View's state comes from.
const (
	// SourceRaft: this node's own state machine, which applied the
	// committed commands itself (checking each signature and role).
	SourceRaft = "raft"
	// SourceCheckpoint: a checkpoint from the crisis log that a majority
	// of the voters certified (View.Signers), newer than this node's own
	// state machine.
	SourceCheckpoint = "checkpoint"
)

// View is a local read of the crisis state.
type View struct {
	State  crisis.State
	Index  uint64 // the Raft index the state is at
	Term   uint64
	Source string // SourceRaft or SourceCheckpoint
	// Signers are the voters whose votes certify a state from a
	// checkpoint (empty for SourceRaft).
	Signers []crypto.MemberID
	// Certified is the newest index whose state a majority of the voters
	// certified, as far as this node knows (0: none yet). A SourceRaft
	// state above it is committed by Raft but not certified yet.
	Certified uint64
	// Diverged is the index of a certificate that contradicts the state
	// this node's own state machine computed there (0: none): its Raft log
	// came from a faulty leader, and the view shows the certified state.
	Diverged uint64
	// LeaderContact is the last time this node heard from a leader (or
	// led); zero if never. Age is how long ago that was.
	LeaderContact time.Time
	Age           time.Duration
	Leader        bool
	// Provisional lists proposals seen but not yet decided; Recent the
	// newest outcomes (committed or refused).
	Provisional []Pending
	Recent      []Outcome
}

// Local returns the newest state this node knows, without asking anyone:
// from its own Raft log or from a newer checkpoint seen in the crisis log.
func (e *Engine) Local() View { return e.view(true) }

// view reads the state machine and, with checkpoints, a newer certified
// checkpoint.
func (e *Engine) view(checkpoints bool) View {
	cur := e.fsm.current(16)
	v := View{State: cur.state, Index: cur.applied, Term: cur.term, Source: SourceRaft, Recent: cur.recent}
	v.Leader = e.IsLeader()
	// Raft's last contact is on the process clock: its age is measured on
	// the monotonic clock and expressed on this node's clock (Now), which
	// may be skewed. A checkpoint carries its author's clock: its age is
	// the difference of two clocks, the best there is.
	now := e.cfg.Now()
	if v.Leader {
		v.LeaderContact = now
	} else if lc := e.raft.LastContact(); !lc.IsZero() {
		v.Age = max(time.Since(lc), 0)
		v.LeaderContact = now.Add(-v.Age)
	}
	e.mu.Lock()
	if cp := e.checkpoint; cp != nil {
		v.Certified = cp.Index
	}
	v.Diverged = e.diverged
	if cp := e.checkpoint; checkpoints && cp != nil && (cp.Index > v.Index || e.diverged != 0) {
		v.State, v.Index, v.Term, v.Source = cp.State.Clone(), cp.Index, cp.Term, SourceCheckpoint
		v.Signers = slices.Clone(cp.Signers)
		v.Recent = cp.Outcomes
		if cp.Written.After(v.LeaderContact) {
			v.LeaderContact = cp.Written
			v.Age = max(now.Sub(cp.Written), 0)
		}
	}
	for _, p := range e.pending {
		v.Provisional = append(v.Provisional, *p)
	}
	e.mu.Unlock()
	return v
}

// Linearizable returns the committed state after confirming with a quorum
// that this node still leads; ErrNotLeader elsewhere.
func (e *Engine) Linearizable(ctx context.Context) (View, error) {
	if !e.IsLeader() {
		return View{}, ErrNotLeader
	}
	if err := e.raft.VerifyLeader().Error(); err != nil {
		return View{}, fmt.Errorf("%w: %v", ErrNoQuorum, err)
	}
	if err := e.raft.Barrier(10 * e.cfg.Timing.Election).Error(); err != nil {
		return View{}, fmt.Errorf("%w: %v", ErrNoQuorum, err)
	}
	// The state machine's own state, never a checkpoint: after the
	// barrier it holds every committed command.
	return e.view(false), nil
}

// Outcome returns the outcome of command id, if this node knows it.
func (e *Engine) Outcome(id crisis.ID) (Outcome, bool) {
	if o, ok := e.fsm.outcome(id); ok {
		return o, true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cp := e.checkpoint; cp != nil {
		for _, o := range cp.Outcomes {
			if o.ID == id {
				return o, true
			}
		}
	}
	return Outcome{}, false
}

// Outcomes returns the outcomes the state machine remembers (the newest
// 1024), oldest first; the caller owns the slice.
func (e *Engine) Outcomes() []Outcome { return e.fsm.current(maxOutcomes).recent }

// A Refused command is an outcome that refused a command, with the
// command as the Raft log holds it (Known false once a snapshot has
// compacted the entry away).
type Refused struct {
	Outcome
	Known   bool
	Command crisis.Command
	Signer  crypto.MemberID
	At      time.Time // the entry's committed time
}

// Refusals returns the refused commands among the remembered outcomes,
// oldest first.
func (e *Engine) Refusals() []Refused {
	var out []Refused
	for _, o := range e.Outcomes() {
		if o.Refused == "" {
			continue
		}
		r := Refused{Outcome: o}
		var l raft.Log
		var w entryWire
		if e.logs.GetLog(o.Index, &l) == nil && crypto.UnmarshalCanonical(l.Data, &w) == nil && w.Type == entryCommand {
			if sc, err := crisis.ParseSigned(w.Payload); err == nil && sc.ID() == o.ID {
				r.Known, r.Command, r.Signer, r.At = true, sc.Command(), sc.Signer(), entryTime(&w, &l, time.Time{})
			}
		}
		out = append(out, r)
	}
	return out
}

// termRefused notes a Raft RPC refused by the term guard (logged at
// powers of two, so that a flood does not flood the log).
func (e *Engine) termRefused(term uint64, what string) {
	n := e.termRefusals.Add(1)
	if n&(n-1) == 0 {
		e.logger.Warn("Raft message with a term out of range refused: a peer is faulty or hostile", "what", what, "term", term, "refused_so_far", n)
	}
}

// TermRefusals returns how many Raft messages were refused for a term
// out of range.
func (e *Engine) TermRefusals() uint64 { return e.termRefusals.Load() }
