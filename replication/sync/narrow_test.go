package sync

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// narrowTiming is a narrow link's timing with window w.
func narrowTiming(w log.Window) Timing {
	return Timing{ChunkSize: 16 << 10, SessionTimeout: 30 * time.Second, PushTimeout: 3 * time.Second, Window: w}
}

// narrowPair returns an author and a receiver connected over a link of
// timing t, once the author knows the receiver speaks narrow/1 (libp2p's
// identify runs after the connection).
func narrowPair(t testing.TB, w *world, tm Timing) (author, recv *node) {
	return narrowPairWith(t, w, tm, nil, connect)
}

// narrowPairWith is narrowPair with prepare(recv) run before the two
// connect (nil: nothing), and link connecting them.
func narrowPairWith(t testing.TB, w *world, tm Timing, prepare func(recv *node), link func(t testing.TB, a, b *node)) (author, recv *node) {
	t.Helper()
	author = w.node(t, "enisa", nodeOpt{timing: tm})
	recv = w.node(t, "cert-lu", nodeOpt{timing: tm})
	if prepare != nil {
		prepare(recv)
	}
	link(t, author, recv)
	if tm.Window != (log.Window{}) {
		waitFor(t, 10*time.Second, "identify to say the receiver speaks narrow/1", func() bool {
			_, ok := author.svc.narrowWindow(recv.host.ID())
			return ok
		})
	}
	waitFor(t, 20*time.Second, "initial convergence", func() bool { return converged(author, recv) })
	syncNow(t, author, recv) // and the session on connect has ended
	return author, recv
}

// holdsAs reports whether n holds e in its feed (covered) or waiting.
func holdsAs(n *node, e *log.Entry) (covered, waiting bool) {
	if _, err := n.store.Get(e.ID()); err == nil {
		return true, false
	}
	for _, we := range n.store.WaitingOf(e.Header.Author) {
		if we.Entry.ID() == e.ID() {
			return false, true
		}
	}
	return false, false
}

// postOneByOne posts k entries, one append each, waiting after each until
// the receiver holds it (waiting or covered).
func postOneByOne(t testing.TB, w *world, author, recv *node, k int, text ...string) []*log.Entry {
	t.Helper()
	var all []*log.Entry
	for range k {
		var e *log.Entry
		if len(text) > 0 {
			es, err := author.store.Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: text[0]}, Key: w.key})
			if err != nil {
				t.Fatal(err)
			}
			e = es[0]
		} else {
			e = author.post(t, w, 1, log.Routine)[0]
		}
		all = append(all, e)
		waitFor(t, 10*time.Second, "the post at the receiver", func() bool {
			c, wt := holdsAs(recv, e)
			return c || wt
		})
	}
	return all
}

// On a narrow link an author's posts travel with provisional signatures
// and one composite every Window.Entries posts: the bytes per post fall
// to a quarter of a wide link's or less (N = 8 here; the default N = 128
// gives the 600-byte figure of log's doc), and when the composite
// arrives every post is covered and the logs are equal.
func TestNarrowLinkBytesPerPost(t *testing.T) {
	w := newWorld(t)
	const posts = 32
	perPost := map[string]float64{}
	for _, tc := range []struct {
		name string
		tm   Timing
	}{
		{"wide", narrowTiming(log.Window{})},
		{"narrow", narrowTiming(log.Window{Entries: 8, Interval: time.Hour, Grace: time.Minute})},
	} {
		author, recv := narrowPair(t, w, tc.tm)
		before := statsOf(author, recv.host.ID()).BytesSent
		es := postOneByOne(t, w, author, recv, posts)
		waitFor(t, 10*time.Second, "every post covered at the receiver", func() bool { return converged(author, recv) })
		for _, e := range es {
			if c, _ := holdsAs(recv, e); !c {
				t.Fatalf("%s: seq %d not covered at the receiver", tc.name, e.Header.Seq)
			}
			// The author holds each post with its composite; the
			// receiver holds those a successor's composite covers
			// without one (as a group commit's): the same entry.
			got, _ := recv.store.Get(e.ID())
			if got.Signature() != nil && len(got.Signature()) != crypto.SignatureSize {
				t.Errorf("%s: seq %d stored with a %d-byte signature: only composites enter a feed", tc.name, e.Header.Seq, len(got.Signature()))
			}
			if string(got.Unsigned().Bytes()) != string(e.Unsigned().Bytes()) {
				t.Errorf("%s: seq %d stored differently at the receiver", tc.name, e.Header.Seq)
			}
		}
		if n := len(recv.store.WaitingOf(author.id.ID())); n != 0 {
			t.Errorf("%s: %d entries still waiting after the composite", tc.name, n)
		}
		sent := statsOf(author, recv.host.ID()).BytesSent - before
		perPost[tc.name] = float64(sent) / posts
		t.Logf("%s link: %d bytes for %d posts, %.0f bytes per post (entry with composite: %d bytes)", tc.name, sent, posts, perPost[tc.name], es[0].Size())
		author.svc.Close()
		recv.svc.Close()
	}
	if ratio := perPost["narrow"] / perPost["wide"]; ratio > 0.35 {
		t.Errorf("narrow link: %.2f× the wide link's bytes per post, want ≤ 0.35×", ratio)
	}
}

// While entries wait at the receiver they are apart from its feed
// (frontier, digest unchanged), a session does not send them again in
// full, and the cover arrives by itself once the window's time is up.
func TestNarrowLinkCoverByTime(t *testing.T) {
	w := newWorld(t)
	author, recv := narrowPair(t, w, narrowTiming(log.Window{Entries: 128, Interval: 2 * time.Second, Grace: time.Second}))
	digest := recv.store.Digest()
	es := postOneByOne(t, w, author, recv, 3)
	for _, e := range es {
		if c, wt := holdsAs(recv, e); c || !wt {
			t.Fatalf("seq %d: covered %v waiting %v at the receiver, want waiting", e.Header.Seq, c, wt)
		}
	}
	if recv.store.Digest() != digest {
		t.Fatal("waiting entries changed the receiver's digest")
	}
	before := statsOf(author, recv.host.ID()).BytesSent
	rep := syncNow(t, recv, author)
	if rep.EntriesRecv != 0 {
		t.Errorf("a session brought %d entries the receiver holds waiting", rep.EntriesRecv)
	}
	if sent := statsOf(author, recv.host.ID()).BytesSent - before; sent > int64(es[0].Size()) {
		t.Errorf("the author sent %d bytes in a session, more than one entry's worth (%d): the waiting entries went again", sent, es[0].Size())
	}
	waitFor(t, 15*time.Second, "the cover, by time", func() bool { return converged(author, recv) })
	for _, e := range es {
		if c, _ := holdsAs(recv, e); !c {
			t.Errorf("seq %d not covered after the cover", e.Header.Seq)
		}
	}
}

// A graceful shutdown sends the covers owed; a reconnect sends them
// before anything else.
func TestNarrowLinkCoverOnCloseAndReconnect(t *testing.T) {
	w := newWorld(t)
	tm := narrowTiming(log.Window{Entries: 128, Interval: time.Hour, Grace: time.Minute})

	author, recv := narrowPair(t, w, tm)
	postOneByOne(t, w, author, recv, 2)
	partition(author, recv)
	heal(t, author, recv)
	waitFor(t, 10*time.Second, "the cover after a reconnect", func() bool { return converged(author, recv) })

	postOneByOne(t, w, author, recv, 2)
	author.svc.Close()
	if !converged(author, recv) {
		t.Errorf("closed with entries waiting at the receiver: %d waiting", len(recv.store.WaitingOf(author.id.ID())))
	}
}

// Flash entries travel with their composite: acted on at once, never
// waiting.
func TestNarrowLinkFlashTravelsSigned(t *testing.T) {
	w := newWorld(t)
	author, recv := narrowPair(t, w, narrowTiming(log.Window{Entries: 128, Interval: time.Hour, Grace: time.Minute}))
	e := author.post(t, w, 1, log.Flash)[0]
	waitFor(t, 10*time.Second, "the flash entry in the receiver's feed", func() bool {
		c, _ := holdsAs(recv, e)
		return c
	})
}

// A peer that does not speak narrow/1 gets entries with their composite.
func TestNarrowLinkOldPeerGetsComposites(t *testing.T) {
	w := newWorld(t)
	tm := narrowTiming(log.Window{Entries: 128, Interval: time.Hour, Grace: time.Minute})
	author := w.node(t, "enisa", nodeOpt{timing: tm})
	recv := w.node(t, "cert-lu", nodeOpt{timing: tm})
	recv.host.RemoveStreamHandler(ProtocolNarrow)
	connect(t, author, recv)
	waitFor(t, 20*time.Second, "initial convergence", func() bool { return converged(author, recv) })
	e := author.post(t, w, 1, log.Routine)[0]
	waitFor(t, 10*time.Second, "the entry in the old peer's feed", func() bool {
		c, _ := holdsAs(recv, e)
		return c
	})
}

// narrow/1 and narrow/2 carry the pusher's own entries only; anything
// else, a garbled cover, or (narrow/2) a message of another type, is an
// offence, stores nothing, and ends the stream.
func TestNarrowPushRefusals(t *testing.T) {
	w := newWorld(t)
	x := w.node(t, "cert-lu", nodeOpt{noStart: true})
	x.host.SetStreamHandler(ProtocolNarrow, x.svc.handleNarrow)
	x.host.SetStreamHandler(ProtocolNarrow2, x.svc.handleNarrowStream)
	pusher := w.node(t, "cert-fr", nodeOpt{noStart: true})
	other := w.node(t, "enisa", nodeOpt{noStart: true})
	connect(t, pusher, x)
	foreign := other.post(t, w, 1, log.Routine)[0]
	own := pusher.post(t, w, 1, log.Routine)[0]
	cov, err := log.CoverOf(own)
	if err != nil {
		t.Fatal(err)
	}
	good, err := cov.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name  string
		proto protocol.ID
		m     *message
	}{
		{"another author's entry", ProtocolNarrow, &message{Type: msgNarrow, Entries: [][]byte{foreign.Bytes()}}},
		{"a garbled cover", ProtocolNarrow, &message{Type: msgNarrow, Covers: [][]byte{good[:len(good)-1]}}},
		{"another author's entry", ProtocolNarrow2, &message{Type: msgNarrow, Entries: [][]byte{foreign.Bytes()}}},
		{"a garbled cover", ProtocolNarrow2, &message{Type: msgNarrow, Covers: [][]byte{good[:len(good)-1]}}},
		{"a message of another type", ProtocolNarrow2, &message{Type: msgHeads}},
	} {
		before := statsOf(x, pusher.host.ID()).Offences
		s, err := pusher.host.NewStream(context.Background(), x.host.ID(), tc.proto)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(frame(t, tc.m)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, tc.name+" scored", func() bool { return statsOf(x, pusher.host.ID()).Offences > before })
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Read(make([]byte, 1)); err == nil || err == io.EOF { // a clean close, not a reset
			t.Errorf("%d %s on %s: the stream went on (read: %v), want it reset", i, tc.name, tc.proto, err)
		}
		s.Reset()
		if _, err := x.store.Get(foreign.ID()); err == nil {
			t.Errorf("%d %s: stored the foreign entry", i, tc.name)
		}
		if n := len(x.store.WaitingOf(foreign.Header.Author)); n != 0 {
			t.Errorf("%d %s: holds %d entries waiting", i, tc.name, n)
		}
	}
	if _, ok := x.svc.memberOf("not-a-peer"); ok {
		t.Error("memberOf found a member for an unknown peer")
	}
}

// BenchmarkNarrowLinkBytes: the bytes sync writes per post when an author
// posts 200-byte TLP:AMBER sitreps one at a time to one peer, on a wide
// link and on a narrow one with the default window (N = 128; at one post
// a second T = 120 s comes first, which is about the same). Run with
// -benchtime=1x. The figures count sync's messages, not libp2p's stream
// framing, TLS records or TCP/IP headers.
func BenchmarkNarrowLinkBytes(b *testing.B) {
	w := newWorld(b)
	text := strings.Repeat("s", 200)
	const posts = 256
	for b.Loop() {
		perPost := map[string]float64{}
		for _, tc := range []struct {
			name string
			tm   Timing
		}{
			{"wide", narrowTiming(log.Window{})},
			{"narrow", narrowTiming(log.Window{Entries: log.DefaultWindowEntries, Interval: time.Hour, Grace: time.Minute})},
		} {
			author, recv := narrowPair(b, w, tc.tm)
			before := statsOf(author, recv.host.ID()).BytesSent
			postOneByOne(b, w, author, recv, posts, text)
			waitFor(b, 30*time.Second, "every post covered", func() bool { return converged(author, recv) })
			perPost[tc.name] = float64(statsOf(author, recv.host.ID()).BytesSent-before) / posts
			author.svc.Close()
			recv.svc.Close()
		}
		b.ReportMetric(perPost["wide"], "B/post-wide")
		b.ReportMetric(perPost["narrow"], "B/post-narrow")
		b.ReportMetric(perPost["narrow"]/perPost["wide"], "narrow/wide")
	}
}

// Large entries go covered before what waits at the receiver nears the
// store's bound (log.MaxUnsignedRun bytes per author), however long the
// window: no entry is refused as over the bound and sent again in full.
// (Entries over the push limit, 256 KiB, are never pushed: sessions bring
// them, covered.)
func TestNarrowLinkLargeEntriesGoCovered(t *testing.T) {
	w := newWorld(t)
	author, recv := narrowPair(t, w, narrowTiming(log.Window{Entries: 128, Interval: time.Hour, Grace: time.Minute}))
	text := strings.Repeat("l", 200<<10)
	most := 0
	for _, e := range postOneByOne(t, w, author, recv, 30, text) {
		if c, wt := holdsAs(recv, e); !c && !wt {
			t.Fatalf("seq %d neither covered nor waiting at the receiver", e.Header.Seq)
		}
		var size int
		for _, we := range recv.store.WaitingOf(author.id.ID()) {
			size += we.Entry.Size()
		}
		most = max(most, size)
	}
	if most > log.MaxUnsignedRun/2 {
		t.Errorf("%d bytes waited at the receiver at once, want at most half of %d", most, log.MaxUnsignedRun)
	}
	if most == 0 {
		t.Error("nothing ever waited: the test shows nothing")
	}
}
