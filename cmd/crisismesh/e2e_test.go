package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node"
)

// TestEndToEnd builds the binary and runs a 4-node testnet as real
// processes: posts on every node converge, a crisis is opened and
// escalated, a node killed with SIGKILL loses nothing it acknowledged and
// catches up after a restart; a wrong API token and a second node on one
// directory are refused.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts processes")
	}
	bin := filepath.Join(t.TempDir(), "crisismesh")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base, err := node.FreeBasePort(4)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("base port %d", base)
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("testnet", "--nodes", "4", "--voters", "3", "--dir", dir, "--base-port", fmt.Sprint(base)); err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	nodeDir := func(i int) string { return filepath.Join(dir, fmt.Sprintf("node%d", i)) }
	procs := make([]*exec.Cmd, 4)
	start := func(i int) {
		cmd := exec.Command(bin, "run", "--dir", nodeDir(i))
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
	}
	for i := range procs {
		start(i)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil && p.Process != nil {
				p.Process.Signal(syscall.SIGTERM)
				p.Wait()
			}
		}
	})
	status := func(i int) (map[string]any, error) {
		out, err := exec.Command(bin, "status", "--dir", nodeDir(i), "--json").Output()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(out, &m)
	}
	wait := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				for i := range procs {
					b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
					t.Logf("node%d log tail:\n%s", i, tail(string(b), 15))
				}
				t.Fatalf("timed out after %s waiting for %s", d, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	converged := func() bool {
		var d any
		for i := range procs {
			s, err := status(i)
			if err != nil {
				return false
			}
			if i > 0 && s["digest"] != d {
				return false
			}
			d = s["digest"]
		}
		return true
	}
	wait(60*time.Second, "every node's API", func() bool {
		for i := range procs {
			if _, err := status(i); err != nil {
				return false
			}
		}
		return true
	})
	// A second node on the same directory is refused clearly.
	if out, err := run("run", "--dir", nodeDir(0)); err == nil || !strings.Contains(out, "another crisismesh node is running") {
		t.Errorf("second run on one directory: %v\n%s", err, out)
	}
	var acked []string
	post := func(i int, text string) {
		t.Helper()
		var out string
		var err error
		wait(30*time.Second, "a post to be accepted", func() bool {
			out, err = run("post", "--dir", nodeDir(i), "--kind", "sitrep", text)
			return err == nil
		})
		acked = append(acked, strings.TrimSpace(lastLine(out)))
	}
	for i := range procs {
		post(i, fmt.Sprintf("sitrep from node%d", i))
	}
	wait(60*time.Second, "convergence", converged)

	// node2 is a csirt: it opens; node1 (cyclone) escalates.
	if out, err := run("crisis", "--dir", nodeDir(2), "open", "--title", "e2e", "--level", "1"); err != nil {
		t.Fatalf("crisis open: %v\n%s", err, out)
	}
	wait(30*time.Second, "the crisis to open everywhere", func() bool {
		for i := range procs {
			s, err := status(i)
			if err != nil {
				return false
			}
			if c, _ := s["crisis"].(map[string]any); c["status"] != "open" {
				return false
			}
		}
		return true
	})
	if out, err := run("crisis", "--dir", nodeDir(1), "escalate", "--level", "3"); err != nil {
		t.Fatalf("escalate: %v\n%s", err, out)
	}
	// A csirt may not escalate to 3: refused, non-zero exit, the rule named.
	if out, err := run("crisis", "--dir", nodeDir(3), "escalate", "--level", "3"); err == nil && !strings.Contains(out, "pending") {
		t.Errorf("escalate by a commission member: want a refusal or pending, got success:\n%s", out)
	}

	// kill -9 node3, keep posting, restart it: nothing acknowledged lost.
	procs[3].Process.Signal(syscall.SIGKILL)
	procs[3].Wait()
	procs[3] = nil
	post(0, "posted while node3 is down")
	post(1, "posted while node3 is down, too")
	start(3)
	wait(60*time.Second, "convergence after the restart", converged)
	out, err := run("log", "--dir", nodeDir(3), "--json")
	if err != nil {
		t.Fatalf("log: %v\n%s", err, out)
	}
	for _, id := range acked {
		if !strings.Contains(out, id) {
			t.Errorf("node3 lacks acknowledged entry %s after kill -9 and restart", id)
		}
	}

	// A wrong token is refused.
	cfg, _ := os.ReadFile(filepath.Join(nodeDir(0), "config.toml"))
	api := ""
	for _, l := range strings.Split(string(cfg), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "api") {
			api = strings.Trim(strings.TrimSpace(strings.SplitN(l, "=", 2)[1]), `"`)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+api+"/api/v1/status", nil)
	req.Header.Set("Authorization", "Bearer not-the-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: got %d, want 401", resp.StatusCode)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
