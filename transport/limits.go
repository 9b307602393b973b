package transport

import (
	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Resource manager limits for a closed mesh: every peer that gets past
// the gate is a roster member, there are at most Config.MaxPeers of them,
// and each runs a handful of protocols (sync, push, Raft, identify,
// ping, relay). libp2p's defaults are sized for an open network of
// thousands of strangers and scale with memory, so a single member
// could hold hundreds of streams. These limits are explicit instead;
// the package doc ("Resources") says why each number is what it is.
const (
	// Per peer. libp2p may dial up to 8 addresses of a peer at once, so
	// a peer may briefly have 8 connections; one or two stay.
	peerConns = 8
	// Streams of one peer: sync and push (a few each way), Raft's
	// connection pool (a few), identify, ping, relay, hole punching.
	peerStreamsIn  = 64
	peerStreamsOut = 128
	peerMemory     = 32 << 20
	// Streams of one peer on one protocol (or service): no honest
	// protocol of ours keeps more than a few open per peer.
	protocolPeerStreamsIn  = 16
	protocolPeerStreamsOut = 32
	protocolPeerMemory     = 16 << 20
	// Transient: connections still in their handshake (an outsider is
	// here until the gate refuses it) and streams before their protocol
	// is known. Small, so that a flood of half-open connections stays
	// small; it cannot cut a node off, whose own dials count apart
	// (outbound).
	transientConnsIn  = 32
	transientConnsOut = 64
	transientStreams  = 64
	transientMemory   = 16 << 20
	transientFD       = 32
)

// resourceLimits returns the resource manager's limits for cfg.
func resourceLimits(cfg *Config) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits
	// libp2p's own services (identify, ping, relay, hole punching) keep
	// the limits libp2p gives them.
	libp2p.SetDefaultServiceLimits(&limits)
	n := cfg.MaxPeers
	limits.SystemBaseLimit = rcmgr.BaseLimit{
		ConnsInbound: 2 * n, ConnsOutbound: 2 * n, Conns: 4 * n,
		StreamsInbound: 32 * n, StreamsOutbound: 32 * n, Streams: 64 * n,
		Memory: cfg.MaxMemory, FD: cfg.MaxFileDescriptors,
	}
	limits.SystemLimitIncrease = rcmgr.BaseLimitIncrease{}
	limits.TransientBaseLimit = rcmgr.BaseLimit{
		ConnsInbound: transientConnsIn, ConnsOutbound: transientConnsOut, Conns: transientConnsOut,
		StreamsInbound: transientStreams, StreamsOutbound: transientStreams, Streams: 2 * transientStreams,
		Memory: transientMemory, FD: transientFD,
	}
	limits.TransientLimitIncrease = rcmgr.BaseLimitIncrease{}
	limits.PeerBaseLimit = rcmgr.BaseLimit{
		ConnsInbound: peerConns, ConnsOutbound: peerConns, Conns: peerConns,
		StreamsInbound: peerStreamsIn, StreamsOutbound: peerStreamsOut, Streams: peerStreamsIn + peerStreamsOut,
		Memory: peerMemory, FD: peerConns,
	}
	limits.PeerLimitIncrease = rcmgr.BaseLimitIncrease{}
	limits.ProtocolPeerBaseLimit = rcmgr.BaseLimit{
		StreamsInbound: protocolPeerStreamsIn, StreamsOutbound: protocolPeerStreamsOut,
		Streams: protocolPeerStreamsIn + protocolPeerStreamsOut, Memory: protocolPeerMemory,
	}
	limits.ProtocolPeerLimitIncrease = rcmgr.BaseLimitIncrease{}
	limits.ServicePeerBaseLimit = limits.ProtocolPeerBaseLimit
	limits.ServicePeerLimitIncrease = rcmgr.BaseLimitIncrease{}
	limits.ProtocolBaseLimit = rcmgr.BaseLimit{
		StreamsInbound: 4 * n, StreamsOutbound: 4 * n, Streams: 8 * n, Memory: cfg.MaxMemory / 2,
	}
	limits.ProtocolLimitIncrease = rcmgr.BaseLimitIncrease{}
	// The scaling adds nothing to the limits set above (their increases
	// are zero); it scales libp2p's service limits and file descriptors.
	return limits.Scale(cfg.MaxMemory, cfg.MaxFileDescriptors)
}
