package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

// fakeNode serves canned answers on the API paths of answers, as a node
// in dir would (its config.toml names the server, its api.token the
// token the server wants), so the CLI runs in-process against it.
func fakeNode(t *testing.T, answers map[string]any) (dir string) {
	t.Helper()
	const token = "fake-token"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := answers[r.URL.Path]
		if r.Header.Get("Authorization") != "Bearer "+token || r.Method != http.MethodGet || !ok {
			http.Error(w, `{"code":"not-found","message":"no"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	dir = t.TempDir()
	cfg := node.DefaultConfig()
	cfg.API = srv.Listener.Addr().String()
	if err := node.WriteConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]string{node.TokenFile: token + "\n", node.IdentityFile: "not read by the CLI"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waiting prints the entries waiting for their post-quantum signature as
// a table (member, seq, status, waited, conflicting) and with --json as
// the API's WaitingView; status prints the count line only when some
// wait.
func TestWaitingCommand(t *testing.T) {
	since := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	wv := api.WaitingView{
		Window: api.WindowView{Entries: 128, IntervalS: 120, GraceS: 30},
		Entries: []api.WaitingEntryView{
			{Member: "cert-fr", MemberID: strings.Repeat("ab", 32), Seq: 12, ID: strings.Repeat("01", 32), Lamport: 40, Priority: "routine", Status: "overdue", Since: since, WaitedS: 161.2},
			{Member: "cert-fr", MemberID: strings.Repeat("ab", 32), Seq: 13, ID: strings.Repeat("02", 32), Lamport: 41, Priority: "immediate", Status: "waiting", Since: since, WaitedS: 20, Conflicting: true},
		},
	}
	st := api.StatusView{Member: "cert-lu", PeerID: "12D3KooW", Digest: strings.Repeat("0", 64), Peers: []api.PeerView{}, Waiting: 2, WaitingOverdue: 1}
	dir := fakeNode(t, map[string]any{api.PathWaiting: wv, api.PathStatus: st})

	code, out, errOut := cli(t, "waiting", "--dir", dir)
	if code != 0 {
		t.Fatalf("waiting: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "every 128 entries or 120 s; overdue after 30 s more") ||
		strings.Join(strings.Fields(lines[1]), " ") != "MEMBER SEQ STATUS WAITED CONFLICTING" ||
		strings.Join(strings.Fields(lines[2]), " ") != "cert-fr 12 overdue 2m41s -" ||
		strings.Join(strings.Fields(lines[3]), " ") != "cert-fr 13 waiting 20s yes" {
		t.Errorf("waiting:\n%s", out)
	}

	code, out, errOut = cli(t, "waiting", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("waiting --json: exit %d: %s", code, errOut)
	}
	var raw struct {
		Window  map[string]any   `json:"window"`
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("waiting --json: %v\n%s", err, out)
	}
	if got, want := strings.Join(slices.Sorted(maps.Keys(raw.Window)), " "), "entries grace_s interval_s"; got != want {
		t.Errorf("waiting --json window fields %q, want %q", got, want)
	}
	want := "conflicting id lamport member member_id priority seq since status waited_s"
	for _, e := range raw.Entries {
		if got := strings.Join(slices.Sorted(maps.Keys(e)), " "); got != want {
			t.Errorf("waiting --json entry fields %q, want %q", got, want)
		}
	}
	if len(raw.Entries) != 2 || raw.Entries[0]["status"] != "overdue" || raw.Entries[1]["conflicting"] != true || raw.Entries[0]["since"] != "2026-12-05T08:00:00Z" {
		t.Errorf("waiting --json:\n%s", out)
	}

	code, out, errOut = cli(t, "status", "--dir", dir)
	if code != 0 || !strings.Contains(out, "  waiting for post-quantum signature: 2 (1 overdue)\n") {
		t.Errorf("status with entries waiting: exit %d: %s%s", code, out, errOut)
	}
	st.Waiting, st.WaitingOverdue = 0, 0
	dir = fakeNode(t, map[string]any{api.PathWaiting: api.WaitingView{Window: wv.Window, Entries: []api.WaitingEntryView{}}, api.PathStatus: st})
	if code, out, _ := cli(t, "status", "--dir", dir); code != 0 || strings.Contains(out, "waiting for post-quantum") {
		t.Errorf("status with nothing waiting: exit %d: %s", code, out)
	}
	if code, out, _ := cli(t, "waiting", "--dir", dir); code != 0 || !strings.Contains(out, "nothing waiting for its post-quantum signature") {
		t.Errorf("waiting with nothing waiting: exit %d: %s", code, out)
	}
}
