package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/libp2p/go-libp2p"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
)

// classicalTLS is libp2p's TLS handshake with the key exchange restricted
// to classical X25519, as a peer running GODEBUG=tlsmlkem=0 (process-wide,
// so unusable in a test) or an older stack would negotiate. libp2ptls
// takes no tls.Config, but exports the two pieces that matter: Identity
// (the certificate with the libp2p key extension) and ConfigForPeer (which
// verifies the peer's certificate). The rest is the handshake itself.
type classicalTLS struct {
	id    *libp2ptls.Identity
	local peer.ID
}

var _ sec.SecureTransport = (*classicalTLS)(nil)

func newClassicalTLS(_ protocol.ID, key libp2pcrypto.PrivKey) (*classicalTLS, error) {
	id, err := libp2ptls.NewIdentity(key)
	if err != nil {
		return nil, err
	}
	local, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &classicalTLS{id: id, local: local}, nil
}

func (t *classicalTLS) ID() protocol.ID { return libp2ptls.ID }

func (t *classicalTLS) SecureInbound(ctx context.Context, c net.Conn, p peer.ID) (sec.SecureConn, error) {
	conf, keyCh := t.id.ConfigForPeer(p)
	conf.CurvePreferences = []tls.CurveID{tls.X25519}
	return t.handshake(ctx, tls.Server(c, conf), keyCh)
}

func (t *classicalTLS) SecureOutbound(ctx context.Context, c net.Conn, p peer.ID) (sec.SecureConn, error) {
	conf, keyCh := t.id.ConfigForPeer(p)
	conf.CurvePreferences = []tls.CurveID{tls.X25519}
	return t.handshake(ctx, tls.Client(c, conf), keyCh)
}

func (t *classicalTLS) handshake(ctx context.Context, c *tls.Conn, keyCh <-chan libp2pcrypto.PubKey) (sec.SecureConn, error) {
	if err := c.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	var pub libp2pcrypto.PubKey
	select {
	case pub = <-keyCh:
	default:
	}
	if pub == nil {
		c.Close()
		return nil, errors.New("classical TLS: no remote key")
	}
	remote, err := peer.IDFromPublicKey(pub)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &classicalConn{Conn: c, local: t.local, remote: remote, pub: pub}, nil
}

type classicalConn struct {
	*tls.Conn
	local, remote peer.ID
	pub           libp2pcrypto.PubKey
}

func (c *classicalConn) LocalPeer() peer.ID                   { return c.local }
func (c *classicalConn) RemotePeer() peer.ID                  { return c.remote }
func (c *classicalConn) RemotePublicKey() libp2pcrypto.PubKey { return c.pub }
func (c *classicalConn) ConnState() network.ConnectionState   { return network.ConnectionState{} }

// newClassicalHost is a plain libp2p host (not our Host) over TCP whose
// TLS allows only X25519.
func newClassicalHost(t *testing.T, id *crypto.Identity) host.Host {
	t.Helper()
	return newTCPPeer(t, id, "classical", libp2p.Security(libp2ptls.ID, newClassicalTLS))
}

// newTCPPeer is a plain libp2p host (not our Host) on 127.0.0.1, over TCP
// only, whose only security transport is security; it answers echoProto
// by closing the stream. kind names it in a failure.
func newTCPPeer(t *testing.T, id *crypto.Identity, kind string, security libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.Identity(id.PeerKey()),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		security,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatalf("%s host: %v", kind, err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(echoProto, func(s network.Stream) { s.Close() })
	return h
}

// connectAndStream fails the test unless a connects to b and opens a
// stream to it: the control for a test that expects a refusal.
func connectAndStream(t *testing.T, a, b host.Host, kind string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatalf("%s hosts cannot connect: %v", kind, err)
	}
	s, err := a.NewStream(ctx, b.ID(), echoProto)
	if err != nil {
		t.Fatalf("%s hosts cannot open a stream: %v", kind, err)
	}
	s.Close()
}

// memberDials gives member the addresses of the plain host p and has it
// dial p; it returns the dial's error.
func memberDials(t *testing.T, member *Host, p host.Host) error {
	t.Helper()
	if err := member.AddPeer(peer.AddrInfo{ID: p.ID(), Addrs: p.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return member.Host().Connect(ctx, peer.AddrInfo{ID: p.ID()})
}

// startTCPMember starts a host for ids[0] in a roster of ids that listens
// on TCP only.
func startTCPMember(t *testing.T, ids []*crypto.Identity) *Host {
	t.Helper()
	return startHost(t, tcpConfig(t, ids[0], newRoster(t, ids...)))
}

// tcpConfig is testConfig listening on TCP only.
func tcpConfig(t testing.TB, id *crypto.Identity, r *crypto.Roster) Config {
	cfg := testConfig(t, id, r)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	return cfg
}

// tcpAddrs returns h's TCP addresses.
func tcpAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if isTCP(a) {
			out = append(out, a)
		}
	}
	return out
}

// TestPlainPeersControl: two Noise-only hosts, and two hosts of the
// classical test transport (which negotiates X25519), connect and open a
// stream, so the refusals in TestNoiseOnlyPeerRefused and
// TestClassicalTLSRefused* are ours, not a broken test peer.
func TestPlainPeersControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind    string
		newHost func(*testing.T, *crypto.Identity) host.Host
	}{
		{"Noise-only", newNoiseHost},
		{"classical", newClassicalHost},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			ids := newIdentities(t, 2)
			connectAndStream(t, tc.newHost(t, ids[0]), tc.newHost(t, ids[1]), tc.kind)
		})
	}
}

// TestClassicalTLSRefusedTCP: over TCP, a peer that can only do classical
// X25519 is refused whether it dials or is dialled, although the roster
// lists it.
func TestClassicalTLSRefusedTCP(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 2)
	member := startTCPMember(t, ids)
	classical := newClassicalHost(t, ids[1])

	// The classical peer dials the member.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = classical.Connect(ctx, peer.AddrInfo{ID: member.ID(), Addrs: tcpAddrs(member.Host().Addrs())})
	if s, err := classical.NewStream(ctx, member.ID(), echoProto); err == nil {
		// Connect and NewStream may return before the member's refusal
		// arrives (TLS 1.3 clients finish first): the stream must not
		// carry anything.
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.Write([]byte("hi")); err == nil {
			_ = s.CloseWrite()
			if _, err := s.Read(make([]byte, 1)); err == nil {
				t.Fatalf("a classical dialer got an answer from a member")
			}
		}
	}
	waitFor(t, 10*time.Second, "member refusing the classical dialer", func() bool { return member.Stats().RefusedGroup >= 1 })

	// The member dials the classical peer: its own check refuses.
	before := member.Stats().RefusedGroup
	err := memberDials(t, member, classical)
	if err == nil {
		t.Fatalf("a member connected to a classical-only peer")
	}
	if !errors.Is(err, ErrClassicalKeyExchange) {
		t.Logf("dial error (does not wrap ErrClassicalKeyExchange through the swarm): %v", err)
	}
	waitFor(t, 10*time.Second, "member refusing the classical peer it dialled", func() bool { return member.Stats().RefusedGroup > before })
	if member.Host().Network().Connectedness(classical.ID()) == network.Connected {
		t.Errorf("member and classical peer are connected")
	}
}

// TestClassicalTLSRefusedQUIC: over QUIC, the gate reads the key exchange
// from quic-go (network.Conn.As → *quic.Conn) and closes a classical
// connection. The classical client is quic-go itself, with libp2p's TLS
// identity and CurvePreferences [X25519].
func TestClassicalTLSRefusedQUIC(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 2)
	r := newRoster(t, ids...)
	cfg := testConfig(t, ids[0], r)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	member := startHost(t, cfg)

	var target string
	for _, a := range member.Host().Addrs() {
		if ip, err := a.ValueForProtocol(ma.P_IP4); err == nil {
			port, _ := a.ValueForProtocol(ma.P_UDP)
			target = net.JoinHostPort(ip, port)
		}
	}
	id, err := libp2ptls.NewIdentity(ids[1].PeerKey())
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := id.ConfigForPeer(member.ID())
	conf.CurvePreferences = []tls.CurveID{tls.X25519}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	raddr, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := tr.Dial(ctx, raddr, conf, &quic.Config{})
	if err != nil {
		t.Fatalf("raw QUIC dial: %v", err)
	}
	if got := qc.ConnectionState().TLS.CurveID; got != tls.X25519 {
		t.Fatalf("test client negotiated %v, want X25519", got)
	}
	select {
	case <-qc.Context().Done():
		t.Logf("member closed the classical QUIC connection: %v", context.Cause(qc.Context()))
	case <-ctx.Done():
		t.Fatalf("member kept a classical QUIC connection open")
	}
	if got := member.Stats().RefusedGroup; got < 1 {
		t.Errorf("RefusedGroup = %d, want >= 1", got)
	}
}

func TestGroupTableSweep(t *testing.T) {
	g := newGroupTable()
	live, dead := connKey{"a", "b"}, connKey{"c", "d"}
	owner := &securedConn{}
	g.add(live, owner, RequiredGroup)
	g.add(dead, owner, RequiredGroup)
	g.sweep(map[connKey]bool{live: true}, time.Hour)
	if g.len() != 2 {
		t.Fatalf("sweep removed young entries")
	}
	g.sweep(map[connKey]bool{live: true}, 0)
	if _, ok := g.lookup(dead); ok || g.len() != 1 {
		t.Fatalf("sweep kept a dead entry")
	}
	g.remove(live, &securedConn{}) // another owner: a reused address pair
	if _, ok := g.lookup(live); !ok {
		t.Fatalf("remove by a stale owner removed the entry")
	}
	g.remove(live, owner)
	if g.len() != 0 {
		t.Fatalf("remove by the owner kept the entry")
	}
}
