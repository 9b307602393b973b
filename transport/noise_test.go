package transport

import (
	"context"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
)

// newNoiseHost is a plain libp2p host whose only security transport is
// Noise (classical X25519, no post-quantum key exchange), over TCP only:
// QUIC always runs TLS, so a Noise-only peer is a TCP peer.
func newNoiseHost(t *testing.T, id *crypto.Identity) host.Host {
	t.Helper()
	return newTCPPeer(t, id, "Noise-only", libp2p.Security(noise.ID, noise.New))
}

// TestNoiseOnlyPeerRefused: a peer that offers only Noise is refused by our
// transport over TCP, whether it dials or is dialled, although the roster
// lists it: security negotiation finds no common protocol, because our
// host offers TLS 1.3 (X25519MLKEM768) alone.
func TestNoiseOnlyPeerRefused(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 2)
	member := startTCPMember(t, ids)
	nh := newNoiseHost(t, ids[1])

	// The Noise peer dials the member.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nh.Connect(ctx, peer.AddrInfo{ID: member.ID(), Addrs: tcpAddrs(member.Host().Addrs())}); err == nil {
		t.Fatal("a Noise-only peer connected to a member")
	}
	if _, err := nh.NewStream(ctx, member.ID(), echoProto); err == nil {
		t.Fatal("a Noise-only peer opened a stream to a member")
	}

	// The member dials the Noise peer.
	if err := memberDials(t, member, nh); err == nil {
		t.Fatal("a member connected to a Noise-only peer")
	}
	for _, c := range member.Host().Network().ConnsToPeer(nh.ID()) {
		t.Errorf("member holds a connection to the Noise-only peer: security %q", c.ConnState().Security)
	}
	if got := nh.Network().Connectedness(member.ID()); got == network.Connected {
		t.Errorf("the Noise-only peer is connected to the member")
	}
}
