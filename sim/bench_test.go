package sim

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// halvesScenario: nodes split in two halves, backlog entries written on
// each side (by one member there), then the final heal.
func halvesScenario(nodes, backlog int) string {
	var left, right []string
	for i := 0; i < nodes; i++ {
		if i < nodes/2 {
			left = append(left, fmt.Sprint(i))
		} else {
			right = append(right, fmt.Sprint(i))
		}
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
`, nodes, backlog, nodes, min(5, nodes-(1-nodes%2)), strings.Join(left, ", "), strings.Join(right, ", "), left[0], right[0], backlog)
}

// BenchmarkConvergence measures, after a partition into halves with a
// backlog written on each side, how long the final heal takes to give
// every node the same log, and the bytes the sync services sent meanwhile.
// Run with -benchtime=1x: one operation is a whole simulation.
func BenchmarkConvergence(b *testing.B) {
	for _, c := range []struct{ nodes, backlog int }{
		{5, 10}, {5, 100}, {5, 1000}, {10, 100}, {20, 100}, {50, 100},
	} {
		b.Run(fmt.Sprintf("nodes=%d/backlog=%d", c.nodes, c.backlog), func(b *testing.B) {
			sc, err := Parse(halvesScenario(c.nodes, c.backlog))
			if err != nil {
				b.Fatal(err)
			}
			var conv time.Duration
			var bytes uint64
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
			}
			b.ReportMetric(float64(conv.Milliseconds())/float64(b.N), "converge-ms")
			b.ReportMetric(float64(bytes)/float64(b.N), "sync-bytes")
			// What had to cross: each side's backlog to the other half.
			b.ReportMetric(float64(bytes)/float64(b.N)/float64(2*c.backlog*(c.nodes/2)), "bytes/entry-delivered")
		})
	}
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
