package transport

import (
	"context"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// goroutinesOfPackage returns the stacks of live goroutines running this
// package's production code (goleak is not in the module cache; this is
// its core, limited to what this package starts).
func goroutinesOfPackage() []string {
	_, here, _, _ := runtime.Caller(0)
	ourFrame := regexp.MustCompile(regexp.QuoteMeta(filepath.Dir(here)) + `/[a-z]+\.go:\d+`)
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if ourFrame.MatchString(g) {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseStopsGoroutines: after Close, nothing this package started is
// still running: reconnect loop, dials, probes, reservations, emulated
// link pumps. Not parallel: it looks at every goroutine.
func TestCloseStopsGoroutines(t *testing.T) {
	seed := testSeed(t)
	f := NewFaults(seed, testLogger(t))
	ids := newIdentities(t, 4)
	r := newRoster(t, ids...)
	var hosts []*Host
	relayCfg := testConfig(t, ids[0], r)
	relayCfg.Relay.Service = true
	relayCfg.Faults = f
	relay, err := New(relayCfg)
	if err != nil {
		t.Fatal(err)
	}
	hosts = append(hosts, relay)
	for i, id := range ids[1:] {
		cfg := testConfig(t, id, r)
		cfg.Faults = f
		cfg.JitterSeed = seed + uint64(i)
		cfg.RTTProbeInterval = 20 * time.Millisecond
		cfg.Relay = RelayConfig{Client: true, Relays: []string{relay.Addrs()[0].String()}}
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		serveEcho(h)
		hosts = append(hosts, h)
	}
	f.SetLink(hosts[1].ID(), hosts[2].ID(), Link{Latency: 5 * time.Millisecond, Bandwidth: 10_000_000})
	introduce(t, hosts...)
	waitFor(t, 15*time.Second, "full mesh", func() bool {
		for _, a := range hosts {
			for _, b := range hosts {
				if a != b && !connected(a, b) {
					return false
				}
			}
		}
		return true
	})
	if err := echoWithin(10*time.Second, hosts[1], hosts[2]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := hosts[1].MeasureRTT(ctx, hosts[2].ID()); err != nil {
		t.Fatal(err)
	}
	cancel()
	f.Partition([]peer.ID{hosts[1].ID()}, []peer.ID{hosts[3].ID()}) // dials that fail, with backoff
	if got := goroutinesOfPackage(); len(got) == 0 {
		t.Fatalf("found no goroutine of this package while hosts run: the check is blind")
	}
	for _, h := range hosts {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	// Closed connections leave nothing in the key-exchange table.
	for _, h := range hosts {
		waitFor(t, 10*time.Second, "an empty key-exchange table", func() bool { return h.groups.len() == 0 })
	}
	var left []string
	defer func() {
		if len(left) > 0 {
			t.Logf("still running:\n%s", strings.Join(left, "\n\n"))
		}
	}()
	waitFor(t, 10*time.Second, "every goroutine of this package to end", func() bool {
		left = goroutinesOfPackage()
		return len(left) == 0
	})
}
