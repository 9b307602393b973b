package transport

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// StreamLayer carries hashicorp/raft's NetworkTransport over libp2p
// streams: each Raft connection is one stream of protocol proto. A Raft
// server address is a peer ID string (use it as the server ID too), so
// Raft needs no IP addresses and gets the roster gate, TLS and the
// reconnect loop for free. It is safe for concurrent use.
//
// This is all this package knows of Raft: the consensus layer builds the
// NetworkTransport (raft.NewNetworkTransportWithConfig) on top.
type StreamLayer struct {
	h     host.Host
	proto protocol.ID
	ln    net.Listener
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer listens for Raft streams of protocol proto (for example
// "/crisismesh/raft/1") on h. Close stops listening.
func NewStreamLayer(h host.Host, proto protocol.ID) (*StreamLayer, error) {
	ln, err := gostream.Listen(h, proto)
	if err != nil {
		return nil, fmt.Errorf("transport: raft stream layer: %w", err)
	}
	return &StreamLayer{h: h, proto: proto, ln: ln}, nil
}

// Accept waits for the next stream a peer opens.
func (s *StreamLayer) Accept() (net.Conn, error) { return s.ln.Accept() }

// Close stops accepting streams; open ones stay open.
func (s *StreamLayer) Close() error { return s.ln.Close() }

// Addr is this node's Raft address: its peer ID.
func (s *StreamLayer) Addr() net.Addr { return s.ln.Addr() }

// Dial opens a stream to the peer whose ID is address, connecting first if
// needed, within timeout (zero: no limit).
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	p, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("transport: raft address %q is not a peer ID: %w", address, err)
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c, err := gostream.Dial(ctx, s.h, p, s.proto)
	if err != nil {
		return nil, fmt.Errorf("transport: raft dial %s: %w", p.ShortString(), err)
	}
	return c, nil
}
