package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bundles through the API with real processes: `bundle export --out` writes
// anywhere the caller may (here a directory the node never sees), and
// `bundle import` of that file moves the log to a node that never met the
// exporter; an existing file is replaced only with --force. `dashboard`
// prints the login form's address and a one-time code that logs in once.
func TestBundleAndDashboardEndToEnd(t *testing.T) {
	e := newE2E(t, "--nodes", "2", "--voters", "1")
	e.start(0)
	e.wait(60*time.Second, "node0's API", func() bool { _, err := e.status(0); return err == nil })
	var id string
	e.wait(30*time.Second, "a post to be accepted", func() bool {
		out, err := e.run("post", "--dir", e.nodeDir(0), "--kind", "sitrep", "carried by hand")
		id = strings.TrimSpace(lastLine(out))
		return err == nil
	})
	out := filepath.Join(t.TempDir(), "sub", "carry.bundle")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	if o, err := e.run("bundle", "export", "--dir", e.nodeDir(0), "--all", "--out", out); err != nil || !strings.Contains(o, "wrote "+out) {
		t.Fatalf("bundle export --out %s: %v\n%s", out, err, o)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("the bundle file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".crisismesh-*")); len(left) > 0 {
		t.Errorf("temporary files left beside the bundle: %v", left)
	}
	// An existing file is replaced only with --force.
	if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err := e.run("bundle", "export", "--dir", e.nodeDir(0), "--all", "--out", out); err == nil || !strings.Contains(o, "--force") {
		t.Errorf("bundle export over an existing file: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Errorf("bundle export without --force replaced the existing file")
	}
	if o, err := e.run("bundle", "export", "--dir", e.nodeDir(0), "--all", "--out", out, "--force"); err != nil || !strings.Contains(o, "wrote "+out) {
		t.Fatalf("bundle export --force: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(out); string(b) == "keep me" {
		t.Errorf("bundle export --force left the old file")
	}

	// The dashboard: a code from the running node logs in once.
	o, err := e.run("dashboard", "--dir", e.nodeDir(0))
	if err != nil {
		t.Fatalf("dashboard: %v\n%s", err, o)
	}
	var loginURL, code string
	for _, f := range strings.Fields(o) {
		switch {
		case strings.HasPrefix(f, "http://"):
			loginURL = f
		case strings.Count(f, "-") == 3:
			code = f
		}
	}
	if loginURL == "" || code == "" || strings.Contains(o, "token") {
		t.Fatalf("dashboard printed %q, want the login form's address and a code, never the token", o)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		resp, err := noRedirect.PostForm(loginURL, url.Values{"code": {code}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("login with the code, attempt %d: got %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	// node1 alone (node0 stopped) gets the entry from the file.
	e.procs[0].Process.Signal(syscall.SIGTERM)
	e.procs[0].Wait()
	e.procs[0] = nil
	e.start(1)
	e.wait(60*time.Second, "node1's API", func() bool { _, err := e.status(1); return err == nil })
	if o, err := e.run("bundle", "import", "--dir", e.nodeDir(1), out); err != nil || !strings.Contains(o, "imported carry.bundle") {
		t.Fatalf("bundle import: %v\n%s", err, o)
	}
	if o, err := e.run("log", "--dir", e.nodeDir(1), "--json"); err != nil || !strings.Contains(o, id) {
		t.Errorf("node1's log after the import lacks %s: %v\n%s", id, err, o)
	}
}
