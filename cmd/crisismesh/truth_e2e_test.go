package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Issue 13, with the built binary on a running 4-node testnet (node0
// presidency, node1 cyclone, node2 csirt, node3 commission): a command
// reports its real outcome (exit 0 committed, 1 refused naming the rule, 3
// still pending after --wait); a command right after a pending open on a
// node that is not the leader lands on that open's crisis; IDs printed in
// text can be typed back; the history and the lessons learned are shown.
func TestCrisisCommandsTellTheTruth(t *testing.T) {
	e := newE2E(t, "--nodes", "4", "--voters", "3")
	for i := range e.procs {
		e.start(i)
	}
	leader := -1
	e.wait(60*time.Second, "a leader", func() bool {
		for i := range e.procs {
			if s, err := e.status(i); err == nil {
				if c, _ := s["crisis"].(map[string]any); c["leader"] == true {
					leader = i
					return true
				}
			}
		}
		return false
	})
	// The actor: node2 (csirt), or node1 (cyclone) if node2 leads; its
	// follow-up raises the level.
	actor, follow := 2, []string{"advise"}
	if leader == 2 {
		actor, follow = 1, []string{"escalate", "--level", "3"}
	}
	e.wait(60*time.Second, "the network key on every node", func() bool {
		for i := range e.procs {
			if _, err := e.run("post", "--dir", e.nodeDir(i), "--kind", "sitrep", fmt.Sprintf("node%d ready", i)); err != nil {
				return false
			}
		}
		return true
	})
	crisis := func(i int, args ...string) (string, int) {
		t.Helper()
		out, err := e.run(append([]string{"crisis", "--dir", e.nodeDir(i)}, args...)...)
		return out, exitCode(err)
	}

	// Open without waiting: still pending (exit 3) on a node that does
	// not lead; the next command right away lands on that crisis.
	out, code := crisis(actor, "open", "--title", "truth", "--wait", "0")
	if code != 3 && !(code == 0 && strings.Contains(out, "committed")) {
		t.Fatalf("open --wait 0 on node%d (leader node%d): exit %d, want 3 (pending)\n%s", actor, leader, code, out)
	}
	out, code = crisis(actor, follow...)
	if code != 0 || !strings.Contains(out, "committed at term") {
		t.Fatalf("%v right after a pending open on node%d: exit %d, want 0 (committed)\n%s", follow, actor, code, out)
	}

	// Refused by the signer's role: exit 1, the rule in words, at once.
	out, code = crisis(2, "ipcr", "--mode", "monitoring")
	if code != 1 || !strings.Contains(out, "refused by rule role") || !strings.Contains(out, "needs role presidency or commission") {
		t.Errorf("ipcr by a csirt: exit %d, want 1 and the role rule in words\n%s", code, out)
	}
	// Usage: exit 2.
	if out, code = crisis(2, "escalate", "--level", "7"); code != 2 {
		t.Errorf("escalate --level 7: exit %d, want 2\n%s", code, out)
	}

	// A Reserve request; its ID as crisis show prints it is taken back.
	if out, code = crisis(2, "reserve", "request", "--sector", "health", "--services", "forensics"); code != 0 {
		t.Fatalf("reserve request: exit %d\n%s", code, out)
	}
	var short string
	e.wait(30*time.Second, "the request on node3", func() bool {
		out, _ = crisis(3, "show")
		m := regexp.MustCompile(`reserve ([0-9a-f]+) health`).FindStringSubmatch(out)
		if m == nil {
			return false
		}
		short = m[1]
		return true
	})
	if len(short) < 8 || len(short) >= 32 {
		t.Fatalf("crisis show prints request ID %q: want a prefix of 8 to 31 digits", short)
	}
	if out, code = crisis(3, "reserve", "deployed", short); code != 0 {
		t.Errorf("reserve deployed %s (as crisis show prints it): exit %d\n%s", short, code, out)
	}
	if out, code = crisis(3, "reserve", "deployed", short[:7]); code != 1 || !strings.Contains(out, "at least 8") {
		t.Errorf("reserve deployed with 7 digits: exit %d, want 1 saying at least 8\n%s", code, out)
	}

	// An entry ID as log prints it is taken back by who-has.
	logOut, err := e.run("log", "--dir", e.nodeDir(0))
	if err != nil {
		t.Fatalf("log: %v\n%s", err, logOut)
	}
	m := regexp.MustCompile(`  ([0-9a-f]{8,63})  node0 ready`).FindStringSubmatch(logOut)
	if m == nil {
		t.Fatalf("no entry ID in log output:\n%s", logOut)
	}
	if out, err := e.run("who-has", "--dir", e.nodeDir(1), m[1]); err != nil || !strings.Contains(out, "node0") {
		t.Errorf("who-has %s (as log prints it): %v\n%s", m[1], err, out)
	}

	// Close with lessons: crisis show says them; the history names who
	// signed each decision, with full IDs in --json.
	if out, code = crisis(1, "close", "--reason", "power restored", "--lessons", "charge the satellite terminal"); code != 0 {
		t.Fatalf("close: exit %d\n%s", code, out)
	}
	e.wait(30*time.Second, "the lessons on node3", func() bool {
		out, _ = crisis(3, "show")
		return strings.Contains(out, "lessons learned: charge the satellite terminal")
	})
	out, code = crisis(3, "history")
	for _, want := range []string{"open", fmt.Sprintf("node%d", actor), "reserve-deployed", "node3", "closed the crisis"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("crisis history: exit %d, want %q in\n%s", code, want, out)
		}
	}
	out, code = crisis(3, "history", "--json")
	var h struct {
		Total     int `json:"total"`
		Decisions []struct {
			Command, Kind, By, Outcome string
			Term, Index                uint64
		} `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil || code != 0 {
		t.Fatalf("history --json: exit %d, %v\n%s", code, err, out)
	}
	if len(h.Decisions) < 5 || h.Total < 5 {
		t.Fatalf("history --json: %d decisions (total %d), want at least 5", len(h.Decisions), h.Total)
	}
	for _, d := range h.Decisions {
		if len(d.Command) != 32 || d.By == "" || d.Index == 0 || d.Outcome == "" {
			t.Errorf("history --json decision %+v: want a full command ID, who, index and outcome", d)
		}
	}
}
