package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// runRaftInBubble runs a Raft-layer scenario inside a synctest bubble and
// returns its report, its output and the real time it took.
func runRaftInBubble(t *testing.T, sc *Scenario, file string, wrap func(*raftLayer, Target) Target) (*Report, string, time.Duration) {
	t.Helper()
	var out bytes.Buffer
	var rep *Report
	var err error
	began := time.Now()
	synctest.Test(t, func(t *testing.T) {
		// Dir "": a failed check's visualisation stays in the temporary
		// directory for a person to open.
		o := Options{Out: &out}
		rep, err = runRaft(context.Background(), newEngine(sc, file, o), o, wrap)
	})
	took := time.Since(began)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return rep, out.String(), took
}

// Every shipped scenario of the Raft layer runs in virtual time with its
// fixed seed and keeps every invariant.
func TestRaftScenarios(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if sc.Layer != LayerRaft {
			continue
		}
		ran++
		t.Run(filepath.Base(f), func(t *testing.T) {
			rep, out, took := runRaftInBubble(t, sc, f, nil)
			if !rep.OK {
				t.Fatalf("invariant broken (replay: %s):\n%s", rep.Replay, out)
			}
			if !slices.ContainsFunc(rep.Checks, func(c Check) bool { return c.Name == InvLinearizable }) {
				t.Errorf("no linearizability check ran (replay: %s):\n%s", rep.Replay, out)
			}
			// The timeline the plots are drawn from: samples, and the
			// faults (every shipped Raft scenario cuts links).
			if tl := rep.Timeline; tl == nil || len(tl.Samples) < 10 || len(tl.Faults) == 0 || len(tl.Nodes) != sc.Nodes {
				t.Errorf("timeline: %+v", tl)
			}
			t.Logf("%s: %s virtual, %s real; %s", sc.Name, rep.Duration.Round(time.Millisecond), took.Round(time.Millisecond), historyLine(out))
		})
	}
	if ran < 4 {
		t.Errorf("%d scenarios of the raft layer, want at least 4", ran)
	}
}

// historyLine returns the run's last line about its history, for the test
// log.
func historyLine(out string) string {
	line := "no history"
	for _, l := range strings.Split(out, "\n") {
		if _, after, ok := strings.Cut(l, "history:"); ok {
			line = "history:" + after
		}
	}
	return line
}

// staleReads serves reads from the local state of whichever node is
// asked, leader or not: an isolated old leader answers from its stale view.
type staleReads struct {
	Target
	r *raftLayer
}

func (s staleReads) Read(ctx context.Context, i int) ([]string, error) {
	e := s.r.engine(i)
	if e == nil {
		return nil, errors.New("down")
	}
	return slices.Clone(e.Local().State.Affected), nil
}

const staleScenario = `
name = "stale-reads"
layer = "raft"
nodes = 5
voters = 3
seed = 21

[[step]]
do = "command"
nodes = [0]
kind = "open"
title = "t"
level = 1

[[step]]
do = "workload"
clients = 4

[[step]]
do = "wait"
for = "2s"

[[step]]
do = "isolate"
nodes = [-1]

[[step]]
do = "wait"
for = "6s"

[[step]]
do = "heal"
`

// Reads served from a possibly stale local state (an isolated old leader's)
// make the history non-linearizable, and the check says so, with the
// visualisation.
func TestRaftStaleReadsFailLinearizability(t *testing.T) {
	sc, err := Parse(staleScenario)
	if err != nil {
		t.Fatal(err)
	}
	rep, out, _ := runRaftInBubble(t, sc, "stale-reads.toml", func(r *raftLayer, t Target) Target { return staleReads{t, r} })
	var lin *Check
	for i, c := range rep.Checks {
		if c.Name == InvLinearizable {
			lin = &rep.Checks[i]
		}
	}
	if lin == nil || lin.OK || rep.OK {
		t.Fatalf("stale reads went unnoticed (replay: %s):\n%s", rep.Replay, out)
	}
	_, path, ok := strings.Cut(lin.Detail, "see ")
	if !ok {
		t.Fatalf("the detail names no visualisation: %s", lin.Detail)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("visualisation: %v", err)
	}
	os.Remove(path)
	// The other invariants still hold: only the reads were wrong.
	for _, c := range rep.Checks {
		if c.Name != InvLinearizable && !c.OK {
			t.Errorf("%s failed: %s", c.Name, c.Detail)
		}
	}
}

// The checkers fail on the bugs they guard against, injected into their
// inputs.
func TestRaftCheckersCatchInjectedBugs(t *testing.T) {
	ok := []leaderObs{{1, "node0"}, {2, "node1"}, {2, "node1"}, {4, "node0"}}
	if err := checkOneLeader(ok); err != nil {
		t.Errorf("one leader per term reported as a conflict: %v", err)
	}
	two := append(slices.Clone(ok), leaderObs{4, "node2"})
	if err := checkOneLeader(two); err == nil || !strings.Contains(err.Error(), "term 4") {
		t.Errorf("two leaders in term 4: got %v", err)
	}

	a, b := []byte("state a"), []byte("state b")
	same := []memberView{{"node0", 7, "raft", a}, {"node1", 7, "raft", a}, {"node2", 7, "raft", a}}
	if err := checkSameState(same, true); err != nil {
		t.Errorf("equal states reported: %v", err)
	}
	differ := []memberView{{"node0", 7, "raft", a}, {"node1", 7, "raft", b}}
	if err := checkSameState(differ, false); err == nil || !strings.Contains(err.Error(), "index 7") {
		t.Errorf("different states at one index: got %v", err)
	}
	behind := []memberView{{"node0", 7, "raft", a}, {"node1", 5, "raft", b}}
	if err := checkSameState(behind, false); err != nil {
		t.Errorf("a member behind, mid-run: %v", err)
	}
	if err := checkSameState(behind, true); err == nil {
		t.Error("a member behind at the end went unnoticed")
	}
	// A checkpoint is not the member's own state machine: not compared.
	cp := []memberView{{"node0", 7, "raft", a}, {"node1", 7, "checkpoint", b}}
	if err := checkSameState(cp, false); err != nil {
		t.Errorf("a checkpoint view compared: %v", err)
	}
}
