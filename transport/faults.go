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
}

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
		seed: seed, log: logger,
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

// Heal lifts every partition and tells every host to reconnect now
// (clearing libp2p's dial backoff and the host's own).
func (f *Faults) Heal() {
	f.mu.Lock()
	clear(f.blocked)
	hosts := f.hostsLocked()
	f.mu.Unlock()
	f.log.Info("heal")
	for _, h := range hosts {
		h.wakeAll(true)
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
	cutNonTCP := func(h *Host, other peer.ID) {
		if h == nil {
			return
		}
		for _, c := range h.h.Network().ConnsToPeer(other) {
			if !isTCP(c.RemoteMultiaddr()) {
				_ = c.Close()
			}
		}
	}
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

// linkFor returns the link from self to the host listening at remote
// ("ip:port"), and until when it is stalled. Unknown: no emulation.
func (f *Faults) linkFor(self peer.ID, remote string) (Link, time.Time) {
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
	return st.link, st.stallUntil
}

// wrap puts a freshly dialled TCP connection of self under emulation.
func (f *Faults) wrap(self peer.ID, c net.Conn) net.Conn {
	f.mu.Lock()
	f.conns++
	seed := f.seed ^ (f.conns * 0x9e3779b97f4a7c15)
	f.mu.Unlock()
	remote := c.RemoteAddr().String()
	return newEmuConn(c, func() (Link, time.Time) { return f.linkFor(self, remote) }, seed)
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
