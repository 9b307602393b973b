package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/interop/stix"
)

// misp import and export with the built binary on a running testnet: a
// PyMISP sample goes in (twice: the second adds nothing), a file with one
// bad attribute stores nothing and names the JSON path, and the export is
// a MISP feed holding the sample's UUIDs; the feed imports back as nothing
// new, and --event writes one event file.
func TestE2EMISP(t *testing.T) {
	sample := filepath.Join("..", "..", "interop", "misp", "testdata", "existing_event.json")
	type result struct {
		Written, Unchanged, Bytes int
	}
	var res result
	e, dir := firstImport(t, &res, "misp", "import", sample)
	if res.Written != 59 || res.Bytes == 0 {
		t.Fatalf("import wrote %+v; want 59 entries (the event, 9 attributes, 49 objects)", res)
	}
	out, err := e.run("misp", "import", sample, "--dir", dir, "--json")
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Written != 0 || res.Unchanged != 59 {
		t.Fatalf("second import: %v %s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "x",
	  "Attribute": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "type": "domain", "category": "Network activity", "value": "b.example"}]}}`), 0o644)
	if out, err := e.run("misp", "import", bad, "--dir", dir); err == nil || !strings.Contains(out, "$.Event.Tag: no TLP tag") || !strings.Contains(out, "nothing stored") {
		t.Errorf("import without TLP: %v\n%s", err, out)
	}

	feed := filepath.Join(t.TempDir(), "feed")
	if out, err := e.run("misp", "export", "--out", feed, "--dir", dir); err != nil || !strings.Contains(out, "1 events") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	evs, err := misp.ReadFeed(os.DirFS(feed))
	if err != nil || len(evs) != 1 {
		t.Fatalf("the exported feed: %d events, %v", len(evs), err)
	}
	in, _ := os.ReadFile(sample)
	orig, _ := misp.Decode(in)
	if got, want := len(evs[0].Fields["Object"].([]any)), len(orig[0].Fields["Object"].([]any)); got != want || evs[0].Fields["uuid"] != orig[0].Fields["uuid"] {
		t.Errorf("feed event %v with %d objects; want %v with %d", evs[0].Fields["uuid"], got, orig[0].Fields["uuid"], want)
	}
	if _, err := os.Stat(filepath.Join(feed, "hashes.csv")); err != nil {
		t.Error(err)
	}
	if out, err := e.run("misp", "import", feed, "--dir", dir, "--json"); err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Written != 0 {
		t.Errorf("re-import of the exported feed: %v %s", err, out)
	}
	one := filepath.Join(t.TempDir(), "event.json")
	if out, err := e.run("misp", "export", "--out", one, "--event", "5a3c2fcd-8328-42bb-a95e-4f4402de0b81", "--dir", dir); err != nil {
		t.Fatalf("export --event: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(one); !strings.Contains(string(b), `"Event"`) {
		t.Errorf("--event wrote %.80s", b)
	}
	if out, err := e.run("misp", "export", "--out", feed, "--max-tlp", "red", "--dir", dir); err == nil || !strings.Contains(out, "never exported") {
		t.Errorf("--max-tlp red: %v\n%s", err, out)
	}
}

// stix import and export with the built binary on a running testnet: the
// OASIS APT1 bundle goes in (twice: the second adds nothing), a bundle
// without TLP stores nothing and names the JSON path, and the export is a
// bundle of the same objects, which imports back as nothing new.
func TestE2ESTIX(t *testing.T) {
	sample := filepath.Join("..", "..", "interop", "stix", "testdata", "apt1.json")
	var res struct{ Objects, Written, Unchanged, Bytes int }
	e, dir := firstImport(t, &res, "stix", "import", sample, "--tlp", "green")
	if res.Written != 76 || res.Objects != 76 || res.Bytes == 0 {
		t.Fatalf("import wrote %+v; want 76 entries", res)
	}
	if out, err := e.run("stix", "import", sample, "--dir", dir); err == nil || !strings.Contains(out, "$.objects[0].object_marking_refs: no TLP marking") || !strings.Contains(out, "nothing stored") {
		t.Errorf("import without TLP: %v\n%s", err, out)
	}
	out, err := e.run("stix", "import", sample, "--tlp", "green", "--dir", dir, "--json")
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Written != 0 || res.Unchanged != 76 {
		t.Fatalf("second import: %v %s", err, out)
	}
	file := filepath.Join(t.TempDir(), "bundle.json")
	if out, err := e.run("stix", "export", "--out", file, "--dir", dir); err != nil || !strings.Contains(out, "76 objects") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := stix.Decode(b)
	if err != nil || len(bundle.Objects) != 76 {
		t.Fatalf("the exported bundle: %v", err)
	}
	for _, o := range bundle.Objects {
		if err := stix.Validate(o.Fields); err != nil {
			t.Errorf("%s: %v", o.Path, err)
		}
	}
	if out, err := e.run("stix", "import", file, "--dir", dir, "--json"); err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Written != 0 {
		t.Errorf("re-import of the export: %v %s", err, out)
	}
	if out, err := e.run("stix", "export", "--out", file, "--max-tlp", "red", "--dir", dir, "--force"); err == nil || !strings.Contains(out, "never exported") {
		t.Errorf("--max-tlp red: %v\n%s", err, out)
	}
	// An existing file is replaced only with --force.
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run("stix", "export", "--out", file, "--dir", dir); err == nil || !strings.Contains(out, "add --force") {
		t.Errorf("export over an existing file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("export without --force replaced the file: %.40q", b)
	}
	if out, err := e.run("stix", "export", "--out", file, "--dir", dir, "--force"); err != nil || !strings.Contains(out, "76 objects") {
		t.Errorf("export --force: %v\n%s", err, out)
	}
}

// firstImport starts a two-node testnet and runs an import (args, on
// node0, with --json into res) until it succeeds: the node needs the
// network key first. It returns the testnet and node0's directory.
func firstImport(t *testing.T, res any, args ...string) (*e2e, string) {
	e := newE2E(t, "--nodes", "2")
	e.start(0)
	e.start(1)
	dir := e.nodeDir(0)
	e.wait(60*time.Second, "an import (the node needs the network key first)", func() bool {
		out, err := e.run(append(args, "--dir", dir, "--json")...)
		return err == nil && json.Unmarshal([]byte(out), res) == nil
	})
	return e, dir
}
