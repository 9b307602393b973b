package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/interop/stix"
)

// stix import and export with the built binary on a running testnet: the
// OASIS APT1 bundle goes in (twice: the second adds nothing), a bundle
// without TLP stores nothing and names the JSON path, and the export is a
// bundle of the same objects, which imports back as nothing new.
func TestE2ESTIX(t *testing.T) {
	e := newE2E(t, "--nodes", "2")
	e.start(0)
	e.start(1)
	dir := e.nodeDir(0)
	sample := filepath.Join("..", "..", "interop", "stix", "testdata", "apt1.json")
	var res struct{ Objects, Written, Unchanged, Bytes int }
	e.wait(60*time.Second, "an import (the node needs the network key first)", func() bool {
		out, err := e.run("stix", "import", sample, "--tlp", "green", "--dir", dir, "--json")
		return err == nil && json.Unmarshal([]byte(out), &res) == nil
	})
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
	if out, err := e.run("stix", "export", "--out", file, "--max-tlp", "red", "--dir", dir); err == nil || !strings.Contains(out, "never exported") {
		t.Errorf("--max-tlp red: %v\n%s", err, out)
	}
}
