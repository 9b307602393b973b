package matrix

import (
	"fmt"
	"testing"
	"time"
)

// During a catch-up the state is written every saveEvery entries (or
// saveAfter), and flush writes the rest; update always writes.
func TestBridgeStateWrittenInBatches(t *testing.T) {
	dir := t.TempDir()
	b := &Bridge{opts: Options{Dir: dir}, st: state{Position: Position{}}, savedAt: time.Now(), saveEvery: 3, saveAfter: time.Hour}
	onDisk := func() uint64 {
		t.Helper()
		st, err := loadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st.Position["a"]
	}
	for seq, want := range []uint64{1: 0, 2: 0, 3: 3, 4: 3, 5: 3, 6: 6, 7: 6} {
		if seq == 0 {
			continue
		}
		if err := b.advance(func(s *state) { s.Position["a"] = uint64(seq) }); err != nil {
			t.Fatal(err)
		}
		if got := onDisk(); got != want {
			t.Errorf("after entry %d: seq %d on disk, want %d", seq, got, want)
		}
		if got := b.position()["a"]; got != uint64(seq) {
			t.Errorf("after entry %d: seq %d in memory", seq, got)
		}
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(); got != 7 {
		t.Errorf("after flush: seq %d on disk, want 7", got)
	}
	if err := b.update(func(s *state) { s.From = "t1" }); err != nil {
		t.Fatal(err)
	}
	b.saveAfter = 0 // slow sends: each is written
	if err := b.advance(func(s *state) { s.Position["a"] = 8 }); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(); got != 8 {
		t.Errorf("an entry after saveAfter: seq %d on disk, want 8", got)
	}
}

// One state write (a new file, fsync, rename, fsync of the directory),
// of a state with 10 authors and no or a full list of seen events: what
// each entry sent cost before writes were batched.
func BenchmarkStateWrite(b *testing.B) {
	for _, seen := range []int{0, maxSeen} {
		b.Run(fmt.Sprintf("seen=%d", seen), func(b *testing.B) {
			dir := b.TempDir()
			st := state{Position: Position{}, From: "t100_2000"}
			for i := range 10 {
				st.Position[fmt.Sprint("author-", i)] = uint64(i)
			}
			for i := range seen {
				st.Seen = append(st.Seen, fmt.Sprintf("$%043d", i))
			}
			for b.Loop() {
				if err := saveState(dir, st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
