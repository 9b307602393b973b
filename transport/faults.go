package transport

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Faults injects network faults between the hosts of one test or
// simulation: partitions (connections denied and cut) and emulated links
// (latency, bandwidth, loss, stalls). Hosts join it through
// [Config.Faults]; all hosts of a simulation must share one Faults,
// because a link is emulated by whichever side dialled the connection.
// It is safe for concurrent use.
type Faults struct {
	seed uint64
	log  *slog.Logger

	mu      sync.Mutex
	hosts   map[peer.ID]*Host
	owners  map[string]peer.ID // "ip:port" of a TCP listener → its host
	blocked map[pair]bool
	links   map[pair]*linkState
	conns   uint64 // emulated connections made, to seed each one
	// emulated connections by pair, to close when a one-way cut is lifted
	emulated map[pair][]net.Conn
}

// A Link describes an emulated link, the same in both directions.
type Link struct {
	// Latency is the one-way delay.
	Latency time.Duration
	// Bandwidth in bits per second; zero is unlimited.
	Bandwidth int64
	// Loss is the probability that a segment (up to 16 KiB) is lost. Over
	// TCP a loss is a stall, not a hole: that segment and everything behind
	// it arrive LossStall late, as after a retransmission.
	Loss float64
	// LossStall is how late a lost segment arrives; zero means two
	// latencies plus 200 ms (TCP's minimum retransmission timeout).
	LossStall time.Duration
}

// SatelliteLink is a GEO satellite terminal: 600 ms round trips,
// 256 kbit/s, 1 % of segments retransmitted.
func SatelliteLink() Link {
	return Link{Latency: 300 * time.Millisecond, Bandwidth: 256_000, Loss: 0.01}
}

func (l Link) lossStall() time.Duration {
	if l.LossStall > 0 {
		return l.LossStall
	}
	return 2*l.Latency + 200*time.Millisecond
}

type linkState struct {
	link       Link
	stallUntil time.Time
	held       map[peer.ID]bool // one-way cuts: data from these peers is held
}

// forever is how long a one-way cut holds data: until the cut is lifted
// and the connection closed.
const forever = 100 * 365 * 24 * time.Hour

type pair struct{ a, b peer.ID }

func pairOf(a, b peer.ID) pair {
	if b < a {
		a, b = b, a
	}
	return pair{a, b}
}

// NewFaults returns a fault injector with no fault. seed drives the
// random losses of emulated links; print it, so that a run can be
// replayed. logger may be nil.
func NewFaults(seed uint64, logger *slog.Logger) *Faults {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Faults{
		seed: seed, log: logger, emulated: map[pair][]net.Conn{},
		hosts:   map[peer.ID]*Host{},
		owners:  map[string]peer.ID{},
		blocked: map[pair]bool{},
		links:   map[pair]*linkState{},
	}
}

// Seed returns the seed NewFaults was given.
func (f *Faults) Seed() uint64 { return f.seed }

// Partition denies every connection between a member of a and a member
// of b, in both directions, and cuts those that are open. Partitions add
// up until [Faults.Heal].
func (f *Faults) Partition(a, b []peer.ID) {
	f.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			if x != y {
				f.blocked[pairOf(x, y)] = true
			}
		}
	}
	hosts := f.hostsLocked()
	f.mu.Unlock()
	f.log.Info("partition", "a", a, "b", b)
	for _, x := range a {
		for _, y := range b {
			if h := hosts[x]; h != nil {
				_ = h.h.Network().ClosePeer(y)
			}
			if h := hosts[y]; h != nil {
				_ = h.h.Network().ClosePeer(x)
			}
		}
	}
}

// Heal lifts every partition and one-way cut and tells every host to
// reconnect now (clearing libp2p's dial backoff and the host's own).
// Emulated links (latency, bandwidth) stay: see [Faults.ClearLink].
func (f *Faults) Heal() {
	f.mu.Lock()
	clear(f.blocked)
	var stale []net.Conn
	for k, st := range f.links {
		if len(st.held) > 0 {
			clear(st.held)
			stale = append(stale, f.emulated[k]...)
		}
		f.dropIdleLocked(k)
	}
	hosts := f.hostsLocked()
	f.mu.Unlock()
	f.log.Info("heal")
	for _, c := range stale {
		_ = c.Close()
	}
	for _, h := range hosts {
		h.wakeAll(true)
	}
}

// Reconnect lifts the partition and any one-way cut between a and b only,
// and tells both to reconnect now.
func (f *Faults) Reconnect(a, b peer.ID) {
	k := pairOf(a, b)
	f.mu.Lock()
	delete(f.blocked, k)
	var stale []net.Conn
	if st := f.links[k]; st != nil && len(st.held) > 0 {
		clear(st.held)
		stale = f.emulated[k]
	}
	f.dropIdleLocked(k)
	ha, hb := f.hosts[a], f.hosts[b]
	f.mu.Unlock()
	f.log.Info("reconnect", "a", a, "b", b)
	for _, c := range stale {
		_ = c.Close()
	}
	for _, h := range []*Host{ha, hb} {
		if h != nil {
			h.wakeAll(true)
		}
	}
}

// CutOneWay holds every byte from "from" to "to" from now on, while data
// from "to" to "from" flows: an asymmetric fault. Open TCP connections
// stay open (their traffic one way stops), other transports between the
// two are cut and refused, and a new connection cannot complete its
// handshake. [Faults.Heal] or [Faults.Reconnect] lifts it and closes the
// connections it held, so fresh ones form.
func (f *Faults) CutOneWay(from, to peer.ID) {
	f.mu.Lock()
	st := f.links[pairOf(from, to)]
	if st == nil {
		st = &linkState{}
		f.links[pairOf(from, to)] = st
	}
	if st.held == nil {
		st.held = map[peer.ID]bool{}
	}
	st.held[from] = true
	hosts := f.hostsLocked()
	f.mu.Unlock()
	f.log.Info("one-way cut", "from", from, "to", to)
	cutNonTCP(hosts[from], to)
	cutNonTCP(hosts[to], from)
}

// dropIdleLocked forgets the state of a pair that no longer emulates
// anything, so that other transports may connect it again.
func (f *Faults) dropIdleLocked(k pair) {
	st := f.links[k]
	if st != nil && st.link == (Link{}) && len(st.held) == 0 && !st.stallUntil.After(time.Now()) {
		delete(f.links, k)
	}
}

func cutNonTCP(h *Host, other peer.ID) {
	if h == nil {
		return
	}
	for _, c := range h.h.Network().ConnsToPeer(other) {
		if !isTCP(c.RemoteMultiaddr()) {
			_ = c.Close()
		}
	}
}

// Blocked reports whether a partition separates a and b.
func (f *Faults) Blocked(a, b peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked[pairOf(a, b)]
}

// SetLink emulates l between a and b, from now on and on open connections
// too. Only TCP can be emulated: connections between a and b over other
// transports (QUIC, relays) are cut and refused while the link is set.
func (f *Faults) SetLink(a, b peer.ID, l Link) {
	f.mu.Lock()
	st := f.links[pairOf(a, b)]
	if st == nil {
		st = &linkState{}
		f.links[pairOf(a, b)] = st
	}
	st.link = l
	hosts := f.hostsLocked()
	f.mu.Unlock()
	f.log.Info("link", "a", a, "b", b, "latency", l.Latency, "bandwidth", l.Bandwidth, "loss", l.Loss)
	cutNonTCP(hosts[a], b)
	cutNonTCP(hosts[b], a)
}

// ClearLink ends the emulation between a and b: new data flows at full
// speed (data already in flight keeps its delay).
func (f *Faults) ClearLink(a, b peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, pairOf(a, b))
}

// Stall holds all data between a and b for d from now, as a link that
// goes silent and comes back (a satellite handover, a saturated uplink).
// Connections stay open; their keep-alives may time out if d is long.
func (f *Faults) Stall(a, b peer.ID, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.links[pairOf(a, b)]
	if st == nil {
		st = &linkState{}
		f.links[pairOf(a, b)] = st
	}
	st.stallUntil = time.Now().Add(d)
}

func (f *Faults) hostsLocked() map[peer.ID]*Host {
	out := make(map[peer.ID]*Host, len(f.hosts))
	for id, h := range f.hosts {
		out[id] = h
	}
	return out
}

// allows is the gate's question: may self and p connect over a (nil: any
// address)?
func (f *Faults) allows(self, p peer.ID, a ma.Multiaddr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := pairOf(self, p)
	if f.blocked[k] {
		return false
	}
	if _, emulated := f.links[k]; emulated && a != nil && !isTCP(a) {
		return false
	}
	return true
}

// register makes h's TCP listen addresses known, so that a dial to them
// finds the link to emulate.
func (f *Faults) register(h *Host) {
	addrs, _ := h.h.Network().InterfaceListenAddresses()
	addrs = append(addrs, h.h.Network().ListenAddresses()...)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[h.self] = h
	for _, a := range addrs {
		if !isTCP(a) {
			continue
		}
		if na, err := manet.ToNetAddr(a); err == nil {
			f.owners[na.String()] = h.self
		}
	}
}

func (f *Faults) unregister(h *Host) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.hosts, h.self)
	for k, id := range f.owners {
		if id == h.self {
			delete(f.owners, k)
		}
	}
}

// linkFor returns the link between self and the host listening at remote
// ("ip:port"), and until when data in one direction is stalled: from self
// (outbound) or to self. Unknown: no emulation.
func (f *Faults) linkFor(self peer.ID, remote string, outbound bool) (Link, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	owner, ok := f.owners[remote]
	if !ok {
		return Link{}, time.Time{}
	}
	st := f.links[pairOf(self, owner)]
	if st == nil {
		return Link{}, time.Time{}
	}
	sender := owner
	if outbound {
		sender = self
	}
	if st.held[sender] {
		return st.link, time.Now().Add(forever)
	}
	return st.link, st.stallUntil
}

// wrap puts a freshly dialled TCP connection of self under emulation.
func (f *Faults) wrap(self peer.ID, c net.Conn) net.Conn {
	remote := c.RemoteAddr().String()
	f.mu.Lock()
	f.conns++
	seed := f.seed ^ (f.conns * 0x9e3779b97f4a7c15)
	e := newEmuConn(c,
		func() (Link, time.Time) { return f.linkFor(self, remote, true) },
		func() (Link, time.Time) { return f.linkFor(self, remote, false) }, seed)
	if owner, ok := f.owners[remote]; ok {
		k := pairOf(self, owner)
		// Forget closed connections as new ones come.
		live := f.emulated[k][:0]
		for _, old := range f.emulated[k] {
			if !old.(*emuConn).closed() {
				live = append(live, old)
			}
		}
		f.emulated[k] = append(live, e)
	}
	f.mu.Unlock()
	return e
}

func isTCP(a ma.Multiaddr) bool {
	if a == nil {
		return false
	}
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil && !isCircuit(a)
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// connTransport names the transport of c for [ConnInfo].
func connTransport(c network.Conn) string {
	if isCircuit(c.RemoteMultiaddr()) {
		return "relay"
	}
	if t := c.ConnState().Transport; t != "" {
		return t
	}
	return "unknown"
}
