package sim

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/sync"
)

// halvesScenario: nodes split in two halves, backlog entries written on
// each side (by one member there), then the final heal. With settled,
// each half first holds its own backlog everywhere (converge within the
// halves), so that the heal moves only what crosses the cut.
func halvesScenario(nodes, backlog int, settled bool) string {
	var left, right []string
	for i := 0; i < nodes; i++ {
		if i < nodes/2 {
			left = append(left, fmt.Sprint(i))
		} else {
			right = append(right, fmt.Sprint(i))
		}
	}
	var settle string
	if settled {
		settle = fmt.Sprintf(`
[[step]]
do = "converge"
groups = [[%s], [%s]]
`, strings.Join(left, ", "), strings.Join(right, ", "))
	}
	return fmt.Sprintf(`name = "halves-%d-%d"
nodes = %d
voters = %d
seed = 7
converge_within = "300s"

[[step]]
do = "partition"
groups = [[%s], [%s]]

[[step]]
do = "post"
nodes = [%s, %s]
count = %d
%s`, nodes, backlog, nodes, min(5, nodes-(1-nodes%2)), strings.Join(left, ", "), strings.Join(right, ", "), left[0], right[0], backlog, settle)
}

// BenchmarkConvergence measures, after a partition into halves with a
// backlog written on each side, how long the final heal takes to give
// every node the same log, and the bytes the sync services sent meanwhile.
// Run with -benchtime=1x: one operation is a whole simulation. The
// settled cases heal only once each half holds its own backlog: then
// the bytes are those of the heal alone; in the others the halves are
// still spreading their backlog when the heal comes, and that traffic
// counts too.
func BenchmarkConvergence(b *testing.B) {
	for _, c := range []struct {
		nodes, backlog int
		settled        bool
	}{
		{5, 10, false}, {5, 100, false}, {5, 1000, false}, {10, 100, false}, {20, 100, false}, {50, 100, false},
		{5, 100, true}, {20, 100, true}, {50, 100, true},
	} {
		name := fmt.Sprintf("nodes=%d/backlog=%d", c.nodes, c.backlog)
		if c.settled {
			name += "/settled"
		}
		b.Run(name, func(b *testing.B) {
			sc, err := Parse(halvesScenario(c.nodes, c.backlog, c.settled))
			if err != nil {
				b.Fatal(err)
			}
			var conv time.Duration
			var bytes uint64
			var t sync.Traffic
			for b.Loop() {
				rep, err := Execute(context.Background(), sc, "bench", Options{Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK || rep.ConvergedIn == 0 {
					b.Fatalf("run failed: %s", rep.Failed)
				}
				conv += rep.ConvergedIn
				bytes += rep.BytesToConverge
				t = t.Add(*rep.Traffic)
			}
			b.ReportMetric(float64(conv.Milliseconds())/float64(b.N), "converge-ms")
			b.ReportMetric(float64(bytes)/float64(b.N), "sync-bytes")
			// What had to cross: each side's backlog to the other half.
			b.ReportMetric(float64(bytes)/float64(b.N)/float64(2*c.backlog*(c.nodes/2)), "bytes/entry-delivered")
			reportTraffic(b, t)
		})
	}
}

// reportTraffic reports where the bytes went (per operation) and how
// many entries arrived that the receiver already held, by path, and logs
// the whole breakdown.
func reportTraffic(b *testing.B, t sync.Traffic) {
	n := float64(b.N)
	for _, p := range []struct {
		name string
		t    sync.PathTraffic
	}{
		{"started", t.SessionsStarted}, {"served", t.SessionsServed}, {"push", t.Pushes}, {"offer", t.Offers},
	} {
		b.ReportMetric(float64(p.t.BytesSent)/n, p.name+"-bytes")
		b.ReportMetric(float64(p.t.Duplicates)/n, p.name+"-dups")
		b.Logf("%-8s sent %11d B %6d entries; received %6d new, %6d duplicate, %5d refused",
			p.name, p.t.BytesSent/int64(b.N), p.t.EntriesSent/int64(b.N), p.t.EntriesRecv/int64(b.N), p.t.Duplicates/int64(b.N), p.t.Refused/int64(b.N))
	}
	b.Logf("offer answers %d B", t.OfferAnswers/int64(b.N))
}

// BenchmarkSchedules measures how many schedules per minute the network
// layer runs: 5 nodes, a partition with writes on both sides, a check, a
// heal, convergence and every final check.
func BenchmarkSchedules(b *testing.B) {
	sc, err := Load("scenarios/halves.toml")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		rep, err := Execute(context.Background(), sc, "scenarios/halves.toml", Options{Dir: b.TempDir()})
		if err != nil || !rep.OK {
			b.Fatalf("%v %v", err, rep)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Minutes(), "schedules/min")
}
