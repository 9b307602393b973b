package sync

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// BenchmarkPartitionHeal: after a partition in which each side appended
// n × 1 KiB entries, the time to converge, the protocol bytes moved per
// byte of missing entries, and the round trips before the first entry
// flows. Run with -benchtime=1x.
func BenchmarkPartitionHeal(b *testing.B) {
	const n = 10000
	w := newWorld(b)
	text := strings.Repeat("x", 1024)
	for b.Loop() {
		b.StopTimer()
		a := w.node(b, "enisa", nodeOpt{noStart: true})
		c := w.node(b, "cert-lu", nodeOpt{noStart: true})
		missing := 0
		for _, nd := range []*node{a, c} {
			for i := 0; i < n/100; i++ {
				drafts := make([]log.Draft, 100)
				for j := range drafts {
					drafts[j] = log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: text}, Key: w.key}
				}
				es, err := nd.store.Append(context.Background(), drafts...)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range es {
					missing += e.Size()
				}
			}
		}
		// Only c answers; a initiates the one session measured (a's own
		// loops are not started, so nothing else runs).
		c.svc.Start()
		connect(b, a, c)
		b.StartTimer()
		start := time.Now()
		rep, err := a.svc.initiate(context.Background(), c.host.ID(), false)
		if err != nil {
			b.Fatal(err)
		}
		// The responder may still be storing the last batch it received.
		waitFor(b, time.Minute, "convergence", func() bool { return converged(a, c) })
		took := time.Since(start)
		b.StopTimer()
		moved := rep.BytesSent + rep.BytesRecv
		b.ReportMetric(took.Seconds(), "s/converge")
		b.ReportMetric(float64(moved)/float64(missing), "wire/missing")
		b.ReportMetric(float64(rep.RoundTripsTo), "RTTs-before-entries")
		b.ReportMetric(float64(2*n)/took.Seconds(), "entries/s")
		b.Logf("%d entries each side; %d bytes missing, %d protocol bytes moved in %s", n, missing, moved, took)
		c.svc.Close()
		b.StartTimer()
	}
}

// BenchmarkConvergedRound: bytes and time of one anti-entropy round
// between two converged nodes.
func BenchmarkConvergedRound(b *testing.B) {
	w := newWorld(b)
	a := w.node(b, "enisa", nodeOpt{})
	c := w.node(b, "cert-lu", nodeOpt{})
	a.post(b, w, 10, log.Routine)
	connect(b, a, c)
	waitFor(b, 20*time.Second, "convergence", func() bool { return converged(a, c) })
	var bytes int64
	rounds := 0
	for b.Loop() {
		rep, err := a.svc.SyncWith(context.Background(), c.host.ID())
		if err != nil {
			continue // a push or kicked session may be running
		}
		if !rep.Equal {
			b.Fatal(fmt.Errorf("not equal: %+v", rep))
		}
		bytes += rep.BytesSent + rep.BytesRecv
		rounds++
	}
	if rounds > 0 {
		b.ReportMetric(float64(bytes)/float64(rounds), "B/round")
	}
}
