package node

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// waitingBody is the text of every waiting entry the tests make: it
// must never appear in a view.
const waitingBody = "WAITING-BODY-do-not-show"

// provisionalChain builds count entries of author after tip, each signed
// then stripped to its provisional signature, as a narrow link carries
// them: real entries, so the views are computed from what a store holds.
func provisionalChain(t testing.TB, author *crypto.Identity, network crypto.NetworkID, key *crypto.GroupKey, tip log.Tip, count int, text string) []*log.Entry {
	t.Helper()
	var out []*log.Entry
	for i := range count {
		d := log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: fmt.Sprintf("%s %s %d", waitingBody, text, i)}, Key: key}
		es, err := log.Build(author, network, tip, 0, time.Unix(1_800_000_000, 0), []log.Draft{d})
		if err != nil {
			t.Fatal(err)
		}
		p, err := es[0].WithProvisional()
		if err != nil {
			t.Fatal(err)
		}
		tip = log.Tip{Seq: p.Header.Seq, ID: p.ID(), Lamport: p.Header.Lamport}
		out = append(out, p)
	}
	return out
}

// holding makes the store's waiting entries of es, each held since since.
func holding(since time.Time, conflicting bool, es ...*log.Entry) []store.WaitingEntry {
	var out []store.WaitingEntry
	for _, e := range es {
		out = append(out, store.WaitingEntry{Entry: e, Since: since, Conflicting: conflicting})
	}
	return out
}

// Statuses follow the node's clock against the window (overdue only
// past interval + grace), a clock set back shows no negative wait, names
// come from the roster (a short ID otherwise), conflicting candidates are
// marked, and one waiting-overdue alert per member says how many, which
// seqs, how long and what to do, left_ms negative.
func TestWaitingViewAndAlerts(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	lu, err := crypto.NewIdentity("cert-lu", t0)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := crypto.NewIdentity("stranger", t0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := crypto.NewGenesis(crypto.GenesisSpec{Network: "test", Created: t0,
		Members: []crypto.Member{{Card: lu.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleCSIRT}}},
		Voters:  []crypto.MemberID{lu.ID()}, Admins: []crypto.MemberID{lu.ID()}}, lu)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.NewGroupKey("all", 1)
	if err != nil {
		t.Fatal(err)
	}
	luE := provisionalChain(t, lu, g.NetworkID(), key, log.Tip{}, 3, "lu")
	a := provisionalChain(t, stranger, g.NetworkID(), key, log.Tip{}, 1, "a")
	b := provisionalChain(t, stranger, g.NetworkID(), key, log.Tip{}, 1, "b") // another entry at seq 1
	// The store's order: author, seq, ID.
	held := holding(t0, false, luE[0], luE[1])
	held = append(held, holding(t0.Add(100*time.Second), false, luE[2])...)
	held = append(held, holding(t0.Add(10*time.Second), true, a[0], b[0])...)
	slices.SortFunc(held, func(x, y store.WaitingEntry) int {
		return cmp.Or(bytes.Compare(x.Entry.Header.Author[:], y.Entry.Header.Author[:]),
			cmp.Compare(x.Entry.Header.Seq, y.Entry.Header.Seq), strings.Compare(x.Entry.ID().String(), y.Entry.ID().String()))
	})
	w := log.DefaultWindow() // 120 s + 30 s grace
	for _, tc := range []struct {
		at      time.Duration // the node's clock after t0
		status  map[string]string
		overdue int
		alerts  []string // the words of each alert, member by member
		leftMS  map[string]int64
	}{
		{at: -time.Minute, status: map[string]string{"lu1": "waiting", "lu3": "waiting", "s1": "waiting"}},
		{at: 150 * time.Second, status: map[string]string{"lu1": "waiting", "lu2": "waiting", "lu3": "waiting", "s1": "waiting"}},
		{at: 150*time.Second + time.Millisecond, status: map[string]string{"lu1": "overdue", "lu2": "overdue", "lu3": "waiting", "s1": "waiting"},
			overdue: 2, alerts: []string{"2 entries of cert-lu (seq 1–2) have waited 2m30s for their post-quantum signature (window 120 s + 30 s grace): not acted on; the author's node must reconnect or send its cover"},
			leftMS: map[string]int64{lu.ID().String(): -1}},
		{at: 161 * time.Second, status: map[string]string{"lu1": "overdue", "s1": "overdue"}, overdue: 4,
			alerts: []string{"2 entries of cert-lu (seq 1–2) have waited 2m41s", "2 entries of " + stranger.ID().Short() + " (seq 1) have waited 2m31s"},
			leftMS: map[string]int64{lu.ID().String(): -11_000, stranger.ID().String(): -1_000}},
		{at: 251 * time.Second, status: map[string]string{"lu3": "overdue"}, overdue: 5,
			alerts: []string{"3 entries of cert-lu (seq 1–3) have waited 4m11s", "2 entries of " + stranger.ID().Short() + " (seq 1) have waited 4m1s"}},
	} {
		now := t0.Add(tc.at)
		v := waitingView(held, g.Roster(), w, now)
		if v.Window != (WindowView{Entries: 128, IntervalS: 120, GraceS: 30}) {
			t.Fatalf("window %+v", v.Window)
		}
		if len(v.Entries) != 5 {
			t.Fatalf("%d entries shown, want 5", len(v.Entries))
		}
		got := map[string]string{}
		for i, e := range v.Entries {
			if e.ID != held[i].Entry.ID().String() || e.Seq != held[i].Entry.Header.Seq || e.MemberID != held[i].Entry.Header.Author.String() ||
				e.Lamport != held[i].Entry.Header.Lamport || e.Priority != held[i].Entry.Header.Priority.String() || !e.Since.Equal(held[i].Since) {
				t.Errorf("at %v: entry %d shown as %+v, want the header of %s", tc.at, i, e, held[i].Entry.ID())
			}
			if want := max(now.Sub(held[i].Since), 0).Seconds(); e.WaitedS != want {
				t.Errorf("at %v: entry %d waited_s %v, want %v", tc.at, i, e.WaitedS, want)
			}
			name := "s"
			if e.MemberID == lu.ID().String() {
				name = "lu"
				if e.Member != "cert-lu" || e.Conflicting {
					t.Errorf("cert-lu's entry shown as %+v", e)
				}
			} else if e.Member != stranger.ID().Short() || !e.Conflicting {
				t.Errorf("the stranger's conflicting entry shown as %+v", e)
			}
			got[fmt.Sprintf("%s%d", name, e.Seq)] = e.Status
		}
		for k, s := range tc.status {
			if got[k] != s {
				t.Errorf("at %v: %s is %q, want %q", tc.at, k, got[k], s)
			}
		}
		if all, over := waitingCounts(v); all != 5 || over != tc.overdue {
			t.Errorf("at %v: counts %d, %d overdue; want 5, %d", tc.at, all, over, tc.overdue)
		}
		as := waitingAlerts(v)
		if len(as) != len(tc.alerts) {
			t.Fatalf("at %v: alerts %+v, want %d", tc.at, as, len(tc.alerts))
		}
		for _, al := range as {
			i := 0
			if al.MemberID == stranger.ID().String() {
				i = len(as) - 1
			}
			if al.Code != "waiting-overdue" || !strings.HasPrefix(al.Message, tc.alerts[i]) || al.LeftMS >= 0 {
				t.Errorf("at %v: alert %+v, want waiting-overdue saying %q, left_ms < 0", tc.at, al, tc.alerts[i])
			}
			if want, ok := tc.leftMS[al.MemberID]; ok && al.LeftMS != want {
				t.Errorf("at %v: alert of %s left_ms %d, want %d", tc.at, al.MemberID, al.LeftMS, want)
			}
		}
	}
	if v := waitingView(nil, g.Roster(), w, t0); v.Entries == nil || len(waitingAlerts(v)) != 0 {
		t.Errorf("nothing waiting: %+v (entries must be [], not null)", v)
	}
	// One overdue entry is one entry, with its.
	one := waitingAlerts(waitingView(held[:1], g.Roster(), w, t0.Add(time.Hour)))
	if len(one) != 1 || !strings.Contains(one[0].Message, "1 entry of ") || !strings.Contains(one[0].Message, " (seq 1) has waited ") || !strings.Contains(one[0].Message, " for its post-quantum") {
		t.Errorf("one overdue entry: %+v", one)
	}
}

// On a running node: GET /api/v1/waiting shows the header of each
// waiting entry and never its body, status counts them and alerts once
// they are overdue by the node's clock, /metrics has both gauges, and
// the Matrix bridge's alerts stay the Reserve ones.
func TestWaitingOnANode(t *testing.T) {
	var ahead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1}, func(int) Options { return Options{Now: now} })
	n := nodes[0]
	ctx := context.Background()
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	if st := n.Status(ctx); st.Waiting != 0 || st.WaitingOverdue != 0 {
		t.Errorf("nothing waiting, status says %d (%d overdue)", st.Waiting, st.WaitingOverdue)
	}
	key, _ := n.Store().NetworkKey()
	h := n.Store().Frontier()[n.Identity().ID()]
	es := provisionalChain(t, n.Identity(), n.Store().Network(), key, log.Tip{Seq: h.Seq, ID: h.ID, Lamport: h.Lamport}, 2, "mine")
	since := now()
	n.waiting = func() []store.WaitingEntry { return holding(since, false, es...) }

	code, body := apiCall(t, specs[0], "GET", api.PathWaiting, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", api.PathWaiting, code, body)
	}
	if strings.Contains(body, waitingBody) {
		t.Errorf("the waiting view shows a body:\n%s", body)
	}
	var raw struct {
		Window  map[string]any   `json:"window"`
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys := "conflicting id lamport member member_id priority seq since status waited_s"
	for _, e := range raw.Entries {
		if got := strings.Join(slices.Sorted(maps.Keys(e)), " "); got != wantKeys {
			t.Errorf("a waiting entry has fields %q, want exactly %q (header only)", got, wantKeys)
		}
	}
	if len(raw.Entries) != 2 || raw.Entries[0]["member"] != n.Identity().Name() || raw.Entries[0]["status"] != "waiting" ||
		raw.Window["interval_s"] != 120.0 || raw.Window["grace_s"] != 30.0 || raw.Window["entries"] != 128.0 {
		t.Errorf("GET %s: %s", api.PathWaiting, body)
	}
	if _, err := time.Parse(time.RFC3339, raw.Entries[0]["since"].(string)); err != nil {
		t.Errorf("since is not RFC 3339: %v", err)
	}
	st := n.Status(ctx)
	if st.Waiting != 2 || st.WaitingOverdue != 0 || len(st.Alerts) != 0 {
		t.Errorf("two waiting: status says %d (%d overdue), alerts %+v", st.Waiting, st.WaitingOverdue, st.Alerts)
	}

	ahead.Store(int64(3 * time.Minute))
	st = n.Status(ctx)
	if st.Waiting != 2 || st.WaitingOverdue != 2 || len(st.Alerts) != 1 || st.Alerts[0].Code != "waiting-overdue" ||
		st.Alerts[0].MemberID != n.Identity().ID().String() || st.Alerts[0].LeftMS > -29_000 ||
		!strings.Contains(st.Alerts[0].Message, fmt.Sprintf("2 entries of %s (seq %d–%d)", n.Identity().Name(), h.Seq+1, h.Seq+2)) {
		t.Errorf("overdue: status says %d (%d overdue), alerts %+v", st.Waiting, st.WaitingOverdue, st.Alerts)
	}
	if ma := (matrixLog{n}).ReserveAlerts(); len(ma) != 0 {
		t.Errorf("the Matrix bridge would post %+v; it posts Reserve alerts only", ma)
	}
	_, metrics := apiCall(t, specs[0], "GET", "/metrics", "")
	for _, want := range []string{"crisismesh_entries_waiting 2", "crisismesh_entries_waiting_overdue 2"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "waiting"))
		}
	}
	_, body = apiCall(t, specs[0], "GET", api.PathWaiting, "")
	if !strings.Contains(body, `"status":"overdue"`) || strings.Contains(body, `"status":"waiting"`) {
		t.Errorf("after 3 min: %s", body)
	}
}

// Through the real store: entries that arrive with a provisional
// signature are shown waiting and are nowhere else (entries, digest,
// status count of entries); once their composite arrives they join the
// log and the waiting view is empty.
func TestWaitingThroughTheStore(t *testing.T) {
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1}, func(int) Options { return Options{} })
	n := nodes[0]
	ctx := context.Background()
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	key, _ := n.Store().NetworkKey()
	h := n.Store().Frontier()[n.Identity().ID()]
	d := log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: waitingBody + " through the store"}, Key: key}
	es, err := log.Build(n.Identity(), n.Store().Network(), log.Tip{Seq: h.Seq, ID: h.ID, Lamport: h.Lamport}, 0, time.Now(), []log.Draft{d})
	if err != nil {
		t.Fatal(err)
	}
	p, err := es[0].WithProvisional()
	if err != nil {
		t.Fatal(err)
	}
	before := n.Status(ctx)
	if res, err := n.Store().Ingest(ctx, p); err != nil || len(res.Waiting) != 1 {
		t.Fatalf("ingest of a provisional entry: %+v, %v", res, err)
	}
	st := n.Status(ctx)
	if st.Waiting != 1 || st.Entries != before.Entries || st.Digest != before.Digest {
		t.Errorf("one entry waiting: status waiting %d, entries %d → %d, digest changed %v", st.Waiting, before.Entries, st.Entries, st.Digest != before.Digest)
	}
	if _, body := apiCall(t, specs[0], "GET", api.PathEntries, ""); strings.Contains(body, p.ID().String()) || strings.Contains(body, "through the store") {
		t.Errorf("GET %s lists the waiting entry", api.PathEntries)
	}
	if w := n.Waiting(); len(w.Entries) != 1 || w.Entries[0].ID != p.ID().String() || w.Entries[0].Status != "waiting" {
		t.Errorf("waiting view: %+v", w.Entries)
	}
	c, err := log.CoverOf(es[0])
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Store().Cover(ctx, c); err != nil || len(res.Added) != 1 {
		t.Fatalf("cover: %+v, %v", res, err)
	}
	if st := n.Status(ctx); st.Waiting != 0 || st.Entries != before.Entries+1 {
		t.Errorf("after the cover: waiting %d, entries %d (before %d)", st.Waiting, st.Entries, before.Entries)
	}
	if _, body := apiCall(t, specs[0], "GET", api.PathEntries, ""); !strings.Contains(body, p.ID().String()) {
		t.Errorf("GET %s lacks the covered entry", api.PathEntries)
	}
}
