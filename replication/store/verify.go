package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
)

// verifyTables checks the checksum of every block of every table of the
// LSM tree, as badger's DB.VerifyChecksum does, but streamed: one table at
// a time, read with pread into one buffer that the next table reuses, and
// checked there by badger's own table code (table.OpenInMemoryTable and
// Table.VerifyChecksum, without a block cache). DB.VerifyChecksum reads
// the blocks through the database's own memory maps, which stay mapped
// while the database is open, so every page of every table stayed
// resident (+414 MiB of mapped file at 1,000,000 entries), and it put the
// blocks it read into the block cache (BENCHMARKS.md "Open"). Here the
// database's maps are left as they were and the check holds one table's
// bytes and its decompressed blocks at a time.
//
// The files are read rather than mapped because badger may delete a table
// at any time once open has started its compactors, and it truncates the
// file first: a read then comes up short, where a map would fault
// (SIGBUS). A table deleted that way was compacted away; see verifyTable.
//
// The value log is not covered, as it is not by DB.VerifyChecksum: badger
// checks a value's checksum whenever it reads one (VerifyValueChecksum),
// and the feed-head check reads the entries that matter at open.
//
// An in-memory database, or an encrypted one (this store never encrypts),
// is checked with DB.VerifyChecksum.
func verifyTables(db *badger.DB, bopts badger.Options) error {
	if bopts.InMemory || len(bopts.EncryptionKey) > 0 {
		return verifyDB(db)
	}
	topts := &table.Options{
		ReadOnly: true,
		// Every block read is checked against its checksum; without a
		// block cache nothing checked is kept.
		ChkMode:              options.OnBlockRead,
		BlockSize:            bopts.BlockSize,
		Compression:          bopts.Compression,
		ZSTDCompressionLevel: bopts.ZSTDCompressionLevel,
	}
	var buf []byte
	for _, ti := range db.Tables() {
		var err error
		if buf, err = verifyTable(table.NewFilename(ti.ID, bopts.Dir), ti.ID, topts, buf); err != nil {
			return fmt.Errorf("level %d: %w", ti.Level, err)
		}
	}
	return nil
}

// verifyDB is DB.VerifyChecksum. Badger v4.9.6 dereferences a nil block
// when a checksum fails in Table.VerifyChecksum; that panic is turned into
// the error it should be.
func verifyDB(db *badger.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a table fails its checksum (%v)", r)
		}
	}()
	return db.VerifyChecksum()
}

// verifyTable checks every block of table id, in the file at path, read
// into buf (grown if needed; returned for the next table).
//
// A table that is gone, or truncated, was compacted away after it was
// listed (badger truncates a table's file, then removes it, once nothing
// refers to it): to write the tables that replace it, the compaction read
// each of its blocks with its checksum checked (OnBlockRead), and a
// compaction that meets a bad block fails and keeps the table. So such a
// table counts as checked.
func verifyTable(path string, id uint64, opts *table.Options, buf []byte) (_ []byte, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return buf, nil
	}
	if err != nil {
		return buf, fmt.Errorf("table %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf, fmt.Errorf("table %s: %w", path, err)
	}
	size := int(st.Size())
	if size == 0 {
		return buf, nil // truncated before removal: compacted away
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	data := buf[:size]
	if _, err := f.ReadAt(data, 0); err != nil {
		if now, serr := f.Stat(); serr == nil && now.Size() == 0 {
			return buf, nil // truncated while read: compacted away
		}
		return buf, fmt.Errorf("table %s: %w", path, err)
	}
	// Badger v4.9.6 panics on some damage (a nil block when a checksum
	// fails in Table.VerifyChecksum, an index it cannot parse): an error,
	// not a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("table %s fails its checksum (%v)", path, r)
		}
	}()
	// The table lives in data only, with no file and no map: nothing to
	// close. Without a block cache no block outlives VerifyChecksum, so
	// buf is free again when it returns.
	t, err := table.OpenInMemoryTable(data, id, opts)
	if err != nil {
		return buf, fmt.Errorf("table %s: %w", path, err)
	}
	if err := t.VerifyChecksum(); err != nil {
		return buf, fmt.Errorf("table %s: %w", path, err)
	}
	return buf, nil
}
