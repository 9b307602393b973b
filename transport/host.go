package transport

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrNotMember is returned when asked to reach a peer that is not an
// active member of the roster.
var ErrNotMember = errors.New("transport: peer is not an active roster member")

// protectTag marks roster peers in the connection manager.
const protectTag = "crisismesh-roster"

// Host is this node's libp2p host with the network's rules around it: TLS
// 1.3 with the post-quantum hybrid key exchange only, the roster gate,
// reconnection to roster peers, discovery and relaying, link profiles,
// fault injection. It is safe for concurrent use. Close stops everything
// it started.
type Host struct {
	cfg    Config
	log    *slog.Logger
	self   peer.ID
	h      host.Host
	gate   *gate
	groups *groupTable
	cm     *connmgr.BasicConnMgr
	stats  counters
	roster atomic.Pointer[crypto.Roster]
	mdns   mdns.Service
	relay  *relayv2.Relay
	notify *network.NotifyBundle

	static []peer.AddrInfo
	relays []peer.AddrInfo

	wakeMu  sync.Mutex
	woken   map[peer.ID]bool // peer → reset its backoff
	kick    chan struct{}
	probing atomic.Bool

	resvMu sync.Mutex
	resv   map[peer.ID]time.Time // relay → reservation expiry

	pinMu  sync.RWMutex
	pinned map[peer.ID]string // PinProfile: profiles pinned while running

	stop      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts a host: it listens, admits only the roster's active members,
// and keeps trying to connect to each of them. cfg is validated first.
func New(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The host keeps the config: it must not change under it.
	cfg.ListenAddrs = slices.Clone(cfg.ListenAddrs)
	cfg.StaticPeers = slices.Clone(cfg.StaticPeers)
	cfg.Relay.Relays = slices.Clone(cfg.Relay.Relays)
	cfg.PeerProfiles = maps.Clone(cfg.PeerProfiles)
	if cfg.JitterSeed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.JitterSeed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	self, _ := peer.IDFromPrivateKey(cfg.PeerKey) // checked by Validate
	log := cfg.Logger.With("self", self.ShortString())
	t := &Host{
		cfg: cfg, log: log, self: self,
		groups: newGroupTable(),
		woken:  map[peer.ID]bool{},
		kick:   make(chan struct{}, 1),
		resv:   map[peer.ID]time.Time{},
	}
	t.roster.Store(cfg.Roster)
	t.gate = newGate(self, cfg.Roster, cfg.Faults, &t.stats, log)
	for _, s := range cfg.StaticPeers {
		ai, _ := peer.AddrInfoFromString(s) // checked by Validate
		t.static = append(t.static, *ai)
	}
	for _, s := range cfg.Relay.Relays {
		ai, _ := peer.AddrInfoFromString(s)
		t.relays = append(t.relays, *ai)
	}

	opts, err := t.options()
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("transport: start libp2p: %w", err)
	}
	t.h = h
	t.stop = make(chan struct{})

	if cfg.Relay.Service {
		t.relay, err = relayv2.New(h, relayv2.WithACL(relayACL{t.gate}))
		if err != nil {
			_ = h.Close()
			return nil, fmt.Errorf("transport: start relay service: %w", err)
		}
	}
	t.learnRoster(cfg.Roster, nil)
	for _, ai := range append(append([]peer.AddrInfo(nil), t.static...), t.relays...) {
		if !t.gate.admits(ai.ID) {
			log.Warn("a static peer or relay is not an active roster member: the gate will refuse it", "remote", ai.ID)
		}
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		t.cm.Protect(ai.ID, protectTag)
	}
	t.notify = &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) { t.wake(c.RemotePeer(), false) }}
	h.Network().Notify(t.notify)
	if cfg.Faults != nil {
		cfg.Faults.register(t)
	}
	if cfg.MDNS {
		t.mdns = mdns.NewMdnsService(h, cfg.MDNSService, mdnsNotifee{t})
		if err := t.mdns.Start(); err != nil {
			// A host without multicast still works through roster hints.
			log.Warn("mDNS did not start; peers on this LAN are found only through roster address hints", "err", err)
			_ = t.mdns.Close()
			t.mdns = nil
		}
	}
	t.wg.Add(1)
	go t.maintain()
	log.Info("transport started", "addrs", h.Addrs(), "profile", cfg.Profile, "jitter_seed", cfg.JitterSeed,
		"mdns", t.mdns != nil, "relay_service", cfg.Relay.Service, "relay_client", cfg.Relay.Client)
	return t, nil
}

// options builds libp2p's options from the config.
func (t *Host) options() ([]libp2p.Option, error) {
	cfg := &t.cfg
	var listen []ma.Multiaddr
	for _, s := range cfg.ListenAddrs {
		a, _ := ma.NewMultiaddr(s) // checked by Validate
		listen = append(listen, a)
	}
	// Resource limits for a closed mesh (limits.go), within what the
	// operator grants, rather than libp2p's defaults for an open network
	// scaled to 1/8 of the machine.
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(cfg)))
	if err != nil {
		return nil, fmt.Errorf("transport: resource manager: %w", err)
	}
	t.cm, err = connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		_ = rm.Close()
		return nil, fmt.Errorf("transport: connection manager: %w", err)
	}
	// The swarm's dial timeout is a cap: the reconnect loop sets each
	// peer's own, and callers bound theirs with contexts.
	var dialCap time.Duration
	for _, p := range Profiles() {
		dialCap = max(dialCap, p.DialTimeout)
	}
	var tcpOpts []any
	if f := cfg.Faults; f != nil {
		// Every TCP dial goes through the link emulator. Dials only: the
		// side that dials emulates both directions of the connection.
		self := t.self
		tcpOpts = append(tcpOpts, tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) {
			return emuDialer{f: f, self: self}, nil
		}))
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.PeerKey),
		libp2p.ListenAddrs(listen...),
		// TLS only: listing one security transport disables Noise, which
		// is classical X25519.
		libp2p.Security(libp2ptls.ID, newSecurityConstructor(t.groups, t.refuseGroup)),
		libp2p.Transport(tcp.NewTCPTransport, tcpOpts...),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ConnectionGater(t.gate),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(t.cm),
		libp2p.WithDialTimeout(dialCap),
		libp2p.UserAgent("crisismesh"),
	}
	if cfg.Relay.Client {
		opts = append(opts, libp2p.EnableRelay(), libp2p.EnableHolePunching())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if cfg.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	return opts, nil
}

// emuDialer dials TCP and puts the connection under the link emulator.
type emuDialer struct {
	f    *Faults
	self peer.ID
}

func (d emuDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return d.f.wrap(d.self, c), nil
}

func (t *Host) refuseGroup(dir network.Direction, remote peer.ID, addr net.Addr, group tls.CurveID) {
	t.stats.refusedGroup.Add(1)
	t.log.Warn("refused a TLS connection with a classical key exchange",
		"remote", remote, "addr", addr.String(), "group", group.String(), "direction", dir.String())
}

// Host returns the libp2p host, for protocols (sync, the Raft stream
// layer) to open and accept streams. Do not close it: close the Host.
func (t *Host) Host() host.Host { return t.h }

// ID returns this node's peer ID.
func (t *Host) ID() peer.ID { return t.self }

// Addrs returns the addresses this host listens on, with its peer ID
// (ready for another node's static peers).
func (t *Host) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: t.self, Addrs: t.h.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Stats returns the host's counters.
func (t *Host) Stats() Stats { return t.stats.snapshot() }

// Roster returns the roster the gate applies now.
func (t *Host) Roster() *crypto.Roster { return t.roster.Load() }

// SetRoster makes r the roster: from now on only its active members get
// through, the connections of peers it no longer admits (revoked members)
// are closed, and its new members are dialled.
func (t *Host) SetRoster(r *crypto.Roster) {
	if r == nil {
		return
	}
	if _, ok := r.ByPeer(t.self); !ok {
		t.log.Error("the new roster does not list this node as an active member: the other members will refuse it", "roster_version", r.Version())
	}
	old := t.roster.Swap(r)
	t.gate.setRoster(r)
	t.learnRoster(r, old)
	for _, p := range t.h.Network().Peers() {
		if !t.gate.admits(p) {
			t.log.Info("closing the connections of a peer the roster no longer admits", "remote", p, "roster_version", r.Version())
			_ = t.h.Network().ClosePeer(p)
		}
	}
	t.wakeAll(false)
}

// learnRoster records r's address hints and protects its active members in
// the connection manager (unprotecting those old had and r revokes).
func (t *Host) learnRoster(r, old *crypto.Roster) {
	if old != nil {
		for _, m := range old.Members() {
			if p := m.Card.PeerID(); !t.gate.admits(p) {
				t.cm.Unprotect(p, protectTag)
			}
		}
	}
	for _, m := range r.Members() {
		p := m.Card.PeerID()
		if m.Revoked || p == t.self {
			continue
		}
		t.cm.Protect(p, protectTag)
		for _, s := range m.Addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				continue // crypto checked them; a bad one is skipped, not fatal
			}
			if _, id := peer.SplitAddr(a); id != "" && id != p {
				t.log.Warn("roster address hint names another peer; ignored", "member", m.Card.Name(), "addr", s)
				continue
			}
			a, _ = peer.SplitAddr(a)
			t.h.Peerstore().AddAddr(p, a, peerstore.PermanentAddrTTL)
		}
	}
}

// AddPeer records addresses for a roster member (learned from an operator,
// a bundle, another member) and dials it now.
func (t *Host) AddPeer(ai peer.AddrInfo) error {
	if !t.gate.admits(ai.ID) {
		return fmt.Errorf("%w: %s", ErrNotMember, ai.ID)
	}
	t.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	t.wake(ai.ID, true)
	return nil
}

// A ConnInfo describes one live connection.
type ConnInfo struct {
	// Transport is "tcp", "quic-v1" or "relay".
	Transport  string
	RemoteAddr ma.Multiaddr
	// Group is the TLS key exchange, "X25519MLKEM768" on every connection
	// this package lets through; "" where it cannot be read.
	Group     string
	Direction network.Direction
	Opened    time.Time
	// Limited is set on relayed connections (see [RelayConfig]).
	Limited bool
}

// ConnInfo describes the live connections to p. The slice is the caller's.
func (t *Host) ConnInfo(p peer.ID) []ConnInfo {
	var out []ConnInfo
	for _, c := range t.h.Network().ConnsToPeer(p) {
		st := c.Stat()
		out = append(out, ConnInfo{
			Transport:  connTransport(c),
			RemoteAddr: c.RemoteMultiaddr(),
			Group:      groupOf(c, t.groups),
			Direction:  st.Direction,
			Opened:     st.Opened,
			Limited:    st.Limited,
		})
	}
	return out
}

// ProfileFor returns the link profile for peer p: the one the config pins,
// else the one its measured round trip calls for, else the default.
func (t *Host) ProfileFor(p peer.ID) Profile {
	t.pinMu.RLock()
	name, ok := t.pinned[p]
	t.pinMu.RUnlock()
	if ok {
		if pr, err := ProfileByName(name); err == nil {
			return pr
		}
	}
	if name, ok := t.cfg.PeerProfiles[p]; ok {
		if pr, err := ProfileByName(name); err == nil {
			return pr
		}
	}
	if rtt := t.h.Peerstore().LatencyEWMA(p); rtt > 0 {
		return ProfileForRTT(rtt)
	}
	pr, _ := ProfileByName(t.cfg.Profile)
	return pr
}

// PinProfile pins p's link profile by name while the host runs, above
// Config.PeerProfiles and any measurement (a simulator laying a satellite
// link, an operator's tool). An unknown name is refused.
func (t *Host) PinProfile(p peer.ID, name string) error {
	if _, err := ProfileByName(name); err != nil {
		return err
	}
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	if t.pinned == nil {
		t.pinned = map[peer.ID]string{}
	}
	t.pinned[p] = name
	return nil
}

// MeasureRTT pings p once and records the round trip in the peerstore,
// where [Host.ProfileFor] reads it.
func (t *Host) MeasureRTT(ctx context.Context, p peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops ping's goroutine after the first answer
	select {
	case r := <-ping.Ping(ctx, t.h, p):
		if r.Error != nil {
			return 0, fmt.Errorf("transport: ping %s: %w", p, r.Error)
		}
		return r.RTT, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Reservations returns the relays on which this node holds a reservation,
// with their expiry. The map is the caller's.
func (t *Host) Reservations() map[peer.ID]time.Time {
	t.resvMu.Lock()
	defer t.resvMu.Unlock()
	out := make(map[peer.ID]time.Time, len(t.resv))
	for p, exp := range t.resv {
		out[p] = exp
	}
	return out
}

// Close stops the host: discovery, relay, the reconnect loop, and every
// connection. It waits for the goroutines it started.
func (t *Host) Close() error {
	t.closeOnce.Do(func() {
		close(t.stop)
		if t.cfg.Faults != nil {
			t.cfg.Faults.unregister(t)
		}
		var errs []error
		if t.mdns != nil {
			errs = append(errs, t.mdns.Close())
		}
		t.wg.Wait()
		t.h.Network().StopNotify(t.notify)
		if t.relay != nil {
			errs = append(errs, t.relay.Close())
		}
		errs = append(errs, t.h.Close())
		t.closeErr = errors.Join(errs...)
		t.log.Info("transport stopped")
	})
	return t.closeErr
}

// mdnsNotifee connects to roster members found on the LAN; mDNS itself
// only reports them.
type mdnsNotifee struct{ t *Host }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	t := n.t
	if ai.ID == t.self || !t.gate.admits(ai.ID) {
		return
	}
	t.log.Debug("mDNS found a roster peer", "remote", ai.ID, "addrs", ai.Addrs)
	// An hour: long enough to survive a restart of the peer, short enough
	// that a peer that moved is forgotten.
	t.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	t.wake(ai.ID, true)
}
