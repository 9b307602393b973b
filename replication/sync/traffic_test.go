package sync

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTrafficByPath: a session's entries, a push's and a duplicate ingest
// are each counted on their path, on both sides.
func TestTrafficByPath(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "cert-lu", nodeOpt{})
	b := w.node(t, "cert-fr", nodeOpt{})
	backlog := a.post(t, w, 5, 0)
	connect(t, a, b) // the lower peer ID starts a session
	waitFor(t, 10*time.Second, "the backlog at b", func() bool { return converged(a, b) })
	// The session is counted when it ends, which may be just after the
	// logs are equal.
	sessions := func(n *node) PathTraffic {
		tr := n.svc.Traffic()
		if a.host.ID() < b.host.ID() == (n == a) {
			return tr.SessionsStarted
		}
		return tr.SessionsServed
	}
	waitFor(t, 10*time.Second, "the session counted on both sides", func() bool {
		return sessions(a).EntriesSent == 5 && sessions(b).EntriesRecv == 5
	})
	if got := sessions(a); got.BytesSent < 5*int64(backlog[0].Size()) {
		t.Errorf("a's session sent %d bytes, want at least the 5 entries' %d", got.BytesSent, 5*backlog[0].Size())
	}
	if got := sessions(b).Duplicates; got != 0 {
		t.Errorf("b's session duplicates = %d, want 0", got)
	}

	pushed := a.post(t, w, 2, 0)
	waitFor(t, 10*time.Second, "the push counted", func() bool {
		return a.svc.Traffic().Pushes.EntriesSent == 2 && b.svc.Traffic().Pushes.EntriesRecv == 2
	})
	if got := a.svc.Traffic().Offers; got != (PathTraffic{}) {
		t.Errorf("a offered %+v, want nothing (its own entries are pushed, not offered)", got)
	}

	before := b.svc.Traffic()
	if _, _, err := b.svc.ingest(a.host.ID(), pathOffer, append(backlog, pushed...)); err != nil {
		t.Fatal(err)
	}
	want := PathTraffic{Duplicates: 7}
	if diff := cmp.Diff(want, b.svc.Traffic().Sub(before).Offers); diff != "" {
		t.Errorf("entries received twice (-want +got):\n%s", diff)
	}
	if got := before.Add(b.svc.Traffic().Sub(before)); got != b.svc.Traffic() {
		t.Errorf("Add(Sub) = %+v, want %+v", got, b.svc.Traffic())
	}
}
