package sync

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
)

// streamsTo counts n's open streams of protocol proto to p.
func streamsTo(n *node, p peer.ID, proto string) int {
	k := 0
	for _, c := range n.host.Network().ConnsToPeer(p) {
		for _, s := range c.GetStreams() {
			if string(s.Protocol()) == proto && s.Stat().Direction == network.DirOutbound {
				k++
			}
		}
	}
	return k
}

// On narrow/2 an author's isolated posts go one after another on one
// stream: the link carries each post's message and its answer with one
// frame's framing each, not a stream's opening and closing. When the
// author closes, what it owed is covered and the receiver's end of the
// stream is gone too.
func TestNarrowStreamOneStream(t *testing.T) {
	w := newWorld(t)
	author, recv, proxy := narrowPairVia(t, w, narrowTiming(log.Window{Entries: 128, Interval: time.Hour, Grace: time.Minute}))
	const posts = 20
	sync0, up0, down0 := statsOf(author, recv.host.ID()).BytesSent, proxy.up.Load(), proxy.down.Load()
	text := strings.Repeat("s", 200)
	for _, e := range postOneByOne(t, w, author, recv, posts, text) {
		if c, wt := holdsAs(recv, e); c || !wt {
			t.Fatalf("seq %d: covered %v waiting %v, want waiting", e.Header.Seq, c, wt)
		}
	}
	if n := streamsTo(author, recv.host.ID(), ProtocolNarrow2); n != 1 {
		t.Errorf("the author has %d narrow/2 streams to the receiver, want 1", n)
	}
	if n := streamsTo(author, recv.host.ID(), ProtocolNarrow); n != 0 {
		t.Errorf("the author has %d narrow/1 streams open", n)
	}
	syncBytes := statsOf(author, recv.host.ID()).BytesSent - sync0
	up, down := proxy.up.Load()-up0, proxy.down.Load()-down0
	t.Logf("%d posts: sync wrote %d B, the link carried %d B up and %d B down", posts, syncBytes, up, down)
	// What travels besides sync's message is, each way, one TLS record
	// and one yamux frame (22 + 12 bytes), and the 4-byte answer; on
	// narrow/1 a post cost about 330 (a stream opened, negotiated,
	// closed both ways).
	if over := float64(up+down-syncBytes) / posts; over > 96 {
		t.Errorf("the link carried %.0f B per post besides sync's messages, want ≤ 96", over)
	}
	author.svc.Close()
	if !converged(author, recv) {
		t.Errorf("closed with %d entries waiting at the receiver", len(recv.store.WaitingOf(author.id.ID())))
	}
	waitFor(t, 10*time.Second, "the receiver's end of the stream to end", func() bool {
		recv.svc.mu.Lock()
		defer recv.svc.mu.Unlock()
		return len(recv.svc.narrowIn) == 0
	})
}

// A peer that speaks narrow/1 only gets each push on a stream of its own,
// provisionally as before.
func TestNarrowStreamPeerWithoutNarrow2(t *testing.T) {
	w := newWorld(t)
	tm := narrowTiming(log.Window{Entries: 128, Interval: time.Hour, Grace: time.Minute})
	author, recv := narrowPairWith(t, w, tm, func(recv *node) { recv.host.RemoveStreamHandler(ProtocolNarrow2) }, connect)
	for _, e := range postOneByOne(t, w, author, recv, 3) {
		if c, wt := holdsAs(recv, e); c || !wt {
			t.Fatalf("seq %d: covered %v waiting %v, want waiting", e.Header.Seq, c, wt)
		}
	}
	if n := streamsTo(author, recv.host.ID(), ProtocolNarrow2); n != 0 {
		t.Errorf("%d narrow/2 streams to a peer that does not speak it", n)
	}
	author.svc.Close()
	if !converged(author, recv) {
		t.Errorf("closed with %d entries waiting at the receiver", len(recv.store.WaitingOf(author.id.ID())))
	}
}

// A peer has one narrow/2 stream at a receiver: a newer one replaces the
// older, which is reset; the newer carries on.
func TestNarrowStreamNewerReplacesOlder(t *testing.T) {
	w := newWorld(t)
	x := w.node(t, "cert-lu", nodeOpt{noStart: true})
	x.host.SetStreamHandler(ProtocolNarrow2, x.svc.handleNarrowStream)
	pusher := w.node(t, "cert-fr", nodeOpt{noStart: true})
	connect(t, pusher, x)
	own := pusher.post(t, w, 1, log.Routine)[0]
	open := func() network.Stream {
		s, err := pusher.host.NewStream(context.Background(), x.host.ID(), ProtocolNarrow2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old := open()
	if _, err := old.Write(frame(t, &message{Type: msgNarrow})); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if m, err := newConn(old, nil).recv(); err != nil || m.Type != msgEnd {
		t.Fatalf("an empty narrow message asking for an answer: got %v, %v, want msgEnd", m, err)
	}
	s := open()
	if _, err := s.Write(frame(t, &message{Type: msgNarrow, Entries: [][]byte{own.Bytes()}})); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if m, err := newConn(s, nil).recv(); err != nil || m.Type != msgEnd {
		t.Fatalf("the newer stream: got %v, %v, want msgEnd", m, err)
	}
	if _, err := x.store.Get(own.ID()); err != nil {
		t.Errorf("the entry sent on the newer stream is not stored: %v", err)
	}
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	var timeout net.Error
	if _, err := old.Read(make([]byte, 1)); err == nil || (errors.As(err, &timeout) && timeout.Timeout()) {
		t.Errorf("the older stream is still open (read: %v), want it reset", err)
	}
	if n := statsOf(x, pusher.host.ID()).Offences; n != 0 {
		t.Errorf("%d offences for a replaced stream", n)
	}
}
