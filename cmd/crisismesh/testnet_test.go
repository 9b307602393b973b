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
// others, each dashboard is printed, and Ctrl-C stops them all cleanly.
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
