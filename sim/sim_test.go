package sim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Every shipped scenario runs with its fixed seed and keeps every invariant.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if testing.Short() && strings.Contains(f, "satellite") {
				t.Skip("slow link")
			}
			sc, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Layer == LayerRaft {
				t.Skip("Raft layer: TestRaftScenarios runs it in virtual time")
			}
			if sc.Name == "demo" {
				t.Skip("TestDemo runs it, with its proof of convergence")
			}
			if raceEnabled && sc.Nodes > 20 {
				t.Skipf("%d nodes under the race detector would need 20+ GiB; .ci/run runs it without -race: go test ./sim -run 'TestScenarios/%s'", sc.Nodes, filepath.Base(f))
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rep, err := Execute(ctx, sc, f, Options{Out: &out, Dir: t.TempDir()})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !rep.OK {
				t.Fatalf("invariant broken (replay: %s):\n%s", rep.Replay, out.String())
			}
			t.Logf("%s: %d acknowledged entries, %s", sc.Name, rep.Acked, rep.Duration.Round(time.Millisecond))
		})
	}
}

func TestParseRefusals(t *testing.T) {
	for name, text := range map[string]string{
		"unknown action": "[[step]]\ndo = \"explode\"\n",
		"unknown key":    "bogus = 1\n",
		"even voters":    "nodes = 4\nvoters = 2\n",
		"node range":     "nodes = 3\n[[step]]\ndo = \"crash\"\nnodes = [7]\n",
		"one group":      "[[step]]\ndo = \"partition\"\ngroups = [[0]]\n",
		"unknown link":   "[[step]]\ndo = \"link\"\nlink = \"carrier-pigeon\"\n",
		"stray latency":  "[[step]]\ndo = \"link\"\nlink = \"satellite\"\nlatency = \"1s\"\n",
		"loss of 1":      "[[step]]\ndo = \"link\"\nlink = \"custom\"\nloss = 1.0\n",
		"refused kind":   "[[step]]\ndo = \"command\"\nkind = \"escalate-level-2\"\n",
	} {
		if _, err := Parse(text); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}

// Each checker fails on the bug it guards against, injected into real
// state of a one-node network (or into its pure core), and passes on the
// state as it is.
func TestCheckersCatchTheirBugs(t *testing.T) {
	base, err := node.FreeBasePort(1)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := node.Testnet(node.TestnetOptions{Dir: t.TempDir(), Nodes: 1, BasePort: base, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(specs[0].Dir, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := waitUntil(context.Background(), 20*time.Second, func() bool {
		_, ok := n.Store().CurrentKey("all")
		return ok && n.Consensus().IsLeader()
	}); err != nil {
		t.Fatalf("no network key or no leader: %v", err)
	}
	var es []*log.Entry
	for k := 0; k < 3; k++ {
		e, err := n.Post(context.Background(), node.PostRequest{Text: "x", TLP: "green"})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	e := es[0]
	ns := []running{{0, n}}
	fails := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s went unnoticed (got %v, want an error with %q)", what, err, want)
		}
	}
	holds := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: reported broken on a correct state: %v", what, err)
		}
	}

	t.Run(InvConverged, func(t *testing.T) {
		holds("one log", divergence(ns))
		fails("logs that differ", sameDigests([]nodeDigest{{0, log.Digest{1}, 3}, {1, log.Digest{1}, 3}, {2, log.Digest{2}, 2}}), "node2's log (2 entries) differs")
	})
	t.Run(InvNoLoss, func(t *testing.T) {
		holds("no loss", checkNoLoss(ns, []ackedEntry{{id: e.ID()}}, true))
		fails("a lost entry", checkNoLoss(ns, []ackedEntry{{id: e.ID()}, {id: log.Hash{1}}}, true), "lacks")
	})
	t.Run(InvChains, func(t *testing.T) {
		holds("chains", checkChains(ns))
		st := n.Store()
		head, _ := st.Head(n.Identity().ID())
		feed, err := st.Feed(n.Identity().ID(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		holds("one feed", checkFeed(st.Network(), st.Roster(), head, feed))
		broken := append([]*log.Entry{feed[0]}, feed[2:]...) // an entry dropped mid-chain
		fails("a broken chain", checkFeed(st.Network(), st.Roster(), head, broken), "breaks at entry 2")
	})
	t.Run(InvCrisisState, func(t *testing.T) {
		holds("crisis", checkCrisis(context.Background(), ns, 10*time.Second))
		fails("states that differ", sameState([]stateAt{{0, 7, []byte{1}}, {1, 7, []byte{2}}}), "differ")
		fails("states at different indexes", sameState([]stateAt{{0, 7, []byte{1}}, {1, 8, []byte{1}}}), "differ")
	})
	t.Run(InvOneLeader, func(t *testing.T) {
		r := &netLayer{leaders: map[uint64]string{}}
		r.noteLeader(3, "node0")
		r.noteLeader(4, "node1")
		r.noteLeader(4, "node1")
		if r.conflict != "" {
			t.Fatalf("one leader per term reported as two: %s", r.conflict)
		}
		r.noteLeader(4, "node2")
		if !strings.Contains(r.conflict, "term 4") {
			t.Errorf("two leaders in term 4 went unnoticed: %q", r.conflict)
		}
	})
	t.Run(InvCounters, func(t *testing.T) {
		r := &netLayer{e: &engine{}, counters: map[int]counters{}}
		r.noteCounters(0, n, "before crash")
		r.noteCounters(0, n, "after restart")
		if r.regress != "" {
			t.Fatalf("steady counters reported going backwards: %s", r.regress)
		}
		before := readCounters(n)
		for name, c := range map[string]counters{
			"Raft term":     {term: before.term - 1, seq: before.seq, lamport: before.lamport},
			"own feed seq":  {term: before.term, seq: before.seq - 1, lamport: before.lamport},
			"Lamport clock": {term: before.term, seq: before.seq, lamport: before.lamport - 1},
		} {
			if got := c.backwards(before); !strings.Contains(got, name) {
				t.Errorf("%s going backwards went unnoticed: %q", name, got)
			}
		}
		// A member whose own feed forked has it frozen before the fork:
		// its seq falls back by design.
		frozen := counters{term: before.term, seq: before.seq - 1, lamport: before.lamport, forked: true}
		if got := frozen.backwards(before); got != "" {
			t.Errorf("a forked feed frozen before the fork reported as going backwards: %q", got)
		}
		// A revoked member's node sets aside what it wrote past its
		// revocation (found by a campaign: membership.toml, seed
		// 2433137274057584529, node3's own seq 5 then 2).
		setAside := counters{term: before.term, seq: before.seq - 1, lamport: before.lamport, revoked: true}
		if got := setAside.backwards(before); got != "" {
			t.Errorf("a revoked member's feed set aside past its revocation reported as going backwards: %q", got)
		}
		// Its Raft term and Lamport clock are still judged.
		if got := (counters{term: before.term - 1, seq: before.seq, lamport: before.lamport, revoked: true}).backwards(before); !strings.Contains(got, "Raft term") {
			t.Errorf("a revoked member's Raft term going backwards went unnoticed: %q", got)
		}
	})
	t.Run(InvReads, func(t *testing.T) {
		holds("reads", checkReads(ns, []ackedEntry{{id: e.ID(), node: 0}}))
		// The entry is readable by everyone; claim it was sealed to node 1
		// only: node0 reading it is the leak the checker must see.
		fails("a member reading what was sealed to others", checkReads(ns, []ackedEntry{{id: e.ID(), node: 0, readers: []int{1}}}), "sealed to")
	})
	t.Run(InvForks, func(t *testing.T) {
		fails("an undetected fork", checkForks(ns, []crypto.MemberID{n.Identity().ID()}), "does not know")
	})
	t.Run(InvNoForgery, func(t *testing.T) {
		fails("a stored forged entry", checkNoForgery(ns, []log.Hash{e.ID()}), "accepted forged")
		holds("forgery", checkNoForgery(ns, []log.Hash{{2}}))
	})
	t.Run(InvNoFreeze, func(t *testing.T) {
		victim := n.Identity().ID()
		holds("an unfrozen feed", checkNoFreeze(ns, []crypto.MemberID{victim}, nil))
		frozen := log.Frontier{victim: {Seq: 3, Forked: true}}
		fails("a feed frozen by an Ed25519-only forgery", noFreeze(0, frozen, []crypto.MemberID{victim}, nil), "froze the feed")
		holds("a member that really forked", noFreeze(0, frozen, []crypto.MemberID{victim}, []crypto.MemberID{victim}))
	})
	t.Run(InvNoRevoked, func(t *testing.T) {
		// node0 is not revoked: the checker must say so rather than pass.
		fails("a revocation nobody knows of", checkNoRevoked(ns, []crypto.MemberID{n.Identity().ID()}), "does not know")
	})
	t.Run(InvCommitted, func(t *testing.T) {
		holds("states Raft committed", checkShownCommitted(ns))
		fails("a state beyond Raft", shownWithin(7, []shownView{{0, 7, "raft", "open"}, {1, 1 << 62, "checkpoint", "closed"}}), "beyond anything Raft applied")
	})
	t.Run(InvClocks, func(t *testing.T) {
		head, _ := n.Store().Head(n.Identity().ID())
		other := crypto.MemberID{9}
		holds("a clock far below a bomb", checkClocks(ns, []bomb{{author: other, lamport: log.MaxLamport - 1}}))
		holds("the bomb's own author", checkClocks(ns, []bomb{{author: n.Identity().ID(), lamport: head.Lamport}}))
		fails("a clock built on a bomb", checkClocks(ns, []bomb{{author: other, lamport: head.Lamport}}), "dragged")
	})
	t.Run(InvNotShown, func(t *testing.T) {
		holds("an entry not held", checkNotShown(ns, []log.Hash{{3}}))
		fails("an entry shown that must not be", checkNotShown(ns, []log.Hash{e.ID()}), "must not believe")
	})
	t.Run(InvMembership, func(t *testing.T) {
		holds("membership", checkMembership(ns))
		if err := n.Consensus().Raft().AddNonvoter("ghost", "ghost", 0, 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		fails("a Raft server that is no member", checkMembership(ns), "no member")
	})
}

// A failing run names the invariant, the seed and the step, and keeps the
// node logs. The failure is real: logs cut apart just before the end
// cannot converge within a nanosecond.
func TestFailingRunKeepsEvidence(t *testing.T) {
	sc, err := Parse(`name = "doomed"
nodes = 3
voters = 1
seed = 99
converge_within = "1ns"

[[step]]
do = "partition"
groups = [[0], [1, 2]]

[[step]]
do = "post"
nodes = [0, 1]
count = 3
`)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	rep, err := Execute(context.Background(), sc, "doomed.toml", Options{Out: &out, Dir: t.TempDir(), Report: dir})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.OK {
		t.Fatalf("logs cut apart converged within 1ns:\n%s", out.String())
	}
	if !strings.Contains(rep.Failed, InvConverged) || !strings.Contains(rep.Failed, "step 3") || rep.Seed != 99 ||
		rep.Replay != "crisismesh sim run doomed.toml --seed 99" {
		t.Errorf("failure %q, seed %d, replay %q: want the invariant, its step, the seed", rep.Failed, rep.Seed, rep.Replay)
	}
	var logs int
	for _, f := range rep.Files {
		if strings.HasSuffix(f, ".log") {
			b, err := os.ReadFile(f)
			if err != nil || len(b) == 0 {
				t.Errorf("log %s: %v, %d bytes", f, err, len(b))
			}
			logs++
		}
	}
	if logs != 3 {
		t.Errorf("kept %d node logs, want 3: %v", logs, rep.Files)
	}
}

// A run that cannot go on (here: a command through a node that is down)
// says why, at which step, and where the node logs are.
func TestRunErrorKeepsLogs(t *testing.T) {
	sc, err := Parse(`name = "broken"
nodes = 3
voters = 1

[[step]]
do = "crash"
nodes = [2]

[[step]]
do = "command"
nodes = [2]
kind = "open"
title = "x"
level = 1
`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Execute(context.Background(), sc, "broken.toml", Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), "node logs kept in ") {
		t.Fatalf("got %v, want the step and where the logs are", err)
	}
	dir := strings.TrimSuffix(err.Error()[strings.Index(err.Error(), "node logs kept in ")+len("node logs kept in "):], ")")
	defer os.RemoveAll(dir)
	if logs, _ := filepath.Glob(filepath.Join(dir, "node*.log")); len(logs) != 3 {
		t.Errorf("kept %v, want the 3 node logs", logs)
	}
}
