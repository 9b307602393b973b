package transport

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// startFaultyHosts starts n hosts under one Faults, all introduced to each
// other. TCP only, unless quic is set.
func startFaultyHosts(t testing.TB, n int, quic bool) ([]*Host, *Faults) {
	t.Helper()
	seed := testSeed(t)
	f := NewFaults(seed, testLogger(t))
	ids := newIdentities(t, n)
	r := newRoster(t, ids...)
	var hosts []*Host
	for i, id := range ids {
		cfg := testConfig(t, id, r)
		cfg.Faults = f
		cfg.JitterSeed = seed + uint64(i) + 1
		if !quic {
			cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		}
		hosts = append(hosts, startHost(t, cfg))
	}
	return hosts, f
}

// TestPartitionHeal: a partition cuts live connections and refuses new
// ones across it (streams fail), traffic inside each side goes on, and
// after Heal the reconnect loops restore every stream.
func TestPartitionHeal(t *testing.T) {
	t.Parallel()
	hosts, f := startFaultyHosts(t, 3, true)
	a, b, c := hosts[0], hosts[1], hosts[2]
	introduce(t, hosts...)
	waitFor(t, 10*time.Second, "full mesh", func() bool { return connected(a, b) && connected(a, c) && connected(b, c) })
	if err := echoWithin(10*time.Second, a, c); err != nil {
		t.Fatalf("echo a→c before the partition: %v", err)
	}

	f.Partition([]peer.ID{a.ID(), b.ID()}, []peer.ID{c.ID()})
	if !f.Blocked(a.ID(), c.ID()) || f.Blocked(a.ID(), b.ID()) {
		t.Fatalf("Blocked does not match the partition")
	}
	waitFor(t, 10*time.Second, "c cut off", func() bool { return !connected(a, c) && !connected(b, c) })
	for _, pair := range [][2]*Host{{a, c}, {c, a}, {c, b}} {
		if err := echoWithin(2*time.Second, pair[0], pair[1]); err == nil {
			t.Fatalf("a stream crossed the partition")
		}
	}
	if err := echoWithin(10*time.Second, a, b); err != nil {
		t.Fatalf("echo a→b inside a side of the partition: %v", err)
	}
	waitFor(t, 10*time.Second, "the gate refusing dials across the partition", func() bool {
		return c.Stats().RefusedFault > 0
	})

	f.Heal()
	waitFor(t, 15*time.Second, "full mesh after heal", func() bool { return connected(a, c) && connected(b, c) })
	if err := echoWithin(10*time.Second, c, a); err != nil {
		t.Fatalf("echo c→a after heal: %v", err)
	}
}

// TestLinkLatency: with 300 ms each way, a ping takes at least 600 ms, the
// peer gets the satellite profile, and only TCP carries the link (QUIC
// cannot be emulated and is refused).
func TestLinkLatency(t *testing.T) {
	t.Parallel()
	hosts, f := startFaultyHosts(t, 2, true)
	a, b := hosts[0], hosts[1]
	f.SetLink(a.ID(), b.ID(), Link{Latency: 300 * time.Millisecond})
	introduce(t, a, b)
	waitFor(t, 20*time.Second, "a connected to b", func() bool { return connected(a, b) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rtt, err := a.MeasureRTT(ctx, b.ID())
	if err != nil {
		t.Fatalf("MeasureRTT: %v", err)
	}
	t.Logf("round trip over a 300 ms link: %v", rtt)
	if rtt < 600*time.Millisecond {
		t.Errorf("round trip %v, want >= 600ms", rtt)
	}
	if got := a.ProfileFor(b.ID()).Name; got != ProfileSatellite {
		t.Errorf("profile for a 600 ms peer: %s, want satellite", got)
	}
	for _, ci := range a.ConnInfo(b.ID()) {
		if ci.Transport != "tcp" {
			t.Errorf("connection over %s under an emulated link, want tcp only", ci.Transport)
		}
	}
}

const sinkProto = protocol.ID("/crisismesh/test-sink/1")

// TestLinkBandwidth: 64 KiB over 256 kbit/s takes at least 2 s (2.05 s
// of payload alone).
func TestLinkBandwidth(t *testing.T) {
	t.Parallel()
	hosts, f := startFaultyHosts(t, 2, false)
	a, b := hosts[0], hosts[1]
	b.Host().SetStreamHandler(sinkProto, func(s network.Stream) {
		defer s.Close()
		n, _ := io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{byte(n >> 10)}) // KiB received, as an ack
	})
	if err := a.AddPeer(addrInfo(b)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a connected to b", func() bool { return connected(a, b) })
	f.SetLink(a.ID(), b.ID(), Link{Bandwidth: 256_000})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	s, err := a.Host().NewStream(ctx, b.ID(), sinkProto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 1)
	if _, err := io.ReadFull(s, ack); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("64 KiB over 256 kbit/s took %v", took)
	if ack[0] != 64 {
		t.Errorf("b received %d KiB, want 64", ack[0])
	}
	if took < 2*time.Second {
		t.Errorf("64 KiB over 256 kbit/s took %v, want >= 2s", took)
	}
	if took > 15*time.Second {
		t.Errorf("64 KiB over 256 kbit/s took %v: the emulator is far slower than the link", took)
	}
}

const lineProto = protocol.ID("/crisismesh/test-lines/1")

// TestOneWayCut: after CutOneWay(a, b), what a writes on an open stream no
// longer reaches b while what b writes reaches a; Reconnect lifts the cut
// and fresh connections carry both directions again.
func TestOneWayCut(t *testing.T) {
	t.Parallel()
	hosts, f := startFaultyHosts(t, 2, false)
	a, b := hosts[0], hosts[1]
	got := map[peer.ID]chan string{a.ID(): make(chan string, 16), b.ID(): make(chan string, 16)}
	for _, h := range hosts {
		h.Host().SetStreamHandler(lineProto, func(s network.Stream) {
			buf := make([]byte, 64)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					got[h.ID()] <- string(buf[:n])
				}
				if err != nil {
					return
				}
			}
		})
	}
	introduce(t, a, b)
	waitFor(t, 10*time.Second, "a connected to b", func() bool { return connected(a, b) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := a.Host().NewStream(ctx, b.ID(), lineProto)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Host().NewStream(ctx, a.ID(), lineProto)
	if err != nil {
		t.Fatal(err)
	}
	receive := func(at *Host, within time.Duration) (string, bool) {
		select {
		case s := <-got[at.ID()]:
			return s, true
		case <-time.After(within):
			return "", false
		}
	}
	for _, w := range []struct {
		s  network.Stream
		to *Host
	}{{sa, b}, {sb, a}} {
		if _, err := w.s.Write([]byte("before")); err != nil {
			t.Fatal(err)
		}
		if s, ok := receive(w.to, 10*time.Second); !ok || s != "before" {
			t.Fatalf("before the cut: got %q, %v", s, ok)
		}
	}

	f.CutOneWay(a.ID(), b.ID())
	if _, err := sb.Write([]byte("b to a")); err != nil {
		t.Fatal(err)
	}
	if s, ok := receive(a, 10*time.Second); !ok || s != "b to a" {
		t.Fatalf("b→a under a one-way cut a→b: got %q, %v; want it delivered", s, ok)
	}
	if _, err := sa.Write([]byte("a to b")); err != nil {
		t.Fatal(err)
	}
	if s, ok := receive(b, 1500*time.Millisecond); ok {
		t.Fatalf("a→b crossed the one-way cut: %q", s)
	}

	f.Reconnect(a.ID(), b.ID())
	// The held connection is closed; a fresh one carries both ways.
	waitFor(t, 20*time.Second, "echo both ways after the cut was lifted", func() bool {
		return echoWithin(2*time.Second, a, b) == nil && echoWithin(2*time.Second, b, a) == nil
	})
}
