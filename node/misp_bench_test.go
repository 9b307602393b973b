package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// mispEvent returns MISP event number ev with n attributes (domains and
// IPs, TLP:GREEN, RSIT-tagged), as MISP would export it.
func mispEvent(ev, n int) []byte {
	attrs := make([]map[string]any, n)
	for i := range attrs {
		a := map[string]any{"uuid": fmt.Sprintf("aaaaaaaa-%04d-4000-8000-%012d", ev, i), "category": "Network activity",
			"to_ids": true, "distribution": "5", "timestamp": "1700000000", "comment": "", "deleted": false}
		if i%2 == 0 {
			a["type"], a["value"] = "domain", fmt.Sprintf("c2-%d.evil.example", i)
		} else {
			a["type"], a["value"] = "ip-dst", fmt.Sprintf("198.51.%d.%d", i/256%256, i%256)
		}
		attrs[i] = a
	}
	b, err := json.Marshal(map[string]any{"Event": map[string]any{
		"uuid": fmt.Sprintf("11111111-2222-4333-8444-%012d", ev), "info": "botnet C2 list", "distribution": "1",
		"threat_level_id": "2", "analysis": "2", "timestamp": "1700000000", "date": "2023-11-14",
		"Orgc":      map[string]any{"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
		"Tag":       []any{map[string]any{"name": "tlp:green"}, map[string]any{"name": `rsit:malicious-code="c2-server"`}},
		"Attribute": attrs,
	}})
	if err != nil {
		panic(err)
	}
	return b
}

// openIntelNode opens a fresh one-node network for a benchmark and waits
// for its network key.
func openIntelNode(b *testing.B) *Node {
	b.Helper()
	o := TestnetOptions{Dir: b.TempDir(), Nodes: 1, BasePort: freeBasePort(b), Now: time.Now()}
	specs, err := Testnet(o)
	if err != nil {
		b.Fatal(err)
	}
	n, err := Open(specs[0].Dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	waitUntil(b, 30*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	return n
}

// BenchmarkMISPExport100k exports the MISP events of a node that holds
// 100,000 attribute entries (10 events of 10,000), validated against
// MISP's schema: time per export, events and bytes of JSON.
//
//	go test ./node -run '^$' -bench BenchmarkMISPExport100k -benchtime 3x
func BenchmarkMISPExport100k(b *testing.B) {
	n := openIntelNode(b)
	defer n.Close()
	for ev := range 10 {
		if res, err := n.ImportMISP(context.Background(), mispEvent(ev, 10000), MISPImportRequest{}); err != nil || res.Written != 10001 {
			b.Fatalf("import %d: %+v, %v", ev, res, err)
		}
	}
	var size int
	for b.Loop() {
		v, err := n.ExportMISP(MISPExportRequest{})
		if err != nil || len(v.Events) != 10 {
			b.Fatalf("export: %d events, %v", len(v.Events), err)
		}
		out, err := json.Marshal(v.Events)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(100010, "entries")
	b.ReportMetric(float64(size), "json-bytes")
}

// BenchmarkMISPImport10k imports a MISP event with 10,000 attributes into a
// fresh one-node network per iteration: time, entries written, bytes of
// the entries, and the time of a second import (which adds nothing).
//
//	go test ./node -run '^$' -bench BenchmarkMISPImport10k -benchtime 3x
func BenchmarkMISPImport10k(b *testing.B) {
	data := mispEvent(0, 10000)
	var again time.Duration
	var entries, bytes int
	for b.Loop() {
		b.StopTimer()
		n := openIntelNode(b)
		b.StartTimer()
		res, err := n.ImportMISP(context.Background(), data, MISPImportRequest{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		entries, bytes = res.Written, res.Bytes
		start := time.Now()
		res, err = n.ImportMISP(context.Background(), data, MISPImportRequest{})
		if err != nil || res.Written != 0 {
			b.Fatalf("second import: %+v, %v", res, err)
		}
		again += time.Since(start)
		n.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(entries), "entries")
	b.ReportMetric(float64(bytes), "entry-bytes")
	b.ReportMetric(float64(len(data)), "input-bytes")
	b.ReportMetric(again.Seconds()/float64(b.N), "s/second-import")
}
