package sync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	gosync "sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/multiformats/go-multiaddr"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// gate is a test connection gater: a set of denied pairs. (The real roster
// gate is package transport's; sync must not import it.)
type gate struct {
	mu     gosync.Mutex
	self   peer.ID
	denied map[peer.ID]bool
}

func (g *gate) allowed(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.denied[p]
}
func (g *gate) set(p peer.ID, deny bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.denied[p] = deny
}
func (g *gate) InterceptPeerDial(p peer.ID) bool                        { return g.allowed(p) }
func (g *gate) InterceptAddrDial(p peer.ID, _ multiaddr.Multiaddr) bool { return g.allowed(p) }
func (g *gate) InterceptAccept(network.ConnMultiaddrs) bool             { return true }
func (g *gate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}
func (g *gate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// world is a test network of members, each optionally running a node.
type world struct {
	ids     map[string]*crypto.Identity
	genesis *crypto.Genesis
	key     *crypto.GroupKey
	keyEnt  *log.Entry
}

var (
	worldOnce sync1
	theWorld  *world
)

type sync1 = gosync.Once

func newWorld(t testing.TB) *world {
	t.Helper()
	worldOnce.Do(func() {
		w := &world{ids: map[string]*crypto.Identity{}}
		var members []crypto.Member
		var all []crypto.MemberID
		var recips []crypto.Recipient
		for _, name := range []string{"enisa", "cert-lu", "cert-fr", "cert-de", "cert-xx"} {
			id, err := crypto.NewIdentity(name, t0)
			if err != nil {
				panic(err)
			}
			w.ids[name] = id
			if name == "cert-xx" {
				continue // an outsider
			}
			roles := []crypto.Role{crypto.RoleCSIRT}
			if name == "enisa" {
				roles = []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}
			}
			members = append(members, crypto.Member{Card: id.Card(), Roles: roles})
			all = append(all, id.ID())
			recips = append(recips, id.Card().Recipient())
		}
		admin := w.ids["enisa"]
		g, err := crypto.NewGenesis(crypto.GenesisSpec{Network: "sync-test", Created: t0, Members: members,
			Voters: all[:1], Admins: all[:1]}, admin)
		if err != nil {
			panic(err)
		}
		w.genesis = g
		w.key, _ = crypto.NewGroupKey("all", 1)
		ke, err := crypto.NewKeyEnvelope(g.NetworkID(), w.key, recips)
		if err != nil {
			panic(err)
		}
		es, err := log.Build(admin, g.NetworkID(), log.Tip{}, 0, t0, []log.Draft{{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: ke.Bytes()}}})
		if err != nil {
			panic(err)
		}
		w.keyEnt = es[0]
		theWorld = w
	})
	return theWorld
}

type node struct {
	name  string
	id    *crypto.Identity
	store *store.Store
	host  host.Host
	gate  *gate
	svc   *Service
}

type nodeOpt struct {
	interval time.Duration
	timing   Timing
	noStart  bool
	// freeSpace fakes the store's free disk space (nil: no guard).
	freeSpace func() (uint64, error)
	// The Config's limits (zero: defaults).
	sessionQuota, pushQuota Quota
	maxPeerBuffer           int64
}

func (w *world) node(t testing.TB, name string, o nodeOpt) *node {
	t.Helper()
	id := w.ids[name]
	st, err := store.Open("", w.genesis, id, store.Options{InMemory: true, FreeSpace: o.freeSpace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &gate{self: id.PeerID(), denied: map[peer.ID]bool{}}
	h, err := libp2p.New(
		libp2p.Identity(id.PeerKey()),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.ConnectionGater(g),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if o.interval == 0 {
		o.interval = time.Hour // tests drive sessions unless they say otherwise
	}
	cfg := Config{Store: st, Host: h, Identity: id, Interval: o.interval, SessionQuota: o.sessionQuota, PushQuota: o.pushQuota, MaxPeerBuffer: o.maxPeerBuffer}
	if o.timing.ChunkSize > 0 {
		cfg.Timing = func(peer.ID) Timing { return o.timing }
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noStart {
		svc.Start()
		t.Cleanup(svc.Close)
	}
	n := &node{name: name, id: id, store: st, host: h, gate: g, svc: svc}
	if _, err := st.Ingest(context.Background(), w.keyEnt); err != nil {
		t.Fatal(err)
	}
	return n
}

func connect(t testing.TB, a, b *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.host.Connect(ctx, peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatalf("connect %s → %s: %v", a.name, b.name, err)
	}
}

// partition cuts a from b both ways and keeps them apart.
func partition(a, b *node) {
	a.gate.set(b.host.ID(), true)
	b.gate.set(a.host.ID(), true)
	a.host.Network().ClosePeer(b.host.ID())
	b.host.Network().ClosePeer(a.host.ID())
}

func heal(t testing.TB, a, b *node) {
	a.gate.set(b.host.ID(), false)
	b.gate.set(a.host.ID(), false)
	connect(t, a, b)
}

func (n *node) post(t testing.TB, w *world, k int, prio log.Priority) []*log.Entry {
	t.Helper()
	drafts := make([]log.Draft, k)
	for i := range drafts {
		drafts[i] = log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: fmt.Sprintf("%s %d", n.name, i)}, Key: w.key, Priority: prio}
	}
	es, err := n.store.Append(context.Background(), drafts...)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// syncNow runs a session from a with b, waiting while one that a started
// by itself (on connect, or asked for again) still runs: logs can be equal
// before that session has ended.
func syncNow(t testing.TB, a, b *node) Report {
	t.Helper()
	var rep Report
	var err error
	waitFor(t, 10*time.Second, "a session of our own", func() bool {
		rep, err = a.svc.SyncWith(context.Background(), b.host.ID())
		return !errors.Is(err, errBusy)
	})
	if err != nil {
		t.Fatalf("session %s → %s: %v", a.name, b.name, err)
	}
	return rep
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func converged(ns ...*node) bool {
	d := ns[0].store.Digest()
	for _, n := range ns[1:] {
		if n.store.Digest() != d {
			return false
		}
	}
	return true
}

func holdsAll(t testing.TB, n *node, es []*log.Entry) {
	t.Helper()
	for _, e := range es {
		if _, err := n.store.Get(e.ID()); err != nil {
			t.Fatalf("%s lacks acknowledged entry %s/%d: %v", n.name, e.Header.Author.Short(), e.Header.Seq, err)
		}
	}
}

func TestThreeNodesConverge(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.node(t, "enisa", nodeOpt{}), w.node(t, "cert-lu", nodeOpt{}), w.node(t, "cert-fr", nodeOpt{})
	var acked []*log.Entry
	acked = append(acked, a.post(t, w, 5, log.Routine)...)
	acked = append(acked, b.post(t, w, 7, log.Flash)...)
	acked = append(acked, c.post(t, w, 3, log.Immediate)...)
	connect(t, a, b)
	connect(t, b, c)
	connect(t, a, c)
	waitFor(t, 20*time.Second, "three nodes to converge", func() bool { return converged(a, b, c) })
	for _, n := range []*node{a, b, c} {
		holdsAll(t, n, acked)
	}
	// Converged: a session is one small round trip.
	rep := syncNow(t, a, b)
	if !rep.Equal {
		t.Fatalf("session between converged nodes: %+v", rep)
	}
	t.Logf("converged session: %d bytes sent, %d received", rep.BytesSent, rep.BytesRecv)
	if rep.BytesSent+rep.BytesRecv > 128 {
		t.Errorf("converged round costs %d bytes, want ≤ 128", rep.BytesSent+rep.BytesRecv)
	}
}

func TestPushReachesPeersAtOnce(t *testing.T) {
	w := newWorld(t)
	a, b := w.node(t, "enisa", nodeOpt{}), w.node(t, "cert-lu", nodeOpt{})
	connect(t, a, b)
	waitFor(t, 10*time.Second, "initial sync", func() bool { return converged(a, b) })
	es := a.post(t, w, 1, log.Flash)
	waitFor(t, 10*time.Second, "the pushed entry", func() bool {
		_, err := b.store.Get(es[0].ID())
		return err == nil
	})
}

func TestPartitionHeal(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	w := newWorld(t)
	a, b, c := w.node(t, "enisa", nodeOpt{interval: 200 * time.Millisecond}), w.node(t, "cert-lu", nodeOpt{interval: 200 * time.Millisecond}), w.node(t, "cert-fr", nodeOpt{interval: 200 * time.Millisecond})
	connect(t, a, b)
	connect(t, b, c)
	connect(t, a, c)
	waitFor(t, 20*time.Second, "initial convergence", func() bool { return converged(a, b, c) })
	partition(a, c)
	partition(b, c)
	var acked []*log.Entry
	for i := 0; i < 10; i++ {
		n := []*node{a, b, c}[r.IntN(3)]
		acked = append(acked, n.post(t, w, 1+r.IntN(20), log.Priority(1+r.IntN(3)))...)
	}
	waitFor(t, 20*time.Second, "the majority side to converge", func() bool { return converged(a, b) })
	if converged(a, c) && c.store.Digest() != a.store.Digest() {
		t.Fatal("partition leaked")
	}
	heal(t, a, c)
	heal(t, b, c)
	waitFor(t, 30*time.Second, "convergence after heal", func() bool { return converged(a, b, c) })
	for _, n := range []*node{a, b, c} {
		holdsAll(t, n, acked)
	}
}

// A and C never connect; they converge through B, which relays entries it
// cannot read as well as those it can.
func TestLineConverges(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.node(t, "enisa", nodeOpt{}), w.node(t, "cert-lu", nodeOpt{}), w.node(t, "cert-fr", nodeOpt{})
	a.gate.set(c.host.ID(), true)
	c.gate.set(a.host.ID(), true)
	red, _ := crypto.NewGroupKey("to/a-c", 1)
	secret, err := a.store.Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPRed, Text: "for C only"}, Key: red})
	if err != nil {
		t.Fatal(err)
	}
	acked := append(a.post(t, w, 3, log.Routine), secret...)
	acked = append(acked, c.post(t, w, 4, log.Routine)...)
	connect(t, a, b)
	connect(t, b, c)
	waitFor(t, 20*time.Second, "A and C to converge through B", func() bool { return converged(a, b, c) })
	for _, n := range []*node{a, b, c} {
		holdsAll(t, n, acked)
	}
	if _, err := b.store.Read(secret[0]); err == nil {
		t.Error("B can read an entry sealed to a group it is not in")
	}
	if len(a.host.Network().ConnsToPeer(c.host.ID())) != 0 {
		t.Error("A and C connected")
	}
}

// An interrupted transfer resumes without loss or duplicates.
func TestInterruptedTransferResumes(t *testing.T) {
	w := newWorld(t)
	tm := Timing{ChunkSize: 4 << 10, SessionTimeout: 10 * time.Second}
	a := w.node(t, "enisa", nodeOpt{timing: tm})
	b := w.node(t, "cert-lu", nodeOpt{timing: tm, noStart: true})
	var acked []*log.Entry
	for i := 0; i < 20; i++ {
		acked = append(acked, a.post(t, w, 100, log.Routine)...)
	}
	b.svc.Start()
	t.Cleanup(b.svc.Close)
	connect(t, b, a)
	// Cut the connection once B holds part of A's feed.
	waitFor(t, 20*time.Second, "part of the transfer", func() bool {
		h, _ := b.store.Head(a.id.ID())
		return h.Seq > 300
	})
	partition(a, b)
	h, _ := b.store.Head(a.id.ID())
	if h.Seq >= 2000 {
		t.Skip("transfer finished before the cut; machine too fast for this test")
	}
	t.Logf("cut after %d of 2000 entries", h.Seq)
	heal(t, a, b)
	waitFor(t, 30*time.Second, "the rest of the transfer", func() bool { return converged(a, b) })
	holdsAll(t, b, acked)
	feed, err := b.store.Feed(a.id.ID(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) != 2001 { // the key entry and 2000 entries
		t.Fatalf("B holds %d entries of A, want 2001", len(feed))
	}
	if k, err := log.CheckRun(b.store.Network(), b.store.Roster(), log.Head{}, feed); k != len(feed) || err != nil {
		t.Fatalf("feed after resume: %d valid, %v", k, err)
	}
}

func TestWhoHas(t *testing.T) {
	w := newWorld(t)
	a, b := w.node(t, "enisa", nodeOpt{}), w.node(t, "cert-lu", nodeOpt{})
	es := a.post(t, w, 1, log.Routine)
	connect(t, a, b)
	waitFor(t, 10*time.Second, "sync", func() bool { return converged(a, b) })
	syncNow(t, a, b)
	hs, err := a.svc.WhoHas(es[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Holder{}
	for _, h := range hs {
		got[h.Member] = h
	}
	if !got["cert-lu"].Has || !got["enisa"].Has {
		t.Errorf("who has: %+v", hs)
	}
	if got["cert-de"].Has || got["cert-de"].Why == "" {
		t.Errorf("cert-de: %+v, want not held, with a reason", got["cert-de"])
	}
}
