package sim

import (
	"bytes"
	"context"
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
	} {
		if _, err := Parse(text); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}

// The no-loss checker fails when an acknowledged entry is missing: the bug
// it guards against, injected.
func TestNoLossCheckerCatchesALostEntry(t *testing.T) {
	specs, err := node.Testnet(node.TestnetOptions{Dir: t.TempDir(), Nodes: 1, BasePort: 21000 + int(time.Now().UnixNano()%5000), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(specs[0].Dir, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, ok := n.Store().CurrentKey("all"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no network key")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e, err := n.Post(context.Background(), node.PostRequest{Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ns := []running{{0, n}}
	if err := checkNoLoss(ns, []ackedEntry{{id: e.ID()}}, true); err != nil {
		t.Fatalf("held entry reported lost: %v", err)
	}
	if err := checkNoLoss(ns, []ackedEntry{{id: e.ID()}, {id: log.Hash{1}}}, true); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("a lost entry went unnoticed: %v", err)
	}
	if err := checkChains(ns); err != nil {
		t.Errorf("intact chains reported broken: %v", err)
	}
	if err := checkCrisis(ns); err != nil {
		t.Errorf("one node disagrees with itself: %v", err)
	}
	// The fork and forgery checkers fail on the bugs they guard against:
	// a fork nobody detected, a forged entry that was stored.
	if err := checkForks(ns, []crypto.MemberID{n.Identity().ID()}); err == nil {
		t.Error("an undetected fork went unnoticed")
	}
	if err := checkNoForgery(ns, []log.Hash{e.ID()}); err == nil {
		t.Error("a stored \"forged\" entry went unnoticed")
	}
	if err := checkNoForgery(ns, []log.Hash{{2}}); err != nil {
		t.Errorf("an entry nobody holds reported accepted: %v", err)
	}
}
