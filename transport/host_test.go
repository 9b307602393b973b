package transport

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

func TestConfigValidate(t *testing.T) {
	ids := newIdentities(t, 2)
	r := newRoster(t, ids[0])
	good := testConfig(t, ids[0], r)
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good config) = %v, want nil", err)
	}

	bad := DefaultConfig()
	bad.ListenAddrs = []string{"/ip4/127.0.0.1/udp/1/quic", "nonsense", "/ip4/127.0.0.1/tcp/1/ws"}
	bad.Profile = "carrier-pigeon"
	bad.PeerProfiles = map[peer.ID]string{ids[1].PeerID(): "smoke-signals"}
	bad.StaticPeers = []string{"/ip4/127.0.0.1/tcp/1"}
	bad.Relay.Relays = []string{"/ip4/127.0.0.1/tcp/2/p2p/" + ids[1].PeerID().String()}
	bad.ConnLow, bad.ConnHigh = 10, 5
	bad.MaxMemory = 1
	bad.MaxFileDescriptors = 1
	bad.MaxPeers = 0
	bad.RTTProbeInterval = -time.Second
	bad.MDNSService = ""
	err := bad.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Validate(bad) = %v, want ErrConfig", err)
	}
	for _, want := range []string{
		`listen address "/ip4/127.0.0.1/udp/1/quic"`, `"nonsense" is not a multiaddr`, `"/ip4/127.0.0.1/tcp/1/ws"`,
		"no peer key", "no roster", `"carrier-pigeon"`, `"smoke-signals"`, "static peer", "Relay.Client is off",
		"watermarks", "MaxPeers", "MaxMemory", "MaxFileDescriptors", "negative RTT", "mDNS is on but has no service name",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) does not mention %q; got:\n%v", want, err)
		}
	}

	// A node the roster does not list cannot start.
	outsider := testConfig(t, ids[1], r)
	if err := outsider.Validate(); err == nil || !strings.Contains(err.Error(), "does not list this node") {
		t.Errorf("Validate(node not in roster) = %v, want a refusal", err)
	}
	if _, err := New(outsider); !errors.Is(err, ErrConfig) {
		t.Errorf("New(node not in roster) = %v, want ErrConfig", err)
	}
}

// TestConnectTCPAndQUIC: over each transport, two members connect, a
// stream works, and the connection reports the hybrid key exchange.
func TestConnectTCPAndQUIC(t *testing.T) {
	for _, tc := range []struct{ name, listen, transport string }{
		{"tcp", "/ip4/127.0.0.1/tcp/0", "tcp"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1", "quic-v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ids := newIdentities(t, 2)
			r := newRoster(t, ids...)
			var hosts []*Host
			for _, id := range ids {
				cfg := testConfig(t, id, r)
				cfg.ListenAddrs = []string{tc.listen}
				hosts = append(hosts, startHost(t, cfg))
			}
			a, b := hosts[0], hosts[1]
			if err := a.AddPeer(addrInfo(b)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "a connected to b", func() bool { return connected(a, b) })
			if err := echoWithin(10*time.Second, a, b); err != nil {
				t.Fatalf("echo a→b: %v", err)
			}
			for _, h := range []*Host{a, b} {
				other := b
				if h == b {
					other = a
				}
				infos := h.ConnInfo(other.ID())
				if len(infos) == 0 {
					t.Fatalf("ConnInfo: no connection")
				}
				for _, ci := range infos {
					if ci.Transport != tc.transport || ci.Group != "X25519MLKEM768" || ci.Opened.IsZero() || ci.RemoteAddr == nil {
						t.Errorf("ConnInfo = %+v, want transport %s, group X25519MLKEM768", ci, tc.transport)
					}
					t.Logf("%s: %+v", h.ID().ShortString(), ci)
				}
			}
		})
	}
}

// TestUnknownPeerRefused: a host whose peer ID is not in the roster is
// refused both ways. Connect may return nil before the inbound side drops
// the connection (STACK-NOTES), so the proof is a stream that fails.
func TestUnknownPeerRefused(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 2)
	member := startHost(t, testConfig(t, ids[0], newRoster(t, ids[0])))
	// The outsider runs the same code with a roster of its own that lists
	// the member: only the member's gate stands in the way.
	outsider := startHost(t, testConfig(t, ids[1], newRoster(t, ids[1], ids[0])))

	for _, listen := range []string{"tcp", "udp"} {
		var addrs []ma.Multiaddr
		for _, a := range member.Host().Addrs() {
			if _, err := a.ValueForProtocol(ma.ProtocolWithName(listen).Code); err == nil {
				addrs = append(addrs, a)
			}
		}
		outsider.Host().Peerstore().AddAddrs(member.ID(), addrs, peerstore.TempAddrTTL)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = outsider.Host().Connect(ctx, peer.AddrInfo{ID: member.ID(), Addrs: addrs})
		err := echo(ctx, outsider, member)
		cancel()
		if err == nil {
			t.Fatalf("over %s: an outsider's stream to a member worked", listen)
		}
		t.Logf("over %s: outsider's stream failed as it should: %v", listen, err)
		outsider.Host().Peerstore().ClearAddrs(member.ID())
	}
	waitFor(t, 5*time.Second, "member refusing the outsider", func() bool { return member.Stats().RefusedPeer > 0 })

	// And the member never dials an outsider.
	if err := member.AddPeer(addrInfo(outsider)); !errors.Is(err, ErrNotMember) {
		t.Errorf("AddPeer(outsider) = %v, want ErrNotMember", err)
	}
	member.Host().Peerstore().AddAddrs(outsider.ID(), outsider.Host().Addrs(), peerstore.TempAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := member.Host().Connect(ctx, peer.AddrInfo{ID: outsider.ID()}); err == nil {
		t.Errorf("a member dialled an outsider")
	}
	if connected(member, outsider) {
		t.Errorf("member and outsider are connected")
	}
}

// TestRevokedPeerCutOff: when the roster revokes a member, its live
// connections are closed and it cannot come back.
func TestRevokedPeerCutOff(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 3)
	r := newRoster(t, ids...)
	var hosts []*Host
	for _, id := range ids {
		hosts = append(hosts, startHost(t, testConfig(t, id, r)))
	}
	a, b, c := hosts[0], hosts[1], hosts[2]
	introduce(t, hosts...)
	waitFor(t, 10*time.Second, "full mesh", func() bool { return connected(a, b) && connected(a, c) && connected(b, c) })
	if err := echoWithin(10*time.Second, b, a); err != nil {
		t.Fatalf("echo b→a before revocation: %v", err)
	}

	r2 := revoke(t, r, ids[0], ids[1])
	a.SetRoster(r2)
	c.SetRoster(r2)
	waitFor(t, 10*time.Second, "b cut off from a and c", func() bool { return !connected(a, b) && !connected(c, b) })
	if err := echoWithin(3*time.Second, b, a); err == nil {
		t.Fatalf("revoked b still reaches a")
	}
	if err := echoWithin(3*time.Second, a, b); err == nil {
		t.Fatalf("a still reaches revoked b")
	}
	if err := echoWithin(10*time.Second, a, c); err != nil {
		t.Fatalf("a→c after revoking b: %v", err)
	}
	if a.Roster() != r2 {
		t.Errorf("Roster() is not the roster set")
	}
}

// TestReconnect: the loop brings a lost connection back by itself.
func TestReconnect(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	ids := newIdentities(t, 2)
	r := newRoster(t, ids...)
	var hosts []*Host
	for i, id := range ids {
		cfg := testConfig(t, id, r)
		cfg.JitterSeed = seed + uint64(i)
		hosts = append(hosts, startHost(t, cfg))
	}
	a, b := hosts[0], hosts[1]
	if err := a.AddPeer(addrInfo(b)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a connected to b", func() bool { return connected(a, b) })
	for range 3 {
		_ = a.Host().Network().ClosePeer(b.ID())
		waitFor(t, 15*time.Second, "reconnection", func() bool { return connected(a, b) })
	}
	if err := echoWithin(10*time.Second, a, b); err != nil {
		t.Fatalf("echo after reconnecting: %v", err)
	}
	if got := a.Stats().Dials + b.Stats().Dials; got < 2 {
		t.Errorf("reconnect loop dials = %d, want >= 2", got)
	}
}

// TestRosterHints: the roster's address hints reach the peerstore.
func TestRosterHints(t *testing.T) {
	ids := newIdentities(t, 2)
	hint := "/ip4/127.0.0.1/udp/1/quic-v1"
	r := newRosterAddrs(t, map[int][]string{1: {hint}}, ids...)
	h := startHost(t, testConfig(t, ids[0], r))
	found := false
	for _, a := range h.Host().Peerstore().Addrs(ids[1].PeerID()) {
		found = found || a.String() == hint
	}
	if !found {
		t.Errorf("peerstore addrs of member 2 = %v, want the roster hint %s", h.Host().Peerstore().Addrs(ids[1].PeerID()), hint)
	}
}

// TestMDNSNotifee: a roster member found on the LAN is connected; an
// outsider is ignored. (mDNS itself is not started: tests stay on
// 127.0.0.1, and multicast would leave it.)
func TestMDNSNotifee(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 3)
	r := newRoster(t, ids[0], ids[1])
	a := startHost(t, testConfig(t, ids[0], r))
	b := startHost(t, testConfig(t, ids[1], r))
	outsider := startHost(t, testConfig(t, ids[2], newRoster(t, ids[2], ids[0])))
	n := mdnsNotifee{a}
	n.HandlePeerFound(addrInfo(outsider))
	n.HandlePeerFound(addrInfo(a)) // itself
	n.HandlePeerFound(addrInfo(b))
	waitFor(t, 10*time.Second, "a connected to b found by mDNS", func() bool { return connected(a, b) })
	if got := a.Host().Peerstore().Addrs(outsider.ID()); len(got) != 0 {
		t.Errorf("an outsider found by mDNS was recorded: %v", got)
	}
}

// TestProfileForPeer: config pins win, then the measured round trip, then
// the default.
func TestProfileForPeer(t *testing.T) {
	ids := newIdentities(t, 3)
	r := newRoster(t, ids...)
	cfg := testConfig(t, ids[0], r)
	cfg.Profile = ProfileInternet
	cfg.PeerProfiles = map[peer.ID]string{ids[1].PeerID(): ProfileSatellite}
	h := startHost(t, cfg)
	if got := h.ProfileFor(ids[1].PeerID()).Name; got != ProfileSatellite {
		t.Errorf("pinned peer: profile %s, want satellite", got)
	}
	if got := h.ProfileFor(ids[2].PeerID()).Name; got != ProfileInternet {
		t.Errorf("unmeasured peer: profile %s, want the default internet", got)
	}
	h.Host().Peerstore().RecordLatency(ids[2].PeerID(), 2*time.Millisecond)
	if got := h.ProfileFor(ids[2].PeerID()).Name; got != ProfileLAN {
		t.Errorf("peer at 2 ms: profile %s, want lan", got)
	}
	// Pinned while running: above the measurement and the config.
	if err := h.PinProfile(ids[2].PeerID(), ProfileSatellite); err != nil {
		t.Fatal(err)
	}
	if got := h.ProfileFor(ids[2].PeerID()).Name; got != ProfileSatellite {
		t.Errorf("peer pinned to satellite: profile %s", got)
	}
	if err := h.PinProfile(ids[1].PeerID(), "carrier-pigeon"); err == nil {
		t.Error("an unknown profile pinned")
	}
	if got := h.ProfileFor(ids[1].PeerID()).Name; got != ProfileSatellite {
		t.Errorf("after a refused pin: profile %s, want the config's satellite", got)
	}
}

func TestNetworkDirectionInConnInfo(t *testing.T) {
	t.Parallel()
	a, b := startPair(t)
	waitFor(t, 10*time.Second, "b sees an inbound connection from a", func() bool {
		for _, ci := range b.ConnInfo(a.ID()) {
			if ci.Direction == network.DirInbound {
				return true
			}
		}
		return false
	})
}
