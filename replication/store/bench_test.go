package store

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Benchmarks of issue 3, on real badger files (SyncWrites: every commit is
// fsynced). Results and how to run them: BENCHMARKS.md.
//
//	go test ./replication/store/ -run '^$' -bench . -benchtime 3s -count 1 -timeout 60m
//
// BenchmarkFrontierDigest and BenchmarkOpen share one big store (100
// authors, -store.big entries), built once under os.TempDir() the first
// time one of them runs and removed by TestMain. Plain `go test` runs no
// benchmark and builds nothing.

var bigEntries = flag.Int("store.big", 1_000_000, "entries in the big store of BenchmarkFrontierDigest and BenchmarkOpen (100 authors)")

func TestMain(m *testing.M) {
	code := m.Run()
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// kib is a 1 KiB message text.
var kib = strings.Repeat("situation report line. ", 1024/23+1)[:1024]

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkAppend: durable appends of 1 KiB TLP:AMBER messages by one
// appender, and by 16 concurrent appenders that the store group commits.
// sigs/entry is signatures per stored entry (1 without group commit);
// entries/commit its inverse, the mean group size.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			n := newTestNet(b)
			s := openStore(b, b.TempDir(), n, n.lu)
			draft := n.msg(kib)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			b.SetBytes(int64(len(kib)))
			b.ResetTimer()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Append(ctx, draft); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			reportRate(b)
			feed, err := s.Feed(n.lu.ID(), 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			if len(feed) != b.N {
				b.Fatalf("feed holds %d entries, want %d", len(feed), b.N)
			}
			signed := 0
			for _, e := range feed {
				if e.Signed() {
					signed++
				}
			}
			b.ReportMetric(float64(signed)/float64(len(feed)), "sigs/entry")
			b.ReportMetric(float64(len(feed))/float64(signed), "entries/commit")
		})
	}
}

// BenchmarkIngest: verify and durably store 1 KiB entries of another
// author, arriving as batches of 100 with one signature each (what Append
// with group commit produces), one Ingest call per batch.
func BenchmarkIngest(b *testing.B) {
	n := newTestNet(b)
	const batch = 100
	var batches [][]*log.Entry
	var tip log.Tip
	for left := b.N; left > 0; left -= batch {
		drafts := make([]log.Draft, min(batch, left))
		for i := range drafts {
			drafts[i] = n.msg(kib)
		}
		es, err := log.Build(n.fr, n.genesis.NetworkID(), tip, 0, t0, drafts)
		if err != nil {
			b.Fatal(err)
		}
		last := es[len(es)-1]
		tip = log.Tip{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
		batches = append(batches, es)
	}
	s := openStore(b, b.TempDir(), n, n.lu)
	ctx := context.Background()
	b.SetBytes(int64(len(kib)))
	b.ResetTimer()
	for _, es := range batches {
		res, err := s.Ingest(ctx, es...)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Added) != len(es) {
			b.Fatalf("added %d of %d entries: %v", len(res.Added), len(es), res.Rejected)
		}
	}
	b.StopTimer()
	reportRate(b)
}

// bigStore is a store of 100 authors' feeds, built once.
type bigStore struct {
	once    sync.Once
	err     error
	dir     string
	genesis *crypto.Genesis
	self    *crypto.Identity
	entries int
	authors int
	build   time.Duration
	size    int64
}

var big bigStore

// bigStoreFor builds the big store the first time it is asked for: 100
// authors, *bigEntries entries of 100-byte sealed messages in all, built
// with log.Build in batches of 1000 (one signature each) and ingested one
// batch per call, while the next batch is being built.
func bigStoreFor(b *testing.B) *bigStore {
	b.Helper()
	big.once.Do(func() {
		start := time.Now()
		big.err = big.make(*bigEntries, 100, 1000)
		big.build = time.Since(start)
		if big.err == nil {
			big.size = dirSize(big.dir)
		}
	})
	if big.err != nil {
		b.Fatalf("building the big store: %v", big.err)
	}
	b.Logf("big store: %d entries of %d authors, %.1f MiB on disk, built and ingested in %v", big.entries, big.authors, float64(big.size)/(1<<20), big.build.Round(time.Second))
	return &big
}

func (bs *bigStore) make(entries, authors, batch int) error {
	ids := make([]*crypto.Identity, authors)
	members := make([]crypto.Member, authors)
	for i := range ids {
		id, err := crypto.NewIdentity(fmt.Sprintf("csirt-%03d", i), t0)
		if err != nil {
			return err
		}
		ids[i] = id
		roles := []crypto.Role{crypto.RoleCSIRT}
		if i == 0 {
			roles = []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}
		}
		members[i] = crypto.Member{Card: id.Card(), Roles: roles}
	}
	g, err := crypto.NewGenesis(crypto.GenesisSpec{
		Network: "bench", Created: t0, Members: members,
		Voters: []crypto.MemberID{ids[0].ID()}, Admins: []crypto.MemberID{ids[0].ID()},
	}, ids[0])
	if err != nil {
		return err
	}
	key, err := crypto.NewGroupKey("all", 1)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "crisismesh-bench-store-")
	if err != nil {
		return err
	}
	bs.dir, bs.genesis, bs.self, bs.authors = dir, g, ids[0], authors
	s, err := Open(dir, g, ids[0], Options{})
	if err != nil {
		return err
	}
	defer s.Close()

	// Build on one core, ingest on the other.
	text := kib[:100]
	perAuthor := entries / authors
	batches := make(chan []*log.Entry, 4)
	buildErr := make(chan error, 1)
	go func() {
		defer close(batches)
		tips := make([]log.Tip, authors)
		var lamport uint64
		for done := 0; done < perAuthor; done += batch {
			for a, id := range ids {
				drafts := make([]log.Draft, min(batch, perAuthor-done))
				for i := range drafts {
					drafts[i] = log.Draft{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: text}, Key: key}
				}
				es, err := log.Build(id, g.NetworkID(), tips[a], lamport, t0, drafts)
				if err != nil {
					buildErr <- err
					return
				}
				last := es[len(es)-1]
				tips[a] = log.Tip{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
				lamport = last.Header.Lamport
				batches <- es
			}
		}
		buildErr <- nil
	}()
	for es := range batches {
		res, err := s.Ingest(context.Background(), es...)
		if err != nil {
			return err
		}
		if len(res.Added) != len(es) {
			return fmt.Errorf("added %d of %d entries: %v", len(res.Added), len(es), res.Rejected)
		}
		bs.entries += len(es)
	}
	if err := <-buildErr; err != nil {
		return err
	}
	return s.Close()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// BenchmarkFrontierDigest: Digest (kept incrementally, O(1)) and Frontier
// (a copy of one head per author) on the big store, and on a store of one
// author and one entry for comparison; Recompute is the O(authors) digest
// of a whole frontier that the incremental digest avoids.
func BenchmarkFrontierDigest(b *testing.B) {
	bs := bigStoreFor(b)
	s, err := Open(bs.dir, bs.genesis, bs.self, Options{SkipIntegrityCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	n := newTestNet(b)
	small, err := Open("", n.genesis, n.lu, Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer small.Close()
	mustIngest(b, small, n.keyEntry)
	for _, st := range []struct {
		name string
		s    *Store
	}{{fmt.Sprintf("authors=%d,entries=%d", len(s.Frontier()), bs.entries), s}, {"authors=1,entries=1", small}} {
		b.Run(st.name+"/Digest", func(b *testing.B) {
			var d log.Digest
			for b.Loop() {
				d = st.s.Digest()
			}
			if d != st.s.Frontier().Digest() {
				b.Fatal("digest does not match the frontier")
			}
		})
		b.Run(st.name+"/Frontier", func(b *testing.B) {
			for b.Loop() {
				if f := st.s.Frontier(); len(f) == 0 {
					b.Fatal("empty frontier")
				}
			}
		})
		b.Run(st.name+"/Recompute", func(b *testing.B) {
			f := st.s.Frontier()
			for b.Loop() {
				_ = f.Digest()
			}
		})
	}
}

// BenchmarkOpen: opening the big store, with the default integrity check
// (feed heads, their signatures and last links, and the checksum of every
// table block) and without; check-badger is the check as Open made it
// before issue 16, with badger's DB.VerifyChecksum over the database's own
// maps, for a comparison in the same process under the same load. Memory is the growth of the process over the
// open, after a GC that returned freed memory to the OS (the process also
// holds the test's own data, hence the deltas), from /proc/self/status:
// MiB-RSS of VmRSS, MiB-anon of RssAnon (heap and other private memory),
// MiB-file of RssFile (pages of mapped files, badger's tables and value
// log), and MiB-peak the peak VmHWM during the open (reset before it
// through /proc/self/clear_refs) over VmRSS before it.
func BenchmarkOpen(b *testing.B) {
	bs := bigStoreFor(b)
	// openBadgerCheck opens as Open did before issue 16.
	openBadgerCheck := func(dir string, g *crypto.Genesis, self *crypto.Identity, _ Options) (*Store, error) {
		s, err := Open(dir, g, self, Options{SkipIntegrityCheck: true})
		if err != nil {
			return nil, err
		}
		if err := s.db.View(s.checkIntegrityLocked); err != nil {
			s.Close()
			return nil, err
		}
		if err := verifyDB(s.db); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	for _, c := range []struct {
		name string
		open func(string, *crypto.Genesis, *crypto.Identity, Options) (*Store, error)
		opts Options
	}{
		{"check", Open, Options{}},
		{"check-badger", openBadgerCheck, Options{}},
		{"skip-check", Open, Options{SkipIntegrityCheck: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var rss, anon, file, peak float64
			b.StopTimer()
			for range b.N {
				runtime.GC()
				debug.FreeOSMemory()
				resetPeak(b)
				before := readMem(b)
				b.StartTimer()
				s, err := c.open(bs.dir, bs.genesis, bs.self, c.opts)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				after := readMem(b)
				rss += float64(after.rss - before.rss)
				anon += float64(after.anon - before.anon)
				file += float64(after.file - before.file)
				peak += float64(after.peak - before.rss)
				if len(s.Frontier()) != bs.authors {
					b.Fatalf("frontier of %d authors, want %d", len(s.Frontier()), bs.authors)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			const mib = 1 << 20
			n := float64(b.N) * mib
			b.ReportMetric(rss/n, "MiB-RSS")
			b.ReportMetric(anon/n, "MiB-anon")
			b.ReportMetric(file/n, "MiB-file")
			b.ReportMetric(peak/n, "MiB-peak")
		})
	}
}

// mem is this process's memory as /proc/self/status shows it, in bytes.
type mem struct {
	rss, anon, file, peak int64 // VmRSS, RssAnon, RssFile, VmHWM
}

// readMem reads the process's memory from /proc/self/status.
func readMem(b *testing.B) mem {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var m mem
	fields := map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file, "VmHWM:": &m.peak}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), "\t")
		p := fields[name]
		if !ok || p == nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		*p = kb << 10
		delete(fields, name)
	}
	for name := range fields {
		b.Fatalf("no %s in /proc/self/status", name)
	}
	return m
}

// resetPeak sets VmHWM to the current VmRSS (Linux 4.0 and later).
func resetPeak(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("resetting the peak RSS: %v", err)
	}
}
