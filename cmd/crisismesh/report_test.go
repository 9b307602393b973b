package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// report with the built binary on a running testnet: the extension
// chooses the format, an existing file is replaced only with --force, and
// a cap above AMBER is refused.
func TestE2EReport(t *testing.T) {
	e := newE2E(t, "--nodes", "1")
	e.start(0)
	dir := e.nodeDir(0)
	md := filepath.Join(t.TempDir(), "sitrep.md")
	e.wait(60*time.Second, "a report", func() bool {
		out, err := e.run("report", "--out", md, "--dir", dir)
		return err == nil && strings.Contains(out, "wrote "+md)
	})
	if b, err := os.ReadFile(md); err != nil || !strings.HasPrefix(string(b), "# Situation report") || !strings.Contains(string(b), "TLP:AMBER at the most") {
		t.Fatalf("the Markdown report: %v\n%.300s", err, b)
	}
	if out, err := e.run("report", "--out", md, "--dir", dir); err == nil || !strings.Contains(out, "add --force") {
		t.Errorf("report over an existing file: %v\n%s", err, out)
	}
	html := filepath.Join(t.TempDir(), "sitrep.html")
	if out, err := e.run("report", "--out", html, "--max-tlp", "green", "--dir", dir, "--json"); err != nil || !strings.Contains(out, `"format": "html"`) {
		t.Errorf("report --out FILE.html: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(html); !strings.Contains(string(b), "<!doctype html>") || !strings.Contains(string(b), "TLP:GREEN") {
		t.Errorf("the HTML report: %.300s", b)
	}
	if out, err := e.run("report", "--out", filepath.Join(t.TempDir(), "r.md"), "--max-tlp", "red", "--dir", dir); err == nil || !strings.Contains(out, "at most TLP:AMBER") {
		t.Errorf("--max-tlp red: %v\n%s", err, out)
	}
	if out, err := e.run("report", "--out", filepath.Join(t.TempDir(), "r.pdf"), "--dir", dir); err == nil || !strings.Contains(out, "FILE.md or --out FILE.html") {
		t.Errorf("--out r.pdf: %v\n%s", err, out)
	}
}
