package main

import (
	"encoding/json"
	"errors"
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
	e := newE2E(t, "--nodes", "4", "--voters", "3")
	run, nodeDir, wait, status := e.run, e.nodeDir, e.wait, e.status
	procs := e.procs
	for i := range procs {
		e.start(i)
	}
	start := e.start
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

// e2e is a testnet of real processes of the binary built for the test.
type e2e struct {
	t     *testing.T
	bin   string
	dir   string
	procs []*exec.Cmd
}

// newE2E builds the binary and prepares a testnet with the testnet flags
// given (--nodes N …); no node is started.
func newE2E(t *testing.T, testnetFlags ...string) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and starts processes")
	}
	e := &e2e{t: t, bin: filepath.Join(t.TempDir(), "crisismesh"), dir: t.TempDir()}
	if out, err := exec.Command("go", "build", "-o", e.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base, err := node.FreeBasePort(10)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("base port %d", base)
	args := append([]string{"testnet", "--dir", e.dir, "--base-port", fmt.Sprint(base)}, testnetFlags...)
	if out, err := e.run(args...); err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(e.dir)
	e.procs = make([]*exec.Cmd, len(entries))
	t.Cleanup(func() {
		for _, p := range e.procs {
			if p != nil && p.Process != nil {
				p.Process.Signal(syscall.SIGTERM)
				p.Wait()
			}
		}
	})
	return e
}

func (e *e2e) run(args ...string) (string, error) {
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	return string(out), err
}

func (e *e2e) nodeDir(i int) string { return filepath.Join(e.dir, fmt.Sprintf("node%d", i)) }

// start runs node i (a data directory made by testnet, or one added to
// procs) with its log in the testnet directory.
func (e *e2e) start(i int) {
	e.startDir(i, e.nodeDir(i))
}

func (e *e2e) startDir(i int, dir string) {
	cmd := exec.Command(e.bin, "run", "--dir", dir)
	logf, err := os.Create(filepath.Join(e.dir, fmt.Sprintf("node%d.log", i)))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	for len(e.procs) <= i {
		e.procs = append(e.procs, nil)
	}
	e.procs[i] = cmd
}

func (e *e2e) status(i int) (map[string]any, error) {
	return e.statusDir(e.nodeDir(i))
}

func (e *e2e) statusDir(dir string) (map[string]any, error) {
	out, err := exec.Command(e.bin, "status", "--dir", dir, "--json").Output()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(out, &m)
}

// wait polls cond until it holds, or fails the test after d with the tail
// of every node's log.
func (e *e2e) wait(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for i := range e.procs {
				b, _ := os.ReadFile(filepath.Join(e.dir, fmt.Sprintf("node%d.log", i)))
				e.t.Logf("node%d log tail:\n%s", i, tail(string(b), 15))
			}
			e.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exitCode returns the exit code of a finished command's error.
func exitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Governance with real processes: with two admins who must agree, a new
// member initialised on its own joins with the unchanged genesis (join
// --peer) and waits; one admin's `member add` stays pending (exit 3 after
// --wait) and the new node is refused at the gate; a non-admin's approval
// is refused (exit 1); the second admin approves (exit 0); the new node
// is admitted, catches up and its post is read on the others. No running
// node restarts.
func TestMemberAddEndToEnd(t *testing.T) {
	e := newE2E(t, "--nodes", "3", "--admins", "2", "--admin-threshold", "2")
	for i := range 3 {
		e.start(i)
	}
	e.wait(60*time.Second, "every node's API", func() bool {
		for i := range 3 {
			if _, err := e.status(i); err != nil {
				return false
			}
		}
		return true
	})
	de := filepath.Join(e.dir, "cert-de")
	if out, err := e.run("init", "--name", "cert-de", "--dir", de); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	// Its own ports, beside the testnet's.
	base, err := node.FreeBasePort(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(de)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", base)}
	cfg.API = fmt.Sprintf("127.0.0.1:%d", base+500)
	cfg.MDNS = false
	os.Remove(filepath.Join(de, node.ConfigFile))
	if err := node.WriteConfig(de, cfg); err != nil {
		t.Fatal(err)
	}
	peerOf := func(i int) string {
		c, err := node.LoadConfig(e.nodeDir(i))
		if err != nil {
			t.Fatal(err)
		}
		card, err := node.ReadCard(e.nodeDir(i))
		if err != nil {
			t.Fatal(err)
		}
		return c.Listen[0] + "/p2p/" + card.PeerID().String()
	}
	out, err := e.run("join", "--genesis", filepath.Join(e.nodeDir(0), node.GenesisFile), "--dir", de, "--peer", peerOf(1))
	if err != nil || !strings.Contains(out, "does not list cert-de") {
		t.Fatalf("join with the unchanged genesis: %v\n%s", err, out)
	}
	e.startDir(3, de)
	card := filepath.Join(de, node.CardFile)
	out, err = e.run("member", "add", card, "--dir", e.nodeDir(0))
	if code := exitCode(err); code != 2 {
		t.Errorf("member add without --role: exit %d, want 2\n%s", code, out)
	}
	out, err = e.run("member", "add", card, "--role", "csirt", "--addr", cfg.Listen[0], "--wait", "2s", "--json", "--dir", e.nodeDir(0))
	if code := exitCode(err); code != 3 {
		t.Fatalf("one admin's member add: exit %d, want 3 (waiting for approvals)\n%s", code, out)
	}
	var res node.UpdateResult
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &res); err != nil || res.WaitingFor != "approvals" {
		t.Fatalf("member add --json: %v\n%s", err, out)
	}
	out, err = e.run("member", "add", card, "--role", "csirt", "--dir", e.nodeDir(2))
	if code := exitCode(err); code != 1 || !strings.Contains(out, "signer-admin") {
		t.Errorf("member add on a non-admin's node: exit %d, want 1 naming signer-admin\n%s", code, out)
	}
	e.wait(30*time.Second, "node2 to list the pending update", func() bool {
		out, err := e.run("member", "list", "--json", "--dir", e.nodeDir(2))
		return err == nil && strings.Contains(out, res.UpdateID)
	})
	if st, err := e.statusDir(de); err == nil && st["digest"] != nil {
		s1, _ := e.status(1)
		if st["digest"] == s1["digest"] {
			t.Error("the new node holds the log before it is added")
		}
	}
	out, err = e.run("member", "approve", res.UpdateID, "--dir", e.nodeDir(2))
	if code := exitCode(err); code != 1 || !strings.Contains(out, "signer-admin") {
		t.Errorf("approval by a non-admin: exit %d, want 1 naming signer-admin\n%s", code, out)
	}
	out, err = e.run("member", "approve", res.UpdateID, "--dir", e.nodeDir(1))
	if err != nil {
		t.Fatalf("the second admin approves: %v\n%s", err, out)
	}
	e.wait(90*time.Second, "the new member to catch up on the whole log", func() bool {
		st, err := e.statusDir(de)
		if err != nil {
			return false
		}
		s0, err := e.status(0)
		return err == nil && st["digest"] == s0["digest"]
	})
	var postOut string
	e.wait(30*time.Second, "the new member to post", func() bool {
		postOut, err = e.run("post", "--dir", de, "hello from cert-de")
		return err == nil
	})
	id := strings.TrimSpace(lastLine(postOut))
	e.wait(30*time.Second, "node2 to read the new member's post", func() bool {
		out, err := e.run("log", "--dir", e.nodeDir(2), "--json")
		return err == nil && strings.Contains(out, id) && strings.Contains(out, "hello from cert-de")
	})
}

// TestTestnetUp runs a prepared 3-node testnet in one process with
// `testnet up`: every node answers on its API, a post on one reaches the
// others, posts carry RSIT/NIS2 classification (a wrong value refused)
// and the EXERCISE mark while an exercise is open, each dashboard is
// printed, and Ctrl-C stops them all cleanly.
func TestTestnetUp(t *testing.T) {
	e := newE2E(t, "--nodes", "3")
	outPath := filepath.Join(t.TempDir(), "up.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	up := exec.Command(e.bin, "testnet", "up", "--dir", e.dir)
	up.Stdout, up.Stderr = out, out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	e.procs = append(e.procs, up) // stopped by the cleanup if the test fails
	e.wait(60*time.Second, "every node's API", func() bool {
		for i := range 3 {
			if _, err := e.status(i); err != nil {
				return false
			}
		}
		return true
	})
	if o, err := e.run("post", "--dir", e.nodeDir(0), "--kind", "sitrep", "posted to a testnet that runs in one process"); err != nil {
		t.Fatalf("post: %v\n%s", err, o)
	}
	e.wait(60*time.Second, "the post on node2", func() bool {
		o, err := e.run("log", "--dir", e.nodeDir(2))
		return err == nil && strings.Contains(o, "posted to a testnet that runs in one process")
	})

	// post classifies with the RSIT and NIS2 flags; a value the taxonomy
	// lacks is refused with the allowed values listed.
	if o, err := e.run("post", "--dir", e.nodeDir(1), "--kind", "incident", "--rsit-class", "intrusions", "--rsit-type", "system-compromise",
		"--sector", "energy,health", "--impact", "red", "--outlook", "worsening", "--json", "SCADA hosts compromised"); err != nil ||
		!strings.Contains(o, `"rsit_class": "intrusions"`) || !strings.Contains(o, `"sectors": [`) {
		t.Errorf("classified post: %v\n%s", err, o)
	}
	if o, err := e.run("post", "--dir", e.nodeDir(1), "--rsit-class", "intrusion", "x"); err == nil || !strings.Contains(o, "allowed: ") || !strings.Contains(o, "intrusions") {
		t.Errorf("post with an unknown RSIT class: %v\n%s", err, o)
	}
	// While an exercise is open, posts are marked EXERCISE in the log.
	if o, err := e.run("crisis", "--dir", e.nodeDir(2), "open", "--exercise", "--title", "Blue OLEx", "--level", "1"); err != nil {
		t.Fatalf("crisis open --exercise: %v\n%s", err, o)
	}
	e.wait(60*time.Second, "the exercise open on node0", func() bool {
		s, err := e.status(0)
		c, _ := s["crisis"].(map[string]any)
		return err == nil && c["status"] == "open" && c["exercise"] == true
	})
	if o, err := e.run("post", "--dir", e.nodeDir(0), "inject 3 received"); err != nil {
		t.Fatalf("post: %v\n%s", err, o)
	}
	if o, err := e.run("log", "--dir", e.nodeDir(0)); err != nil || !strings.Contains(o, "EXERCISE inject 3 received") || strings.Contains(o, "EXERCISE posted to a testnet") {
		t.Errorf("log during an exercise: %v\n%s", err, o)
	}

	printed, _ := os.ReadFile(outPath)
	if got := strings.Count(string(printed), "dashboard http://127.0.0.1:"); got != 3 {
		t.Errorf("testnet up printed %d dashboard addresses, want 3:\n%s", got, printed)
	}
	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := up.Wait(); err != nil {
		printed, _ := os.ReadFile(outPath)
		t.Fatalf("testnet up after Ctrl-C: %v, want exit 0\n%s", err, printed)
	}
	e.procs[len(e.procs)-1] = nil
	if _, err := e.status(1); err == nil {
		t.Error("node1 still answers after testnet up stopped")
	}

	// A directory with no testnet in it: exit 1, saying how to make one.
	o, err := e.run("testnet", "up", "--dir", t.TempDir())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(o, "crisismesh testnet --nodes") {
		t.Errorf("testnet up on an empty directory: %v\n%s", err, o)
	}
}
