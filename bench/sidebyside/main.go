// Command sidebyside measures crisismesh and etcd v3.6.16 side by side on
// one machine: each as a three-node cluster of separate processes on
// 127.0.0.1, driven by the same Go load generator with 1 KiB payloads.
//
// crisismesh: POST /api/v1/entries (TLP:AMBER sitreps) to node0, an entry
// counted when all three nodes hold it; crisis commands through the API
// on the Raft leader. etcd: Put to the leader, counted when acknowledged
// (a quorum holds it). It prints one table of ratios. See README.md.
//
// It is a benchmark, not a test: it asserts nothing, and every loop is
// bounded in count and time. It talks to 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A system is one cluster under test.
type system interface {
	// put writes one 1 KiB payload and returns once it is acknowledged;
	// its token says what to wait for in settle.
	put(ctx context.Context, i int) (token, error)
	// settle returns once every node holds what the tokens name.
	settle(ctx context.Context, toks []token) error
	// command commits one state change (nil for etcd: its put is the row).
	command(ctx context.Context, i int) error
	// cpu is the CPU time the cluster's processes used so far.
	cpu() time.Duration
	close() error
}

// A token names an acknowledged write: for crisismesh the entry ID and its
// seq in node0's feed; etcd needs none.
type token struct {
	id  string
	seq uint64
}

func main() {
	var (
		work     = flag.String("work", "", "work directory for binaries, data and logs (default: a new temp dir)")
		repo     = flag.String("repo", "../..", "the crisismesh repository (built with go build ./cmd/crisismesh)")
		only     = flag.String("only", "", "run one system only: crisismesh or etcd")
		single   = flag.Int("single", 1000, "writes for the one-writer latency row")
		conc     = flag.String("writers", "16,64", "concurrent writer counts")
		perW     = flag.Int("per-writer", 125, "writes per writer in the concurrent rows")
		cmds     = flag.Int("commands", 300, "crisis commands for the command row")
		base     = flag.Int("base-port", 24100, "crisismesh testnet base port (libp2p base+i, API base+500+i)")
		etcdPort = flag.Int("etcd-port", 23790, "etcd client ports port+i, peer ports port+10+i")
		pprofAt  = flag.String("pprof", "", "host:port of node0's pprof, node i on port+i (crisismesh run --pprof); empty: off")
		logLevel = flag.String("log-level", "", "crisismesh nodes' log_level (debug, info, …); empty: as testnet writes it")
		hold     = flag.Duration("hold", 0, "keep the 16-writer load of crisismesh running this long (for profiling)")
	)
	flag.Parse()
	if err := run(*work, *repo, *only, *single, *conc, *perW, *cmds, *base, *etcdPort, *pprofAt, *logLevel, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

// results of one system.
type results struct {
	single  stats
	rates   map[int]float64 // writers → acknowledged and settled writes/s
	cpus    map[int]time.Duration
	command stats
}

func run(work, repo, only string, single int, conc string, perW, cmds, base, etcdPort int, pprofAt, logLevel string, hold time.Duration) error {
	var writers []int
	for _, s := range strings.Split(conc, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || w < 1 {
			return fmt.Errorf("-writers %q: want counts like 16,64", conc)
		}
		writers = append(writers, w)
	}
	if work == "" {
		d, err := os.MkdirTemp("", "sidebyside-")
		if err != nil {
			return err
		}
		work = d
	}
	bin := filepath.Join(work, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	fmt.Printf("work directory %s\n", work)
	out := map[string]results{}
	if only == "" || only == "etcd" {
		fmt.Println("building etcd v3.6.16 (go build go.etcd.io/etcd/server/v3)…")
		if err := goBuild(ctx, ".", filepath.Join(bin, "etcd"), "go.etcd.io/etcd/server/v3"); err != nil {
			return err
		}
		e, err := startEtcd(ctx, filepath.Join(bin, "etcd"), filepath.Join(work, "etcd"), etcdPort)
		if err != nil {
			return err
		}
		r, err := measure(ctx, "etcd", e, single, writers, perW, 0, 0)
		err = errors.Join(err, e.close())
		if err != nil {
			return err
		}
		out["etcd"] = r
	}
	if only == "" || only == "crisismesh" {
		fmt.Println("building crisismesh (go build ./cmd/crisismesh)…")
		if err := goBuild(ctx, repo, filepath.Join(bin, "crisismesh"), "./cmd/crisismesh"); err != nil {
			return err
		}
		c, err := startCrisismesh(ctx, filepath.Join(bin, "crisismesh"), filepath.Join(work, "crisismesh"), base, pprofAt, logLevel)
		if err != nil {
			return err
		}
		r, err := measure(ctx, "crisismesh", c, single, writers, perW, cmds, hold)
		c.syncCounters(ctx, os.Stdout)
		err = errors.Join(err, c.close())
		if err != nil {
			return err
		}
		out["crisismesh"] = r
	}
	printTable(os.Stdout, out, writers)
	return nil
}

func goBuild(ctx context.Context, dir, out, pkg string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", abs, pkg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return nil
}

// measure runs the rows on one system: a warm-up, one writer, each
// concurrent writer count, then the crisis commands (cmds > 0).
func measure(ctx context.Context, name string, s system, single int, writers []int, perW, cmds int, hold time.Duration) (results, error) {
	r := results{rates: map[int]float64{}, cpus: map[int]time.Duration{}}
	next := 0
	if _, err := load(ctx, s, 4, 50, &next); err != nil {
		return r, fmt.Errorf("%s warm-up: %w", name, err)
	}
	st, err := load(ctx, s, 1, single, &next)
	if err != nil {
		return r, fmt.Errorf("%s one writer: %w", name, err)
	}
	r.single = st
	fmt.Printf("%-10s 1 writer:   %s\n", name, st)
	if hold > 0 {
		fmt.Printf("%-10s holding the 16-writer load for %s (profile now)…\n", name, hold)
		end := time.Now().Add(hold)
		for time.Now().Before(end) {
			if _, err := load(ctx, s, 16, 16*perW, &next); err != nil {
				return r, fmt.Errorf("%s hold: %w", name, err)
			}
		}
	}
	for _, w := range writers {
		st, err := load(ctx, s, w, w*perW, &next)
		if err != nil {
			return r, fmt.Errorf("%s %d writers: %w", name, w, err)
		}
		r.rates[w] = st.rate
		r.cpus[w] = st.cpu
		fmt.Printf("%-10s %d writers: %s\n", name, w, st)
	}
	if cmds > 0 {
		var lat []time.Duration
		for i := 0; i < cmds; i++ {
			t0 := time.Now()
			if err := s.command(ctx, i); err != nil {
				return r, fmt.Errorf("%s command %d: %w", name, i, err)
			}
			lat = append(lat, time.Since(t0))
		}
		r.command = summarize(lat, 0, 0)
		fmt.Printf("%-10s commands:   %s\n", name, r.command)
	}
	return r, nil
}

// stats of one row: latency of each acknowledged write, and the rate of
// writes that every node holds (from the first write to settled).
type stats struct {
	n             int
	p50, p90, p99 time.Duration
	rate          float64
	cpu           time.Duration // CPU time of the cluster's processes per write
}

func (s stats) String() string {
	return fmt.Sprintf("n=%d p50 %s p90 %s p99 %s, %.0f/s held everywhere, %s CPU per write (3 processes)", s.n, ms(s.p50), ms(s.p90), ms(s.p99), s.rate, ms(s.cpu))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func summarize(lat []time.Duration, n int, total time.Duration) stats {
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	s := stats{n: len(lat), p50: q(0.5), p90: q(0.9), p99: q(0.99)}
	if total > 0 {
		s.rate = float64(n) / total.Seconds()
	}
	return s
}

// load runs n writes from w concurrent writers, then waits until every
// node holds them.
func load(ctx context.Context, s system, w, n int, next *int) (stats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cpu0 := s.cpu()
	jobs := make(chan int)
	var (
		mu   sync.Mutex
		lat  []time.Duration
		toks []token
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				tok, err := s.put(ctx, i)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					lat, toks = append(lat, d), append(toks, tok)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		jobs <- *next + i
	}
	close(jobs)
	wg.Wait()
	*next += n
	if len(errs) > 0 {
		return stats{}, fmt.Errorf("%d of %d writes failed, first: %w", len(errs), n, errs[0])
	}
	if err := s.settle(ctx, toks); err != nil {
		return stats{}, err
	}
	st := summarize(lat, n, time.Since(start))
	st.cpu = (s.cpu() - cpu0) / time.Duration(n)
	return st, nil
}

func printTable(w io.Writer, out map[string]results, writers []int) {
	e, haveE := out["etcd"]
	c, haveC := out["crisismesh"]
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | etcd 3.6.16 | crisismesh | ratio (crisismesh ÷ etcd) |")
	fmt.Fprintln(w, "|---|---|---|---|")
	cell := func(ok bool, s string) string {
		if !ok {
			return "—"
		}
		return s
	}
	ratio := func(a, b float64) string {
		if !haveE || !haveC || b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(w, "| one writer, p50 (etcd: quorum put; crisismesh: post durable and signed on node0) | %s | %s | %s |\n",
		cell(haveE, ms(e.single.p50)), cell(haveC, ms(c.single.p50)), ratio(float64(c.single.p50), float64(e.single.p50)))
	fmt.Fprintf(w, "| one writer, p99 | %s | %s | %s |\n",
		cell(haveE, ms(e.single.p99)), cell(haveC, ms(c.single.p99)), ratio(float64(c.single.p99), float64(e.single.p99)))
	for _, n := range writers {
		fmt.Fprintf(w, "| %d writers, writes/s held by all 3 (etcd: by a quorum) | %s | %s | %s |\n", n,
			cell(haveE, fmt.Sprintf("%.0f", e.rates[n])), cell(haveC, fmt.Sprintf("%.0f", c.rates[n])), ratio(c.rates[n], e.rates[n]))
	}
	for _, n := range writers {
		fmt.Fprintf(w, "| %d writers, CPU time of the 3 processes per write | %s | %s | %s |\n", n,
			cell(haveE, ms(e.cpus[n])), cell(haveC, ms(c.cpus[n])), ratio(float64(c.cpus[n]), float64(e.cpus[n])))
	}
	fmt.Fprintf(w, "| crisis command on the leader, p50 (signing included) vs etcd put p50 | %s | %s | %s |\n",
		cell(haveE, ms(e.single.p50)), cell(haveC, ms(c.command.p50)), ratio(float64(c.command.p50), float64(e.single.p50)))
}
