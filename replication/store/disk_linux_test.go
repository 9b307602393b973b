//go:build linux

package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"

	"github.com/crisismesh/crisismesh/replication/log"
)

const diskFullEnv = "CRISISMESH_STORE_DISKFULL_CHILD"

// TestDiskFullReal fills a real file system: a tmpfs a little larger than
// the reserve, mostly taken by a plain file. A child process appends with
// the real statfs guard until ErrDiskFull, checks that Ingest and the Raft
// log are refused too and that everything it acknowledged reads back,
// and closes the store (badger compacts L0 at close: that needs the
// reserve too). A crash (SIGBUS from a write into a memory-mapped hole)
// fails the test. The parent reopens the store, finds every acknowledged
// entry, removes the filler and sees writes resume.
func TestDiskFullReal(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs of several hundred MiB")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs (CI runs as root)")
	}
	n := newTestNet(t)
	reserve := DefaultReserve()
	const room = 64 << 20 // what the store may write before the guard trips
	size := reserve + 256<<20
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs of %s on %s: %v", bytesString(size), mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	free, err := statfsFree(mnt)
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	fill := int64(free - reserve - room)
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, fill); err != nil {
		t.Fatalf("fallocate %s: %v", bytesString(uint64(fill)), err)
	}
	f.Close()
	free, _ = statfsFree(mnt)
	t.Logf("tmpfs of %s, reserve %s, %s free after the filler", bytesString(size), bytesString(reserve), bytesString(free))

	home := t.TempDir() // identity and genesis, off the tmpfs
	writeChildFiles(t, home, n, n.lu)
	remote, err := log.Build(n.fr, n.genesis.NetworkID(), log.Tip{}, n.keyEntry.Header.Lamport, t0, []log.Draft{n.msg("fr 1"), n.msg("fr 2")})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"key": n.keyEntry.Bytes(),
		"remote1": remote[0].Bytes(), "remote2": remote[1].Bytes()}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(home, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(mnt, "db")

	// A child that hangs is killed, and reported as hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDiskFullChild$", "-test.v")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+home+string(os.PathListSeparator)+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]log.Hash{}
	var full, closed string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ACK "):
			f := strings.Fields(line)
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			id, err := log.ParseHash(f[2])
			if err != nil {
				t.Fatal(err)
			}
			acked[seq] = id
		case strings.HasPrefix(line, "FULL "):
			full = strings.TrimPrefix(line, "FULL ")
		case strings.HasPrefix(line, "CLOSED"):
			closed = line
		case strings.HasPrefix(line, "---"), strings.HasPrefix(line, "    "):
			t.Log("child: " + line)
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the child hung (killed after 5 minutes, %d entries acknowledged)\n%s", len(acked), stderr.String())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ProcessState.Sys().(unix.WaitStatus).Signaled() {
		t.Fatalf("the store crashed on a full disk (%v) after %d acknowledged entries: the reserve is too small\n%s", err, len(acked), stderr.String())
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	if full == "" || closed == "" {
		t.Fatalf("child did not report the full disk (%q) and a clean close (%q)\n%s", full, closed, stderr.String())
	}
	t.Logf("child: %d entries acknowledged in %v, then: %s", len(acked), time.Since(start).Round(time.Millisecond), full)
	for _, want := range []string{db, "reserve", "resumes writing by itself"} {
		if !strings.Contains(full, want) {
			t.Errorf("disk-full message lacks %q: %s", want, full)
		}
	}

	s, err := Open(db, n.genesis, n.lu, Options{})
	if err != nil {
		t.Fatalf("reopen on the full file system: %v", err)
	}
	defer s.Close()
	feed, err := s.Feed(n.lu.ID(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	held := map[uint64]log.Hash{}
	for _, e := range feed {
		held[e.Header.Seq] = e.ID()
	}
	for seq, id := range acked {
		if held[seq] != id {
			t.Fatalf("acknowledged entry %d (%s) lost", seq, id.Short())
		}
	}
	if k, err := log.CheckRun(s.Network(), s.Roster(), log.Head{}, feed); k != len(feed) || err != nil {
		t.Fatalf("feed after the full disk: %d of %d valid, %v", k, len(feed), err)
	}
	st := s.Disk()
	t.Logf("reopened: %d entries, %s free, full %v", len(feed), bytesString(st.Free), st.Full)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if st := s.Disk(); st.Full {
		t.Fatalf("still full after removing the filler: %+v", st)
	}
	key, _ := s.CurrentKey("all")
	es, err := s.Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPGreen, Text: "space is back"}, Key: key})
	if err != nil {
		t.Fatalf("append after freeing space: %v", err)
	}
	if es[0].Header.Seq != uint64(len(feed))+1 {
		t.Errorf("append after freeing space: seq %d, want %d", es[0].Header.Seq, len(feed)+1)
	}
	if err := s.Raft().StoreLogs([]*raft.Log{testRaftLog(1, "a")}); err != nil {
		t.Errorf("Raft log after freeing space: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullChild is the child of TestDiskFullReal; it does nothing
// unless started by it.
func TestDiskFullChild(t *testing.T) {
	env := os.Getenv(diskFullEnv)
	if env == "" {
		t.Skip("run by TestDiskFullReal only")
	}
	home, db, _ := strings.Cut(env, string(os.PathListSeparator))
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(home, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id, g := readChildFiles(t, home)
	keyEnt, err := log.Decode(read("key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, g, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Ingest(ctx, keyEnt); err != nil {
		t.Fatal(err)
	}
	key, _ := s.CurrentKey("all")
	small := strings.Repeat("situation report. ", 60)   // ~1 KiB: in the LSM tree
	large := strings.Repeat("attachment bytes. ", 1200) // ~21 KiB: in the value log
	var acked []*log.Entry
	var fullErr error
	for batch := 0; fullErr == nil; batch++ {
		drafts := make([]log.Draft, 64)
		for i := range drafts {
			text := small
			if i%8 == 0 {
				text = large
			}
			drafts[i] = log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPGreen, Text: fmt.Sprintf("%d/%d %s", batch, i, text)}, Key: key}
		}
		es, err := s.Append(ctx, drafts...)
		switch {
		case errors.Is(err, ErrDiskFull):
			fullErr = err
		case err != nil:
			t.Fatalf("append: %v", err)
		}
		for _, e := range es {
			fmt.Printf("ACK %d %s\n", e.Header.Seq, e.ID())
		}
		acked = append(acked, es...)
		if batch > 100000 {
			t.Fatal("the disk never filled")
		}
	}
	// Everything else that writes is refused as well, and reads work.
	var remote []*log.Entry
	for _, name := range []string{"remote1", "remote2"} {
		e, err := log.Decode(read(name))
		if err != nil {
			t.Fatal(err)
		}
		remote = append(remote, e)
	}
	if res, err := s.Ingest(ctx, remote...); !errors.Is(err, ErrDiskFull) || len(res.Added) != 0 {
		t.Fatalf("Ingest on the full disk: %v, added %d", err, len(res.Added))
	}
	if err := s.Raft().StoreLogs([]*raft.Log{testRaftLog(1, "a")}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Raft StoreLogs on the full disk: %v", err)
	}
	for _, e := range acked {
		got, err := s.Get(e.ID())
		if err != nil || got.ID() != e.ID() {
			t.Fatalf("read back %d: %v", e.Header.Seq, err)
		}
		if _, err := s.Read(got); err != nil {
			t.Fatalf("open %d: %v", e.Header.Seq, err)
		}
	}
	fmt.Printf("FULL %s\n", fullErr)
	if err := s.Close(); err != nil {
		t.Fatalf("close on the full disk: %v", err)
	}
	fmt.Println("CLOSED")
}
