package transport

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// BenchmarkSatelliteLink moves 512 KiB over an emulated satellite link
// (300 ms each way, 256 kbit/s, no loss) through a real libp2p stream and
// reports the time taken ÷ the payload's time on the wire: the overhead of
// TLS, yamux and the emulator. Run: go test -run x -bench Satellite -benchtime 1x
func BenchmarkSatelliteLink(b *testing.B) {
	hosts, f := startFaultyHosts(b, 2, false)
	src, dst := hosts[0], hosts[1]
	dst.Host().SetStreamHandler(sinkProto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{1})
	})
	if err := src.AddPeer(addrInfo(dst)); err != nil {
		b.Fatal(err)
	}
	waitFor(b, 10*time.Second, "connected", func() bool { return connected(src, dst) })
	link := SatelliteLink()
	link.Loss = 0
	f.SetLink(src.ID(), dst.ID(), link)
	const size = 512 << 10
	payload := make([]byte, size)
	wire := time.Duration(float64(size*8) / float64(link.Bandwidth) * float64(time.Second))
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		s, err := src.Host().NewStream(ctx, dst.ID(), sinkProto)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(payload); err != nil {
			b.Fatal(err)
		}
		_ = s.CloseWrite()
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		s.Close()
		cancel()
		b.ReportMetric(took.Seconds()/wire.Seconds(), "time/wire")
		b.ReportMetric((took-wire).Seconds()/0.6, "extra-RTTs")
	}
}
