package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
)

// RequiredGroup is the only TLS key exchange this package accepts: the
// hybrid of X25519 and ML-KEM-768, Go's default since 1.24. A connection
// that negotiated anything else (a peer built with GODEBUG=tlsmlkem=0, or
// an old or foreign stack) is closed: its traffic could be recorded now and
// decrypted by a quantum computer later.
const RequiredGroup = tls.X25519MLKEM768

// ErrClassicalKeyExchange is returned (and logged) when a TLS handshake
// agreed on a key exchange other than [RequiredGroup].
var ErrClassicalKeyExchange = errors.New("transport: refused a connection whose TLS key exchange is not X25519MLKEM768 (post-quantum hybrid); upgrade the peer's crisismesh and make sure it does not run with GODEBUG=tlsmlkem=0")

// tlsStater is what libp2p's TLS SecureConn offers through the *tls.Conn it
// embeds (p2p/security/tls/conn.go): the negotiated curve.
type tlsStater interface {
	ConnectionState() tls.ConnectionState
}

// pqSecurity wraps libp2p's TLS 1.3 security transport. The handshake is
// libp2p's own; afterwards, the negotiated group is checked and recorded.
// This is the only hook there is on TCP: libp2ptls builds its tls.Config
// itself and does not let a caller set CurvePreferences. Refusing after
// the handshake costs one round trip but no secret was exchanged under the
// classical key: the connection is closed before the muxer runs.
type pqSecurity struct {
	inner  *libp2ptls.Transport
	groups *groupTable
	refuse func(dir network.Direction, remote peer.ID, addr net.Addr, group tls.CurveID)
}

var _ sec.SecureTransport = (*pqSecurity)(nil)

// newSecurityConstructor returns the constructor libp2p.Security calls:
// its parameters are injected by libp2p (the protocol ID, the host key and
// the muxers), as for libp2ptls.New.
func newSecurityConstructor(groups *groupTable, refuse func(network.Direction, peer.ID, net.Addr, tls.CurveID)) func(protocol.ID, libp2pcrypto.PrivKey, []tptu.StreamMuxer) (*pqSecurity, error) {
	return func(id protocol.ID, key libp2pcrypto.PrivKey, muxers []tptu.StreamMuxer) (*pqSecurity, error) {
		inner, err := libp2ptls.New(id, key, muxers)
		if err != nil {
			return nil, err
		}
		return &pqSecurity{inner: inner, groups: groups, refuse: refuse}, nil
	}
}

func (t *pqSecurity) ID() protocol.ID { return t.inner.ID() }

func (t *pqSecurity) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	sc, err := t.inner.SecureInbound(ctx, insecure, p)
	if err != nil {
		return nil, err
	}
	return t.check(sc, insecure, network.DirInbound)
}

func (t *pqSecurity) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	sc, err := t.inner.SecureOutbound(ctx, insecure, p)
	if err != nil {
		return nil, err
	}
	return t.check(sc, insecure, network.DirOutbound)
}

func (t *pqSecurity) check(sc sec.SecureConn, insecure net.Conn, dir network.Direction) (sec.SecureConn, error) {
	st, ok := sc.(tlsStater)
	if !ok {
		// libp2ptls changed shape: fail closed rather than let an
		// unchecked connection through.
		sc.Close()
		return nil, fmt.Errorf("%w: cannot read the negotiated group from %T", ErrClassicalKeyExchange, sc)
	}
	group := st.ConnectionState().CurveID
	if group != RequiredGroup {
		sc.Close()
		t.refuse(dir, sc.RemotePeer(), insecure.RemoteAddr(), group)
		return nil, fmt.Errorf("%w: peer %s negotiated %v", ErrClassicalKeyExchange, sc.RemotePeer(), group)
	}
	c := &securedConn{SecureConn: sc, key: keyOfConn(insecure), groups: t.groups}
	t.groups.add(c.key, c, group)
	return c, nil
}

// securedConn is a checked TLS connection; it forgets its table entry when
// closed.
type securedConn struct {
	sec.SecureConn
	key    connKey
	groups *groupTable
	once   sync.Once
}

func (c *securedConn) Close() error {
	c.once.Do(func() { c.groups.remove(c.key, c) })
	return c.SecureConn.Close()
}

// connKey names a connection by its two ends, as network.Conn shows them.
type connKey struct{ local, remote string }

// keyOfConn names the raw connection the security handshake ran on. It is
// the same object the upgrader puts in the network.Conn's multiaddrs, so
// the key matches [keyOfNetworkConn].
func keyOfConn(c net.Conn) connKey {
	if m, ok := c.(interface {
		LocalMultiaddr() ma.Multiaddr
		RemoteMultiaddr() ma.Multiaddr
	}); ok {
		return connKey{m.LocalMultiaddr().String(), m.RemoteMultiaddr().String()}
	}
	return connKey{c.LocalAddr().String(), c.RemoteAddr().String()}
}

func keyOfNetworkConn(c network.Conn) connKey {
	return connKey{c.LocalMultiaddr().String(), c.RemoteMultiaddr().String()}
}

// groupTable remembers the group of each live TLS-over-TCP connection
// (QUIC connections are asked directly). It is safe for concurrent use.
type groupTable struct {
	mu sync.Mutex
	m  map[connKey]groupEntry
}

type groupEntry struct {
	owner *securedConn
	group tls.CurveID
	added time.Time
}

func newGroupTable() *groupTable { return &groupTable{m: map[connKey]groupEntry{}} }

func (g *groupTable) add(k connKey, owner *securedConn, group tls.CurveID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[k] = groupEntry{owner: owner, group: group, added: time.Now()}
}

// remove forgets k if owner still holds it (a new connection may reuse the
// same two ends after the old one closed).
func (g *groupTable) remove(k connKey, owner *securedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.m[k]; ok && e.owner == owner {
		delete(g.m, k)
	}
}

func (g *groupTable) lookup(k connKey) (tls.CurveID, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[k]
	return e.group, ok
}

// sweep forgets entries older than minAge that belong to no live
// connection: the upgrader closes the raw connection, not ours, when the
// gate refuses a secured one, so Close alone would leak them.
func (g *groupTable) sweep(live map[connKey]bool, minAge time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, e := range g.m {
		if !live[k] && time.Since(e.added) > minAge {
			delete(g.m, k)
		}
	}
}

func (g *groupTable) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

// groupOf returns the key exchange of a live connection, "" if unknown
// (relayed connections run TLS too, inside the relay stream: they are
// checked and found like TCP ones).
func groupOf(c network.Conn, groups *groupTable) string {
	if g, ok := quicGroup(c); ok {
		return g.String()
	}
	if g, ok := groups.lookup(keyOfNetworkConn(c)); ok {
		return g.String()
	}
	return ""
}

// quicGroup returns the group of a QUIC connection, and false for other
// transports. quic-go exposes its TLS state (quic.Conn.ConnectionState)
// and libp2p's QUIC conn hands out the *quic.Conn through network.Conn.As,
// so the gate checks QUIC in InterceptUpgraded.
func quicGroup(c network.Conn) (tls.CurveID, bool) {
	var qc *quic.Conn
	if !c.As(&qc) {
		return 0, false
	}
	return qc.ConnectionState().TLS.CurveID, true
}
