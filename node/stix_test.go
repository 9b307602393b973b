package node

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// A STIX import on a node: atomic (one refused object stores nothing), a
// second import adds nothing, and the export gives back every object,
// validated, never wider than asked.
func TestSTIXImportExport(t *testing.T) {
	nodes, _ := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1}, func(int) Options { return Options{} })
	n := nodes[0]
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	apt1, err := os.ReadFile("../interop/stix/testdata/apt1.json")
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"type": "bundle", "id": "bundle--44af6c39-c09b-49c5-9de2-394224b04982", "objects": [
	  {"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "name": "CERT",
	   "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
	   "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
	  {"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5f0", "name": "CERT",
	   "created": "2020-01-01T00:00:00", "modified": "2020-01-01T00:00:00.000Z"}]}`)
	before := n.Store().Digest()
	res, err := n.ImportSTIX(ctx, bad, STIXImportRequest{TLP: "green"})
	if !errors.Is(err, ErrSTIXRefused) || len(res.Refused) == 0 || res.Refused[0].Path != "$.objects[1].created" || n.Store().Digest() != before {
		t.Fatalf("import with a bad object: %v, refused %v; want it refused with nothing stored", err, res.Refused)
	}
	if res, err = n.ImportSTIX(ctx, bad, STIXImportRequest{TLP: "green", SkipInvalid: true}); err != nil || res.Written != 1 {
		t.Fatalf("--skip-invalid: %+v, %v; want one object written", res, err)
	}
	if _, err := n.ImportSTIX(ctx, apt1, STIXImportRequest{}); !errors.Is(err, ErrSTIXRefused) {
		t.Fatalf("import without TLP markings or --tlp: %v", err)
	}
	res, err = n.ImportSTIX(ctx, apt1, STIXImportRequest{TLP: "green"})
	if err != nil || res.Written != res.Objects || res.Objects != 76 {
		t.Fatalf("import: %+v, %v; want all 76 objects written", res, err)
	}
	if res, err = n.ImportSTIX(ctx, apt1, STIXImportRequest{TLP: "green"}); err != nil || res.Written != 0 || res.Unchanged != 76 {
		t.Fatalf("second import: %+v, %v; want nothing written", res, err)
	}
	out, err := n.ExportSTIX(STIXExportRequest{})
	if err != nil || len(out.Bundle["objects"].([]any)) != 77 || len(out.Withheld) != 0 {
		t.Fatalf("export: %v, withheld %v", err, out.Withheld)
	}
	if out, err := n.ExportSTIX(STIXExportRequest{MaxTLP: "clear"}); err != nil || len(out.Bundle["objects"].([]any)) != 0 || len(out.Withheld) != 77 {
		t.Fatalf("export capped at clear: %v, withheld %d", err, len(out.Withheld))
	}
	if _, err := n.ExportSTIX(STIXExportRequest{MaxTLP: "red"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("--max-tlp red: %v", err)
	}
	if _, err := n.ExportSTIX(STIXExportRequest{MaxTLP: "amber+strict"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("--max-tlp amber+strict without an organisation: %v", err)
	}
}
