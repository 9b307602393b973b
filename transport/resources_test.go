package transport

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const holdProto = protocol.ID("/crisismesh/test-hold/1")

// liveHeap is the heap still in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// A member that floods a node with streams, and an outsider that floods it
// with connections that never finish their handshake, are refused by the
// resource manager: the member gets at most the per-protocol number of
// streams served, the outsider at most the transient number of half-open
// connections; the node's heap stays bounded, and it still reaches other
// members meanwhile.
func TestFloodsRefusedByResourceManager(t *testing.T) {
	ids := newIdentities(t, 3)
	r := newRoster(t, ids...)
	a := startHost(t, testConfig(t, ids[0], r))
	evil := startHost(t, testConfig(t, ids[1], r))
	var running, served atomic.Int64
	release := make(chan struct{})
	var handlers sync.WaitGroup
	a.Host().SetStreamHandler(holdProto, func(s network.Stream) {
		handlers.Add(1)
		defer handlers.Done()
		n := running.Add(1)
		for {
			m := served.Load()
			if n <= m || served.CompareAndSwap(m, n) {
				break
			}
		}
		<-release // hold the stream, read nothing
		running.Add(-1)
		s.Reset()
	})
	defer handlers.Wait()
	defer close(release)
	introduce(t, a, evil)
	waitFor(t, 10*time.Second, "the member to connect", func() bool { return connected(evil, a) && connected(a, evil) })
	before := liveHeap()

	// Stream flood: 300 streams on one protocol (reading negotiates it).
	const streams = 300
	var open []network.Stream
	defer func() {
		for _, s := range open {
			s.Reset()
		}
	}()
	var refused atomic.Int64
	for range streams {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := evil.Host().NewStream(ctx, a.ID(), holdProto)
		cancel()
		if err != nil {
			refused.Add(1)
			continue
		}
		open = append(open, s)
		go func() {
			// A refused stream is reset; a served one is held until the end.
			if _, err := s.Read(make([]byte, 1)); err != nil {
				refused.Add(1)
			}
		}()
	}
	waitFor(t, 20*time.Second, "every stream to be served or refused", func() bool {
		return served.Load()+refused.Load() >= streams
	})
	if got := served.Load(); got > protocolPeerStreamsIn {
		t.Errorf("a served %d of %d streams one member opened on one protocol at once, want at most %d", got, streams, protocolPeerStreamsIn)
	}
	var peerStat network.ScopeStat
	a.Host().Network().ResourceManager().ViewPeer(evil.ID(), func(s network.PeerScope) error {
		peerStat = s.Stat()
		return nil
	})
	if peerStat.NumStreamsInbound > peerStreamsIn {
		t.Errorf("the member holds %d inbound streams, want at most %d", peerStat.NumStreamsInbound, peerStreamsIn)
	}

	// Connection flood: an outsider opens 200 TCP connections and never
	// starts the handshake.
	var tcpAddr net.Addr
	for _, addr := range a.Host().Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_TCP); err == nil {
			tcpAddr, _ = manet.ToNetAddr(addr)
			break
		}
	}
	const conns = 200
	var closed atomic.Int64
	var raws []net.Conn
	defer func() {
		for _, c := range raws {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.DialTimeout("tcp", tcpAddr.String(), 5*time.Second)
		if err != nil {
			closed.Add(1)
			continue
		}
		raws = append(raws, c)
		go func() {
			c.Read(make([]byte, 1)) // returns when a closes it
			closed.Add(1)
		}()
	}
	waitFor(t, 20*time.Second, "a to close the connections past its transient limit", func() bool {
		return closed.Load() >= conns-transientConnsIn
	})
	var transient network.ScopeStat
	a.Host().Network().ResourceManager().ViewTransient(func(s network.ResourceScope) error {
		transient = s.Stat()
		return nil
	})
	if transient.NumConnsInbound > transientConnsIn {
		t.Errorf("a holds %d half-open inbound connections, want at most %d", transient.NumConnsInbound, transientConnsIn)
	}

	// a still reaches another member while both floods hold.
	other := startHost(t, testConfig(t, ids[2], r))
	if err := a.AddPeer(addrInfo(other)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a to reach another member during the floods", func() bool {
		return echoWithin(5*time.Second, a, other) == nil
	})

	grew := liveHeap() - before
	t.Logf("served %d of %d streams; %d of %d outsider connections closed; transient %+v; live heap grew by %d KiB",
		served.Load(), streams, closed.Load(), conns, transient, grew>>10)
	if grew > 64<<20 {
		t.Errorf("the floods grew a's live heap by %d MiB, want < 64 MiB", grew>>20)
	}
}
