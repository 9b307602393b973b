package matrix

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/crisismesh/crisismesh/replication/log"
)

// benchEnv is env for a benchmark (newEnv takes a *testing.T).
func benchEnv(b *testing.B) *env {
	b.Helper()
	return newEnvTB(b, false)
}

// watchRoom long-polls alice's sync and reports when each entry ID
// arrives in the room.
func watchRoom(ctx context.Context, c *mautrix.Client, arrived func(entry string, at time.Time)) {
	since := ""
	for ctx.Err() == nil {
		resp, err := c.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 10000, Since: since, FilterID: `{"room":{"timeline":{"limit":100}}}`})
		if err != nil {
			continue
		}
		now := time.Now()
		for _, r := range resp.Rooms.Join {
			for _, ev := range r.Timeline.Events {
				if ev.Type != event.EventMessage {
					continue
				}
				if ent, ok := ev.Content.Raw[KeyEntry].(string); ok && since != "" {
					arrived(ent, now)
				}
			}
		}
		since = resp.NextBatch
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// Delay from a post in the log to the message in the room (as a member's
// client sees it) and from a message in the room to the entry in the
// log, one at a time; then the catch-up of 1,000 entries written while
// the homeserver was down.
func BenchmarkBridge(b *testing.B) {
	e := benchEnv(b)
	n := newFakeNode()
	cfg := e.config()
	cfg.Poll = Duration{} // the default (250ms), as an operator runs it
	br := e.start(cfg, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]time.Time{}
	go watchRoom(ctx, e.alice, func(ent string, at time.Time) {
		mu.Lock()
		seen[ent] = at
		mu.Unlock()
	})
	const rounds = 100
	wait := func(what string, cond func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for range b.N {
		var toRoom, toMesh []time.Duration
		for i := range rounds {
			start := time.Now()
			en := n.post("cert-fr", log.TLPGreen, fmt.Sprintf("round %d", i))
			wait("the entry in the room", func() bool { mu.Lock(); defer mu.Unlock(); _, ok := seen[en.ID]; return ok })
			mu.Lock()
			toRoom = append(toRoom, seen[en.ID].Sub(start))
			mu.Unlock()
			before := len(n.bridged())
			start = time.Now()
			e.say(e.alice, fmt.Sprintf("reply %d", i))
			wait("the reply in the log", func() bool { return len(n.bridged()) > before })
			toMesh = append(toMesh, time.Since(start))
		}
		b.ReportMetric(float64(quantile(toRoom, 0.5).Microseconds())/1000, "ms-to-room-p50")
		b.ReportMetric(float64(quantile(toRoom, 0.99).Microseconds())/1000, "ms-to-room-p99")
		b.ReportMetric(float64(quantile(toMesh, 0.5).Microseconds())/1000, "ms-to-mesh-p50")
		b.ReportMetric(float64(quantile(toMesh, 0.99).Microseconds())/1000, "ms-to-mesh-p99")

		// Catch-up: 1,000 entries written while the homeserver is down.
		e.hs.Stop()
		sent := br.Status().Sent
		for i := range 1000 {
			n.post("cert-fr", log.TLPGreen, fmt.Sprintf("backlog %d", i))
		}
		if err := e.hs.Start(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		deadline := time.Now().Add(10 * time.Minute)
		for br.Status().Sent < sent+1000 {
			if time.Now().After(deadline) {
				b.Fatalf("catch-up: %d of 1000 after 10 minutes", br.Status().Sent-sent)
			}
			time.Sleep(10 * time.Millisecond)
		}
		el := time.Since(start)
		b.ReportMetric(el.Seconds(), "s-catchup-1000")
		b.ReportMetric(1000/el.Seconds(), "entries/s-catchup")
	}
}
