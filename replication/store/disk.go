package store

import (
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// ErrDiskFull reports a write the store refused because the file system
// of its directory has less free space than the store keeps in reserve.
// Nothing of the refused write was stored. Reads keep working, and writes
// resume by themselves once space is freed: there is nothing to reset.
//
// Why refuse early: badger writes its write-ahead log, value log and
// tables through memory-mapped files that it creates sparse (truncated to
// their final size, blocks allocated on first write). On a file system
// that is really full, a write into such a hole is a SIGBUS that kills
// the process, not an error. The reserve keeps enough room for what
// badger writes in the background after the last accepted write (memtable
// flushes, compactions, value-log rewrites); see [DefaultReserve].
var ErrDiskFull = errors.New("store: disk full")

// minOpenFree is the free space below which Open refuses to start:
// badger writes file headers through fresh memory maps when it opens.
const minOpenFree = 4 << 20

// DiskStatus is the free space of the store's file system against its
// reserve, as measured by [Store.Disk].
type DiskStatus struct {
	// Guarded is false for an in-memory store without a FreeSpace hook:
	// it has no disk to fill, and nothing below applies.
	Guarded bool
	// Dir is the store's directory ("" in memory).
	Dir string
	// Free is the space left on the file system for unprivileged
	// writers (statfs f_bavail), or what Options.FreeSpace said.
	Free uint64
	// Reserve is the space the store keeps in hand: below it, writes
	// are refused with ErrDiskFull.
	Reserve uint64
	// Full is Free < Reserve: writes are refused until space is freed.
	Full bool
	// Err is the error measuring the free space returned, if any; the
	// store then writes as if there were room (see [Options].FreeSpace).
	Err error
}

// diskGuard refuses writes when the store's file system runs low. It is
// safe for concurrent use. Measuring costs one statfs (about 1 µs here),
// next to the fsync (2–3 ms) that every write transaction costs; so the
// guard measures once per group-committed batch, Raft write or ingested
// run, and never serves a stale answer: a disk filled by another process
// stops the very next write, and freed space lets it through.
type diskGuard struct {
	dir     string
	free    func() (uint64, error)
	reserve uint64
	logger  *slog.Logger

	full     atomic.Bool
	mu       gosync.Mutex // guards the fields below
	last     DiskStatus
	errShown bool
}

// newDiskGuard returns the guard for a store, or nil for an in-memory store
// without a FreeSpace hook.
func newDiskGuard(dir string, opts Options, bopts badger.Options, logger *slog.Logger) *diskGuard {
	free := opts.FreeSpace
	if free == nil {
		if opts.InMemory {
			return nil
		}
		free = func() (uint64, error) { return statfsFree(dir) }
	}
	reserve := opts.Reserve
	if reserve == 0 {
		reserve = reserveFor(bopts)
	}
	return &diskGuard{dir: dir, free: free, reserve: reserve, logger: logger}
}

// reserveFor is the free space the store keeps in hand for badger with
// options o: what badger may still write after the guard's last "yes",
// without further checks.
//
//   - MemTableSize: the active memtable's write-ahead log grows until it
//     holds about a memtable before badger rotates it;
//   - MemTableSize: flushing a memtable writes an L0 table about as large
//     before its write-ahead log is deleted;
//   - NumLevelZeroTables·MemTableSize + BaseLevelSize: an L0→L1
//     compaction (also run at Close, CompactL0OnClose) writes the merged
//     tables before it deletes L0 and the overlapping part of L1;
//   - ValueLogFileSize: value-log garbage collection rewrites the live
//     values of one file before deleting it;
//   - a margin for the manifest, a second compactor's smaller
//     compactions, and the transaction in flight (maxTxnBytes, written to
//     the write-ahead log or value log).
//
// With the options Open uses this is 318 MiB.
func reserveFor(o badger.Options) uint64 {
	mem := uint64(o.MemTableSize)
	compaction := uint64(o.NumLevelZeroTables)*mem + uint64(o.BaseLevelSize)
	const margin = 16<<20 + 2*maxTxnBytes
	return 2*mem + compaction + uint64(o.ValueLogFileSize) + margin
}

// DefaultReserve returns the free space a store on disk keeps in reserve
// when Options.Reserve is zero, computed from the badger options Open
// uses.
func DefaultReserve() uint64 {
	return reserveFor(badgerOptions("", Options{}, slog.New(slog.DiscardHandler)))
}

// measure reads the free space now and records it.
func (g *diskGuard) measure() DiskStatus {
	free, err := g.free()
	st := DiskStatus{Guarded: true, Dir: g.dir, Free: free, Reserve: g.reserve, Err: err}
	if err == nil {
		st.Full = free < g.reserve
	}
	g.mu.Lock()
	was := g.last
	g.last = st
	showErr := err != nil && !g.errShown
	g.errShown = err != nil
	g.mu.Unlock()
	g.full.Store(st.Full)
	switch {
	case showErr:
		g.logger.Warn("cannot measure the free disk space; writing without the disk-full guard until it can", "dir", g.dir, "err", err)
	case st.Full && !was.Full:
		g.logger.Error("disk full: the store refuses writes until space is freed", "dir", g.dir, "free", bytesString(free), "reserve", bytesString(g.reserve))
	case !st.Full && was.Full:
		g.logger.Info("disk space is back: the store writes again", "dir", g.dir, "free", bytesString(free))
	}
	return st
}

// room returns nil if a write may go ahead now, and an error wrapping
// ErrDiskFull otherwise; what names the write for the message. The
// reserve includes the largest transaction the store writes, so the size
// of this one does not matter.
func (g *diskGuard) room(what string) error {
	if g == nil {
		return nil
	}
	st := g.measure()
	if !st.Full {
		return nil // with st.Err set: unknown, badger reports ENOSPC where it can
	}
	return diskFullError(what+" refused, nothing was written", st)
}

// diskFullError is the operator's message for a full disk: what happened,
// how much is free, the reserve, where, and what to do.
func diskFullError(what string, st DiskStatus) error {
	where := "the file system of " + st.Dir
	if st.Dir == "" {
		where = "the store's (simulated) disk"
	}
	return fmt.Errorf("%w: %s: %s free on %s, below the %s the store keeps in reserve (badger writes through memory-mapped files and would crash on a full disk). Free space on %s; the node resumes writing by itself",
		ErrDiskFull, what, bytesString(st.Free), where, bytesString(st.Reserve), where)
}

// entries is "1 entry" or "n entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

// Disk measures the free space of the store's file system now and reports
// it against the reserve. It writes nothing; sync and status pages use it
// to learn when writing is possible again.
func (s *Store) Disk() DiskStatus {
	if s.guard == nil {
		return DiskStatus{}
	}
	return s.guard.measure()
}

// CheckDisk measures the free space now and returns nil if writes may go
// ahead, or the error (wrapping ErrDiskFull) that a write would get. It
// writes nothing.
func (s *Store) CheckDisk() error {
	if s.guard == nil {
		return nil
	}
	if st := s.guard.measure(); st.Full {
		return diskFullError("writes are refused", st)
	}
	return nil
}

// DiskFull reports whether the last measurement (the last write attempt
// or call of Disk) found the disk full. It does not measure.
func (s *Store) DiskFull() bool { return s.guard != nil && s.guard.full.Load() }

// bytesString formats a byte count for people: "318.0 MiB".
func bytesString(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
