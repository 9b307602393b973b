package transport

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const raftProto = "/crisismesh/test-raft/1"

// TestStreamLayer: a net.Conn each way between two hosts, addressed by
// peer ID, as hashicorp/raft's NetworkTransport uses it.
func TestStreamLayer(t *testing.T) {
	t.Parallel()
	a, b := startPair(t)
	la, err := NewStreamLayer(a.Host(), raftProto)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := NewStreamLayer(b.Host(), raftProto)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lb.Addr().String(), b.ID().String(); got != want {
		t.Fatalf("Addr() = %s, want the peer ID %s", got, want)
	}

	// The listener answers each message with its reverse.
	served := make(chan error, 1)
	go func() {
		c, err := lb.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		if got, want := c.RemoteAddr().String(), a.ID().String(); got != want {
			served <- fmt.Errorf("RemoteAddr() = %s, want %s", got, want)
			return
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			served <- err
			return
		}
		for i, j := 0, len(buf)-1; i < j; i, j = i+1, j-1 {
			buf[i], buf[j] = buf[j], buf[i]
		}
		_, err = c.Write(buf)
		served <- err
	}()

	c, err := la.Dial(raft.ServerAddress(b.ID().String()), 10*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "olleh" {
		t.Errorf("got %q, want %q", got, "olleh")
	}
	if err := <-served; err != nil {
		t.Fatalf("listener side: %v", err)
	}

	if _, err := la.Dial("not-a-peer-id", time.Second); err == nil {
		t.Errorf("Dial(bad address) succeeded")
	}
	// After Close, Accept fails instead of blocking forever: Raft's
	// listener loop relies on it to stop.
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := lb.Accept(); err == nil {
		t.Errorf("Accept after Close succeeded")
	}
	var _ net.Listener = lb
}
