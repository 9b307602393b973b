package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Damaged database files: Open reports ErrCorrupt, or, if the damage hit
// bytes that do not matter, every entry reads back exactly as written.
// Never a panic, never a wrong entry served.
func TestCorruptionAtOpen(t *testing.T) {
	n := newTestNet(t)
	for _, kind := range []string{".sst", ".vlog", "MANIFEST"} {
		for _, where := range []float64{0.05, 0.3, 0.5, 0.7, 0.95} {
			t.Run(fmt.Sprintf("%s@%.2f", kind, where), func(t *testing.T) {
				dir := t.TempDir()
				s := openStore(t, dir, n, n.lu)
				mustIngest(t, s, n.keyEntry)
				for i := 0; i < 20; i++ {
					mustAppend(t, s, n.msg(fmt.Sprint(i, strings.Repeat("z", 300))))
				}
				want := allEntries(t, s)
				s.Close()
				target := findFile(t, dir, kind)
				b, err := os.ReadFile(target)
				if err != nil {
					t.Fatal(err)
				}
				b[int(float64(len(b))*where)] ^= 0x5a
				if err := os.WriteFile(target, b, 0o644); err != nil {
					t.Fatal(err)
				}
				s2, err := Open(dir, n.genesis, n.lu, Options{})
				if err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("got %v, want ErrCorrupt", err)
					}
					if !strings.Contains(err.Error(), "re-syncs") {
						t.Errorf("error does not say how to recover: %v", err)
					}
					return
				}
				defer s2.Close()
				got, err := s2.Entries(nil, 0)
				if err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("read after open: got %v, want ErrCorrupt", err)
					}
					return
				}
				if len(got) != len(want) {
					t.Fatalf("opened without error but holds %d entries, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i].Bytes(), want[i].Bytes()) {
						t.Fatalf("entry %d differs after damage", i)
					}
				}
			})
		}
	}
}

func findFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > 0 && strings.HasSuffix(f, suffix) {
			return f
		}
	}
	t.Fatalf("no %s file in %s", suffix, dir)
	return ""
}

// A flipped byte in the middle of a large table (hundreds of blocks), far
// from the feed heads and from the table's index and last block: nothing
// open reads but the check of every block's checksum passes over it, and
// that check refuses the store with ErrCorrupt and names the table.
func TestCorruptionInLargeTable(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	mustIngest(t, s, n.keyEntry)
	// 8,000 entries of cert-fr, built in batches of 1,000 with one
	// signature each (as sync delivers them): about 5 MiB of tables.
	var tip log.Tip
	for range 8 {
		drafts := make([]log.Draft, 1000)
		for i := range drafts {
			drafts[i] = n.msg(strings.Repeat("y", 300))
		}
		es, err := log.Build(n.fr, n.genesis.NetworkID(), tip, 0, t0, drafts)
		if err != nil {
			t.Fatal(err)
		}
		last := es[len(es)-1]
		tip = log.Tip{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
		mustIngest(t, s, es...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	target := largestFile(t, dir, ".sst")
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1<<20 {
		t.Fatalf("largest table %s holds %d bytes, want at least 1 MiB", target, len(b))
	}
	b[len(b)/2] ^= 0x5a
	if err := os.WriteFile(target, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// Only the check of the blocks finds the damage.
	s2, err := Open(dir, n.genesis, n.lu, Options{SkipIntegrityCheck: true})
	if err != nil {
		t.Fatalf("open without the check: %v, want no error (the damage is off the path of open)", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, n.genesis, n.lu, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: got %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), filepath.Base(target)) {
		t.Errorf("error does not name the damaged table %s: %v", filepath.Base(target), err)
	}
	if !strings.Contains(err.Error(), "re-syncs") {
		t.Errorf("error does not say how to recover: %v", err)
	}
}

// largestFile is the largest file in dir whose name ends in suffix.
func largestFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	var best string
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > size {
			best, size = f, st.Size()
		}
	}
	if best == "" {
		t.Fatalf("no %s file in %s", suffix, dir)
	}
	return best
}
