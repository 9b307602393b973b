package misp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/crisismesh/crisismesh/replication/log"
)

// samples are the MISP events of testdata (testdata/README.md says where
// each comes from).
var samples = []string{
	"misp_event.json",
	"57c4445b-c548-4654-af0b-4be3950d210f.json",
	"existing_event.json",
	// PyMISP's own test events (testdata/README.md): empty lists, shadow
	// attributes, sightings, galaxies, Japanese text, many objects.
	"pymisp/malware_exist.json",
	"pymisp/shadow.json",
	"pymisp/japanese_test.json",
	"pymisp/sighting_1.json",
	"pymisp/sighting_2.json",
	"pymisp/to_delete1.json",
	"pymisp/to_delete3.json",
	"pymisp/mainly_objects_2.json",
	"pymisp/galaxy_1.json",
}

func readSample(t testing.TB, name string) []Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// parts turns a plan's items into what a node would hold.
func parts(items []Item) []Part {
	var ps []Part
	for _, it := range items {
		in := it.Intel
		ps = append(ps, Part{Intel: &in, TLP: it.Body.TLP})
	}
	return ps
}

// withoutTLP returns v (JSON values) without tlp tags anywhere, through
// JSON, so that maps compare as data.
func withoutTLP(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k, v := range x {
				if k == "Tag" {
					var kept []any
					for _, tag := range v.([]any) {
						if ns, _, _ := splitTag(tag.(map[string]any)["name"].(string)); ns != nsTLP {
							kept = append(kept, tag)
						}
					}
					if kept == nil {
						delete(x, k)
						continue
					}
					x[k] = kept
					continue
				}
				x[k] = walk(v)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return x
	}
	return walk(out)
}

// TestRoundTrip: every sample → entries → export gives the same event
// (attributes, objects, tags, UUIDs, every field, compared as data) but
// for its tlp tags, which say the entry's label, and validates.
func TestRoundTrip(t *testing.T) {
	for _, name := range samples {
		t.Run(name, func(t *testing.T) {
			evs := readSample(t, name)
			plan := Map(evs, Options{TLP: log.TLPAmber})
			if len(plan.Refused) > 0 {
				t.Fatalf("refused: %v", plan.Refused)
			}
			out, withheld, err := Export(parts(plan.Items), ExportOptions{MaxTLP: log.TLPAmber})
			if err != nil || len(withheld) > 0 {
				t.Fatalf("Export: %v, withheld %v", err, withheld)
			}
			if len(out) != len(evs) {
				t.Fatalf("exported %d events, want %d", len(out), len(evs))
			}
			for i, ev := range evs {
				want := withoutTLP(t, map[string]any{"Event": ev.Fields})
				got := withoutTLP(t, out[i])
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("event %d: export differs from the input (-in +out):\n%s", i, d)
				}
				tlp := out[i]["Event"].(map[string]any)["Tag"].([]any)[0].(map[string]any)["name"]
				if want := "tlp:" + string(plan.Items[0].Body.TLP); tlp != want {
					t.Errorf("event %d: first tag %v, want %s", i, tlp, want)
				}
				if _, err := Validate(out[i]); err != nil {
					t.Errorf("event %d: %v", i, err)
				}
			}
		})
	}
}

func TestSamplesValidate(t *testing.T) {
	for _, name := range samples {
		for _, ev := range readSample(t, name) {
			v, err := Validate(map[string]any{"Event": ev.Fields})
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			t.Logf("%s: fields the strict 2.4 schema does not define: %d (e.g. %v)", name, len(v.Unknown), v.Unknown[:min(3, len(v.Unknown))])
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	for name, mut := range map[string]func(map[string]any){
		"info not a string": func(e map[string]any) { e["info"] = json.Number("5") },
		"unknown type":      func(e map[string]any) { e["Attribute"].([]any)[0].(map[string]any)["type"] = "ip-dest" },
		"type in wrong category": func(e map[string]any) {
			e["Attribute"].([]any)[0].(map[string]any)["category"] = "Person"
		},
		"Orgc without uuid": func(e map[string]any) { e["Orgc"] = map[string]any{"name": "x"} },
	} {
		ev := readSample(t, "misp_event.json")[0]
		mut(ev.Fields)
		if _, err := Validate(map[string]any{"Event": ev.Fields}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

// base is a small valid event with a TLP tag, two attributes and an
// object.
func base() map[string]any {
	const src = `{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "phishing wave",
	  "distribution": "1", "threat_level_id": "2", "analysis": "1", "timestamp": "1700000000",
	  "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	  "Tag": [{"name": "tlp:amber"}, {"name": "rsit:fraud=\"phishing\""}, {"name": "nis2:impact-sectors-impacted=\"energy\""}, {"name": "workflow:state=\"draft\""}],
	  "Attribute": [
	    {"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "type": "domain", "category": "Network activity", "value": "evil.example", "timestamp": "1700000000"},
	    {"uuid": "aaaaaaaa-0000-4000-8000-000000000002", "type": "ip-dst", "category": "Network activity", "value": "192.0.2.1", "timestamp": "1700000000", "Tag": [{"name": "tlp:red"}], "distribution": "0"}],
	  "Object": [{"uuid": "bbbbbbbb-0000-4000-8000-000000000001", "name": "file", "timestamp": "1700000000",
	    "Attribute": [{"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "type": "md5", "category": "Payload delivery", "value": "0749bae92ca336a02c83d126e04ec628", "object_relation": "md5"}]}]}}`
	evs, err := Decode([]byte(src))
	if err != nil {
		panic(err)
	}
	return evs[0].Fields
}

func attr(e map[string]any, i int) map[string]any { return e["Attribute"].([]any)[i].(map[string]any) }

func TestMapLabelsAndScopes(t *testing.T) {
	plan := Map([]Event{{Path: "$.Event", Fields: base()}}, Options{})
	if len(plan.Refused) > 0 {
		t.Fatal(plan.Refused)
	}
	if len(plan.Items) != 4 {
		t.Fatalf("%d items, want event, 2 attributes, 1 object", len(plan.Items))
	}
	ev, red := plan.Items[0], plan.Items[2]
	if ev.Body.TLP != log.TLPAmber || ev.Body.RSITClass != "fraud" || ev.Body.RSITType != "phishing" ||
		!cmp.Equal(ev.Body.Sectors, []string{"energy"}) || !ev.Scope.Network() {
		t.Errorf("event body %+v scope %+v", ev.Body, ev.Scope)
	}
	if red.Body.TLP != log.TLPRed || !red.Scope.Self || red.Body.RSITClass != "fraud" {
		t.Errorf("red attribute body %+v scope %+v: want red, this member only, the event's RSIT", red.Body, red.Scope)
	}
	if plan.Items[3].Intel.Type != TypeObject || plan.Items[3].Intel.Parent != ev.Intel.ID {
		t.Errorf("object item %+v", plan.Items[3].Intel)
	}
	// tlp:white is read as clear, with a note.
	e := base()
	e["Tag"] = []any{map[string]any{"name": "tlp:white"}}
	delete(attr(e, 1), "Tag")
	plan = Map([]Event{{Path: "$.Event", Fields: e}}, Options{})
	if len(plan.Refused) > 0 || plan.Items[0].Body.TLP != log.TLPClear || len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0].Reason, "TLP 1.0") {
		t.Errorf("tlp:white: TLP %s, notes %v, refused %v", plan.Items[0].Body.TLP, plan.Notes, plan.Refused)
	}
	// A sharing group maps to its organisations; an attribute never
	// widens its event.
	e = base()
	e["distribution"], e["sharing_group_id"] = "4", "1"
	e["SharingGroup"] = map[string]any{"name": "PrivateTrustedGroup", "SharingGroupOrg": []any{
		map[string]any{"Organisation": map[string]any{"name": "cert-lu"}}, map[string]any{"Organisation": map[string]any{"name": "cert-fr"}}}}
	attr(e, 0)["distribution"] = "3"
	plan = Map([]Event{{Path: "$.Event", Fields: e}}, Options{})
	if len(plan.Refused) > 0 {
		t.Fatal(plan.Refused)
	}
	if s := plan.Items[1].Scope; s.SharingGroup != "PrivateTrustedGroup" || !cmp.Equal(s.Orgs, []string{"cert-lu", "cert-fr"}) {
		t.Errorf("attribute with distribution 3 in a sharing-group event: scope %+v, want the event's group", s)
	}
}

// TestRefusals: each refusal class names the JSON path and the reason.
func TestRefusals(t *testing.T) {
	long := strings.Repeat("x", MaxInfo+1)
	for _, tc := range []struct {
		name       string
		mut        func(map[string]any)
		opts       Options
		path, want string
	}{
		{"two exclusive labels", func(e map[string]any) {
			e["Tag"] = append(e["Tag"].([]any), map[string]any{"name": "tlp:green"})
		}, Options{}, "$.Event.Tag[4]", "exclude each other"},
		{"two RSIT classes", func(e map[string]any) {
			e["Tag"] = append(e["Tag"].([]any), map[string]any{"name": `rsit:malicious-code="infected-system"`})
		}, Options{}, "$.Event.Tag[4]", "exclude each other"},
		{"missing TLP without --tlp", func(e map[string]any) { e["Tag"] = e["Tag"].([]any)[1:] }, Options{}, "$.Event.Tag", "no TLP tag"},
		{"distribution 4 with sharing group 0", func(e map[string]any) { e["distribution"], e["sharing_group_id"] = "4", "0" }, Options{}, "$.Event.sharing_group_id", `sharing group "0"`},
		{"sharing group without its organisations", func(e map[string]any) { e["distribution"], e["sharing_group_id"] = "4", "7" }, Options{}, "$.Event.SharingGroup", "cannot be honoured"},
		{"malformed UUID", func(e map[string]any) { attr(e, 0)["uuid"] = "aaaaaaaa-0000-4000-8000-00000000000g" }, Options{}, "$.Event.Attribute[0].uuid", "malformed UUID"},
		{"malformed event UUID", func(e map[string]any) { e["uuid"] = "5758ebf5c89848e69fe95665c0a83866" }, Options{}, "$.Event.uuid", "malformed UUID"},
		{"duplicate IDs", func(e map[string]any) { attr(e, 1)["uuid"] = attr(e, 0)["uuid"] }, Options{}, "$.Event.Attribute[1].uuid", "duplicate ID"},
		{"duplicate ID in an object", func(e map[string]any) {
			e["Object"].([]any)[0].(map[string]any)["Attribute"].([]any)[0].(map[string]any)["uuid"] = attr(e, 0)["uuid"]
		}, Options{}, "$.Event.Object[0].Attribute[0].uuid", "duplicate ID"},
		{"info over the limit", func(e map[string]any) { e["info"] = long }, Options{}, "$.Event.info", "over the limit"},
		{"undefined TLP", func(e map[string]any) { e["Tag"].([]any)[0] = map[string]any{"name": "tlp:purple"} }, Options{}, "$.Event.Tag[0]", "not a TLP 2.0 label"},
		{"legacy TLP extension", func(e map[string]any) { e["Tag"].([]any)[0] = map[string]any{"name": "tlp:ex:chr"} }, Options{}, "$.Event.Tag[0]", "not a TLP 2.0 label"},
		{"undefined RSIT", func(e map[string]any) { e["Tag"].([]any)[1] = map[string]any{"name": `rsit:fraud="bank-robbery"`} }, Options{}, "$.Event.Tag[1]", "RSIT"},
		{"undefined NIS2", func(e map[string]any) { e["Tag"].([]any)[2] = map[string]any{"name": `nis2:impact-severity="purple"`} }, Options{}, "$.Event.Tag[2]", "NIS2"},
		{"undefined PAP", func(e map[string]any) { e["Tag"].([]any)[3] = map[string]any{"name": "PAP:BLUE"} }, Options{}, "$.Event.Tag[3]", "PAP"},
		{"two PAP labels", func(e map[string]any) {
			e["Tag"] = append(e["Tag"].([]any), map[string]any{"name": "PAP:RED"}, map[string]any{"name": "PAP:GREEN"})
		}, Options{}, "$.Event.Tag[5]", "exclude each other"},
		{"red to the community", func(e map[string]any) { delete(attr(e, 1), "distribution") }, Options{}, "$.Event.Attribute[1].distribution", "TLP:RED"},
		{"unknown attribute type", func(e map[string]any) { attr(e, 0)["type"] = "domain-ish" }, Options{}, "$.Event.Attribute[0].type", "describeTypes"},
		{"event inheriting", func(e map[string]any) { e["distribution"] = "5" }, Options{}, "$.Event.distribution", "inherit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base()
			tc.mut(e)
			plan := Map([]Event{{Path: "$.Event", Fields: e}}, tc.opts)
			found := false
			for _, p := range plan.Refused {
				if p.Path == tc.path && strings.Contains(p.Reason, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("refused %v; want %s: …%s…", plan.Refused, tc.path, tc.want)
			}
		})
	}
	// --tlp says which label to assume.
	e := base()
	e["Tag"] = e["Tag"].([]any)[1:]
	if plan := Map([]Event{{Path: "$.Event", Fields: e}}, Options{TLP: log.TLPGreen}); len(plan.Refused) > 0 || plan.Items[0].Body.TLP != log.TLPGreen {
		t.Errorf("--tlp green: refused %v", plan.Refused)
	}
	// A refused event takes its attributes and objects with it; a refused
	// attribute only itself.
	e = base()
	e["info"] = long
	if plan := Map([]Event{{Path: "$.Event", Fields: e}}, Options{}); len(plan.Items) != 0 {
		t.Errorf("refused event: %d items kept", len(plan.Items))
	}
	e = base()
	attr(e, 0)["uuid"] = "nope"
	if plan := Map([]Event{{Path: "$.Event", Fields: e}}, Options{}); len(plan.Items) != 3 {
		t.Errorf("one refused attribute: %d items kept, want 3", len(plan.Items))
	}
}

// TestFresh: a second import adds nothing; the edited event (PyMISP's own
// test of an edit: one object's attribute tagged) adds only that object.
func TestFresh(t *testing.T) {
	plan := Map(readSample(t, "existing_event.json"), Options{})
	known := map[string]*log.Intel{}
	for _, it := range plan.Items {
		in := it.Intel
		known[in.ID] = &in
	}
	if fresh, unchanged := Fresh(plan.Items, known); len(fresh) != 0 || unchanged != len(plan.Items) {
		t.Fatalf("second import: %d fresh, %d unchanged; want 0, %d", len(fresh), unchanged, len(plan.Items))
	}
	edited := Map(readSample(t, "existing_event_edited.json"), Options{})
	if len(edited.Refused) > 0 {
		t.Fatal(edited.Refused)
	}
	fresh, _ := Fresh(edited.Items, known)
	if len(fresh) != 1 || fresh[0].Intel.ID != "5a3cd5b6-9568-4342-b2ab-4c62950d210f" {
		var ids []string
		for _, f := range fresh {
			ids = append(ids, f.Intel.Type+" "+f.Intel.ID)
		}
		t.Fatalf("edited import adds %v; want only object 5a3cd5b6-9568-…", ids)
	}
	// An older version adds nothing.
	older := plan.Items[1]
	older.Intel.Version--
	older.Intel.Data = []byte(`{"changed":true}`)
	if fresh, _ := Fresh([]Item{older}, known); len(fresh) != 0 {
		t.Error("an older version was fresh")
	}
}

func TestExportNeverWidens(t *testing.T) {
	plan := Map([]Event{{Path: "$.Event", Fields: base()}}, Options{})
	ps := parts(plan.Items)
	out, withheld, err := Export(ps, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out[0]["Event"].(map[string]any)["Attribute"].([]any)); n != 1 || len(withheld) != 1 || !strings.Contains(withheld[0].Reason, "RED") {
		t.Errorf("default export: %d attributes, withheld %v; want the red one withheld", n, withheld)
	}
	out, withheld, _ = Export(ps, ExportOptions{MaxTLP: log.TLPGreen})
	if len(out) != 0 || len(withheld) != 4 {
		t.Errorf("--max-tlp green of an amber event: %d events, withheld %v", len(out), withheld)
	}
	for _, o := range []ExportOptions{{MaxTLP: log.TLPRed}, {MaxTLP: log.TLPAmberStrict}} {
		if _, _, err := Export(ps, o); !errors.Is(err, ErrWiden) {
			t.Errorf("%+v: %v, want ErrWiden", o, err)
		}
	}
	ps[0].TLP = log.TLPAmberStrict
	out, _, err = Export(ps, ExportOptions{MaxTLP: log.TLPAmberStrict, StrictOrg: "CIRCL"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := out[0]["Event"].(map[string]any); ev["distribution"] != "0" || ev["Tag"].([]any)[0].(map[string]any)["name"] != "tlp:amber+strict" {
		t.Errorf("amber+strict event exported with distribution %v, tags %v", ev["distribution"], ev["Tag"])
	}
}

func TestFeedRoundTrip(t *testing.T) {
	var evs []Event
	for _, s := range samples {
		evs = append(evs, readSample(t, s)...)
	}
	out, _, err := Export(parts(Map(evs, Options{TLP: log.TLPGreen}).Items), ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := Feed(out)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for name, b := range files {
		fsys[name] = &fstest.MapFile{Data: b}
	}
	back, err := ReadFeed(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(evs) {
		t.Fatalf("feed holds %d events, want %d", len(back), len(evs))
	}
	// hashes.csv: md5 of "http://fake.website.com/malware/is/here" with
	// misp_event.json's UUID.
	if !strings.Contains(string(files["hashes.csv"]), "5758ebf5-c898-48e6-9fe9-5665c0a83866") {
		t.Error("hashes.csv lacks an event")
	}
	// A manifest naming a missing event is refused.
	delete(fsys, back[0].Fields["uuid"].(string)+".json")
	if _, err := ReadFeed(fsys); !errors.Is(err, ErrFormat) {
		t.Errorf("feed with a missing event: %v", err)
	}
}

func TestDecodeShapes(t *testing.T) {
	one := `{"uuid": "11111111-2222-4333-8444-555555555555", "info": "x"}`
	for _, tc := range []struct {
		in    string
		n     int
		path0 string
	}{
		{`{"Event": ` + one + `}`, 1, "$.Event"},
		{one, 1, "$"},
		{`{"response": [{"Event": ` + one + `}, {"Event": ` + one + `}]}`, 2, "$.response[0].Event"},
		{`[{"Event": ` + one + `}]`, 1, "$[0].Event"},
	} {
		evs, err := Decode([]byte(tc.in))
		if err != nil || len(evs) != tc.n || evs[0].Path != tc.path0 {
			t.Errorf("Decode(%.40s…) = %d events, %v; want %d, path %s", tc.in, len(evs), err, tc.n, tc.path0)
		}
	}
	for _, in := range []string{``, `3`, `{"response": 3}`, `{"Event": []}`, `[1]`, `{"a": 1}`, `{"Event": {}} x`, strings.Repeat("[", MaxDepth+1)} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("Decode(%.20q) = %v; want ErrFormat", in, err)
		}
	}
	// Duplicate events in one list are duplicate IDs.
	evs, _ := Decode([]byte(`{"response": [{"Event": ` + one + `}, {"Event": ` + one + `}]}`))
	plan := Map(evs, Options{TLP: log.TLPGreen})
	if len(plan.Refused) != 1 || plan.Refused[0].Path != "$.response[1].Event.uuid" {
		t.Errorf("the same event twice: refused %v", plan.Refused)
	}
}

// FuzzDecode: the MISP reader never panics, and what it maps is a valid
// entry body whose export either validates or is refused as invalid.
//
//	go test ./interop/misp/ -run '^$' -fuzz '^FuzzDecode$' -fuzztime 60s -parallel 2
func FuzzDecode(f *testing.F) {
	// The small samples: existing_event.json (145 KB) makes each
	// iteration take seconds.
	for _, s := range samples[:2] {
		b, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	b, _ := json.Marshal(map[string]any{"Event": base()})
	f.Add(b)
	f.Add([]byte(`{"response": [{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "x", "Tag": [{"name": "tlp:clear"}]}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		evs, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("Decode error %v is not ErrFormat", err)
			}
			return
		}
		plan := Map(evs, Options{TLP: log.TLPAmber})
		for _, it := range plan.Items {
			if err := it.Body.Validate(); err != nil {
				t.Fatalf("%s: mapped body does not validate: %v", it.Path, err)
			}
			if _, err := log.DecodeIntel(it.Body.Payload); err != nil {
				t.Fatalf("%s: payload: %v", it.Path, err)
			}
		}
		if _, _, err := Export(parts(plan.Items), ExportOptions{}); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Export: %v", err)
		}
	})
}

func ExampleMap() {
	evs, _ := Decode([]byte(`{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "phishing wave",
	  "Tag": [{"name": "tlp:green"}, {"name": "rsit:fraud=\"phishing\""}],
	  "Attribute": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "type": "domain", "category": "Network activity", "value": "evil.example"}]}}`))
	plan := Map(evs, Options{})
	for _, it := range plan.Items {
		fmt.Println(it.Intel.Type, it.Body.TLP, it.Body.RSITClass, it.Body.Text)
	}
	// Output:
	// event green fraud MISP event "phishing wave" (threat level undefined, analysis unknown)
	// attribute green fraud Network activity domain: evil.example
}

// TestSharingGroupFromPyMISP: a sharing group as MISP lists it
// (testdata/sharing_groups.json), embedded in an event as MISP does, maps to
// its organisations.
func TestSharingGroupFromPyMISP(t *testing.T) {
	b, err := os.ReadFile("testdata/sharing_groups.json")
	if err != nil {
		t.Fatal(err)
	}
	var groups []map[string]any
	if err := json.Unmarshal(b, &groups); err != nil {
		t.Fatal(err)
	}
	sg := groups[0]["SharingGroup"].(map[string]any)
	sg["SharingGroupOrg"] = groups[0]["SharingGroupOrg"]
	e := base()
	e["distribution"], e["sharing_group_id"], e["SharingGroup"] = "4", sg["id"], sg
	plan := Map([]Event{{Path: "$.Event", Fields: e}}, Options{})
	if len(plan.Refused) > 0 {
		t.Fatal(plan.Refused)
	}
	if s := plan.Items[0].Scope; s.SharingGroup != "PrivateTrustedGroup" || !cmp.Equal(s.Orgs, []string{"CIRCL", "PifPafPoum"}) {
		t.Errorf("scope %+v; want PrivateTrustedGroup with CIRCL and PifPafPoum", s)
	}
}

// PyMISP writes attribute_count null for a new event, which MISP's schema
// refuses: export writes the count (here 0) and gives back the rest.
func TestNullAttributeCount(t *testing.T) {
	evs := readSample(t, "pymisp/new_misp_event.json")
	plan := Map(evs, Options{TLP: log.TLPGreen})
	if len(plan.Refused) > 0 {
		t.Fatalf("refused: %v", plan.Refused)
	}
	out, _, err := Export(parts(plan.Items), ExportOptions{MaxTLP: log.TLPAmber})
	if err != nil || len(out) != 1 {
		t.Fatalf("export: %v", err)
	}
	want := withoutTLP(t, map[string]any{"Event": evs[0].Fields})
	want.(map[string]any)["Event"].(map[string]any)["attribute_count"] = "0"
	if d := cmp.Diff(want, withoutTLP(t, out[0])); d != "" {
		t.Errorf("export differs (-want +got):\n%s", d)
	}
}
