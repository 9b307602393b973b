package store

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4/table"
)

// The check at open reads the tables and maps none of them: after Open
// the process maps each table file once, in badger's own map, as after an
// open without the check.
func TestVerifyTablesMapNothing(t *testing.T) {
	if _, err := os.Stat("/proc/self/maps"); err != nil {
		t.Skip("no /proc/self/maps on this system")
	}
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	mustIngest(t, s, n.keyEntry)
	for range 20 {
		mustAppend(t, s, n.msg(strings.Repeat("z", 300)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, n, n.lu)
	tables := len(s.db.Tables())
	if tables == 0 {
		t.Fatal("no table after reopening: nothing was checked")
	}
	if got := tableMaps(t, dir); got != tables {
		t.Errorf("after open: %d maps of table files, want %d (one per table)", got, tables)
	}
}

// tableMaps counts the maps of .sst files in dir that this process holds.
func tableMaps(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if p := fields[len(fields)-1]; filepath.Dir(p) == dir && strings.HasSuffix(p, ".sst") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// A table that is gone, or truncated to nothing, was compacted away after
// it was listed (badger truncates a table file before it removes it): the
// compaction read every block with its checksum, so it counts as checked.
func TestVerifyTableCompactedAway(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "000002.sst")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "000001.sst"), empty} {
		if _, err := verifyTable(path, 1, &table.Options{}, nil); err != nil {
			t.Errorf("verifyTable(%s): got %v, want nil", filepath.Base(path), err)
		}
	}
}
