package transport

import (
	"log/slog"
	"sync/atomic"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gate is the connection gater: only active roster members get through,
// and, under a [Faults], only where no partition or link rule forbids it.
// It is safe for concurrent use; libp2p calls it from many goroutines.
type gate struct {
	self     peer.ID
	admitted atomic.Pointer[map[peer.ID]bool]
	faults   *Faults // nil outside tests and sim
	stats    *counters
	log      *slog.Logger
}

var _ connmgr.ConnectionGater = (*gate)(nil)

func newGate(self peer.ID, r *crypto.Roster, faults *Faults, stats *counters, log *slog.Logger) *gate {
	g := &gate{self: self, faults: faults, stats: stats, log: log}
	g.setRoster(r)
	return g
}

// setRoster swaps the set of admitted peers atomically: a check never sees
// half of a roster.
func (g *gate) setRoster(r *crypto.Roster) {
	set := map[peer.ID]bool{}
	for _, m := range r.Members() {
		if !m.Revoked {
			set[m.Card.PeerID()] = true
		}
	}
	g.admitted.Store(&set)
}

func (g *gate) admits(p peer.ID) bool { return (*g.admitted.Load())[p] }

// allow decides for peer p over address a (nil: any address).
func (g *gate) allow(p peer.ID, a ma.Multiaddr, where string) bool {
	if !g.admits(p) {
		g.stats.refusedPeer.Add(1)
		g.log.Debug("refused a peer that is not an active roster member", "remote", p, "at", where)
		return false
	}
	if g.faults != nil && !g.faults.allows(g.self, p, a) {
		g.stats.refusedFault.Add(1)
		return false
	}
	return true
}

// InterceptPeerDial stops dials to outsiders before any packet leaves.
func (g *gate) InterceptPeerDial(p peer.ID) bool { return g.allow(p, nil, "peer-dial") }

// InterceptAddrDial is asked per address; under an emulated link only TCP
// (which the emulator wraps) may be dialled.
func (g *gate) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return g.allow(p, a, "addr-dial")
}

// InterceptAccept cannot know the peer yet: InterceptSecured decides.
func (g *gate) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured is the first point where the remote is authenticated
// (TLS proved it holds the key of its peer ID): this is the check that
// keeps an outsider's inbound connection out.
func (g *gate) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return g.allow(p, c.RemoteMultiaddr(), "secured")
}

// InterceptUpgraded checks QUIC's key exchange, which the TLS wrapper does
// not see (libp2p's QUIC transport runs TLS inside quic-go), and the roster
// once more, in case it changed during the handshake.
func (g *gate) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if !g.admits(c.RemotePeer()) {
		g.stats.refusedPeer.Add(1)
		return false, 0
	}
	if group, ok := quicGroup(c); ok && group != RequiredGroup {
		g.stats.refusedGroup.Add(1)
		g.log.Warn("refused a QUIC connection with a classical key exchange",
			"remote", c.RemotePeer(), "addr", c.RemoteMultiaddr(), "group", group.String(), "direction", c.Stat().Direction.String())
		return false, 0
	}
	return true, 0
}

// relayACL lets only roster members reserve and use this node's relay.
type relayACL struct{ g *gate }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.g.admits(p) }

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.g.admits(src) && a.g.admits(dest)
}

// counters are the host's refusal and dial counts; see [Stats].
type counters struct {
	refusedPeer, refusedGroup, refusedFault atomic.Uint64
	dials, dialFailures                     atomic.Uint64
}

// Stats counts what the host refused and dialled since it started.
type Stats struct {
	// RefusedPeer: dials and connections refused because the peer is not an
	// active roster member (an outsider, or revoked).
	RefusedPeer uint64
	// RefusedGroup: connections closed because their TLS key exchange was
	// not X25519MLKEM768.
	RefusedGroup uint64
	// RefusedFault: dials and connections refused by an injected fault.
	RefusedFault uint64
	// Dials and DialFailures: attempts of the reconnect loop.
	Dials, DialFailures uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RefusedPeer:  c.refusedPeer.Load(),
		RefusedGroup: c.refusedGroup.Load(),
		RefusedFault: c.refusedFault.Load(),
		Dials:        c.dials.Load(),
		DialFailures: c.dialFailures.Load(),
	}
}
