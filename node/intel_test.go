package node

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
)

// A MISP import on a node: atomic (one refused item stores nothing), a
// second import adds nothing, the edited event only what changed, and the
// export gives back every UUID, validated.
func TestMISPImportExport(t *testing.T) {
	nodes, _ := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1}, func(int) Options { return Options{} })
	n := nodes[0]
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/misp/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	orig := read("existing_event.json")
	evs, _ := misp.Decode(orig)
	items := len(misp.Map(evs, misp.Options{}).Items)

	// One bad attribute: nothing stored, unless --skip-invalid.
	bad := []byte(`{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "x", "Tag": [{"name": "tlp:green"}],
	  "Attribute": [{"uuid": "not-a-uuid", "type": "domain", "category": "Network activity", "value": "a.example"},
	                {"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "type": "domain", "category": "Network activity", "value": "b.example"}]}}`)
	before := n.Store().Digest()
	res, err := n.ImportMISP(ctx, bad, MISPImportRequest{})
	if !errors.Is(err, ErrMISPRefused) || len(res.Refused) != 1 || res.Refused[0].Path != "$.Event.Attribute[0].uuid" || n.Store().Digest() != before {
		t.Fatalf("import with a bad attribute: %v, refused %v; want it refused with nothing stored", err, res.Refused)
	}
	if res, err = n.ImportMISP(ctx, bad, MISPImportRequest{SkipInvalid: true}); err != nil || res.Written != 2 || len(res.Refused) != 1 {
		t.Fatalf("--skip-invalid: %+v, %v; want the event and one attribute written, one refused", res, err)
	}

	res, err = n.ImportMISP(ctx, orig, MISPImportRequest{})
	if err != nil || res.Written != items || res.Unchanged != 0 {
		t.Fatalf("import: %+v, %v; want %d entries", res, err, items)
	}
	if res, err = n.ImportMISP(ctx, orig, MISPImportRequest{}); err != nil || res.Written != 0 || res.Unchanged != items {
		t.Fatalf("second import: %+v, %v; want nothing written", res, err)
	}
	if res, err = n.ImportMISP(ctx, read("existing_event_edited.json"), MISPImportRequest{}); err != nil || res.Written != 1 {
		t.Fatalf("edited import: %+v, %v; want one entry (the edited object)", res, err)
	}

	out, err := n.ExportMISP(MISPExportRequest{Event: "5a3c2fcd-8328-42bb-a95e-4f4402de0b81"})
	if err != nil {
		t.Fatal(err)
	}
	ev := out.Events[0]["Event"].(map[string]any)
	if got, want := len(ev["Object"].([]any)), len(evs[0].Fields["Object"].([]any)); got != want {
		t.Errorf("exported %d objects, want %d", got, want)
	}
	// The edited object comes out in its new version (its attribute now
	// tagged "blah").
	found := false
	for _, o := range ev["Object"].([]any) {
		om := o.(map[string]any)
		if om["uuid"] == "5a3cd5b6-9568-4342-b2ab-4c62950d210f" {
			a := om["Attribute"].([]any)[0].(map[string]any)
			_, found = a["Tag"]
		}
	}
	if !found {
		t.Error("the edited object was exported in its old version")
	}
	// TLP:RED is never exported; AMBER+STRICT only for a named organisation.
	if _, err := n.ExportMISP(MISPExportRequest{MaxTLP: "red"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("--max-tlp red: %v", err)
	}
	if _, err := n.ExportMISP(MISPExportRequest{MaxTLP: "amber+strict"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("--max-tlp amber+strict without an organisation: %v", err)
	}
	// --since the last entry: nothing changed after it.
	last, err := n.Store().Entries(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := n.ExportMISP(MISPExportRequest{Since: last[len(last)-1].ID().String()}); err != nil || len(out.Events) != 0 {
		t.Errorf("--since the last entry: %d events, %v", len(out.Events), err)
	}
	// Distribution 0 (your organisation only): sealed to this member
	// alone, not under the network key, and exported back.
	res, err = n.ImportMISP(ctx, read("misp_event.json"), MISPImportRequest{TLP: "amber"})
	if err != nil || res.Written != 3 {
		t.Fatalf("misp_event.json: %+v, %v", res, err)
	}
	netKey, _ := n.Store().NetworkKey()
	all, _ := n.Store().Entries(nil, 0)
	if e := all[len(all)-1]; e.Header.KeyID == netKey.ID() {
		t.Error("an item of distribution 0 was sealed under the network key")
	}
	if out, err := n.ExportMISP(MISPExportRequest{Event: "5758ebf5-c898-48e6-9fe9-5665c0a83866"}); err != nil || len(out.Events[0]["Event"].(map[string]any)["Attribute"].([]any)) != 2 {
		t.Errorf("export of misp_event.json: %v", err)
	}
	// Entries are shown with their text and label.
	v := n.ViewEntry(last[len(last)-1])
	if v.Kind != string(log.KindIntel) || v.TLP != string(log.TLPClear) {
		t.Errorf("intel entry shown as %+v", v)
	}
}

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

// The typed client hands a refused import's refusals back beside the
// error (the 422 body's result fields), for MISP and STIX alike.
func TestClientReturnsImportRefusals(t *testing.T) {
	a := newAPITester(t)
	ctx := context.Background()
	stixBad := []byte(`{"type": "bundle", "id": "bundle--44af6c39-c09b-49c5-9de2-394224b04982", "objects": [
	  {"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "name": "CERT",
	   "created": "2020-01-01T00:00:00", "modified": "2020-01-01T00:00:00.000Z"}]}`)
	sres, err := a.client().ImportSTIX(ctx, stixBad, "green", false)
	var e *api.Error
	if !errors.As(err, &e) || e.Code != "refused" || sres.Objects != 1 || len(sres.Refused) == 0 || sres.Refused[0].Path != "$.objects[0].created" {
		t.Errorf("STIX: %v, %+v; want refused with the refusal at $.objects[0].created", err, sres)
	}
	mispBad := []byte(`{"Event": {"uuid": "5a3c2fcd-8328-42bb-a95e-4f4402de0b81", "info": "x", "Tag": [{"name": "tlp:green"}, {"name": "tlp:red"}]}}`)
	mres, err := a.client().ImportMISP(ctx, mispBad, "", false)
	if !errors.As(err, &e) || e.Code != "refused" || mres.Events != 1 || len(mres.Refused) == 0 {
		t.Errorf("MISP: %v, %+v; want refused with its refusals", err, mres)
	}
}
