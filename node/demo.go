package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/transport"
)

// DemoOptions tune the demo.
type DemoOptions struct {
	Out  io.Writer
	Dir  string // where the five data directories go; "" for a temporary one
	Keep bool   // leave the nodes running until ctx ends
}

// Demo runs a five-node mesh in this process (real libp2p on 127.0.0.1,
// real Raft, badger in a temporary directory) through a short crisis, cuts
// the network in two, keeps writing on both sides, heals, and prints the
// timeline and the proof of convergence.
func Demo(ctx context.Context, o DemoOptions) error {
	w := o.Out
	start := time.Now()
	// libp2p logs through a process-wide handler; the demo's emulated
	// links make its TCP transport complain about keepalives on every
	// dial. The demo's own output is what a person reads.
	gologshim.SetDefaultHandler(slog.DiscardHandler)
	step := func(format string, args ...any) {
		fmt.Fprintf(w, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
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
	base, err := FreeBasePort(5)
	if err != nil {
		return err
	}
	specs, err := Testnet(TestnetOptions{Dir: dir, Nodes: 5, Voters: 3, BasePort: base, Now: time.Now().UTC()})
	if err != nil {
		return err
	}
	faults := transport.NewFaults(uint64(base), slog.New(slog.DiscardHandler))
	nodes := make([]*Node, len(specs))
	for i, s := range specs {
		if nodes[i], err = Open(s.Dir, Options{Faults: faults}); err != nil {
			return err
		}
		defer nodes[i].Close()
	}
	name := func(i int) string { return fmt.Sprintf("node%d (%s)", i, strings.Join(specs[i].Roles, "+")) }
	step("5 nodes up in %s: %s, %s, %s (voters) and %s, %s", dir, name(0), name(1), name(2), name(3), name(4))
	if err := waitDemo(ctx, 30*time.Second, func() bool {
		for _, n := range nodes {
			if _, ok := n.Store().CurrentKey(networkGroup); !ok {
				return false
			}
		}
		return demoLeader(nodes) != nil
	}); err != nil {
		return fmt.Errorf("demo: the mesh did not come up: %w", err)
	}
	step("network key handed out by node0 (admin); Raft leader: %s", demoLeader(nodes).Identity().Name())

	post := func(i int, kind, tlp, prio, text string) error {
		_, err := nodes[i].Post(ctx, PostRequest{Kind: kind, TLP: tlp, Priority: prio, Text: text})
		if err == nil {
			step("node%d posts %s TLP:%s %s: %q", i, kind, strings.ToUpper(tlp), prio, text)
		}
		return err
	}
	var committed uint64
	command := func(i int, req CommandRequest) error {
		// Issue it once the issuer has applied what came before, as a
		// person would after seeing the last decision.
		if err := waitDemo(ctx, 30*time.Second, func() bool { return nodes[i].Consensus().Local().Index >= committed }); err != nil {
			return err
		}
		defer func() { committed = max(committed, nodes[i].Consensus().Local().Index) }()
		cmd, err := req.ToCommand()
		if err != nil {
			return err
		}
		res, err := nodes[i].Command(ctx, cmd)
		if err != nil {
			return err
		}
		id, _ := crisis.ParseID(res.ID)
		if res.Status == StatusPending {
			step("node%d proposes %s through the log (not the leader): pending", i, req.Kind)
			if err := waitDemo(ctx, 30*time.Second, func() bool { _, ok := nodes[i].Consensus().Outcome(id); return ok }); err != nil {
				return fmt.Errorf("demo: %s not decided: %w", req.Kind, err)
			}
			o, _ := nodes[i].Consensus().Outcome(id)
			if o.Refused != "" {
				return fmt.Errorf("demo: %s refused: %s", req.Kind, o.Refused)
			}
			step("  … committed at term %d index %d", o.Term, o.Index)
			committed = max(committed, o.Index)
		} else if res.Status == StatusRefused {
			return fmt.Errorf("demo: %s refused by rule %s: %s", req.Kind, res.Rule, res.Detail)
		} else {
			step("node%d %s: committed at term %d index %d", i, req.Kind, res.Term, res.Index)
			committed = max(committed, res.Index)
		}
		return nil
	}

	if err := post(2, "incident", "amber", "flash", "Ransomware encrypting hospital systems in two member states"); err != nil {
		return err
	}
	for _, c := range []struct {
		who int
		req CommandRequest
	}{
		{2, CommandRequest{Kind: "open", Title: "Ransomware against hospitals", Level: 1}},
		{2, CommandRequest{Kind: "advise-level-2"}},
		{1, CommandRequest{Kind: "escalate-level-3"}},
		{0, CommandRequest{Kind: "set-ipcr-mode", Mode: "full"}},
		{2, CommandRequest{Kind: "reserve-request", Sector: "health", Services: []string{"incident response", "forensics"}}},
	} {
		if err := command(c.who, c.req); err != nil {
			return err
		}
	}
	cv, _ := nodes[0].Crisis(ctx, false)
	step("crisis state: %s", cv.Summary)

	// Cut the network in two: {node0, node1, node3} | {node2, node4}.
	a, b := []int{0, 1, 3}, []int{2, 4}
	faults.Partition(peerIDs(nodes, a), peerIDs(nodes, b))
	step("PARTITION: {node0, node1, node3} | {node2, node4}")
	for k := 0; k < 3; k++ {
		if err := post(3, "sitrep", "green", "routine", fmt.Sprintf("Commission sitrep %d (majority side)", k+1)); err != nil {
			return err
		}
		if err := post(4, "sitrep", "green", "routine", fmt.Sprintf("ENISA sitrep %d (cut-off side)", k+1)); err != nil {
			return err
		}
	}
	cmd, _ := CommandRequest{Kind: "affected-states", Add: []string{"LU", "BE"}}.ToCommand()
	res, err := nodes[2].Command(ctx, cmd)
	if err != nil {
		return err
	}
	step("node2 (cut off) records affected states LU, BE: %s", res.Status)
	if err := command(1, CommandRequest{Kind: "phase", Phase: "response"}); err != nil {
		return err
	}
	step("digests differ while cut: node0 %s…, node2 %s…", nodes[0].Store().Digest().String()[:12], nodes[2].Store().Digest().String()[:12])

	faults.Heal()
	step("HEAL")
	pid, _ := crisis.ParseID(res.ID)
	if err := waitDemo(ctx, 60*time.Second, func() bool {
		d := nodes[0].Store().Digest()
		for _, n := range nodes[1:] {
			if n.Store().Digest() != d {
				return false
			}
		}
		o, ok := nodes[0].Consensus().Outcome(pid)
		if !ok || o.Refused != "" {
			return ok
		}
		idx := nodes[0].Consensus().Local().Index
		for _, n := range nodes {
			if n.Consensus().Local().Index < idx {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("demo: no convergence after heal: %w", err)
	}
	step("converged")

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
	fmt.Fprintf(w, "All 5 nodes hold the same log (same digest) and the same committed crisis state. Took %.1f s.\n", time.Since(start).Seconds())
	if o.Keep {
		fmt.Fprintf(w, "\nNodes keep running (Ctrl-C to stop). Dashboards:\n")
		for i, s := range specs {
			if u, err := DashboardURL(s.Dir); err == nil {
				fmt.Fprintf(w, "  node%d  %s\n", i, u)
			}
		}
		fmt.Fprintf(w, "Try: crisismesh status --dir %s\n", specs[0].Dir)
		<-ctx.Done()
	}
	return nil
}

func demoLeader(nodes []*Node) *Node {
	for _, n := range nodes {
		if n.Consensus().IsLeader() {
			return n
		}
	}
	return nil
}

func peerIDs(nodes []*Node, idx []int) []peer.ID {
	out := make([]peer.ID, len(idx))
	for i, j := range idx {
		out[i] = nodes[j].Host().ID()
	}
	return out
}

// waitDemo polls cond until it holds, ctx ends or d passes.
func waitDemo(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
