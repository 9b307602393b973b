package sync

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
)

// A node that meets several peers at once, each holding the same feed it
// lacks (a heal), receives the feed once: each session claims what its
// peer is about to send in the same step as it tells the peer what we
// hold, also when the peer started the session (its hello announces its
// frontier). Before, a session the peer started told it what we held a
// round trip before it learnt what the peer would send, and sessions
// arriving together each brought the feed.
func TestHealBringsAFeedOnce(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{})
	p := w.node(t, "cert-lu", nodeOpt{})
	q := w.node(t, "cert-fr", nodeOpt{})
	feed := a.post(t, w, 40, log.Routine)
	connect(t, p, a)
	connect(t, q, a)
	waitFor(t, 10*time.Second, "the feed at p and q", func() bool { return converged(a, p, q) })

	x := w.node(t, "cert-de", nodeOpt{})
	errs := make(chan error, 3)
	for _, n := range []*node{a, p, q} {
		go func() { errs <- x.host.Connect(t.Context(), peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the feed at x", func() bool { return converged(a, p, q, x) })
	holdsAll(t, x, feed)
	total := func(tr Traffic) PathTraffic {
		var s PathTraffic
		for _, pt := range []PathTraffic{tr.SessionsStarted, tr.SessionsServed, tr.Pushes, tr.Offers} {
			s.EntriesRecv += pt.EntriesRecv
			s.Duplicates += pt.Duplicates
			s.Refused += pt.Refused
		}
		return s
	}
	// Counted as each session ends: give them the time to.
	waitFor(t, 10*time.Second, "x's sessions to end", func() bool {
		for _, n := range []*node{a, p, q} {
			if x.svc.initiating(n.host.ID()) || n.svc.initiating(x.host.ID()) {
				return false
			}
		}
		return true
	})
	if got := total(x.svc.Traffic()); got.Duplicates != 0 || got.Refused != 0 {
		t.Errorf("x received %+v: want every entry once (no duplicates, nothing refused)", got)
	}
}

// A claim made on a peer's announced frontier is dropped however the
// session ends: left behind, it would have this node tell every peer it
// is receiving those entries, and never get them.
func TestAnnouncedClaimEndsWithTheSession(t *testing.T) {
	w := newWorld(t)
	a, evil := connectedEvil(t, w, nodeOpt{})
	evil.post(t, w, 5, log.Routine)
	author := evil.id.ID()
	waitFor(t, 10*time.Second, "a's connect session to end", func() bool { return !a.svc.initiating(evil.host.ID()) })
	s, err := evil.host.NewStream(t.Context(), a.host.ID(), ProtocolSync)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil)
	net := a.store.Network()
	if err := c.send(&message{Type: msgHello, Network: net[:8], Digest: make([]byte, 32), Frontier: encodeFrontier(evil.store.Frontier())}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.recv(); err != nil || m.Type != msgFrontier {
		t.Fatalf("expected a frontier: %v %v", m, err)
	}
	other := a.svc.newTransfer()
	if got, want := a.svc.advertised(other, "peer-two")[author], evil.store.Frontier()[author]; got != want {
		t.Errorf("advertised to another peer while evil's session brings its feed: %+v, want %+v", got, want)
	}
	s.Reset() // before sending its frontier
	waitFor(t, 10*time.Second, "the claim dropped", func() bool {
		return a.svc.advertised(other, "peer-two")[author] == a.store.Frontier()[author]
	})
}
