package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/interop/misp"
)

// misp import and export with the built binary on a running testnet: a
// PyMISP sample goes in (twice: the second adds nothing), a file with one
// bad attribute stores nothing and names the JSON path, and the export is
// a MISP feed holding the sample's UUIDs; the feed imports back as nothing
// new, and --event writes one event file.
func TestE2EMISP(t *testing.T) {
	e := newE2E(t, "--nodes", "2")
	e.start(0)
	e.start(1)
	dir := e.nodeDir(0)
	sample := filepath.Join("..", "..", "interop", "misp", "testdata", "existing_event.json")
	type result struct {
		Written, Unchanged, Bytes int
	}
	var res result
	e.wait(60*time.Second, "an import (the node needs the network key first)", func() bool {
		out, err := e.run("misp", "import", sample, "--dir", dir, "--json")
		return err == nil && json.Unmarshal([]byte(out), &res) == nil
	})
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
