package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// BenchmarkArchive100k exports the after-action archive of a one-node
// network holding 100,000 entries (sitreps of about 200 bytes, sealed,
// written in batches of 500: one signature each) and verifies it offline
// with the genesis alone: time of each, and the archive's size.
//
//	go test ./node -run '^$' -bench BenchmarkArchive100k -benchtime 3x
func BenchmarkArchive100k(b *testing.B) {
	const entries, batch = 100_000, 500
	n := openIntelNode(b)
	defer n.Close()
	key, _ := n.Store().NetworkKey()
	for i := 0; i < entries; i += batch {
		drafts := make([]log.Draft, batch)
		for j := range drafts {
			drafts[j] = log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber,
				Text: fmt.Sprintf("sitrep %d: situation stable in sector energy, no new indicators since the last report; the liaison officer stays on call; next report in one hour.", i+j)}, Key: key}
		}
		if _, err := n.Store().Append(context.Background(), drafts...); err != nil {
			b.Fatal(err)
		}
	}
	genesis := filepath.Join(n.dir, GenesisFile)
	out := filepath.Join(b.TempDir(), "bench.archive")
	var export, verify time.Duration
	var size int64
	var held int
	for b.Loop() {
		os.Remove(out)
		start := time.Now()
		v, err := n.ExportArchive(out, time.Time{}, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		export += time.Since(start)
		start = time.Now()
		rep, err := VerifyArchive(out, genesis, "", nil, "")
		if err != nil {
			b.Fatal(err)
		}
		verify += time.Since(start)
		size, held = int64(v.Bytes), rep.Entries
	}
	b.ReportMetric(export.Seconds()/float64(b.N), "export-s/op")
	b.ReportMetric(verify.Seconds()/float64(b.N), "verify-s/op")
	b.ReportMetric(float64(size), "archive-bytes")
	b.ReportMetric(float64(held), "entries")
}
