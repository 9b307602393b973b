package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func freeBasePort(t testing.TB) int {
	base, err := FreeBasePort(10)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// A testnet of three real nodes (libp2p on 127.0.0.1, badger, Raft) comes
// up: the admin hands out the network key, everyone converges, a crisis
// opened on the leader is committed everywhere.
func TestTestnetComesUp(t *testing.T) {
	running, nodes := openTestnet(t, 3, nil)
	// A second process on the same directory is refused.
	if _, err := Open(nodes[0].Dir, Options{}); !errors.Is(err, ErrRunning) {
		t.Errorf("second Open on one directory: got %v, want ErrRunning", err)
	}
	waitUntil(t, 30*time.Second, "every node to hold the network key", func() bool {
		for _, n := range running {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
		return true
	})
	var acked []*log.Entry
	for i, n := range running {
		key, _ := n.Store().CurrentKey("all")
		es, err := n.Store().Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: fmt.Sprintf("sitrep from node%d", i)}, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, es...)
	}
	convergeHolding(t, running, acked)
	var leader *Node
	waitUntil(t, 30*time.Second, "a Raft leader", func() bool {
		for _, n := range running {
			if n.Consensus().IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	var id crisis.ID
	rand.Read(id[:])
	// node2 is a csirt: it may open at level 1.
	sc, err := crisis.Sign(running[2].Identity(), running[2].Store().Network(), crisis.Command{ID: id, Kind: crisis.KindOpen, Title: "test", Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Consensus().Propose(context.Background(), sc); err != nil {
		t.Fatalf("open on the leader: %v", err)
	}
	waitUntil(t, 30*time.Second, "every node to apply the open crisis", func() bool {
		for _, n := range running {
			if n.Consensus().Local().State.Status != crisis.StatusOpen {
				return false
			}
		}
		return true
	})
}

// The local API answers with the token of the data directory only, and
// status, post, log and crisis work through it.
func TestAPI(t *testing.T) {
	n, nodes := openSingle(t)
	token, err := ReadToken(nodes[0].Dir)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, tok string, body string) (int, string) {
		return apiCallWith(t, nodes[0], tok, method, path, body)
	}
	if code, _ := do("GET", api.PathStatus, "wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token: got %d, want 401", code)
	}
	if code, _ := do("GET", api.PathStatus, "", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: got %d, want 401", code)
	}
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().CurrentKey("all"); return ok })
	code, body := do("POST", api.PathEntries, token, `{"kind":"sitrep","tlp":"amber","priority":"flash","text":"hello"}`)
	if code != http.StatusCreated || !strings.Contains(body, `"text":"hello"`) {
		t.Fatalf("post: %d %s", code, body)
	}
	code, body = do("POST", api.PathEntries, token, `{"kind":"sitrep","tlp":"white","text":"x"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "TLP 2.0") {
		t.Errorf("TLP:WHITE post: %d %s", code, body)
	}
	code, body = do("GET", api.PathEntries, token, "")
	if code != http.StatusOK || !strings.Contains(body, "hello") {
		t.Errorf("entries: %d %s", code, body)
	}
	waitUntil(t, 20*time.Second, "leadership", func() bool { return n.Consensus().IsLeader() })
	// node0 is presidency and admin: it may not open a crisis. The refusal
	// names the rule and the member's roles.
	code, body = do("POST", api.PathCrisis, token, `{"kind":"open","title":"t","level":1}`)
	if code != http.StatusOK || !strings.Contains(body, `"status":"refused"`) || !strings.Contains(body, `"rule":"role"`) || !strings.Contains(body, "presidency") {
		t.Errorf("open by the presidency: %d %s", code, body)
	}
	code, body = do("POST", api.PathCrisis, token, `{"kind":"set-ipcr-mode","mode":"monitoring"}`)
	if code != http.StatusOK || !strings.Contains(body, `"status"`) {
		t.Errorf("ipcr: %d %s", code, body)
	}
	code, body = do("GET", api.PathStatus, token, "")
	if code != http.StatusOK || !strings.Contains(body, `"raft"`) {
		t.Errorf("status: %d %s", code, body)
	}
}

// /metrics answers without a token and carries the node's numbers.
func TestMetrics(t *testing.T) {
	n, nodes := openSingle(t)
	waitUntil(t, 20*time.Second, "leadership", func() bool { return n.Consensus().IsLeader() })
	resp, err := http.Get("http://" + nodes[0].API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"crisismesh_log_entries", `crisismesh_raft_role{role="leader"} 1`, "crisismesh_crisis_level 0", "go_goroutines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// The dashboard is served after /login, and the event stream delivers new
// entries.
func TestDashboardAndEvents(t *testing.T) {
	n, nodes := openSingle(t)
	u, err := DashboardURL(nodes[0].Dir)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	lc, err := n.LoginCode()
	if err != nil {
		t.Fatal(err)
	}
	if lc.URL != u {
		t.Errorf("login code's URL %q, want the dashboard URL %q", lc.URL, u)
	}
	resp, err := c.PostForm(u, url.Values{"code": {lc.Code}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="banner"`) {
		t.Fatalf("dashboard after login: %d", resp.StatusCode)
	}
	if r, err := http.Get("http://" + nodes[0].API + "/dashboard/"); err == nil {
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("dashboard without login: %d, want 401", r.StatusCode)
		}
		r.Body.Close()
	}
	if r, err := http.PostForm("http://"+nodes[0].API+"/login", url.Values{"code": {"nope"}}); err == nil {
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("login with a wrong code: %d, want 401", r.StatusCode)
		}
		r.Body.Close()
	}
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().CurrentKey("all"); return ok })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+nodes[0].API+"/api/v1/events", nil)
	ev, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	if _, err := n.Post(ctx, PostRequest{Kind: "sitrep", Text: "live"}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var got strings.Builder
	for !strings.Contains(got.String(), `"text":"live"`) {
		k, err := ev.Body.Read(buf)
		if err != nil {
			t.Fatalf("event stream ended before the entry: %v (%s)", err, got.String())
		}
		got.Write(buf[:k])
	}
	if !strings.Contains(got.String(), "event: entry") {
		t.Errorf("stream: %s", got.String())
	}
}

// openSingle opens a one-node testnet (closed at the end of the test).
func openSingle(t *testing.T) (*Node, []TestnetNode) {
	t.Helper()
	nodes, specs := openTestnet(t, 1, nil)
	return nodes[0], specs
}

// convergeHolding waits until nodes hold the same log, and checks that
// every one of them holds each entry of acked.
func convergeHolding(t *testing.T, nodes []*Node, acked []*log.Entry) {
	t.Helper()
	waitUntil(t, 30*time.Second, "convergence", func() bool {
		d := nodes[0].Store().Digest()
		for _, n := range nodes[1:] {
			if n.Store().Digest() != d {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		for _, e := range acked {
			if _, err := n.Store().Get(e.ID()); err != nil {
				t.Fatalf("%s lacks %s", n.Identity().Name(), e.ID().Short())
			}
		}
	}
}

// A node whose Open fails late (its API port is taken) returns the error
// and stops what it started; it used to panic in its cleanups, which ran
// on the nil *Node a failed Open returns.
func TestOpenFailingLateCleansUp(t *testing.T) {
	specs, err := Testnet(TestnetOptions{Dir: t.TempDir(), Nodes: 1, BasePort: freeBasePort(t), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", specs[0].API)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Open(specs[0].Dir, Options{}); err == nil {
		t.Fatal("Open succeeded with its API port taken")
	} else {
		t.Logf("Open: %v", err)
	}
	// The directory is free again: the lock was released.
	l.Close()
	n, err := Open(specs[0].Dir, Options{})
	if err != nil {
		t.Fatalf("Open after the failed one: %v", err)
	}
	n.Close()
}
