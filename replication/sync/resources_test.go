package sync

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// liveHeap is the heap still in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// unsignedFeed builds id's feed one entry at a time, each of about size
// bytes, and hands each out without its signature: a chain no signed
// successor ever vouches for. Entries are built as they are asked for, so
// the test itself holds none of them.
type unsignedFeed struct {
	t    testing.TB
	w    *world
	id   *crypto.Identity
	tip  log.Tip
	text string
}

func newUnsignedFeed(t testing.TB, w *world, id *crypto.Identity, size int) *unsignedFeed {
	return &unsignedFeed{t: t, w: w, id: id, text: strings.Repeat("u", size)}
}

func (f *unsignedFeed) next() *log.Entry {
	f.t.Helper()
	es, err := log.Build(f.id, f.w.genesis.NetworkID(), f.tip, 0, t0,
		[]log.Draft{{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: f.text}, Key: f.w.key}})
	if err != nil {
		f.t.Fatal(err)
	}
	e := es[0]
	f.tip = log.Tip{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport}
	return e.Unsigned()
}

func offencesOf(n *node, p peer.ID) int { return statsOf(n, p).Offences }

// connectedEvil adds to w the node enisa with opt and, connected to it,
// the member cert-de with no sync service of its own: a test drives it by
// hand.
func connectedEvil(t testing.TB, w *world, opt nodeOpt) (a, evil *node) {
	t.Helper()
	a = w.node(t, "enisa", opt)
	evil = w.node(t, "cert-de", nodeOpt{noStart: true})
	connect(t, evil, a)
	return a, evil
}

// openSession starts a sync session from evil to a by hand, up to the
// point where evil may send entries.
func openSession(t testing.TB, evil, a *node) (network.Stream, *conn) {
	t.Helper()
	s, c := startSession(t, evil, a)
	if err := c.send(&message{Type: msgFrontier, Frontier: encodeFrontier(a.store.Frontier())}); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// startSession starts a sync session from evil to a by hand, up to a's
// frontier, once a's own session on connect has ended.
func startSession(t testing.TB, evil, a *node) (network.Stream, *conn) {
	t.Helper()
	// a may start a session with evil on connect (evil answers nothing):
	// wait for it to end, or a would answer "busy".
	waitFor(t, 10*time.Second, "a's connect session to end", func() bool { return !a.svc.initiating(evil.host.ID()) })
	s, c := sendHello(t, evil, a)
	if m, err := c.recv(); err != nil || m.Type != msgFrontier {
		t.Fatalf("expected a frontier: %v %v", m, err)
	}
	return s, c
}

// sendHello opens a sync stream from evil to a and says hello with a
// digest that matches nothing.
func sendHello(t testing.TB, evil, a *node) (network.Stream, *conn) {
	t.Helper()
	s, err := evil.host.NewStream(context.Background(), a.host.ID(), ProtocolSync)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil)
	net := a.store.Network()
	if err := c.send(&message{Type: msgHello, Network: net[:8], Digest: make([]byte, 32)}); err != nil {
		s.Reset()
		t.Fatal(err)
	}
	return s, c
}

// A member that streams a long chain of unsigned entries (no signed
// successor ever comes) is cut off once what it made this node hold
// passes the per-peer byte budget, and the offence is counted; the node's
// heap does not grow with what the member sends. (Before: the cap was
// 20,000 entries, about 20 GiB of 1 MiB entries, and the node held every
// byte until the session ended.)
func TestUnsignedFloodBoundedInBytes(t *testing.T) {
	w := newWorld(t)
	a, evil := connectedEvil(t, w, nodeOpt{})
	s, c := openSession(t, evil, a)
	defer s.Reset()

	const entrySize = 900 << 10
	total := int64(DefaultMaxPeerBuffer) + 32<<20 // well past the budget
	before := liveHeap()
	feed := newUnsignedFeed(t, w, evil.id, entrySize)
	var sent int64
	for sent < total {
		e := feed.next()
		if err := c.send(&message{Type: msgEntries, Entries: [][]byte{e.Bytes()}}); err != nil {
			break // cut off by a, as it should be
		}
		sent += int64(e.Size())
	}
	// Either a cut the session (and counted it), or it holds all we sent.
	var grew int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		grew = liveHeap() - before
		if offencesOf(a, evil.host.ID()) > 0 || grew > sent*9/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sent %d MiB of unsigned entries; live heap grew by %d MiB", sent>>20, grew>>20)
	if grew > DefaultMaxPeerBuffer {
		t.Errorf("the node's live heap grew by %d MiB while a peer streamed %d MiB of unsigned entries, want < %d MiB (the per-peer budget)",
			grew>>20, sent>>20, DefaultMaxPeerBuffer>>20)
	}
	waitFor(t, 10*time.Second, "the flood to be counted as an offence", func() bool { return offencesOf(a, evil.host.ID()) > 0 })
	if got := statsOf(a, evil.host.ID()).LastOffence; !strings.Contains(got, "unsigned") {
		t.Errorf("last offence of the peer: %q, want it to name the unsigned entries", got)
	}
}

// writeBundle writes a bundle signed by id whose payload is the entries
// next hands out until it returns nil; it holds one entry at a time.
func writeBundle(t testing.TB, path string, id *crypto.Identity, net crypto.NetworkID, next func() *log.Entry) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(bundleMagic); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var count, length uint64
	for e := next(); e != nil; e = next() {
		frame := append(binary.AppendUvarint(nil, uint64(e.Size())), e.Bytes()...)
		h.Write(frame)
		if _, err := f.Write(frame); err != nil {
			t.Fatal(err)
		}
		count++
		length += uint64(len(frame))
	}
	exporter := id.ID()
	tr := signedTrailer(t, id, &trailerBody{Network: net[:], Exporter: exporter[:], Created: t0.UnixMilli(),
		Count: count, Length: length, SHA256: h.Sum(nil)})
	if _, err := f.Write(binary.BigEndian.AppendUint32(tr, uint32(len(tr)))); err != nil {
		t.Fatal(err)
	}
}

// peakHeap samples the heap in use while run runs, with the collector
// made eager so that the samples follow the live heap, and returns the
// largest sample.
func peakHeap(run func()) int64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var peak atomic.Int64
	var wg gosync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if v := int64(m.HeapAlloc); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	run()
	close(done)
	wg.Wait()
	return peak.Load()
}

// A bundle whose payload is a long chain of unsigned entries (signed by
// a member, so it passes the trailer checks) is refused with a clear
// error once the unsigned run passes the budget, without holding the
// whole run in memory. (Before: the importer carried every unsigned entry
// to the end of the file, and reported them only as rejected.)
func TestBundleUnsignedCarryBounded(t *testing.T) {
	w := newWorld(t)
	b := w.node(t, "cert-lu", nodeOpt{noStart: true})
	evil := w.ids["cert-de"]
	path := filepath.Join(t.TempDir(), "unsigned.bundle")
	const entrySize = 900 << 10
	total := int64(maxCarryBytes) + 48<<20
	feed := newUnsignedFeed(t, w, evil, entrySize)
	var written int64
	writeBundle(t, path, evil, w.genesis.NetworkID(), func() *log.Entry {
		if written >= total {
			return nil
		}
		e := feed.next()
		written += int64(e.Size())
		return e
	})
	before := liveHeap()
	var err error
	var res ImportResult
	peak := peakHeap(func() { res, err = Import(context.Background(), b.store, path) })
	grew := peak - before
	t.Logf("bundle of %d MiB of unsigned entries: peak heap grew by %d MiB; import: %v", written>>20, grew>>20, err)
	if !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), "unsigned") {
		t.Errorf("import: got %v (added %d, %d rejected), want ErrBadBundle naming the unsigned run", err, res.Added, len(res.Rejected))
	}
	if limit := int64(maxCarryBytes) + 32<<20; grew > limit {
		t.Errorf("importing it grew the heap by %d MiB, want < %d MiB (the carry budget and a batch)", grew>>20, limit>>20)
	}
	if _, err := b.store.Get(feed.tip.ID); err == nil {
		t.Error("an unsigned entry was stored")
	}
}

// A member that pushes more entries per second than its quota allows has
// the pushes beyond it refused and counted as offences; after repeated
// offences it is disconnected. What it pushed within the quota is stored.
func TestPushQuotaScored(t *testing.T) {
	w := newWorld(t)
	quota := DefaultPushQuota
	quota.EntriesPerSecond, quota.EntriesBurst = 1, 100 // 100 now, then one a second
	a := w.node(t, "enisa", nodeOpt{pushQuota: quota})
	evil := w.node(t, "cert-de", nodeOpt{noStart: true})
	var pushed [][]*log.Entry
	for range 6 {
		pushed = append(pushed, evil.post(t, w, 40, log.Routine))
	}
	connect(t, evil, a)
	for i, es := range pushed {
		s, err := evil.host.NewStream(context.Background(), a.host.ID(), ProtocolPushV1)
		if err != nil {
			t.Logf("push %d: %v (disconnected)", i, err)
			break
		}
		raw := make([][]byte, len(es))
		for j, e := range es {
			raw[j] = e.Bytes()
		}
		c := newConn(s, nil)
		if err := c.send(&message{Type: msgEntries, Entries: raw}); err != nil {
			t.Logf("push %d: %v", i, err)
		}
		s.CloseWrite()
		// The handler closes or resets the stream when it is done.
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("push %d: not served within 10 s", i)
		}
		s.Close()
	}
	waitFor(t, 10*time.Second, "the pushes beyond the quota to be scored", func() bool {
		return offencesOf(a, evil.host.ID()) >= 3
	})
	// LastOffence, not LastError: the disconnection that follows may make
	// a session to the peer fail after the offence, which is its last error.
	if got := statsOf(a, evil.host.ID()).LastOffence; !strings.Contains(got, "quota") {
		t.Errorf("last offence of the peer: %q, want it to name the quota", got)
	}
	waitFor(t, 10*time.Second, "the peer to be disconnected", func() bool {
		return a.host.Network().Connectedness(evil.host.ID()) != network.Connected
	})
	holdsAll(t, a, pushed[0])
	holdsAll(t, a, pushed[1])
	if _, err := a.store.Get(pushed[3][0].ID()); err == nil {
		t.Error("a push beyond the quota was stored")
	}
}

// A peer runs one session with us at a time: a second one it starts while
// the first runs is turned away as busy (not an offence), so that sessions
// cannot multiply what one peer makes this node hold.
func TestOneSessionPerPeer(t *testing.T) {
	w := newWorld(t)
	a, evil := connectedEvil(t, w, nodeOpt{})
	first, _ := openSession(t, evil, a)
	defer first.Reset()
	s, c := sendHello(t, evil, a)
	defer s.Reset()
	m, err := c.recv()
	if err != nil || m.Type != msgError || m.Error != busyMessage {
		t.Fatalf("second session: got %+v, %v; want the busy error", m, err)
	}
	if n := offencesOf(a, evil.host.ID()); n != 0 {
		t.Errorf("a second session counted %d offences, want 0", n)
	}
}

// What this node remembers of a peer's frontier grows with the roster,
// not with what the peer makes up: a frontier naming thousands of authors
// that are no members keeps only the members. (Offer answers add to what
// is remembered, so without this it grew with every push.)
func TestFrontierOfNonMembersForgotten(t *testing.T) {
	w := newWorld(t)
	a, evil := connectedEvil(t, w, nodeOpt{})
	s, c := startSession(t, evil, a)
	defer s.Reset()
	made := a.store.Frontier().Clone()
	for i := range 4000 { // the CBOR decoder allows 4,096 items
		var id crypto.MemberID
		binary.BigEndian.PutUint64(id[:], uint64(i)+1)
		made[id] = log.Head{Seq: 1_000_000, ID: log.Hash(id), Lamport: 1}
	}
	if err := c.send(&message{Type: msgFrontier, Frontier: encodeFrontier(made)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the frontier to be seen", func() bool { return statsOf(a, evil.host.ID()).LastFrontier != nil })
	members := len(w.genesis.Roster().Members())
	if got := len(statsOf(a, evil.host.ID()).LastFrontier); got > members {
		t.Errorf("a remembers %d authors of the peer's frontier, want at most the %d members", got, members)
	}
	other := a.svc.newTransfer() // a session with peer-two
	if got := len(a.svc.advertised(other, "peer-two")); got > members {
		t.Errorf("a counts %d authors as incoming, want at most the %d members", got, members)
	}
}

// The quotas: a session over its quota is paced (a wait, no error); a push
// over its quota is refused with ErrQuota; a session paced into debt
// leaves the peer's pushes their own buckets.
func TestQuotaBuckets(t *testing.T) {
	w := newWorld(t)
	quota := DefaultPushQuota
	quota.EntriesPerSecond, quota.EntriesBurst = 100, 100
	a := w.node(t, "enisa", nodeOpt{noStart: true, sessionQuota: quota, pushQuota: quota})
	const p = peer.ID("peer-one")
	if wait, err := a.svc.take(p, 300, 1000, true); err != nil || wait < 1900*time.Millisecond {
		t.Errorf("a session of 300 entries over a quota of 100 now and 100/s: wait %v, err %v; want about 2 s, no error", wait, err)
	}
	if _, err := a.svc.take(p, 100, 1000, false); err != nil {
		t.Errorf("a push within its own quota after a paced session: %v, want nil", err)
	}
	_, err := a.svc.take(p, 10, 1000, false)
	if !errors.Is(err, ErrQuota) || !errors.Is(err, ErrOffence) {
		t.Errorf("a push over the quota: %v, want ErrQuota and ErrOffence", err)
	}
	if _, err := a.svc.take("peer-two", 100, 1000, false); err != nil {
		t.Errorf("another peer's push: %v, want nil (quotas are per peer)", err)
	}
}

// The budget is the peer's, not a stream's: unsigned entries a peer's
// session holds count against a push from the same peer, which is refused
// (and scored) when both together would pass it.
func TestBudgetSharedBySessionsAndPushes(t *testing.T) {
	w := newWorld(t)
	const budget = 8 << 20
	a, evil := connectedEvil(t, w, nodeOpt{maxPeerBuffer: budget})
	s, c := openSession(t, evil, a)
	defer s.Reset()
	// About 7 MiB held: four unsigned entries of 900 KiB (counted twice:
	// decoded, the body is a copy), not yet a full batch.
	feed := newUnsignedFeed(t, w, evil.id, 900<<10)
	for range 4 {
		if err := c.send(&message{Type: msgEntries, Entries: [][]byte{feed.next().Bytes()}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the session to hold the unsigned entries", func() bool {
		a.svc.mu.Lock()
		defer a.svc.mu.Unlock()
		l := a.svc.limits[evil.host.ID()]
		return l != nil && l.held > 7<<20
	})
	// A push of two more entries of 480 KiB passes the peer's budget.
	other := newUnsignedFeed(t, w, w.ids["cert-fr"], 480<<10)
	ps, err := evil.host.NewStream(context.Background(), a.host.ID(), ProtocolPushV1)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Reset()
	pc := newConn(ps, nil)
	if err := pc.send(&message{Type: msgEntries, Entries: [][]byte{other.next().Bytes(), other.next().Bytes()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the push to be refused and scored", func() bool { return offencesOf(a, evil.host.ID()) > 0 })
	if got := statsOf(a, evil.host.ID()).LastOffence; !strings.Contains(got, "memory budget") || !strings.Contains(got, "push") {
		t.Errorf("last offence of the peer: %q, want it to name the memory budget and the push", got)
	}
}
