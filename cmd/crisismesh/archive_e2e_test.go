package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The after-action archive with real processes: `archive export` writes
// the file with the caller's rights and never over an existing one
// without --force; `verify` checks it with the genesis alone (the node
// stopped), prints a summary or JSON, opens bodies only with --dir, and
// exits 1 naming the first thing that does not verify.
func TestArchiveEndToEnd(t *testing.T) {
	e := newE2E(t, "--nodes", "1")
	e.start(0)
	e.wait(60*time.Second, "node0's API", func() bool { _, err := e.status(0); return err == nil })
	e.wait(30*time.Second, "a post to be accepted", func() bool {
		_, err := e.run("post", "--dir", e.nodeDir(0), "--kind", "sitrep", "for the record")
		return err == nil
	})
	out := filepath.Join(t.TempDir(), "crisis.archive")
	if o, err := e.run("archive", "export", "--dir", e.nodeDir(0), "--out", out); err != nil || !strings.Contains(o, "wrote "+out) {
		t.Fatalf("archive export: %v\n%s", err, o)
	}
	if o, err := e.run("archive", "export", "--dir", e.nodeDir(0), "--out", out); err == nil || !strings.Contains(o, "--force") {
		t.Errorf("archive export over an existing file: %v\n%s", err, o)
	}
	if o, err := e.run("archive", "export", "--dir", e.nodeDir(0), "--out", out, "--force", "--from", "2020-01-01"); err != nil {
		t.Fatalf("archive export --force --from: %v\n%s", err, o)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".crisismesh-*")); len(left) > 0 {
		t.Errorf("temporary files left beside the archive: %v", left)
	}
	if o, err := e.run("archive", "export", "--dir", e.nodeDir(0), "--out", out, "--from", "yesterday"); err == nil || !strings.Contains(o, "RFC 3339") {
		t.Errorf("archive export --from yesterday: %v\n%s", err, o)
	}
	// No node runs from here on.
	e.procs[0].Process.Signal(syscall.SIGTERM)
	e.procs[0].Wait()
	e.procs[0] = nil
	genesis := filepath.Join(e.nodeDir(0), "genesis")
	o, err := e.run("verify", out, "--genesis", genesis)
	if err != nil || !strings.Contains(o, "verifies") || !strings.Contains(o, "node0") {
		t.Fatalf("verify: %v\n%s", err, o)
	}
	t.Logf("verify:\n%s", o)
	o, err = e.run("verify", out, "--genesis", genesis, "--dir", e.nodeDir(0), "--json")
	var rep struct {
		Entries int `json:"entries"`
		Bodies  []struct {
			Text string `json:"text"`
		} `json:"bodies"`
	}
	if err != nil || json.Unmarshal([]byte(o), &rep) != nil || rep.Entries == 0 || len(rep.Bodies) != 1 || rep.Bodies[0].Text != "for the record" {
		t.Fatalf("verify --dir --json: %v\n%s", err, o)
	}
	// One flipped byte: exit 1, naming what does not verify.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.archive")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = e.run("verify", bad, "--genesis", genesis)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(o, "does not verify (rule ") {
		t.Errorf("verify of a damaged archive: %v\n%s", err, o)
	}
}
