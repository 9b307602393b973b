package sync

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/crisismesh/crisismesh/replication/log"
)

// A peer that accepts a session and then says nothing is cut off by the
// watchdog after the session timeout.
func TestWatchdogAbortsStalledSession(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{timing: Timing{ChunkSize: 64 << 10, SessionTimeout: 300 * time.Millisecond}})
	mute := w.node(t, "cert-de", nodeOpt{noStart: true})
	mute.host.SetStreamHandler(ProtocolSync, func(s network.Stream) {
		buf := make([]byte, 1024)
		for {
			if _, err := s.Read(buf); err != nil {
				return
			}
		}
	})
	connect(t, a, mute)
	// Connecting starts a session; once it is over, start one by hand.
	var err error
	waitFor(t, 10*time.Second, "a session to run", func() bool {
		_, err = a.svc.SyncWith(context.Background(), mute.host.ID())
		return !errors.Is(err, errBusy)
	})
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("got %v, want ErrStalled", err)
	}
	ps := a.svc.Peers()
	if len(ps) == 0 || ps[0].Failures == 0 {
		t.Errorf("the stalled session is not counted as a failure: %+v", ps)
	}
}

// Priority passes: urgent entries (and the entries they chain on) go
// before routine ones of other feeds; every cut ends on a signed entry.
func TestPlanPriorityCuts(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	b := w.node(t, "cert-lu", nodeOpt{noStart: true})
	// enisa: 10 routine (one batch), then one flash.
	a.post(t, w, 10, log.Routine)
	a.post(t, w, 1, log.Flash)
	// cert-lu's feed, ingested into a: 5 routine.
	mustIngestAll(t, a, b.post(t, w, 5, log.Routine))
	plans, _, err := plan(a.store, log.Frontier{})
	if err != nil {
		t.Fatal(err)
	}
	byAuthor := map[string]feedPlan{}
	for _, p := range plans {
		byAuthor[p.author.String()] = p
	}
	pa := byAuthor[a.id.ID().String()]
	pb := byAuthor[b.id.ID().String()]
	// enisa's feed: seq 1 key entry (plain), 2..11 routine, 12 flash.
	if pa.cut[0] != 1 || pa.cut[2] != 12 || pa.cut[4] != 12 {
		t.Errorf("enisa cuts %v, want plain→1, flash→12, routine→12", pa.cut)
	}
	if pb.cut[2] != 0 || pb.cut[4] != 5 {
		t.Errorf("cert-lu cuts %v, want nothing before the routine pass", pb.cut)
	}
	// Unsigned batch members never end a cut: 2..11 are one batch (11 signed).
	if pa.cut[1] != 1 {
		t.Errorf("control cut %d, want 1", pa.cut[1])
	}
}

// A fork found by one node reaches the others through sync, and every
// node freezes the author's feed the same way.
func TestForkEvidenceTravels(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{})
	b := w.node(t, "cert-lu", nodeOpt{})
	// Two machines with cert-fr's identity write different seq 1.
	fr1 := w.node(t, "cert-fr", nodeOpt{noStart: true})
	fr2 := w.node(t, "cert-fr", nodeOpt{noStart: true})
	x := fr1.post(t, w, 2, log.Routine)
	y := fr2.post(t, w, 1, log.Routine)
	mustIngestAll(t, a, x)
	mustIngestAll(t, b, x)
	mustIngestAll(t, a, y) // a sees the fork, b does not
	if len(a.store.Forks()) != 1 {
		t.Fatal("a did not find the fork")
	}
	connect(t, a, b)
	waitFor(t, 20*time.Second, "b to learn of the fork", func() bool { return len(b.store.Forks()) == 1 })
	waitFor(t, 20*time.Second, "convergence", func() bool { return converged(a, b) })
}

func mustIngestAll(t testing.TB, n *node, es []*log.Entry) {
	t.Helper()
	res, err := n.store.Ingest(context.Background(), es...)
	if err != nil {
		t.Fatal(err)
	}
	_ = res
}

// When both sides start a session at once, the side with the lower peer ID
// turns the other's away, so the backlog crosses the link once.
func TestSimultaneousSessionsTurnedAway(t *testing.T) {
	w := newWorld(t)
	a, b := w.node(t, "enisa", nodeOpt{}), w.node(t, "cert-lu", nodeOpt{})
	low, high := a, b
	if b.host.ID() < a.host.ID() {
		low, high = b, a
	}
	connect(t, low, high)
	waitFor(t, 10*time.Second, "initial sync", func() bool { return converged(low, high) })
	waitFor(t, 10*time.Second, "low's own session to end", func() bool { return !low.svc.initiating(high.host.ID()) })
	// low is (as far as its responder knows) running its own session.
	low.svc.mu.Lock()
	low.svc.transfers.startSession(high.host.ID(), false)
	low.svc.mu.Unlock()
	_, err := high.svc.initiate(context.Background(), low.host.ID(), true)
	if !errors.Is(err, errBusy) {
		t.Fatalf("the higher side's session: got %v, want errBusy", err)
	}
	low.svc.mu.Lock()
	low.svc.transfers.endSession(high.host.ID())
	low.svc.mu.Unlock()
	// low's responder to the session it turned away ends on its own
	// goroutine, maybe after high read the answer.
	waitFor(t, 10*time.Second, "low's answer to the turned-away session to end", func() bool {
		low.svc.mu.Lock()
		defer low.svc.mu.Unlock()
		return !low.svc.transfers.responding[high.host.ID()]
	})
	if _, err := high.svc.initiate(context.Background(), low.host.ID(), true); err != nil {
		t.Fatalf("once low is idle: %v", err)
	}
}

// While a session brings us a peer's entries, the frontier we advertise to
// other peers includes them, so that after a heal every peer across the
// cut does not send us the same backlog; the session's own peer is told
// the truth, and a session that ends (or fails) withdraws its claim.
func TestAdvertisedFrontierCountsIncomingEntries(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	x := w.node(t, "cert-lu", nodeOpt{noStart: true})
	a.post(t, w, 20, log.Routine)
	theirs := a.store.Frontier()
	author := a.id.ID()
	if x.store.Frontier()[author].Seq >= theirs[author].Seq {
		t.Fatal("x already holds a's feed")
	}
	s1, s2 := x.svc.newTransfer(), x.svc.newTransfer() // sessions with peer-one and peer-two
	x.svc.expect(s1, theirs, nil)
	if got := x.svc.advertised(s2, "peer-two")[author]; got != theirs[author] {
		t.Errorf("advertised to another peer while s1 brings a's feed: %+v, want %+v", got, theirs[author])
	}
	if got := x.svc.advertised(s1, "peer-one")[author]; got != x.store.Frontier()[author] {
		t.Errorf("advertised to the peer that is sending: %+v, want what x stores, %+v", got, x.store.Frontier()[author])
	}
	x.svc.finish(s1)
	if got := x.svc.advertised(s2, "peer-two")[author]; got != x.store.Frontier()[author] {
		t.Errorf("after s1 ended (without delivering): %+v, want what x stores, %+v", got, x.store.Frontier()[author])
	}
	// s1 ended short: the peer told x held a's feed is asked again, or it
	// would wait for the next periodic round (an hour in these tests).
	select {
	case p := <-x.svc.kick:
		if p != "peer-two" {
			t.Errorf("kicked %s, want peer-two", p)
		}
	default:
		t.Error("s1 ended short and nobody was asked for a session again")
	}
}

// A peer told that another transfer brings us some entries does not send
// them; its session ending without them is not short, and kicks nobody.
// (It did: after a heal in a 50-node mesh, every such session kicked the
// peers told, who started sessions that were told the same and ended the
// same way, a storm that kept both cores busy and the run from converging
// within 5 minutes.)
func TestToldSessionEndingWithoutTheEntriesIsNotShort(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	x := w.node(t, "cert-lu", nodeOpt{noStart: true})
	a.post(t, w, 20, log.Routine)
	theirs := a.store.Frontier()
	// s1 and s2: sessions with peer-one and peer-two.
	s1, s2 := x.svc.newTransfer(), x.svc.newTransfer()
	x.svc.expect(s1, theirs, nil) // s1 brings a's feed
	told := x.svc.advertised(s2, "peer-two")
	x.svc.expect(s2, theirs, told) // s2's peer holds it too, but was told x is getting it
	x.svc.finish(s2)               // s2 ends: its peer rightly sent nothing
	select {
	case p := <-x.svc.kick:
		t.Fatalf("a session that brought all it was asked for kicked %s", p)
	default:
	}
	x.svc.finish(s1) // s1 ends without a's feed: short
	select {
	case p := <-x.svc.kick:
		if p != "peer-two" {
			t.Errorf("kicked %s, want peer-two", p)
		}
	default:
		t.Error("s1 ended short and peer-two, told x was getting a's feed, was not asked again")
	}
}
