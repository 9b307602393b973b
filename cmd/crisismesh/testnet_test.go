package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
