package stix

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/replication/log"
)

const (
	amberID = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	greenID = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	white1  = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	ind1    = "indicator--33fe3b22-0201-47cf-85d0-97c02164528d"
	ident1  = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
)

func indicator(id string, extra map[string]any) map[string]any {
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id,
		"created": "2014-05-08T09:00:00.000Z", "modified": "2014-05-08T09:00:00.000Z",
		"pattern_type": "stix", "pattern": "[ipv4-addr:value = '10.0.0.1']", "valid_from": "2014-05-08T09:00:00Z"}
	maps.Copy(o, extra)
	return o
}

func bundleOf(t testing.TB, objs ...map[string]any) []byte {
	t.Helper()
	list := make([]any, len(objs))
	for i, o := range objs {
		list[i] = o
	}
	b, err := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--44af6c39-c09b-49c5-9de2-394224b04982", "objects": list})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func plan(t testing.TB, data []byte, opts Options) Plan {
	t.Helper()
	b, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return Map(b, opts)
}

// asData decodes JSON (or re-encodes a value) into plain data to compare.
func asData(t *testing.T, v any) any {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = misp.CanonicalJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func parts(items []Item) []misp.Part {
	var ps []misp.Part
	for _, it := range items {
		in := it.Intel
		ps = append(ps, misp.Part{Intel: &in, TLP: it.Body.TLP})
	}
	return ps
}

// TestRoundTripSamples: every sample bundle → entries → export gives the
// same objects (as data; each with the TLP marking it was imported
// under), and each validates.
func TestRoundTripSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 4 {
		t.Fatalf("samples: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := plan(t, raw, Options{TLP: log.TLPGreen})
			if len(p.Refused) > 0 {
				t.Fatalf("refused: %v", p.Refused)
			}
			in := asData(t, raw).(map[string]any)["objects"].([]any)
			if len(p.Items) != len(in) {
				t.Fatalf("%d items for %d objects", len(p.Items), len(in))
			}
			for _, it := range p.Items {
				if it.Intel.Format != log.IntelSTIX || it.Intel.ID == "" || it.Body.Kind != log.KindIntel {
					t.Fatalf("item %+v", it.Intel)
				}
			}
			out, withheld, err := Export(parts(p.Items), misp.ExportOptions{})
			if err != nil || len(withheld) > 0 {
				t.Fatalf("export: %v, withheld %v", err, withheld)
			}
			for _, o := range in {
				om := o.(map[string]any)
				if !wellKnown(om["id"].(string)) {
					om["object_marking_refs"] = []any{greenID}
				}
			}
			if got := asData(t, out["objects"]); !reflect.DeepEqual(got, asData(t, in)) {
				t.Fatalf("round trip differs:\n got %v\nwant %v", got, in)
			}
			again, _, err := Export(parts(p.Items), misp.ExportOptions{})
			if err != nil || again["id"] != out["id"] {
				t.Fatalf("export not deterministic: %v %v", again["id"], out["id"])
			}
		})
	}
}

func TestReimportAddsNothing(t *testing.T) {
	raw, _ := os.ReadFile("testdata/apt1.json")
	p := plan(t, raw, Options{TLP: log.TLPAmber})
	known := map[string]*log.Intel{}
	fresh, unchanged := Fresh(p.Items, known)
	if len(fresh) != len(p.Items) || unchanged != 0 {
		t.Fatalf("first import: %d fresh, %d unchanged", len(fresh), unchanged)
	}
	for _, it := range fresh {
		in := it.Intel
		known[in.ID] = &in
	}
	if fresh, unchanged := Fresh(p.Items, known); len(fresh) != 0 || unchanged != len(p.Items) {
		t.Fatalf("second import: %d fresh, %d unchanged", len(fresh), unchanged)
	}
	newer := plan(t, bundleOf(t, indicator(ind1, map[string]any{"object_marking_refs": []any{amberID}})), Options{})
	old := plan(t, bundleOf(t, indicator(ind1, map[string]any{"object_marking_refs": []any{amberID}, "modified": "2013-01-01T00:00:00.000Z", "created": "2013-01-01T00:00:00.000Z"})), Options{})
	known = map[string]*log.Intel{ind1: &old.Items[0].Intel}
	if fresh, _ := Fresh(newer.Items, known); len(fresh) != 1 {
		t.Fatal("a newer modified must be fresh")
	}
	known = map[string]*log.Intel{ind1: &newer.Items[0].Intel}
	if fresh, _ := Fresh(old.Items, known); len(fresh) != 0 {
		t.Fatal("an older modified must not be fresh")
	}
}

func TestRefusals(t *testing.T) {
	tlp := map[string]any{"object_marking_refs": []any{amberID}}
	withTLP := func(extra map[string]any) map[string]any {
		o := indicator(ind1, tlp)
		maps.Copy(o, extra)
		return o
	}
	cases := []struct {
		name   string
		objs   []map[string]any
		opts   Options
		path   string
		reason string
	}{
		{"two TLP markings", []map[string]any{withTLP(map[string]any{"object_marking_refs": []any{amberID, greenID}})}, Options{}, "$.objects[0].object_marking_refs[1]", "exclude each other"},
		{"TLP marking and label", []map[string]any{withTLP(map[string]any{"labels": []any{"tlp:red"}})}, Options{}, "$.objects[0].labels[0]", "exclude each other"},
		{"missing TLP", []map[string]any{indicator(ind1, nil)}, Options{}, "$.objects[0].object_marking_refs", "no TLP marking"},
		{"malformed id", []map[string]any{withTLP(map[string]any{"id": "indicator--33fe3b22-0201-47cf-85d0"})}, Options{}, "$.objects[0].id", "malformed id"},
		{"id of another type", []map[string]any{withTLP(map[string]any{"id": "malware--33fe3b22-0201-47cf-85d0-97c02164528d"})}, Options{}, "$.objects[0].id", "malformed id"},
		{"duplicate id", []map[string]any{withTLP(nil), withTLP(nil)}, Options{}, "$.objects[1].id", "duplicate id"},
		{"timestamp without zone", []map[string]any{withTLP(map[string]any{"valid_from": "2014-05-08T09:00:00"})}, Options{}, "$.objects[0].valid_from", "with a zone"},
		{"timestamp not UTC", []map[string]any{withTLP(map[string]any{"modified": "2014-05-08T09:00:00+02:00"})}, Options{}, "$.objects[0].modified", "UTC"},
		{"unknown reference", []map[string]any{withTLP(map[string]any{"created_by_ref": ident1})}, Options{}, "$.objects[0].created_by_ref", "neither in the bundle"},
		{"unknown marking", []map[string]any{withTLP(map[string]any{"object_marking_refs": []any{amberID, "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5a41db"}})}, Options{}, "$.objects[0].object_marking_refs[1]", "neither in the bundle"},
		{"malformed reference", []map[string]any{withTLP(map[string]any{"created_by_ref": "me"})}, Options{}, "$.objects[0].created_by_ref", "malformed reference"},
		{"red", []map[string]any{withTLP(map[string]any{"object_marking_refs": []any{"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"}})}, Options{}, "$.objects[0].object_marking_refs", "RED"},
		{"schema", []map[string]any{withTLP(map[string]any{"pattern_type": nil})}, Options{}, "$.objects[0]", "does not validate"},
		{"not an object", nil, Options{}, "$.objects[0]", "not a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if tc.objs == nil {
				data = []byte(`{"type":"bundle","id":"bundle--44af6c39-c09b-49c5-9de2-394224b04982","objects":[3]}`)
			} else {
				data = bundleOf(t, tc.objs...)
			}
			p := plan(t, data, tc.opts)
			if !slices.ContainsFunc(p.Refused, func(pr misp.Problem) bool {
				return pr.Path == tc.path && strings.Contains(pr.Reason, tc.reason)
			}) {
				t.Fatalf("want %s: …%s…, refused %v", tc.path, tc.reason, p.Refused)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	ident := map[string]any{"type": "identity", "spec_version": "2.1", "id": ident1, "name": "CERT",
		"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "object_marking_refs": []any{white1}}
	ind := indicator(ind1, map[string]any{"created_by_ref": ident1, "object_marking_refs": []any{greenID},
		"granular_markings": []any{map[string]any{"marking_ref": amberID, "selectors": []any{"pattern"}}}})
	p := plan(t, bundleOf(t, ident, ind), Options{})
	if len(p.Refused) > 0 {
		t.Fatalf("refused: %v", p.Refused)
	}
	if p.Items[0].Body.TLP != log.TLPClear || p.Items[1].Body.TLP != log.TLPAmber {
		t.Fatalf("TLP: %s, %s", p.Items[0].Body.TLP, p.Items[1].Body.TLP)
	}
	if !slices.ContainsFunc(p.Notes, func(n misp.Problem) bool { return strings.Contains(n.Reason, "TLP 1.0") }) {
		t.Fatalf("no note on TLP 1.0: %v", p.Notes)
	}
	p = plan(t, bundleOf(t, indicator(ind1, map[string]any{"labels": []any{"TLP:WHITE"}})), Options{})
	if len(p.Refused) > 0 || p.Items[0].Body.TLP != log.TLPClear {
		t.Fatalf("legacy label: %v %v", p.Refused, p.Items)
	}
	p = plan(t, bundleOf(t, indicator(ind1, nil)), Options{TLP: log.TLPAmber})
	if len(p.Refused) > 0 || p.Items[0].Body.TLP != log.TLPAmber || len(p.Notes) != 1 {
		t.Fatalf("assumed TLP: %v %v %v", p.Refused, p.Items, p.Notes)
	}
}

func TestExportNeverWidens(t *testing.T) {
	ident := map[string]any{"type": "identity", "spec_version": "2.1", "id": ident1, "name": "CERT",
		"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z"}
	rel := map[string]any{"type": "relationship", "spec_version": "2.1", "id": "relationship--44af6c39-c09b-49c5-9de2-394224b04983",
		"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "relationship_type": "related-to",
		"source_ref": ind1, "target_ref": ident1}
	p := plan(t, bundleOf(t, ident, indicator(ind1, nil), rel), Options{TLP: log.TLPGreen})
	ps := parts(p.Items)
	ps[1].TLP = log.TLPAmberStrict
	if _, _, err := Export(ps, misp.ExportOptions{MaxTLP: log.TLPRed}); !errors.Is(err, misp.ErrWiden) {
		t.Fatalf("red: %v", err)
	}
	if _, _, err := Export(ps, misp.ExportOptions{MaxTLP: log.TLPAmberStrict}); !errors.Is(err, misp.ErrWiden) {
		t.Fatalf("amber+strict without org: %v", err)
	}
	out, withheld, err := Export(ps, misp.ExportOptions{})
	if err != nil || len(out["objects"].([]any)) != 1 || len(withheld) != 2 {
		t.Fatalf("amber cap: %v, %v, withheld %v", err, out, withheld)
	}
	if !strings.Contains(withheld[1].Reason, ind1) {
		t.Fatalf("relationship to a withheld indicator: %v", withheld)
	}
	out, withheld, err = Export(ps, misp.ExportOptions{MaxTLP: log.TLPAmberStrict, StrictOrg: "CERT-EU"})
	if err != nil || len(out["objects"].([]any)) != 3 || len(withheld) != 0 {
		t.Fatalf("amber+strict with org: %v, withheld %v", err, withheld)
	}
	ps[1].TLP = log.TLPRed
	if _, withheld, _ := Export(ps, misp.ExportOptions{MaxTLP: log.TLPAmberStrict, StrictOrg: "CERT-EU"}); len(withheld) != 2 || !strings.Contains(withheld[0].Reason, "RED") {
		t.Fatalf("red exported: %v", withheld)
	}
	// The newest version counts.
	newer := p.Items[1]
	newer.Intel.Version++
	newer.Intel.Data = []byte(strings.Replace(string(newer.Intel.Data), "10.0.0.1", "10.0.0.2", 1))
	out, _, err = Export(append(parts(p.Items), parts([]Item{newer})...), misp.ExportOptions{})
	if err != nil || !strings.Contains(string(must(misp.CanonicalJSON(out))), "10.0.0.2") {
		t.Fatalf("newest version: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeRefusesNonBundles(t *testing.T) {
	for _, s := range []string{`[]`, `{"id":"indicator--33fe3b22-0201-47cf-85d0-97c02164528d"}`, `{"type":"bundle","id":"x"}`, `{"type":"bundle","id":"bundle--44af6c39-c09b-49c5-9de2-394224b04982","objects":{}}`, `{"type":"bundle"} x`, strings.Repeat("[", 100)} {
		if _, err := Decode([]byte(s)); !errors.Is(err, ErrFormat) {
			t.Errorf("%.40s: %v", s, err)
		}
	}
}

// One STIX object on its own reads as a bundle of it, at path $; OASIS's
// interop example (a lone campaign marked TLP 1.0 RED, with references to
// objects it does not carry) is then refused with every reason.
func TestLoneObject(t *testing.T) {
	raw, err := os.ReadFile("testdata/refused/interop-objectmarking-test.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(raw)
	if err != nil || len(b.Objects) != 1 || b.Objects[0].Path != "$" {
		t.Fatalf("decode: %v, %+v", err, b)
	}
	p := Map(b, Options{TLP: log.TLPGreen})
	var got []string
	for _, r := range p.Refused {
		got = append(got, r.Path)
	}
	for _, want := range []string{"$.created_by_ref", "$.object_marking_refs"} {
		if !slices.Contains(got, want) {
			t.Errorf("refusals at %v; want one at %s", got, want)
		}
	}
	if len(p.Items) != 0 {
		t.Errorf("%d items stored from a refused object", len(p.Items))
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			return
		}
		p := Map(b, Options{TLP: log.TLPAmber})
		if len(p.Items)+len(p.Refused) == 0 && len(b.Objects) > 0 {
			t.Fatal("objects neither mapped nor refused")
		}
		if _, _, err := Export(parts(p.Items), misp.ExportOptions{}); err != nil {
			t.Fatalf("a mapped bundle does not export: %v", err)
		}
	})
}

func TestSchemasValidateSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct{ Objects []map[string]any }
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatal(err)
		}
		for i, o := range bundle.Objects {
			if err := Validate(o); err != nil {
				t.Errorf("%s objects[%d]: %v", f, i, err)
			}
		}
	}
}
