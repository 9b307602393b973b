package transport

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

var testTime = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const echoProto = protocol.ID("/crisismesh/test-echo/1")

// testSeed returns the seed for this test's randomness, from
// TRANSPORT_SEED if set, and logs it so that a run can be replayed.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TRANSPORT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TRANSPORT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with TRANSPORT_SEED=%d)", seed, seed)
	return seed
}

// identities caches member identities: ML-DSA key generation is cheap but
// not free under -race.
var identities = struct {
	sync.Mutex
	n int
}{}

func newIdentity(t testing.TB) *crypto.Identity {
	t.Helper()
	identities.Lock()
	identities.n++
	name := fmt.Sprintf("node-%d", identities.n)
	identities.Unlock()
	id, err := crypto.NewIdentity(name, testTime)
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	return id
}

func newIdentities(t testing.TB, n int) []*crypto.Identity {
	ids := make([]*crypto.Identity, n)
	for i := range ids {
		ids[i] = newIdentity(t)
	}
	return ids
}

// newRoster signs a genesis listing ids; ids[0] is the admin.
func newRoster(t testing.TB, ids ...*crypto.Identity) *crypto.Roster {
	t.Helper()
	return newRosterAddrs(t, nil, ids...)
}

// newRosterAddrs is newRoster with address hints for some members (by
// index in ids).
func newRosterAddrs(t testing.TB, addrs map[int][]string, ids ...*crypto.Identity) *crypto.Roster {
	t.Helper()
	spec := crypto.GenesisSpec{Network: "test-net", Created: testTime, Admins: []crypto.MemberID{ids[0].ID()}}
	for i, id := range ids {
		roles := []crypto.Role{crypto.RoleCSIRT}
		if i == 0 {
			roles = []crypto.Role{crypto.RoleAdmin, crypto.RoleCyclone}
		}
		spec.Members = append(spec.Members, crypto.Member{Card: id.Card(), Roles: roles, Addrs: addrs[i]})
	}
	spec.Voters = []crypto.MemberID{ids[0].ID()}
	g, err := crypto.NewGenesis(spec, ids[0])
	if err != nil {
		t.Fatalf("NewGenesis: %v", err)
	}
	return g.Roster()
}

// revoke returns r with member target revoked by admin.
func revoke(t testing.TB, r *crypto.Roster, admin, target *crypto.Identity) *crypto.Roster {
	t.Helper()
	u, err := crypto.NewUpdate(r, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: target.ID(), Reason: "test", Created: testTime}, admin)
	if err != nil {
		t.Fatalf("NewUpdate: %v", err)
	}
	r2, err := r.Apply(u)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return r2
}

// testLogger writes warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// testConfig is a config for a host on 127.0.0.1 only, mDNS off.
func testConfig(t testing.TB, id *crypto.Identity, r *crypto.Roster) Config {
	cfg := DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.PeerKey = id.PeerKey()
	cfg.Roster = r
	cfg.Profile = ProfileLAN
	cfg.MDNS = false
	cfg.RTTProbeInterval = 0
	cfg.Logger = testLogger(t)
	return cfg
}

// startHost starts a host with cfg, serving the echo protocol, closed at
// the end of the test.
func startHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	serveEcho(h)
	return h
}

func serveEcho(h *Host) {
	h.Host().SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
}

// startPair starts two member hosts, a and b, and gives a b's addresses.
func startPair(t testing.TB) (a, b *Host) {
	t.Helper()
	ids := newIdentities(t, 2)
	r := newRoster(t, ids...)
	a = startHost(t, testConfig(t, ids[0], r))
	b = startHost(t, testConfig(t, ids[1], r))
	if err := a.AddPeer(addrInfo(b)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// addrInfo is how another host reaches h.
func addrInfo(h *Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Host().Addrs()}
}

// introduce gives every host the addresses of every other.
func introduce(t testing.TB, hosts ...*Host) {
	t.Helper()
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				if err := a.AddPeer(addrInfo(b)); err != nil {
					t.Fatalf("AddPeer: %v", err)
				}
			}
		}
	}
}

// echo opens an echo stream from a to b and checks the round trip.
func echo(ctx context.Context, a, b *Host, opts ...func(context.Context) context.Context) error {
	for _, o := range opts {
		ctx = o(ctx)
	}
	s, err := a.Host().NewStream(ctx, b.ID(), echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	msg := []byte("are you there?")
	if _, err := s.Write(msg); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if string(got) != string(msg) {
		return fmt.Errorf("echo: got %q, want %q", got, msg)
	}
	return nil
}

// echoWithin runs echo with a timeout.
func echoWithin(d time.Duration, a, b *Host) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return echo(ctx, a, b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func connected(a, b *Host) bool {
	return a.Host().Network().Connectedness(b.ID()) == network.Connected
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed>>1|1)) }
