package sync

import (
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// holds reports whether n's who-has says member m holds entry e.
func holds(t testing.TB, n, m *node, e *log.Entry) bool {
	t.Helper()
	hs, err := n.svc.WhoHas(e.ID())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Peer == m.host.ID() {
			return h.Has
		}
	}
	t.Fatalf("%s's who-has does not list %s", n.name, m.name)
	return false
}

// A line A–B–C: an entry written on A reaches C through B. When A and C
// then meet, their digests are equal and the session ends in one round
// trip; that session must still tell each what the other holds (issue 13:
// who-has said "connected; not yet synced past it" and peers BEHIND=1 for
// as long as the digests stayed equal, until sync --force).
func TestEqualDigestSessionUpdatesWhoHas(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.node(t, "enisa", nodeOpt{}), w.node(t, "cert-lu", nodeOpt{}), w.node(t, "cert-fr", nodeOpt{})
	connect(t, a, c)
	waitFor(t, 10*time.Second, "a and c in sync", func() bool { return converged(a, c) && syncNow(t, a, c).Equal })
	partition(a, c)
	connect(t, a, b)
	connect(t, b, c)
	es := a.post(t, w, 1, log.Flash)
	waitFor(t, 20*time.Second, "the entry on c through b", func() bool { return converged(a, b, c) })
	if holds(t, a, c, es[0]) {
		t.Fatalf("a says c holds the entry before a and c met again")
	}
	heal(t, a, c)
	waitFor(t, 20*time.Second, "a's who-has to say c holds the entry", func() bool { return holds(t, a, c, es[0]) })
	c2 := c.post(t, w, 1, log.Flash)
	waitFor(t, 20*time.Second, "c's entry everywhere", func() bool { return converged(a, b, c) })
	waitFor(t, 20*time.Second, "c's who-has to say a holds c's entry", func() bool { return holds(t, c, a, c2[0]) })
	// peers: what a knows c holds is c's whole frontier (BEHIND 0).
	waitFor(t, 20*time.Second, "a's view of c's frontier to be c's frontier", func() bool {
		f := statsOf(a, c.host.ID()).LastFrontier
		for au, h := range c.store.Frontier() {
			if f[au].Seq != h.Seq {
				return false
			}
		}
		return true
	})
}
