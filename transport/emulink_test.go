package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// emuPair returns an emulated connection (the dialling side) and the plain
// far end of a loopback TCP connection. link is read on every segment.
func emuPair(t *testing.T, seed uint64, link func() (Link, time.Time)) (*emuConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far := <-accepted
	if far == nil {
		t.Fatal("accept failed")
	}
	e := newEmuConn(c, link, link, seed)
	t.Cleanup(func() { e.Close(); far.Close() })
	return e, far
}

func fixed(l Link) func() (Link, time.Time) {
	return func() (Link, time.Time) { return l, time.Time{} }
}

// echoFar echoes everything on c until EOF.
func echoFar(c net.Conn) {
	go func() { _, _ = io.Copy(c, c) }()
}

// roundTrip writes msg and reads it back through the far end's echo.
func roundTrip(t *testing.T, e net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := e.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(e, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo mismatch")
	}
	return time.Since(start)
}

func TestEmuLatency(t *testing.T) {
	t.Parallel()
	e, far := emuPair(t, 1, fixed(Link{Latency: 100 * time.Millisecond}))
	echoFar(far)
	for range 3 {
		if rtt := roundTrip(t, e, []byte("ping")); rtt < 200*time.Millisecond {
			t.Errorf("round trip %v over 100 ms each way, want >= 200ms", rtt)
		}
	}
}

func TestEmuBandwidth(t *testing.T) {
	t.Parallel()
	// 32 KiB each way at 512 kbit/s: at least 0.5 s out and 0.5 s back,
	// overlapping, so >= 0.5 s in all.
	e, far := emuPair(t, 1, fixed(Link{Bandwidth: 512_000}))
	echoFar(far)
	msg := bytes.Repeat([]byte("satellite "), 32<<10/10)
	took := roundTrip(t, e, msg)
	t.Logf("32 KiB echoed at 512 kbit/s in %v", took)
	if took < 500*time.Millisecond {
		t.Errorf("took %v, want >= 500ms", took)
	}
}

// TestEmuLoss: with every segment lost, each arrives LossStall late. The
// seed makes the draws repeatable; with Loss 1 every draw loses.
func TestEmuLoss(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	e, far := emuPair(t, seed, fixed(Link{Loss: 1, LossStall: 150 * time.Millisecond}))
	echoFar(far)
	if rtt := roundTrip(t, e, []byte("x")); rtt < 300*time.Millisecond {
		t.Errorf("round trip %v with every segment stalled 150 ms each way, want >= 300ms", rtt)
	}
}

func TestEmuStall(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var until time.Time
	e, far := emuPair(t, 1, func() (Link, time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return Link{}, until
	})
	echoFar(far)
	mu.Lock()
	until = time.Now().Add(300 * time.Millisecond)
	mu.Unlock()
	if rtt := roundTrip(t, e, []byte("x")); rtt < 250*time.Millisecond {
		t.Errorf("round trip %v during a 300 ms stall, want >= 250ms", rtt)
	}
}

func TestEmuDeadlines(t *testing.T) {
	t.Parallel()
	e, far := emuPair(t, 1, fixed(Link{Latency: 50 * time.Millisecond}))
	_ = e.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := e.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past its deadline = %v, want a timeout", err)
	}
	// Clearing the deadline makes the connection usable again.
	_ = e.SetReadDeadline(time.Time{})
	echoFar(far)
	roundTrip(t, e, []byte("again"))

	// A deadline set while a Read waits wakes it.
	done := make(chan error, 1)
	go func() {
		_, err := e.Read(make([]byte, 1))
		done <- err
	}()
	_ = e.SetDeadline(time.Now())
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read woken by SetDeadline = %v, want ErrDeadlineExceeded", err)
	}
	// A write that cannot fit in the line times out.
	_ = e.SetDeadline(time.Time{})
	slow, _ := emuPair(t, 1, fixed(Link{Bandwidth: 8_000}))
	_ = slow.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := slow.Write(make([]byte, 256<<10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write into a full line past its deadline = %v, want ErrDeadlineExceeded", err)
	}
}

func TestEmuCloseAndEOF(t *testing.T) {
	t.Parallel()
	e, far := emuPair(t, 1, fixed(Link{Latency: 20 * time.Millisecond}))
	// The far end writes and closes: the data arrives, then EOF.
	go func() {
		_, _ = far.Write([]byte("bye"))
		far.Close()
	}()
	got, err := io.ReadAll(e)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll = %q, %v; want \"bye\", nil", got, err)
	}
	// A blocked Read returns when the connection is closed.
	e2, _ := emuPair(t, 1, fixed(Link{}))
	done := make(chan error, 1)
	go func() {
		_, err := e2.Read(make([]byte, 1))
		done <- err
	}()
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read during Close = %v, want net.ErrClosed", err)
	}
	if _, err := e2.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close succeeded")
	}
	if err := e2.Close(); err != nil {
		t.Errorf("second Close = %v, want nil (idempotent)", err)
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		link Link
		want int
	}{
		{Link{}, 1 << 20},
		{Link{Bandwidth: 8_000}, 100 + 32<<10},
		{SatelliteLink(), 22_400 + 32<<10},
		{Link{Bandwidth: 100_000_000, Latency: 10 * time.Millisecond}, 1_500_000 + 32<<10},
	} {
		if got := capacity(tc.link); got != tc.want {
			t.Errorf("capacity(%+v) = %d, want %d", tc.link, got, tc.want)
		}
	}
}
