package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// The status of a command is a contract: scripts read these exact words.
func TestCommandStatusJSON(t *testing.T) {
	for _, tc := range []struct {
		status CommandStatus
		want   string
	}{
		{StatusCommitted, `"status":"committed"`},
		{StatusPending, `"status":"pending"`},
		{StatusRefused, `"status":"refused"`},
	} {
		b, err := json.Marshal(CommandResult{Status: tc.status})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "{"+tc.want+",") {
			t.Errorf("CommandResult{Status: %q} = %s, want it to start with {%s,", tc.status, b, tc.want)
		}
		var back CommandResult
		if err := json.Unmarshal(b, &back); err != nil || back.Status != tc.status {
			t.Errorf("decode %s: got %q, %v, want %q", b, back.Status, err, tc.status)
		}
	}
}

// cmdOK runs a command on n and fails the test on an error.
func cmdOK(t *testing.T, n *Node, c crisis.Command) CommandResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.Command(ctx, c)
	if err != nil {
		t.Fatalf("%s: %v", c.Kind, err)
	}
	return res
}

// waitCommitted waits until n knows that command id was committed.
func waitCommitted(t *testing.T, n *Node, id string) CommandResult {
	t.Helper()
	var res CommandResult
	waitUntil(t, 30*time.Second, "command "+id+" committed", func() bool {
		var err error
		res, err = n.CommandStatus(id[:MinIDPrefix])
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == StatusRefused {
			t.Fatalf("command %s refused: %s: %s", id, res.Rule, res.Detail)
		}
		return res.Status == StatusCommitted
	})
	return res
}

// Issue 13: on a node that is not the leader, a command given right after
// an open that is still pending there targets the crisis that open makes
// (it was refused as malformed: the local state had no crisis yet). The
// node refuses at once what no state could allow (the signer's role);
// what it proposes it can say the outcome of, by an 8-digit prefix of the
// command ID; the history names who signed each decision, and what was
// refused.
func TestCommandsOnANonLeader(t *testing.T) {
	nodes, _ := openTestnet(t, 3, func(int) Options { return Options{} })
	waitNetworkKey(t, nodes)
	leader := leadBy(t, nodes, "node0 to lead", func(n *Node) bool { return n == nodes[0] })
	csirt := nodes[2] // node2: csirt, not the leader
	if csirt.Consensus().IsLeader() {
		t.Fatal("node2 leads")
	}

	open := cmdOK(t, csirt, crisis.Command{Kind: crisis.KindOpen, Title: "Grid outage", Level: 1})
	advise := cmdOK(t, csirt, crisis.Command{Kind: crisis.KindAdviseLevel2})
	for _, r := range []CommandResult{open, advise} {
		if r.Status == StatusRefused {
			t.Fatalf("command %s refused on a non-leader right after a pending open: %s: %s", r.ID, r.Rule, r.Detail)
		}
	}
	waitCommitted(t, csirt, open.ID)
	got := waitCommitted(t, csirt, advise.ID)
	if got.Index == 0 || got.Term == 0 || got.ID != advise.ID {
		t.Errorf("committed result %+v: want the full ID, term and index", got)
	}
	waitUntil(t, 30*time.Second, "level 2 on node2", func() bool { return csirt.Consensus().Local().State.Level == crisis.LevelPotential })

	// The signer's role: refused at once, never proposed.
	res := cmdOK(t, csirt, crisis.Command{Kind: crisis.KindEscalateLevel3})
	if res.Status != StatusRefused || res.Rule != crisis.RuleRole {
		t.Errorf("escalate by a csirt on a non-leader: %s %s %s, want refused by rule role at once", res.Status, res.Rule, res.Detail)
	}
	// What the state forbids, the leader decides (a follower's view lags:
	// its refusal would not be linearizable); the outcome comes back.
	res = cmdOK(t, csirt, crisis.Command{Kind: crisis.KindAdviseLevel2})
	if res.Status != StatusPending {
		t.Fatalf("advise again at level 2 on a non-leader: %+v, want pending", res)
	}
	waitUntil(t, 30*time.Second, "the leader's refusal on node2", func() bool {
		r, err := csirt.CommandStatus(res.ID)
		return err == nil && r.Status == StatusRefused && r.Rule == crisis.RuleNoChange
	})

	// A refusal through Raft (on the leader), then the history.
	ph := cmdOK(t, leader, crisis.Command{Kind: crisis.KindPhase, Phase: crisis.PhaseDetection})
	if ph.Status != StatusRefused || ph.Rule != crisis.RuleNoChange {
		t.Fatalf("phase detection again on the leader: %+v", ph)
	}
	waitUntil(t, 30*time.Second, "the refusal on node2", func() bool {
		r, err := csirt.CommandStatus(ph.ID)
		return err == nil && r.Status == StatusRefused && r.Rule == crisis.RuleNoChange
	})
	h := csirt.History()
	var kinds []string
	for _, d := range h.Decisions {
		kinds = append(kinds, d.Kind+"/"+d.Outcome+"/"+d.By)
		if d.Term == 0 || d.Index == 0 || d.At.IsZero() || d.Command == "" {
			t.Errorf("decision %+v lacks its command, time, term or index", d)
		}
	}
	want := []string{"open/committed/node2", "advise-level-2/committed/node2", "advise-level-2/refused/node2", "phase/refused/node0"}
	if !slices.Equal(kinds, want) || h.Total != 2 {
		t.Errorf("history %v (total %d), want %v (total 2)", kinds, h.Total, want)
	}

	// Close with lessons: the crisis view shows them.
	cl := cmdOK(t, nodes[1], crisis.Command{Kind: crisis.KindClose, Reason: "power restored", Lessons: "keep a satellite terminal charged"})
	if cl.Status == StatusRefused {
		t.Fatalf("close: %+v", cl)
	}
	waitUntil(t, 30*time.Second, "the lessons on node2", func() bool {
		v, _ := csirt.Crisis(context.Background(), false)
		return v.Lessons == "keep a satellite terminal charged" && v.CloseReason == "power restored" && v.Closed != nil
	})
}

// Any unique prefix of at least 8 hex digits names an ID; an ambiguous
// one lists the matches.
func TestResolveID(t *testing.T) {
	ids := []string{"0123456789abcdef", "0123456799abcdef", "fedcba9876543210"}
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"fedcba98", "fedcba9876543210", nil},
		{"FEDCBA987", "fedcba9876543210", nil},
		{"fedcba9876543210", "fedcba9876543210", nil},
		{"01234567", "", ErrAmbiguous},
		{"012345678", "0123456789abcdef", nil},
		{"0123456", "", ErrBadRequest},
		{"0123456x", "", ErrBadRequest},
		{"fedcba9876543210ff", "", ErrBadRequest},
		{"aaaaaaaa", "", ErrNotFound},
	} {
		got, err := resolveID("entry", tc.in, 16, ids)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("resolveID(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
		if errors.Is(tc.err, ErrAmbiguous) && !strings.Contains(err.Error(), ids[0]) {
			t.Errorf("ambiguous %q: %v does not list the matches", tc.in, err)
		}
	}
}
