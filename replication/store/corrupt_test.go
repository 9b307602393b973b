package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
