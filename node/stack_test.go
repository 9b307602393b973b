package node

// A test-only wiring of one member's stack (transport host, badger store,
// sync, Raft over libp2p streams, consensus engine) and of a cluster of
// them on 127.0.0.1. It is what node will build for real; until then the
// integration tests and benchmarks of issues 4 and 5 use it. Its names
// start with "it" (integration test) to stay clear of the package's own.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
	msync "github.com/crisismesh/crisismesh/replication/sync"
	"github.com/crisismesh/crisismesh/transport"
)

var itEpoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// itRaftProto is the libp2p protocol Raft's NetworkTransport runs on.
const itRaftProto = protocol.ID("/crisismesh/raft/1")

// itSeed returns the seed of this run's randomness (link losses,
// reconnect jitter), from CRISISMESH_SEED if set, and logs it. Raft's own
// election timers draw from an unseeded generator: a replay repeats the
// faults, not the exact schedule.
func itSeed(tb testing.TB) uint64 {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRISISMESH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("CRISISMESH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	tb.Logf("seed %d (replay with CRISISMESH_SEED=%d)", seed, seed)
	return seed
}

// itLog forwards the logs of every component of a test to tb.Log until
// the test ends; later writes (a goroutine still winding down) are
// dropped instead of panicking. The level comes from CRISISMESH_TEST_LOG
// (debug, info, warn, error; default warn for tests, error for
// benchmarks).
type itLog struct {
	mu    gosync.Mutex
	tb    testing.TB
	done  bool
	level slog.Level
}

func newITLog(tb testing.TB) *itLog {
	l := &itLog{tb: tb, level: slog.LevelWarn}
	if _, bench := tb.(*testing.B); bench {
		l.level = slog.LevelError
	}
	if s := os.Getenv("CRISISMESH_TEST_LOG"); s != "" {
		if err := l.level.UnmarshalText([]byte(s)); err != nil {
			tb.Fatalf("CRISISMESH_TEST_LOG=%q: %v", s, err)
		}
	}
	// Registered before any stack, so it runs after every stack closed.
	tb.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *itLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *itLog) slog(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: l.level})).With("node", name)
}

func (l *itLog) hclog(name string) hclog.Logger {
	lvl := hclog.Warn
	switch {
	case l.level <= slog.LevelDebug:
		lvl = hclog.Debug
	case l.level <= slog.LevelInfo:
		lvl = hclog.Info
	case l.level > slog.LevelWarn:
		lvl = hclog.Error
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl, Output: l, DisableTime: true})
}

// itMembers are the members of the test network, in order; a cast uses
// the first n, of which the first voters are Raft voters.
var itMembers = []struct {
	name  string
	roles []crypto.Role
}{
	{"enisa", []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}},
	{"cyclone-fr", []crypto.Role{crypto.RoleCyclone}},
	{"cert-lu", []crypto.Role{crypto.RoleCSIRT}},
	{"presidency", []crypto.Role{crypto.RolePresidency}},
	{"cert-de", []crypto.Role{crypto.RoleCSIRT}},
}

// itCast is a test network: identities, the genesis, and the key entry of
// group "all" (consensus seals proposals and checkpoints to it) that every
// store ingests before it starts.
type itCast struct {
	ids     []*crypto.Identity
	byName  map[string]*crypto.Identity
	genesis *crypto.Genesis
	key     *crypto.GroupKey
	keyEnt  *log.Entry
}

func newITCast(tb testing.TB, n, voters int) *itCast {
	tb.Helper()
	c := &itCast{byName: map[string]*crypto.Identity{}}
	var members []crypto.Member
	var vs []crypto.MemberID
	var recips []crypto.Recipient
	for i, m := range itMembers[:n] {
		id, err := crypto.NewIdentity(m.name, itEpoch)
		if err != nil {
			tb.Fatal(err)
		}
		c.ids = append(c.ids, id)
		c.byName[m.name] = id
		members = append(members, crypto.Member{Card: id.Card(), Roles: m.roles})
		if i < voters {
			vs = append(vs, id.ID())
		}
		recips = append(recips, id.Card().Recipient())
	}
	admin := c.ids[0]
	g, err := crypto.NewGenesis(crypto.GenesisSpec{Network: "node-test", Created: itEpoch, Members: members, Voters: vs, Admins: vs[:1]}, admin)
	if err != nil {
		tb.Fatal(err)
	}
	c.genesis = g
	if c.key, err = crypto.NewGroupKey("all", 1); err != nil {
		tb.Fatal(err)
	}
	ke, err := crypto.NewKeyEnvelope(g.NetworkID(), c.key, recips)
	if err != nil {
		tb.Fatal(err)
	}
	es, err := log.Build(admin, g.NetworkID(), log.Tip{}, 0, itEpoch, []log.Draft{{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: ke.Bytes()}}})
	if err != nil {
		tb.Fatal(err)
	}
	c.keyEnt = es[0]
	return c
}

// sign signs cmd as member who, with a fresh random command ID.
func (c *itCast) sign(tb testing.TB, who string, cmd crisis.Command) *crisis.SignedCommand {
	tb.Helper()
	if _, err := rand.Read(cmd.ID[:]); err != nil {
		tb.Fatal(err)
	}
	sc, err := crisis.Sign(c.byName[who], c.genesis.NetworkID(), cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return sc
}

// itOpts says how to build a member's stack.
type itOpts struct {
	Profile string // transport link profile; default lan
	QUIC    bool   // listen on QUIC as well as TCP
	Faults  *transport.Faults
	Seed    uint64
	// NoConsensus builds host, store and sync only.
	NoConsensus bool
	// InmemRaftLog keeps Raft's log in raft.InmemStore instead of the
	// durable badger store (a benchmark baseline: no fsync).
	InmemRaftLog bool
	// TimeRaftLog records how long each write of the badger Raft log
	// takes (stack.raftLog).
	TimeRaftLog bool
	// Timing overrides the profile's Raft timings.
	Timing *consensus.Timing
	// SyncInterval overrides the profile's anti-entropy interval.
	SyncInterval time.Duration
}

// itStack is one member's node, as package node will wire it.
type itStack struct {
	tb    testing.TB
	name  string
	id    *crypto.Identity
	cast  *itCast
	opts  itOpts
	prof  transport.Profile
	dir   string
	tlog  *itLog
	host  *transport.Host
	store *store.Store
	sync  *msync.Service
	trans *raft.NetworkTransport
	eng   *consensus.Engine
	// raftLog times the Raft log writes, if opts.TimeRaftLog.
	raftLog *itTimedLogStore

	closeOnce gosync.Once
	closed    chan struct{}
}

// newITStack starts member i's host and store (and ingests the group key);
// start adds sync and consensus. It is closed at the end of the test.
func newITStack(tb testing.TB, c *itCast, i int, o itOpts, tlog *itLog) *itStack {
	tb.Helper()
	if o.Profile == "" {
		o.Profile = transport.ProfileLAN
	}
	prof, err := transport.ProfileByName(o.Profile)
	if err != nil {
		tb.Fatal(err)
	}
	id := c.ids[i]
	s := &itStack{tb: tb, name: id.Name(), id: id, cast: c, opts: o, prof: prof, dir: tb.TempDir(), tlog: tlog, closed: make(chan struct{})}
	cfg := transport.DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	if o.QUIC {
		cfg.ListenAddrs = append(cfg.ListenAddrs, "/ip4/127.0.0.1/udp/0/quic-v1")
	}
	cfg.PeerKey = id.PeerKey()
	cfg.Roster = c.genesis.Roster()
	cfg.Profile = o.Profile
	cfg.MDNS = false
	cfg.RTTProbeInterval = 0
	cfg.JitterSeed = o.Seed + uint64(i) + 1
	cfg.Faults = o.Faults
	cfg.Logger = tlog.slog(s.name)
	if s.host, err = transport.New(cfg); err != nil {
		tb.Fatalf("%s: transport: %v", s.name, err)
	}
	if s.store, err = store.Open(filepath.Join(s.dir, "store"), c.genesis, id, store.Options{Logger: tlog.slog(s.name)}); err != nil {
		_ = s.host.Close()
		tb.Fatalf("%s: store: %v", s.name, err)
	}
	tb.Cleanup(s.close)
	if _, err := s.store.Ingest(context.Background(), c.keyEnt); err != nil {
		tb.Fatalf("%s: ingest the group key: %v", s.name, err)
	}
	return s
}

// start runs sync and, unless NoConsensus, Raft and the consensus engine.
// The peers must be connected already, so that peer IDs resolve.
func (s *itStack) start() {
	tb := s.tb
	tb.Helper()
	interval := s.prof.SyncInterval
	if s.opts.SyncInterval > 0 {
		interval = s.opts.SyncInterval
	}
	var err error
	s.sync, err = msync.New(msync.Config{
		Store: s.store, Host: s.host.Host(), Identity: s.id, Logger: s.tlog.slog(s.name), Interval: interval,
		Timing: func(p peer.ID) msync.Timing {
			pr := s.host.ProfileFor(p)
			return msync.Timing{ChunkSize: pr.ChunkSize, SessionTimeout: pr.SessionTimeout}
		},
	})
	if err != nil {
		tb.Fatalf("%s: sync: %v", s.name, err)
	}
	s.sync.Start()
	if s.opts.NoConsensus {
		return
	}
	layer, err := transport.NewStreamLayer(s.host.Host(), itRaftProto)
	if err != nil {
		tb.Fatalf("%s: %v", s.name, err)
	}
	hcl := s.tlog.hclog("raft-" + s.name)
	// The profile's RaftIOTimeout: 1 s on a LAN (STACK-NOTES: keep it
	// small, a dial to a dead QUIC peer fails only at the timeout), 10 s by
	// satellite (TCP only there: a dead peer refuses at once).
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: s.prof.RaftIOTimeout, Logger: hcl,
	})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(s.dir, "snapshots"), 2, hcl)
	if err != nil {
		tb.Fatalf("%s: snapshots: %v", s.name, err)
	}
	timing := itTiming(s.prof)
	if s.opts.Timing != nil {
		timing = *s.opts.Timing
	}
	cfg := consensus.Config{
		Store: s.store, Identity: s.id, Genesis: s.cast.genesis, Transport: s.trans, Snapshots: snaps,
		Timing: timing, Logger: s.tlog.slog(s.name),
	}
	switch {
	case s.opts.InmemRaftLog:
		mem := raft.NewInmemStore()
		cfg.RaftLogs, cfg.RaftStable = mem, mem
	case s.opts.TimeRaftLog:
		s.raftLog = &itTimedLogStore{LogStore: s.store.Raft()}
		cfg.RaftLogs, cfg.RaftStable = s.raftLog, s.store.Raft()
	}
	if s.eng, err = consensus.New(cfg); err != nil {
		tb.Fatalf("%s: consensus: %v", s.name, err)
	}
}

// itTimedLogStore records the duration of every write to a Raft log store.
// It is safe for concurrent use.
type itTimedLogStore struct {
	raft.LogStore

	mu     gosync.Mutex
	writes []time.Duration
}

func (t *itTimedLogStore) StoreLog(l *raft.Log) error { return t.StoreLogs([]*raft.Log{l}) }

func (t *itTimedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := t.LogStore.StoreLogs(logs)
	d := time.Since(start)
	t.mu.Lock()
	t.writes = append(t.writes, d)
	t.mu.Unlock()
	return err
}

// take returns the durations recorded since the last call.
func (t *itTimedLogStore) take() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.writes
	t.writes = nil
	return out
}

// itTiming maps a link profile's Raft timings to consensus's.
func itTiming(p transport.Profile) consensus.Timing {
	return consensus.Timing{
		Heartbeat: p.HeartbeatTimeout, Election: p.ElectionTimeout,
		LeaderLease: p.LeaderLeaseTimeout, Commit: p.CommitTimeout,
	}
}

// close stops the stack: engine, sync, host, store (in that order). It is
// also how a test kills a member.
func (s *itStack) close() {
	s.closeOnce.Do(func() {
		var errs []error
		if s.eng != nil {
			errs = append(errs, s.eng.Close())
		}
		if s.sync != nil {
			s.sync.Close()
		}
		if s.trans != nil {
			errs = append(errs, s.trans.Close()) // Raft's shutdown closed it already: harmless
		}
		errs = append(errs, s.host.Close(), s.store.Close())
		if err := errors.Join(errs...); err != nil {
			s.tb.Logf("%s: close: %v", s.name, err)
		}
		close(s.closed)
	})
}

func (s *itStack) alive() bool {
	select {
	case <-s.closed:
		return false
	default:
		return true
	}
}

func (s *itStack) peerID() peer.ID { return s.id.PeerID() }

func (s *itStack) addrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: s.host.ID(), Addrs: s.host.Host().Addrs()}
}

func (s *itStack) connected(o *itStack) bool {
	return s.host.Host().Network().Connectedness(o.peerID()) == network.Connected
}

// itCluster is the stacks of one test network.
type itCluster struct {
	tb     testing.TB
	cast   *itCast
	faults *transport.Faults
	tlog   *itLog
	stacks []*itStack
	byName map[string]*itStack
}

// newITCluster builds stacks for the first n members of c; calls before
// (if not nil) to set up faults or links; introduces every pair of hosts
// that the faults allow and waits until they are connected; then starts
// sync and consensus on each.
func newITCluster(tb testing.TB, c *itCast, n int, o itOpts, before func(*itCluster)) *itCluster {
	tb.Helper()
	cl := &itCluster{tb: tb, cast: c, faults: o.Faults, tlog: newITLog(tb), byName: map[string]*itStack{}}
	for i := range n {
		s := newITStack(tb, c, i, o, cl.tlog)
		cl.stacks = append(cl.stacks, s)
		cl.byName[s.name] = s
	}
	if before != nil {
		before(cl)
	}
	cl.connect()
	for _, s := range cl.stacks {
		s.start()
	}
	// Runs before the stacks close (cleanups run last first).
	tb.Cleanup(func() {
		if tb.Failed() {
			cl.dump()
		}
	})
	return cl
}

// dump logs what each running node knows, to diagnose a failure.
func (cl *itCluster) dump() {
	for _, s := range cl.alive() {
		if s.eng == nil {
			continue
		}
		r := s.eng.Raft()
		v := s.eng.Local()
		cl.tb.Logf("%s: raft %v term %d leader %q applied %d; view %s index %d term %d age %v, %d provisional, recent %+v; peers %v",
			s.name, r.State(), r.CurrentTerm(), r.Leader(), r.AppliedIndex(), v.Source, v.Index, v.Term, v.Age.Round(time.Millisecond),
			len(v.Provisional), v.Recent, s.host.Host().Network().Peers())
	}
}

// allowed reports whether the faults let a and b connect.
func (cl *itCluster) allowed(a, b *itStack) bool {
	return cl.faults == nil || !cl.faults.Blocked(a.peerID(), b.peerID())
}

// connect gives every host the addresses of every other it may reach and
// waits until those pairs are connected.
func (cl *itCluster) connect() {
	tb := cl.tb
	tb.Helper()
	for _, a := range cl.stacks {
		for _, b := range cl.stacks {
			if a != b && cl.allowed(a, b) {
				if err := a.host.AddPeer(b.addrInfo()); err != nil {
					tb.Fatalf("AddPeer %s → %s: %v", a.name, b.name, err)
				}
			}
		}
	}
	// Dials take four round trips (TCP, multistream, TLS, muxer): by
	// satellite several seconds.
	timeout := 30 * time.Second
	if cl.stacks[0].prof.Name == transport.ProfileSatellite {
		timeout = 2 * time.Minute
	}
	itWaitFor(tb, timeout, "hosts connected", func() bool {
		for _, a := range cl.stacks {
			for _, b := range cl.stacks {
				if a != b && cl.allowed(a, b) && !a.connected(b) {
					return false
				}
			}
		}
		return true
	})
}

func (cl *itCluster) close() {
	for _, s := range cl.stacks {
		s.close()
	}
}

// voters returns the running stacks of Raft voters.
func (cl *itCluster) voters() []*itStack {
	var out []*itStack
	r := cl.cast.genesis.Roster()
	for _, s := range cl.stacks {
		if s.alive() && r.IsVoter(s.id.ID()) {
			out = append(out, s)
		}
	}
	return out
}

// alive returns the running stacks.
func (cl *itCluster) alive() []*itStack {
	var out []*itStack
	for _, s := range cl.stacks {
		if s.alive() {
			out = append(out, s)
		}
	}
	return out
}

// itLeader returns the one stack among ss that leads, or nil.
func itLeader(ss []*itStack) *itStack {
	var l *itStack
	for _, s := range ss {
		if s.alive() && s.eng != nil && s.eng.IsLeader() {
			if l != nil {
				return nil // two claim it (an old leader not yet stepped down)
			}
			l = s
		}
	}
	return l
}

// waitLeader waits for exactly one leader among the running stacks.
func (cl *itCluster) waitLeader(timeout time.Duration) *itStack {
	cl.tb.Helper()
	var l *itStack
	itWaitFor(cl.tb, timeout, "a single Raft leader", func() bool {
		l = itLeader(cl.alive())
		return l != nil
	})
	return l
}

// failoverRun is what killLeader measured.
type failoverRun struct {
	res     consensus.Result      // the first command committed after the kill
	leader  *itStack              // the node it committed on
	cmd     *crisis.SignedCommand // that command
	elected time.Duration         // kill → a leader first seen taking a command
	took    time.Duration         // kill → the command committed
}

// killLeader closes the leader l (engine, sync, host and store) and has
// the cluster commit cert-lu's next change of the affected states of
// crisis open, as a fresh command on each attempt.
func (cl *itCluster) killLeader(tb testing.TB, ctx context.Context, c *itCast, l *itStack, open *crisis.SignedCommand) (failoverRun, error) {
	killed := time.Now()
	l.close()
	var f failoverRun
	var err error
	f.res, f.leader, f.cmd, err = cl.commit(ctx, func(attempt int) *crisis.SignedCommand {
		if f.elected == 0 {
			f.elected = time.Since(killed)
		}
		return c.sign(tb, "cert-lu", itAffected(open.ID(), itStates[attempt%len(itStates)]))
	})
	f.took = time.Since(killed)
	return f, err
}

// commit proposes a command on whichever node leads until one commits.
// next makes the command of each attempt: a fresh one, because an attempt
// that failed (leadership lost) may still commit later, and the same
// command submitted again would be refused as a duplicate. A refusal ends
// the attempts. It returns the committed result, the node it committed on
// and the command.
func (cl *itCluster) commit(ctx context.Context, next func(attempt int) *crisis.SignedCommand) (consensus.Result, *itStack, *crisis.SignedCommand, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last error
	for attempt := 0; ; {
		if l := itLeader(cl.alive()); l != nil {
			sc := next(attempt)
			attempt++
			res, err := l.eng.Propose(ctx, sc)
			switch {
			case err == nil:
				return res, l, sc, nil
			case errors.Is(err, crisis.ErrRefused):
				return res, l, sc, err
			case errors.Is(err, consensus.ErrProposed):
				// Leadership moved between the check and the call: the
				// command went into the log, and a leader will commit it.
				o, s, ok := cl.waitOutcome(ctx, sc.ID())
				if !ok {
					break
				}
				if o.Refused != "" {
					return consensus.Result{}, s, sc, fmt.Errorf("refused: %s", o.Refused)
				}
				return consensus.Result{State: s.eng.Local().State, Term: o.Term, Index: o.Index}, s, sc, nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return consensus.Result{}, nil, nil, fmt.Errorf("no commit: %w (last attempt: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// waitOutcome waits until a running stack knows the outcome of id.
func (cl *itCluster) waitOutcome(ctx context.Context, id crisis.ID) (consensus.Outcome, *itStack, bool) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, s := range cl.alive() {
			if s.eng == nil {
				continue
			}
			if o, ok := s.eng.Outcome(id); ok {
				return o, s, true
			}
		}
		select {
		case <-ctx.Done():
			return consensus.Outcome{}, nil, false
		case <-tick.C:
		}
	}
}

// itWaitFor polls cond every 10 ms until it holds, or fails the test at the
// deadline.
func itWaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// itStates are codes for commands that must each change something.
var itStates = []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}

// itOpen opens a crisis at level 1 (csirt and cyclone may).
func itOpen() crisis.Command {
	return crisis.Command{Kind: crisis.KindOpen, Title: "ransomware wave on hospitals", Level: 1}
}

// itAffected adds a member state to the open crisis's affected ones.
func itAffected(crisisID crisis.ID, state string) crisis.Command {
	return crisis.Command{Kind: crisis.KindAffected, Crisis: crisisID, Add: []string{state}}
}
