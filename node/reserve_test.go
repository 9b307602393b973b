package node

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/interop/matrix"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// Only an open Reserve request counts down; a closed one says who closed
// it and when. status alerts under ReserveAlertBefore, and once overdue.
func TestReserveViewsAndAlerts(t *testing.T) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	req := func(id byte, st crisis.RequestStatus) crisis.Request {
		r := crisis.Request{ID: crisis.ID{id}, Sector: "energy", ByName: "cert-lu", At: at, Deadline: at.Add(crisis.ReserveDeadline), Status: st}
		if st != crisis.RequestOpen {
			r.ClosedAt, r.ClosedByName = at.Add(time.Hour), "enisa"
		}
		return r
	}
	s := crisis.State{Requests: []crisis.Request{req(1, crisis.RequestOpen), req(2, crisis.RequestWithdrawn), req(3, crisis.RequestDeployed)}}
	for _, tc := range []struct {
		now       time.Time
		leftMS    int64
		overdue   bool
		alert     string // "" none
		alertWord string
	}{
		{at.Add(time.Hour), 23 * 3600_000, false, "", ""},
		{at.Add(22*time.Hour + time.Minute), 3600_000 + 59*60_000, false, "reserve-deadline", "1h59m0s left"},
		{at.Add(25 * time.Hour), -3600_000, true, "reserve-overdue", "1h0m0s past its deadline"},
	} {
		vs := requestViews(s, tc.now)
		if len(vs) != 3 {
			t.Fatalf("%d views, want 3", len(vs))
		}
		if vs[0].LeftMS != tc.leftMS || vs[0].Overdue != tc.overdue || vs[0].ClosedAt != nil {
			t.Errorf("at %v: open request %+v, want left %d ms, overdue %v", tc.now, vs[0], tc.leftMS, tc.overdue)
		}
		for _, v := range vs[1:] {
			if v.LeftMS != 0 || v.Overdue || v.ClosedAt == nil || !v.ClosedAt.Equal(at.Add(time.Hour)) || v.ClosedBy != "enisa" {
				t.Errorf("at %v: closed request %+v counts down or lacks who closed it", tc.now, v)
			}
		}
		as := reserveAlerts(s, tc.now)
		switch {
		case tc.alert == "" && len(as) != 0:
			t.Errorf("at %v: alerts %+v, want none", tc.now, as)
		case tc.alert != "" && (len(as) != 1 || as[0].Code != tc.alert || as[0].Request != vs[0].ID || !strings.Contains(as[0].Message, tc.alertWord)):
			t.Errorf("at %v: alerts %+v, want one %s saying %q", tc.now, as, tc.alert, tc.alertWord)
		}
	}
}

// On a running node: a Reserve request shows in /metrics with the time
// left, status alerts 2 h before the deadline, and once withdrawn the
// request stops counting down, leaves /metrics and the alert goes.
func TestReserveDeadlineOnANode(t *testing.T) {
	var ahead atomic.Int64 // how far the node's clock is ahead
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1, Roles: map[int][]string{0: {"csirt", "enisa"}}},
		func(int) Options { return Options{Now: now} })
	n := nodes[0]
	ctx := context.Background()
	command := func(c crisis.Command) CommandResult { return commitCommand(t, n, c) }
	command(crisis.Command{Kind: crisis.KindOpen, Title: "Grid outage", Level: 1})
	req := command(crisis.Command{Kind: crisis.KindReserveRequest, Sector: "energy", Services: []string{"incident response"}})
	if st := n.Status(ctx); len(st.Alerts) != 0 {
		t.Errorf("alerts 24 h before the deadline: %+v", st.Alerts)
	}
	ahead.Store(int64(22*time.Hour + 30*time.Minute))
	st := n.Status(ctx)
	if len(st.Alerts) != 1 || st.Alerts[0].Code != "reserve-deadline" || st.Alerts[0].Request != req.ID {
		t.Errorf("status 1.5 h before the deadline: alerts %+v, want one reserve-deadline for %s", st.Alerts, req.ID)
	}
	// The Matrix bridge posts the same alerts.
	if ma := (matrixLog{n}).ReserveAlerts(); len(ma) != 1 || len(st.Alerts) != 1 ||
		ma[0] != (matrix.Alert{Code: st.Alerts[0].Code, Request: st.Alerts[0].Request, Text: st.Alerts[0].Message}) {
		t.Errorf("the bridge's alerts %+v, status's %+v", ma, st.Alerts)
	}
	_, metrics := apiCall(t, specs[0], "GET", "/metrics", "")
	if !strings.Contains(metrics, `crisismesh_reserve_deadline_seconds{request="`+req.ID+`",sector="energy"} 5`) {
		t.Errorf("/metrics lacks the request's deadline (~5400 s left):\n%s", grepLines(metrics, "reserve"))
	}
	id, err := crisis.ParseID(req.ID)
	if err != nil {
		t.Fatal(err)
	}
	command(crisis.Command{Kind: crisis.KindReserveWithdrawn, Request: id, Note: "handled nationally"})
	st = n.Status(ctx)
	if len(st.Alerts) != 0 {
		t.Errorf("alerts after the withdrawal: %+v", st.Alerts)
	}
	if r := st.Crisis.Requests; len(r) != 1 || r[0].Status != "withdrawn" || r[0].LeftMS != 0 || r[0].ClosedAt == nil || r[0].ClosedBy != n.Identity().Name() {
		t.Errorf("withdrawn request shown as %+v", r)
	}
	_, metrics = apiCall(t, specs[0], "GET", "/metrics", "")
	if strings.Contains(metrics, "crisismesh_reserve_deadline_seconds{") {
		t.Errorf("/metrics still counts down a withdrawn request:\n%s", grepLines(metrics, "reserve"))
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// commitCommand has n sign and propose c once, and waits until it is
// committed; a refusal fails the test.
func commitCommand(t *testing.T, n *Node, c crisis.Command) CommandResult {
	t.Helper()
	waitUntil(t, 30*time.Second, "the network key, to write proposals with", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	res, err := n.Command(context.Background(), c)
	if err != nil || res.Status == StatusRefused {
		t.Fatalf("%s: %+v, %v", c.Kind, res, err)
	}
	id, err := crisis.ParseID(res.ID)
	if err != nil {
		t.Fatal(err)
	}
	var o consensus.Outcome
	waitUntil(t, 30*time.Second, string(c.Kind)+" committed", func() bool {
		var ok bool
		o, ok = n.Consensus().Outcome(id)
		return ok
	})
	if o.Refused != "" {
		t.Fatalf("%s refused: %s", c.Kind, o.Refused)
	}
	res.Status, res.Term, res.Index = StatusCommitted, o.Term, o.Index
	return res
}
