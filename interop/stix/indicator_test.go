package stix

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
)

// A relationship links an indicator and an incident either way round;
// any other pair, or another object, is no link.
func TestLinkAndIndicators(t *testing.T) {
	const ind, inc = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "incident--3c5e2e4b-6a7c-4b2e-9d3f-1a2b3c4d5e6f"
	rel := func(src, dst string) *log.Intel {
		return &log.Intel{Format: log.IntelSTIX, Type: "relationship", ID: "relationship--1", Data: []byte(`{"source_ref":"` + src + `","target_ref":"` + dst + `"}`)}
	}
	for _, tc := range []struct {
		in *log.Intel
		ok bool
	}{
		{rel(ind, inc), true},
		{rel(inc, ind), true},
		{rel(ind, "malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"), false},
		{&log.Intel{Format: log.IntelSTIX, Type: "sighting", ID: "s", Data: []byte(`{"source_ref":"` + ind + `","target_ref":"` + inc + `"}`)}, false},
	} {
		gi, gc, ok := Link(tc.in)
		if ok != tc.ok || (ok && (gi != ind || gc != inc)) {
			t.Errorf("%s: %s %s %v, want ok %v", tc.in.Data, gi, gc, ok, tc.ok)
		}
	}
	pattern := &log.Intel{Format: log.IntelSTIX, Type: "indicator", ID: ind, Data: []byte(`{"pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix","name":"C2"}`)}
	if got := Indicators(pattern); len(got) != 1 || got[0].Type != "stix" || got[0].Value != "[ipv4-addr:value = '198.51.100.7']" || got[0].Name != "C2" {
		t.Errorf("the indicator: %+v", got)
	}
	if got := Indicators(&log.Intel{Format: log.IntelSTIX, Type: "malware", ID: "m", Data: []byte(`{"pattern":"x"}`)}); got != nil {
		t.Errorf("a malware object as an indicator: %+v", got)
	}
}

// An incident's Incident Core extension is read into its text; the
// extension SDOs it names (impact, task) are kept verbatim.
func TestIncidentCore(t *testing.T) {
	raw, err := os.ReadFile("testdata/incident-core.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := Map(b, Options{TLP: log.TLPAmber})
	if len(p.Refused) > 0 || len(p.Items) != 5 {
		t.Fatalf("%d items, refused %v", len(p.Items), p.Refused)
	}
	if got, want := p.Items[0].Body.Text, `STIX incident "Sample ransomware incident" (confirmed, investigation closed, criticality 70, ransomware)`; got != want {
		t.Errorf("the incident's text: %q, want %q", got, want)
	}
	if got := p.Items[1].Intel.Type; got != "impact" {
		t.Errorf("the impact SDO kept as %q", got)
	}
	// The relaxation is for objects a new-sdo extension defines only: the
	// same extension property on an object without one is refused.
	impact := p.Items[1].Intel
	var o map[string]any
	if err := json.Unmarshal(impact.Data, &o); err != nil {
		t.Fatal(err)
	}
	delete(o["extensions"].(map[string]any), "extension-definition--7cc33dd6-f6a1-489b-98ea-522d351d71b9")
	if err := Validate(o); err == nil {
		t.Error("an impact without its new-sdo extension validates with an extension named availability")
	}
}
