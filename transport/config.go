package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrConfig is the class of every problem [Config.Validate] reports.
var ErrConfig = errors.New("transport: bad config")

// Config is what [New] needs. It is data: build it with [DefaultConfig],
// change fields, and [Config.Validate] (New calls it) names every problem
// at once.
type Config struct {
	// ListenAddrs are the multiaddrs to listen on: TCP
	// (/ip4/0.0.0.0/tcp/4001) and QUIC (/ip4/0.0.0.0/udp/4001/quic-v1),
	// IPv4 or IPv6. At least one.
	ListenAddrs []string

	// PeerKey is this node's libp2p key (crypto.Identity.PeerKey).
	// Required; must be Ed25519, like every roster card's.
	PeerKey libp2pcrypto.PrivKey

	// Roster decides who may connect; it must list this node as an active
	// member, unless AwaitAdmission is set. Swap it later with
	// [Host.SetRoster].
	Roster *crypto.Roster
	// AwaitAdmission: this node is new and its roster does not list it yet;
	// it dials its static peers, which admit it once they hold the roster
	// update that adds it.
	AwaitAdmission bool

	// Profile is the link profile for peers that PeerProfiles does not
	// name and whose round trip has not been measured yet.
	Profile string
	// PeerProfiles pins the profile of some peers (by name), whatever
	// their measured round trip.
	PeerProfiles map[peer.ID]string
	// RTTProbeInterval is how often the round trip to each connected roster
	// peer is measured (libp2p ping, recorded in the peerstore's
	// LatencyEWMA) to choose its profile. Zero: never.
	RTTProbeInterval time.Duration

	// StaticPeers are multiaddrs with a /p2p/ part, dialled and kept
	// connected like roster peers (they must be roster members too, or the
	// gate refuses them).
	StaticPeers []string

	// MDNS finds roster peers on the local network.
	MDNS bool
	// MDNSService is the mDNS service name.
	MDNSService string

	// Relay configures circuit relay v2.
	Relay RelayConfig

	// ConnLow and ConnHigh are the connection manager's watermarks. Roster
	// peers are protected and never trimmed.
	ConnLow, ConnHigh int

	// MaxPeers is the most members this node expects to be connected to
	// at once; the resource manager's system-wide connection and stream
	// limits are sized for it (see "Resources" in the package doc).
	MaxPeers int

	// MaxMemory (bytes) and MaxFileDescriptors bound the resource manager
	// as a whole.
	MaxMemory          int64
	MaxFileDescriptors int

	// JitterSeed seeds the reconnect jitter; zero draws one (it is logged,
	// so a run can be replayed).
	JitterSeed uint64

	// Faults, when set, puts this host under a shared fault injector
	// (tests and sim only): partitions and emulated links. Every host of
	// a simulation must share the same Faults.
	Faults *Faults

	// Metrics, when set, receives libp2p's Prometheus metrics. Nil turns
	// them off (libp2p would otherwise register on the global registry).
	Metrics prometheus.Registerer

	// Logger receives the host's structured logs; nil discards them.
	Logger *slog.Logger
}

// RelayConfig turns on circuit relay v2 (for members behind NAT). Relayed
// connections are "limited" (libp2p default: 2 minutes, 128 KiB each way):
// protocols that may use them must open streams with
// network.WithAllowLimitedConn.
type RelayConfig struct {
	// Service makes this node a relay for roster members (only them: the
	// gate and the relay's ACL both check).
	Service bool
	// Client lets this node dial and accept relayed connections and try
	// hole punching (DCUtR) to upgrade them to direct ones.
	Client bool
	// Relays are relay multiaddrs (with /p2p/) on which a client keeps a
	// reservation, so that others can reach it through them.
	Relays []string
}

// DefaultConfig returns a configuration for a node listening on port 4001
// (TCP and QUIC, all IPv4 interfaces), internet profile, mDNS on, relay off.
// PeerKey and Roster must still be set.
func DefaultConfig() Config {
	return Config{
		ListenAddrs:        []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		Profile:            ProfileInternet,
		RTTProbeInterval:   30 * time.Second,
		MDNS:               true,
		MDNSService:        "_crisismesh._udp",
		ConnLow:            64,
		ConnHigh:           128,
		MaxPeers:           512,
		MaxMemory:          256 << 20,
		MaxFileDescriptors: 512,
	}
}

// Validate reports every problem of c, each wrapping [ErrConfig], joined
// into one error; nil if there is none.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if len(c.ListenAddrs) == 0 {
		bad("no listen address (e.g. /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/udp/4001/quic-v1)")
	}
	for _, s := range c.ListenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			bad("listen address %q is not a multiaddr: %v", s, err)
			continue
		}
		if kind := addrKind(a); kind != kindTCP && kind != kindQUIC {
			bad("listen address %q: want TCP (/ip4/…/tcp/PORT) or QUIC (/ip4/…/udp/PORT/quic-v1)", s)
		}
	}
	var self peer.ID
	if c.PeerKey == nil {
		bad("no peer key (crypto.Identity.PeerKey)")
	} else if c.PeerKey.Type() != libp2pcrypto.Ed25519 {
		bad("peer key is %v, want Ed25519", c.PeerKey.Type())
	} else if id, err := peer.IDFromPrivateKey(c.PeerKey); err != nil {
		bad("peer key: %v", err)
	} else {
		self = id
	}
	if c.Roster == nil {
		bad("no roster")
	} else if self != "" {
		if _, ok := c.Roster.ByPeer(self); !ok && !c.AwaitAdmission {
			bad("the roster of network %s does not list this node (peer ID %s) as an active member", c.Roster.Name(), self)
		}
	}
	if _, err := ProfileByName(c.Profile); err != nil {
		bad("profile: %v", err)
	}
	for p, name := range c.PeerProfiles {
		if _, err := ProfileByName(name); err != nil {
			bad("profile of peer %s: %v", p, err)
		}
	}
	if c.RTTProbeInterval < 0 {
		bad("negative RTT probe interval %v", c.RTTProbeInterval)
	}
	for _, s := range c.StaticPeers {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			bad("static peer %q: want a multiaddr ending in /p2p/PEER-ID: %v", s, err)
		}
	}
	for _, s := range c.Relay.Relays {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			bad("relay %q: want a multiaddr ending in /p2p/PEER-ID: %v", s, err)
		}
	}
	if len(c.Relay.Relays) > 0 && !c.Relay.Client {
		bad("relays are listed but Relay.Client is off: reservations need the relay client")
	}
	if c.MDNS && c.MDNSService == "" {
		bad("mDNS is on but has no service name")
	}
	if c.ConnLow <= 0 || c.ConnHigh < c.ConnLow {
		bad("connection watermarks low %d, high %d: want 0 < low <= high", c.ConnLow, c.ConnHigh)
	}
	if c.MaxPeers < 2 {
		bad("MaxPeers %d: want at least 2 (a mesh of a few hundred members: 512)", c.MaxPeers)
	}
	if c.MaxMemory < 16<<20 {
		bad("MaxMemory %d bytes: want at least 16 MiB", c.MaxMemory)
	}
	if c.MaxFileDescriptors < 16 {
		bad("MaxFileDescriptors %d: want at least 16", c.MaxFileDescriptors)
	}
	return errors.Join(errs...)
}

type addrKindT int

const (
	kindOther addrKindT = iota
	kindTCP
	kindQUIC
)

// addrKind says whether a is a plain TCP or QUIC-v1 address over IP.
func addrKind(a ma.Multiaddr) addrKindT {
	var protos []int
	for i := range a {
		protos = append(protos, a[i].Code())
	}
	if len(protos) < 2 {
		return kindOther
	}
	switch protos[0] {
	case ma.P_IP4, ma.P_IP6:
	default:
		return kindOther
	}
	switch {
	case len(protos) == 2 && protos[1] == ma.P_TCP:
		return kindTCP
	case len(protos) == 3 && protos[1] == ma.P_UDP && protos[2] == ma.P_QUIC_V1:
		return kindQUIC
	}
	return kindOther
}
