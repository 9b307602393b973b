package node

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// stixIncident is a bundle of an incident, an indicator and the
// relationship that links them.
const stixIncident = `{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [
 {"type": "incident", "spec_version": "2.1", "id": "incident--3c5e2e4b-6a7c-4b2e-9d3f-1a2b3c4d5e6f", "name": "Grid operator ransomware",
  "created": "2026-12-01T10:00:00.000Z", "modified": "2026-12-01T10:00:00.000Z", "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
 {"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "name": "C2 server",
  "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": "2026-12-01T10:00:00Z",
  "created": "2026-12-01T10:00:00.000Z", "modified": "2026-12-01T10:00:00.000Z", "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
 {"type": "relationship", "spec_version": "2.1", "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad", "relationship_type": "indicates",
  "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "target_ref": "incident--3c5e2e4b-6a7c-4b2e-9d3f-1a2b3c4d5e6f",
  "created": "2026-12-01T10:00:00.000Z", "modified": "2026-12-01T10:00:00.000Z", "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}]}`

// reportNode is a one-node network with a crisis at level 2, a Reserve
// request, a GREEN incident, an AMBER sitrep, and intel from MISP
// (an event tagged tlp:white: TLP:CLEAR) and STIX (an AMBER indicator of an incident).
func reportNode(t *testing.T) (*Node, TestnetNode) {
	t.Helper()
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1, Roles: map[int][]string{0: {"admin", "csirt", "cyclone"}}}, func(int) Options { return Options{} })
	n := nodes[0]
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "leadership and the network key", func() bool {
		_, ok := n.Store().NetworkKey()
		return ok && n.Consensus().IsLeader()
	})
	open := cmdOK(t, n, crisis.Command{Kind: crisis.KindOpen, Title: "Grid outage", Level: 1})
	waitCommitted(t, n, open.ID)
	for _, c := range []crisis.Command{
		{Kind: crisis.KindAdviseLevel2},
		{Kind: crisis.KindAffected, Add: []string{"LU", "BE"}},
		{Kind: crisis.KindReserveRequest, Sector: "energy", Services: []string{"incident response"}},
	} {
		c.Crisis = crisisID(t, n)
		waitCommitted(t, n, cmdOK(t, n, c).ID)
	}
	for _, p := range []PostRequest{
		{Kind: "incident", TLP: "green", Text: "Ransomware at the grid operator | SCADA unaffected", RSITClass: "malicious-code", RSITType: "infected-system", Sectors: []string{"energy"}},
		{Kind: "sitrep", TLP: "amber", Text: "Amber detail: the attacker's foothold"},
	} {
		if _, err := n.Post(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := os.ReadFile("testdata/misp/existing_event.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ImportMISP(ctx, ev, MISPImportRequest{TLP: "green", SkipInvalid: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ImportSTIX(ctx, []byte(strings.ReplaceAll(stixIncident, "bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "55d920b0-5e8b-4f79-9ee9-91f868d9b421")), STIXImportRequest{}); err != nil {
		t.Fatal(err)
	}
	return n, specs[0]
}

// crisisID is the open crisis's ID as a command names it.
func crisisID(t *testing.T, n *Node) crisis.ID {
	t.Helper()
	return n.Consensus().Local().State.Crisis
}

// Indicators come from MISP attributes and objects and from STIX
// indicators, each linked to its incident.
func TestIndicators(t *testing.T) {
	n, _ := reportNode(t)
	inds, err := n.Indicators()
	if err != nil {
		t.Fatal(err)
	}
	var misp, stix int
	for _, ind := range inds {
		switch {
		case ind.Format == "stix":
			stix++
			if ind.Value != "[ipv4-addr:value = '198.51.100.7']" || ind.Type != "stix" || ind.IncidentTitle != "Grid operator ransomware" || ind.IncidentEntry == "" || ind.TLP != "amber" {
				t.Errorf("the STIX indicator: %+v", ind)
			}
		case ind.Format == "misp":
			misp++
			if ind.Type == "" || ind.Value == "" || ind.IncidentTitle == "" || ind.IncidentEntry == "" || ind.TLP != "clear" {
				t.Errorf("a MISP indicator: %+v; want type, value and its event", ind)
			}
		}
	}
	if stix != 1 || misp < 9 {
		t.Errorf("%d STIX and %d MISP indicators; want 1 and at least the event's 9 attributes", stix, misp)
	}
}

// The report holds the crisis, its history, the timeline, indicators and
// Reserve requests, capped by TLP; RED and AMBER+STRICT are refused.
func TestReport(t *testing.T) {
	n, _ := reportNode(t)
	ctx := context.Background()
	amber, err := n.BuildReport(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	green, err := n.BuildReport(ctx, "green")
	if err != nil {
		t.Fatal(err)
	}
	if len(amber.Timeline) != 2 || len(green.Timeline) != 1 || green.Withheld < 2 || amber.Withheld != 0 {
		t.Errorf("timeline: %d entries at AMBER (withheld %d), %d at GREEN (withheld %d); want 2 (0) and 1 (the sitrep and the STIX indicator withheld)",
			len(amber.Timeline), amber.Withheld, len(green.Timeline), green.Withheld)
	}
	md, err := green.Render("md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Situation report: Grid outage", "TLP:GREEN at the most", "| Level | 2 |", "BE, LU", `Ransomware at the grid operator \| SCADA unaffected`,
		"malicious-code/infected-system", "energy", "| open ", "incident response"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the Markdown report lacks %q:\n%s", want, md)
		}
	}
	for _, never := range []string{"Amber detail", "198.51.100.7"} {
		if strings.Contains(string(md), never) {
			t.Errorf("the GREEN report shows %q (AMBER)", never)
		}
	}
	html, err := amber.Render("html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Amber detail", "198.51.100.7", "Grid operator ransomware", "<table id=\"indicators\">"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	for _, never := range []string{"<script", "src=", "href=", "<link", "url(", "@import"} {
		if strings.Contains(string(html), never) {
			t.Errorf("the HTML report holds %q: it must need no network", never)
		}
	}
	for _, tlp := range []string{"red", "amber+strict", "purple"} {
		if _, err := n.BuildReport(ctx, tlp); err == nil {
			t.Errorf("--max-tlp %s: a report was built", tlp)
		}
	}
}
