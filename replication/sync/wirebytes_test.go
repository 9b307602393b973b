package sync

import (
	"context"
	"net"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/crisismesh/crisismesh/replication/log"
)

// countingProxy forwards TCP connections from a loopback port to one
// address and counts the bytes each way: what the link under libp2p
// carries (TLS records, yamux frames, multistream negotiation, sync's
// messages), not the TCP/IP headers.
type countingProxy struct {
	ln       net.Listener
	to       string
	up, down atomic.Int64 // dialer → listener, listener → dialer
	wg       gosync.WaitGroup
	mu       gosync.Mutex
	conns    []net.Conn
}

func newCountingProxy(t testing.TB, to string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, to: to}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.to)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn, n *atomic.Int64) {
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				k, err := src.Read(buf)
				if k > 0 {
					n.Add(int64(k))
					if _, werr := dst.Write(buf[:k]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			dst.Close()
			src.Close()
		}
		go pipe(out, in, &p.up)
		go pipe(in, out, &p.down)
	}
}

// addr is the proxy's multiaddr.
func (p *countingProxy) addr(t testing.TB) multiaddr.Multiaddr {
	t.Helper()
	a, err := multiaddr.NewMultiaddr("/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(p.ln.Addr().String(), "127.0.0.1:"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tcpAddrOf is n's loopback TCP listen address as host:port.
func tcpAddrOf(t testing.TB, n *node) string {
	t.Helper()
	for _, a := range n.host.Addrs() {
		if port, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
			return "127.0.0.1:" + port
		}
	}
	t.Fatalf("%s listens on no TCP address", n.name)
	return ""
}

// narrowPairVia is narrowPair with the author's one connection to the
// receiver going through a counting proxy.
func narrowPairVia(t testing.TB, w *world, tm Timing) (author, recv *node, p *countingProxy) {
	t.Helper()
	author, recv = narrowPairWith(t, w, tm, nil, func(t testing.TB, a, b *node) {
		p = newCountingProxy(t, tcpAddrOf(t, b))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.host.Connect(ctx, peer.AddrInfo{ID: b.host.ID(), Addrs: []multiaddr.Multiaddr{p.addr(t)}}); err != nil {
			t.Fatal(err)
		}
	})
	if n := len(recv.host.Network().ConnsToPeer(author.host.ID())); n != 1 {
		t.Fatalf("%d connections between the pair, want the proxied one only", n)
	}
	return author, recv, p
}

// BenchmarkNarrowLinkWireBytes is BenchmarkNarrowLinkBytes measured on the
// TCP connection under libp2p (both directions: TLS records, yamux
// frames, multistream negotiation and sync's messages; not the TCP/IP
// headers), next to what sync itself counts. Run with -benchtime=1x.
func BenchmarkNarrowLinkWireBytes(b *testing.B) {
	w := newWorld(b)
	text := strings.Repeat("s", 200)
	const posts = 256
	for b.Loop() {
		for _, tc := range []struct {
			name string
			tm   Timing
		}{
			{"wide", narrowTiming(log.Window{})},
			{"narrow", narrowTiming(log.Window{Entries: log.DefaultWindowEntries, Interval: time.Hour, Grace: time.Minute})},
		} {
			author, recv, p := narrowPairVia(b, w, tc.tm)
			sync0, up0, down0 := statsOf(author, recv.host.ID()).BytesSent, p.up.Load(), p.down.Load()
			postOneByOne(b, w, author, recv, posts, text)
			waitFor(b, 30*time.Second, "every post covered", func() bool { return converged(author, recv) })
			author.svc.Close() // flushes what is owed
			b.ReportMetric(float64(statsOf(author, recv.host.ID()).BytesSent-sync0)/posts, "B/post-sync-"+tc.name)
			b.ReportMetric(float64(p.up.Load()-up0)/posts, "B/post-up-"+tc.name)
			b.ReportMetric(float64(p.down.Load()-down0)/posts, "B/post-down-"+tc.name)
			recv.svc.Close()
		}
	}
}
