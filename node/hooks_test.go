package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// openTestnet opens a testnet of n real nodes, node i with opts(i); they
// are closed at the end of the test.
func openTestnet(t testing.TB, n int, opts func(i int) Options) ([]*Node, []TestnetNode) {
	t.Helper()
	return openTestnetWith(t, TestnetOptions{Nodes: n}, opts)
}

// openTestnetWith is openTestnet with testnet options (Dir, BasePort and
// Now are filled in); opts nil opens every node with Options{}.
func openTestnetWith(t testing.TB, o TestnetOptions, opts func(i int) Options) ([]*Node, []TestnetNode) {
	t.Helper()
	o.Dir, o.BasePort, o.Now = t.TempDir(), freeBasePort(t), time.Now()
	if opts == nil {
		opts = func(int) Options { return Options{} }
	}
	t.Logf("base port %d", o.BasePort)
	specs, err := Testnet(o)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	for i, s := range specs {
		nd, err := Open(s.Dir, opts(i))
		if err != nil {
			t.Fatalf("open %s: %v", s.Name, err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes = append(nodes, nd)
	}
	return nodes, specs
}

// apiCall makes an authenticated API request to a testnet node.
func apiCall(t *testing.T, spec TestnetNode, method, path, body string) (int, string) {
	t.Helper()
	token, err := ReadToken(spec.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return apiCallWith(t, spec, token, method, path, body)
}

// apiCallWith makes an API request to a testnet node with token.
func apiCallWith(t *testing.T, spec TestnetNode, token, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+spec.API+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A node whose disk is full (node.Options.FreeSpace returns 0) answers a
// post with 507 and a message that says what to do, shows the condition
// in /api/v1/status and /metrics, keeps serving reads, and writes again
// by itself once space is back.
func TestDiskFullNode(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 40)
	nodes, specs := openTestnet(t, 1, func(int) Options {
		return Options{FreeSpace: func() (uint64, error) { return free.Load(), nil }}
	})
	n, spec := nodes[0], specs[0]
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().CurrentKey("all"); return ok })
	waitUntil(t, 20*time.Second, "leadership", func() bool { return n.Consensus().IsLeader() })
	if code, body := apiCall(t, spec, "POST", api.PathEntries, `{"kind":"sitrep","text":"before"}`); code != http.StatusCreated {
		t.Fatalf("post: %d %s", code, body)
	}

	free.Store(0)
	code, body := apiCall(t, spec, "POST", api.PathEntries, `{"kind":"sitrep","text":"refused"}`)
	var ae api.Error
	if err := json.Unmarshal([]byte(body), &ae); err != nil {
		t.Fatalf("post on a full disk: %d %s", code, body)
	}
	if code != http.StatusInsufficientStorage || ae.Code != "disk-full" {
		t.Errorf("post on a full disk: %d %s, want 507 disk-full", code, body)
	}
	for _, want := range []string{"0 B free", "reserve", "Free space on", "resumes writing by itself"} {
		if !strings.Contains(ae.Message, want) {
			t.Errorf("message %q lacks %q", ae.Message, want)
		}
	}
	// A crisis command cannot be stored either: not in Raft (the leader
	// fails it and steps down: a member that cannot write cannot lead),
	// nor as a proposal in the log.
	if code, body := apiCall(t, spec, "POST", api.PathCrisis, `{"kind":"open","title":"t","level":1}`); code != http.StatusInsufficientStorage || !strings.Contains(body, "disk-full") {
		t.Errorf("crisis command on a full disk: %d %s, want 507", code, body)
	}
	code, body = apiCall(t, spec, "GET", api.PathStatus, "")
	var st StatusView
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	if !st.DiskFull || !st.Disk.Full || st.Disk.FreeBytes != 0 || st.Disk.ReserveBytes == 0 || !strings.Contains(st.Disk.Message, "resumes writing by itself") {
		t.Errorf("status on a full disk: disk_full %v, disk %+v", st.DiskFull, st.Disk)
	}
	if !strings.Contains(body, `"disk_full":true`) {
		t.Errorf("status JSON lacks \"disk_full\":true: %s", body)
	}
	if code, body := apiCall(t, spec, "GET", api.PathEntries, ""); code != http.StatusOK || !strings.Contains(body, "before") || strings.Contains(body, "refused") {
		t.Errorf("entries on a full disk: %d %s", code, body)
	}
	resp, err := http.Get("http://" + spec.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"crisismesh_disk_full 1", "crisismesh_disk_free_bytes 0", "crisismesh_disk_reserve_bytes 3.3"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	free.Store(1 << 40)
	if code, body := apiCall(t, spec, "POST", api.PathEntries, `{"kind":"sitrep","text":"after"}`); code != http.StatusCreated {
		t.Fatalf("post after space came back: %d %s", code, body)
	}
	if code, body := apiCall(t, spec, "GET", api.PathStatus, ""); code != http.StatusOK || !strings.Contains(body, `"disk_full":false`) {
		t.Errorf("status after space came back: %d %s", code, body)
	}
}

// A node whose clock is 4 minutes slow still posts, its entries carry its
// time, and the network converges; when it leads, committed time does
// not go back (it stamps the last committed time) and a Reserve deadline
// is 24 h after the committed request time; every node holds the same
// committed state.
func TestClockSkewNode(t *testing.T) {
	const skew = -4 * time.Minute
	slowNow := func() time.Time { return time.Now().Add(skew) }
	// node2 is a csirt and a voter: it may open a crisis and ask the
	// Reserve.
	nodes, _ := openTestnet(t, 3, func(i int) Options {
		if i == 2 {
			return Options{Now: slowNow}
		}
		return Options{}
	})
	slow := nodes[2]
	waitUntil(t, 30*time.Second, "every node to hold the network key", func() bool {
		for _, n := range nodes {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
		return true
	})
	ctx := context.Background()
	var posted []*log.Entry
	for _, n := range nodes {
		e, err := n.Post(ctx, PostRequest{Kind: "sitrep", Text: "from " + n.Identity().Name()})
		if err != nil {
			t.Fatalf("%s posts: %v", n.Identity().Name(), err)
		}
		posted = append(posted, e)
	}
	at := time.UnixMilli(posted[2].Header.Time)
	if d := at.Sub(time.Now().Add(skew)); d > 5*time.Second || d < -5*time.Second {
		t.Errorf("the slow node's entry carries %v, want its clock (%v)", at, time.Now().Add(skew))
	}
	convergeHolding(t, nodes, posted)
	if v := nodes[0].ViewEntry(posted[2]); !v.Time.Equal(at.UTC()) {
		t.Errorf("node0 shows the slow node's entry at %v, want %v", v.Time, at.UTC())
	}

	// A crisis opened under a leader with a correct clock (were the slow
	// node leading already, the open would carry its clock and the check
	// below would compare the slow clock with itself), then the slow node
	// leads.
	leader := leadBy(t, nodes, "a leader with a correct clock", func(n *Node) bool { return n != slow })
	open, err := leader.Command(ctx, crisis.Command{Kind: crisis.KindOpen, Title: "clock skew", Level: 1})
	if err != nil || open.Status == StatusRefused {
		// node0 (presidency) may not open: node2 does, through the log.
		if open, err = slow.Command(ctx, crisis.Command{Kind: crisis.KindOpen, Title: "clock skew", Level: 1}); err != nil || open.Status == StatusRefused {
			t.Fatalf("open: %+v %v", open, err)
		}
	}
	waitUntil(t, 30*time.Second, "every node to apply the open crisis", func() bool {
		for _, n := range nodes {
			if n.Consensus().Local().State.Status != crisis.StatusOpen {
				return false
			}
		}
		return true
	})
	opened := slow.Consensus().Local().State.Updated
	if d := time.Since(opened); d > time.Minute {
		t.Fatalf("the crisis opened at %v, %v ago: stamped by the slow clock, the test proves nothing", opened, d)
	}
	leadBy(t, nodes, "the slow node to lead", func(n *Node) bool { return n == slow })
	var res CommandResult
	waitUntil(t, 30*time.Second, "a Reserve request committed by the slow leader", func() bool {
		res, err = slow.Command(ctx, crisis.Command{Kind: crisis.KindReserveRequest, Sector: "energy", Services: []string{"incident response"}})
		return err == nil && res.Status == StatusCommitted
	})
	st := slow.Consensus().Local().State
	var req crisis.Request
	for _, r := range st.Requests {
		if r.ID.String() == res.ID {
			req = r
		}
	}
	if req.At.IsZero() {
		t.Fatalf("request %s not in the committed state", res.ID)
	}
	if req.At.Before(opened) {
		t.Errorf("committed time went back: request at %v, crisis opened at %v", req.At, opened)
	}
	if req.At.Sub(slowNow()) < 3*time.Minute {
		t.Errorf("request committed at %v: the slow leader's clock (%v), not the committed time", req.At, slowNow())
	}
	if !req.Deadline.Equal(req.At.Add(crisis.ReserveDeadline)) {
		t.Errorf("deadline %v, want 24 h after %v", req.Deadline, req.At)
	}

	// Every node holds the same committed state.
	var want []byte
	waitUntil(t, 30*time.Second, "every node at the same committed state", func() bool {
		want = nil
		for _, n := range nodes {
			v := n.Consensus().Local()
			if v.Source != "raft" || v.Index < res.Index {
				return false
			}
			b, err := v.State.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = b
			} else if !bytes.Equal(b, want) {
				return false
			}
		}
		return true
	})
}

// leadBy waits until a node that want accepts leads, moving leadership
// there from any other leader, and returns it.
func leadBy(t *testing.T, nodes []*Node, what string, want func(*Node) bool) *Node {
	t.Helper()
	var leader *Node
	waitUntil(t, 30*time.Second, what, func() bool {
		for _, n := range nodes {
			if !n.Consensus().IsLeader() {
				continue
			}
			if want(n) {
				leader = n
				return true
			}
			for _, to := range nodes {
				if want(to) {
					sid := consensus.ServerID(to.Identity().Card())
					n.Consensus().Raft().LeadershipTransferToServer(sid, raft.ServerAddress(sid)).Error()
					break
				}
			}
		}
		return false
	})
	return leader
}
