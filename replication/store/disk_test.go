package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
)

// fakeDisk is a FreeSpace hook whose answer a test sets.
type fakeDisk struct {
	free  atomic.Uint64
	calls atomic.Int64
	err   atomic.Pointer[error]
}

func newFakeDisk(free uint64) *fakeDisk {
	d := &fakeDisk{}
	d.free.Store(free)
	return d
}

func (d *fakeDisk) FreeSpace() (uint64, error) {
	d.calls.Add(1)
	if e := d.err.Load(); e != nil {
		return 0, *e
	}
	return d.free.Load(), nil
}

const testReserve = 100 << 20

func openGuarded(t testing.TB, dir string, n *testNet, self *crypto.Identity, d *fakeDisk) *Store {
	t.Helper()
	s, err := Open(dir, n.genesis, self, Options{FreeSpace: d.FreeSpace, Reserve: testReserve})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantDiskFull checks that err is a disk-full refusal whose message says
// what is free, the reserve, where, and what to do.
func wantDiskFull(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("%s on a full disk: got %v, want ErrDiskFull", what, err)
	}
	for _, want := range []string{"free", "100.0 MiB", "reserve", "nothing was written", "Free space on", "resumes writing by itself"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: message %q lacks %q", what, err, want)
		}
	}
}

// Below the reserve every write is refused and nothing is written; reads
// work; when space is back, writes resume by themselves and chain on.
func TestDiskFullRefusesAndResumes(t *testing.T) {
	n := newTestNet(t)
	ctx := context.Background()
	disk := newFakeDisk(1 << 40)
	dir := t.TempDir()
	s := openGuarded(t, dir, n, n.lu, disk)
	mustIngest(t, s, n.keyEntry)
	before := mustAppend(t, s, n.msg("one"), n.msg("two"))

	// Entries of another author, to ingest while full.
	other := openStore(t, t.TempDir(), n, n.fr)
	mustIngest(t, other, n.keyEntry)
	remote := mustAppend(t, other, n.msg("fr one"), n.msg("fr two"))
	rlog := s.Raft()
	if err := rlog.StoreLogs([]*raft.Log{testRaftLog(1, "a"), testRaftLog(2, "b")}); err != nil {
		t.Fatal(err)
	}

	disk.free.Store(testReserve - 1)
	digest, frontier := s.Digest(), s.Frontier()
	calls := disk.calls.Load()
	_, err := s.Append(ctx, n.msg("three"))
	wantDiskFull(t, "Append", err)
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("message %q does not name the directory %s", err, dir)
	}
	if got := disk.calls.Load() - calls; got != 1 {
		t.Errorf("a refused append measured the disk %d times, want 1", got)
	}
	res, err := s.Ingest(ctx, remote...)
	wantDiskFull(t, "Ingest", err)
	if res == nil || len(res.Added) != 0 {
		t.Errorf("Ingest on a full disk added %+v", res)
	}
	key, _ := crypto.NewGroupKey("to/x", 1)
	_, err = s.AppendKey(ctx, key, n.recipients())
	wantDiskFull(t, "AppendKey", err)
	err = rlog.StoreLogs([]*raft.Log{testRaftLog(3, "c")})
	wantDiskFull(t, "StoreLogs", err)
	err = rlog.DeleteRange(1, 2)
	wantDiskFull(t, "DeleteRange", err)
	// The term and the vote are always written (hashicorp/raft panics
	// otherwise).
	if err := rlog.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Errorf("SetUint64 on a full disk: %v, want it written", err)
	}

	if s.Digest() != digest || len(s.Frontier()) != len(frontier) {
		t.Error("the frontier moved on a full disk")
	}
	if got := allEntries(t, s); len(got) != 3 {
		t.Errorf("%d entries after refused writes, want 3", len(got))
	}
	if last, _ := rlog.LastIndex(); last != 2 {
		t.Errorf("Raft last index %d after a refused StoreLogs, want 2", last)
	}
	if first, _ := rlog.FirstIndex(); first != 1 {
		t.Errorf("Raft first index %d after a refused DeleteRange, want 1", first)
	}
	if b, err := s.Read(before[1]); err != nil || b.Text != "two" {
		t.Errorf("read on a full disk: %v, %v", b, err)
	}
	if st := s.Disk(); !st.Full || !st.Guarded || st.Free != testReserve-1 || st.Reserve != testReserve || st.Dir != dir {
		t.Errorf("Disk() = %+v, want full", st)
	}
	if !s.DiskFull() {
		t.Error("DiskFull() = false on a full disk")
	}

	disk.free.Store(testReserve)
	if s.DiskFull() != true {
		t.Error("DiskFull() measured: it must report the last measurement only")
	}
	more := mustAppend(t, s, n.msg("three"))
	if more[0].Header.Seq != 3 || more[0].Header.Prev != before[1].ID() {
		t.Errorf("append after the disk came back: seq %d, does not chain on", more[0].Header.Seq)
	}
	if res := mustIngest(t, s, remote...); len(res.Added) != 2 {
		t.Errorf("ingest after the disk came back added %d, want 2", len(res.Added))
	}
	if err := rlog.StoreLogs([]*raft.Log{testRaftLog(3, "c")}); err != nil {
		t.Errorf("StoreLogs after the disk came back: %v", err)
	}
	if s.DiskFull() || s.Disk().Full {
		t.Error("still full after space came back")
	}
}

// Concurrent appends on a full disk each get ErrDiskFull, and the group
// is not retried one by one.
func TestDiskFullGroupCommit(t *testing.T) {
	n := newTestNet(t)
	disk := newFakeDisk(1 << 40)
	s := openGuarded(t, t.TempDir(), n, n.lu, disk)
	mustIngest(t, s, n.keyEntry)
	disk.free.Store(0)
	calls := disk.calls.Load()
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			_, errs[w] = s.Append(context.Background(), n.msg(fmt.Sprint(w)))
		})
	}
	wg.Wait()
	for w, err := range errs {
		if !errors.Is(err, ErrDiskFull) {
			t.Errorf("writer %d: %v, want ErrDiskFull", w, err)
		}
	}
	// One measurement per group-committed batch: at most one per append,
	// fewer when appends were grouped; more means refused groups were
	// retried one by one.
	if got := disk.calls.Load() - calls; got > writers {
		t.Errorf("%d measurements for %d refused appends: the group was retried one by one", got, writers)
	}
	if h, _ := s.Head(n.lu.ID()); h.Seq != 0 {
		t.Errorf("head at seq %d after refused appends", h.Seq)
	}
}

// raft's appendEntries deletes a conflicting suffix, then stores the
// leader's entries from the same index, and does not undo its in-memory
// last index if the second step fails: that StoreLogs is written even if
// the disk filled in between. Any other StoreLogs is refused.
func TestDiskFullRaftSuffixReplacement(t *testing.T) {
	n := newTestNet(t)
	disk := newFakeDisk(1 << 40)
	s := openGuarded(t, t.TempDir(), n, n.lu, disk)
	r := s.Raft()
	if err := r.StoreLogs([]*raft.Log{testRaftLog(1, "a"), testRaftLog(2, "b"), testRaftLog(3, "c")}); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteRange(2, 3); err != nil {
		t.Fatal(err)
	}
	disk.free.Store(0)
	if err := r.StoreLogs([]*raft.Log{testRaftLog(5, "x")}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("StoreLogs at another index: %v, want ErrDiskFull", err)
	}
	// The marker is spent by any StoreLogs: replay the cut.
	disk.free.Store(1 << 40)
	if err := r.DeleteRange(2, 3); err != nil {
		t.Fatal(err)
	}
	disk.free.Store(0)
	if err := s.Raft().StoreLogs([]*raft.Log{testRaftLog(2, "B"), testRaftLog(3, "C")}); err != nil {
		t.Fatalf("StoreLogs replacing the deleted suffix: %v, want it written", err)
	}
	var l raft.Log
	if err := r.GetLog(3, &l); err != nil || string(l.Data) != "C" {
		t.Errorf("replaced entry 3: %q, %v", l.Data, err)
	}
	if err := r.StoreLogs([]*raft.Log{testRaftLog(4, "d")}); !errors.Is(err, ErrDiskFull) {
		t.Errorf("the next StoreLogs: %v, want ErrDiskFull", err)
	}
}

// A store does not open on a disk with no room at all (badger writes file
// headers through memory maps when it opens); below the reserve but with
// room it opens and serves reads.
func TestDiskFullOpen(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	disk := newFakeDisk(0)
	if _, err := Open(dir, n.genesis, n.lu, Options{FreeSpace: disk.FreeSpace, Reserve: testReserve}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Open with no free space: %v, want ErrDiskFull", err)
	}
	disk.free.Store(minOpenFree)
	if _, err := Open(dir, n.genesis, n.lu, Options{FreeSpace: disk.FreeSpace, Reserve: testReserve}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("creating a store below the reserve: %v, want ErrDiskFull", err)
	}
	disk.free.Store(1 << 40)
	s, err := Open(dir, n.genesis, n.lu, Options{FreeSpace: disk.FreeSpace, Reserve: testReserve})
	if err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, n.keyEntry)
	es := mustAppend(t, s, n.msg("kept"))
	s.Close()
	disk.free.Store(minOpenFree)
	s = openGuarded(t, dir, n, n.lu, disk)
	if _, err := s.Get(es[0].ID()); err != nil {
		t.Errorf("read after reopening below the reserve: %v", err)
	}
	if _, err := s.Append(context.Background(), n.msg("no")); !errors.Is(err, ErrDiskFull) {
		t.Errorf("append below the reserve: %v", err)
	}
}

// A FreeSpace hook that fails does not stop writes (unknown is not full).
func TestDiskFreeSpaceErrorWrites(t *testing.T) {
	n := newTestNet(t)
	disk := newFakeDisk(1 << 40)
	s := openGuarded(t, t.TempDir(), n, n.lu, disk)
	mustIngest(t, s, n.keyEntry)
	boom := errors.New("statfs: input/output error")
	disk.err.Store(&boom)
	mustAppend(t, s, n.msg("written"))
	if st := s.Disk(); st.Full || !errors.Is(st.Err, boom) {
		t.Errorf("Disk() = %+v, want not full with the error", st)
	}
}

// The default reserve is what reserveFor documents, from the badger
// options Open uses; an in-memory store without a hook has no guard.
func TestDefaultReserve(t *testing.T) {
	if got, want := DefaultReserve(), uint64(318<<20); got != want {
		t.Errorf("DefaultReserve() = %s, want %s (update reserveFor's doc)", bytesString(got), bytesString(want))
	}
	n := newTestNet(t)
	s, err := Open("", n.genesis, n.lu, Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Disk(); st.Guarded || st.Full {
		t.Errorf("in-memory store: Disk() = %+v, want unguarded", st)
	}
	disk := newFakeDisk(0)
	m, err := Open("", n.genesis, n.lu, Options{InMemory: true, FreeSpace: disk.FreeSpace, Reserve: 1})
	if err == nil {
		m.Close()
		t.Fatal("an in-memory store with a zero FreeSpace hook opened")
	}
	disk.free.Store(1 << 20)
	m, err = Open("", n.genesis, n.lu, Options{InMemory: true, FreeSpace: disk.FreeSpace, Reserve: 1})
	if err == nil {
		m.Close()
		t.Fatal("a store with 1 MiB free opened")
	}
	disk.free.Store(1 << 30)
	m, err = Open("", n.genesis, n.lu, Options{InMemory: true, FreeSpace: disk.FreeSpace, Reserve: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mustIngest(t, m, n.keyEntry)
	disk.free.Store(0)
	if _, err := m.Append(context.Background(), n.msg("x")); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "simulated") {
		t.Errorf("in-memory store with a hook on a full disk: %v", err)
	}
}

func TestBytesString(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {318 << 20, "318.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := bytesString(c.n); got != c.want {
			t.Errorf("bytesString(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
