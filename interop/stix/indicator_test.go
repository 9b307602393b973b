package stix

import (
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
