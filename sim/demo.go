package sim

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// demoScenario is the demo's schedule: a narrated scenario of the network
// layer (scenarios/demo.toml, which `crisismesh sim run` plays as well).
//
//go:embed scenarios/demo.toml
var demoScenario string

// demoFile names the demo's scenario in its replay line.
const demoFile = "sim/scenarios/demo.toml"

// DemoOptions tune the demo.
type DemoOptions struct {
	Out  io.Writer
	Dir  string // where the five data directories go; "" for a temporary one
	Keep bool   // leave the nodes running until ctx ends
}

// Demo plays the demo scenario on five real nodes in this process (real
// libp2p on 127.0.0.1, real Raft, badger in a temporary directory): a
// short crisis, the network cut in two while both sides keep writing, a
// heal. The engine checks every invariant as for any scenario; then Demo
// prints the timeline and the proof of convergence (the same log digest
// and the same committed crisis state on every node).
func Demo(ctx context.Context, o DemoOptions) error {
	began := time.Now()
	sc, err := Parse(demoScenario)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	w := o.Out
	if w == nil {
		w = io.Discard
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "crisismesh-demo-")
		if err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(d)
		}
		dir = d
	}
	ro := Options{Out: w, Dir: dir}
	e := newEngine(sc, demoFile, ro)
	hooks := &netHooks{
		up: func(r *netLayer) { demoCast(r, dir) },
		end: func(ctx context.Context, r *netLayer, rep *Report) error {
			if !rep.OK {
				return fmt.Errorf("demo: %s", rep.Failed)
			}
			return demoProof(ctx, w, r, began, o.Keep)
		},
	}
	if _, err := runNetwork(ctx, e, ro, hooks); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// demoCast says who is who, once the network is up.
func demoCast(r *netLayer, dir string) {
	var voters, others []string
	for i, s := range r.specs {
		name := fmt.Sprintf("node%d (%s)", i, strings.Join(s.Roles, "+"))
		if i < r.e.sc.Voters {
			voters = append(voters, name)
		} else {
			others = append(others, name)
		}
	}
	r.e.logf("%d nodes up in %s: %s (voters) and %s", len(r.specs), dir, strings.Join(voters, ", "), strings.Join(others, ", "))
	leader := "none yet"
	if l := r.leader(); l >= 0 {
		leader = r.specs[l].Name
	}
	r.e.logf("network key handed out by node0 (admin); Raft leader: %s", leader)
}

// demoProof prints the timeline as node0 reads it and the proof of
// convergence; with keep, it leaves the nodes running until ctx ends.
func demoProof(ctx context.Context, w io.Writer, r *netLayer, began time.Time, keep bool) error {
	nodes := r.snapshot()
	fmt.Fprintln(w, "\nTimeline (display order: Lamport clock, author, seq), as node0 reads it:")
	views, err := nodes[0].Entries("", 0)
	if err != nil {
		return err
	}
	for _, e := range views {
		text := e.Text
		if !e.Readable {
			text = "[sealed]"
		}
		fmt.Fprintf(w, "  %4d  %-6s %-10s TLP:%-6s %-9s %s\n", e.Lamport, e.Author, e.Kind, strings.ToUpper(e.TLP), e.Priority, text)
	}
	// A checkpoint the leader writes after the last step may still be on
	// its way: let every node hold the same log and state first.
	_ = waitUntil(ctx, 30*time.Second, func() bool {
		d0, s0 := nodes[0].Store().Digest(), nodes[0].Consensus().Local()
		b0, _ := s0.State.MarshalBinary()
		for _, n := range nodes[1:] {
			b, _ := n.Consensus().Local().State.MarshalBinary()
			if n.Store().Digest() != d0 || string(b) != string(b0) {
				return false
			}
		}
		return true
	})
	fmt.Fprintln(w, "\nProof of convergence:")
	var digests, states []string
	for i, n := range nodes {
		v := n.Consensus().Local()
		st, _ := v.State.MarshalBinary()
		digests = append(digests, n.Store().Digest().String())
		states = append(states, string(st))
		fmt.Fprintf(w, "  node%d  log digest %s…  %d entries  crisis at index %d: level %d, IPCR %s, phase %s, affected %s\n",
			i, n.Store().Digest().String()[:16], n.Status(ctx).Entries, v.Index, v.State.Level, v.State.Mode, v.State.Phase, strings.Join(v.State.Affected, ","))
	}
	for i := range digests {
		if digests[i] != digests[0] || states[i] != states[0] {
			return errors.New("demo: nodes disagree after heal")
		}
	}
	fmt.Fprintf(w, "All %d nodes hold the same log (same digest) and the same committed crisis state. Took %.1f s.\n", len(nodes), time.Since(began).Seconds())
	if keep {
		fmt.Fprintf(w, "\nNodes keep running (Ctrl-C to stop). Dashboards:\n")
		for i, n := range nodes {
			if lc, err := n.LoginCode(); err == nil {
				fmt.Fprintf(w, "  node%d  %s  one-time code %s (10 min; crisismesh dashboard --dir %s for another)\n", i, lc.URL, lc.Code, r.specs[i].Dir)
			}
		}
		fmt.Fprintf(w, "Try: crisismesh status --dir %s\n", r.specs[0].Dir)
		<-ctx.Done()
	}
	return nil
}
