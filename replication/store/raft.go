package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
)

// Raft keys live under 'r' in the same badger database as the log:
//
//	'r' 'l' index      a Raft log entry
//	'r' 's' key        a Raft stable-store value
const pRaft = 'r'

// errNotFound is what hashicorp/raft expects from a StableStore for a
// missing key: it compares the error's text, so the text must be exactly
// "not found".
var errNotFound = errors.New("not found")

// RaftStore is the store's Raft LogStore and StableStore. Writes are
// durable (fsynced) before they return. It is safe for concurrent use.
//
// On a full disk (see ErrDiskFull) StoreLogs and DeleteRange write
// nothing and return an error wrapping ErrDiskFull. hashicorp/raft v1.8.0
// handles that safely: a follower answers the AppendEntries RPC with
// failure and keeps its log and last index (the leader retries with
// backoff); a leader fails the futures of the entries it could not store
// and steps down, so nothing it could not store is acknowledged or
// committed. StableStore writes (Set, SetUint64: the term and the vote, a
// few dozen bytes per election) are never refused: hashicorp/raft panics
// when it cannot save its term (setCurrentTerm), and the reserve exists so
// that such small writes still fit.
type RaftStore struct {
	s *Store
	// truncated is 1 + the first index of the last DeleteRange: raft
	// deletes a conflicting suffix and then stores the leader's entries
	// from that index; see StoreLogs.
	truncated *atomic.Uint64
}

// Raft returns the store's Raft log and stable store. All RaftStores of a
// Store share their state.
func (s *Store) Raft() *RaftStore { return &RaftStore{s: s, truncated: &s.raftTruncated} }

var (
	_ raft.LogStore    = (*RaftStore)(nil)
	_ raft.StableStore = (*RaftStore)(nil)
)

func raftLogKey(index uint64) []byte {
	k := make([]byte, 10)
	k[0], k[1] = pRaft, 'l'
	binary.BigEndian.PutUint64(k[2:], index)
	return k
}

func raftStableKey(key []byte) []byte { return append([]byte{pRaft, 's'}, key...) }

// raftLogWire is the encoding of a raft.Log.
type raftLogWire struct {
	Index      uint64 `cbor:"1,keyasint"`
	Term       uint64 `cbor:"2,keyasint"`
	Type       uint8  `cbor:"3,keyasint"`
	Data       []byte `cbor:"4,keyasint,omitempty"`
	Extensions []byte `cbor:"5,keyasint,omitempty"`
	AppendedAt int64  `cbor:"6,keyasint,omitempty"` // Unix nanoseconds
}

func encodeRaftLog(l *raft.Log) ([]byte, error) {
	w := raftLogWire{Index: l.Index, Term: l.Term, Type: uint8(l.Type), Data: l.Data, Extensions: l.Extensions}
	if !l.AppendedAt.IsZero() {
		w.AppendedAt = l.AppendedAt.UnixNano()
	}
	return crypto.MarshalCanonical(&w)
}

func decodeRaftLog(b []byte, l *raft.Log) error {
	var w raftLogWire
	if err := crypto.UnmarshalCanonical(b, &w); err != nil {
		return fmt.Errorf("%w: raft log entry: %v", ErrCorrupt, err)
	}
	*l = raft.Log{Index: w.Index, Term: w.Term, Type: raft.LogType(w.Type), Data: w.Data, Extensions: w.Extensions}
	if w.AppendedAt != 0 {
		l.AppendedAt = time.Unix(0, w.AppendedAt)
	}
	return nil
}

func (r *RaftStore) edgeIndex(last bool) (uint64, error) {
	var idx uint64
	err := r.s.db.View(func(txn *badger.Txn) error {
		prefix := []byte{pRaft, 'l'}
		opts := badger.IteratorOptions{Prefix: prefix, Reverse: last}
		it := txn.NewIterator(opts)
		defer it.Close()
		seek := prefix
		if last {
			seek = append(append([]byte{}, prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		}
		it.Seek(seek)
		if it.Valid() {
			k := it.Item().Key()
			if len(k) != 10 {
				return fmt.Errorf("%w: raft log key %x", ErrCorrupt, k)
			}
			idx = binary.BigEndian.Uint64(k[2:])
		}
		return nil
	})
	return idx, err
}

// FirstIndex returns the first index written, 0 for no entries.
func (r *RaftStore) FirstIndex() (uint64, error) { return r.edgeIndex(false) }

// LastIndex returns the last index written, 0 for no entries.
func (r *RaftStore) LastIndex() (uint64, error) { return r.edgeIndex(true) }

// GetLog reads the log entry at index; raft.ErrLogNotFound if none.
func (r *RaftStore) GetLog(index uint64, l *raft.Log) error {
	return r.s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(raftLogKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return decodeRaftLog(v, l) })
	})
}

// StoreLog stores one log entry durably.
func (r *RaftStore) StoreLog(l *raft.Log) error { return r.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores log entries durably, in transactions small enough for
// badger; each transaction is atomic. On a full disk it stores nothing and
// returns an error wrapping ErrDiskFull, except right after DeleteRange
// cut the log at the first index stored: hashicorp/raft does not undo its
// in-memory last index when that second step fails (raft.go,
// appendEntries), so the entries that replace the deleted suffix are
// written anyway (DeleteRange itself was refused if the disk was full).
func (r *RaftStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	replacing := r.truncated.Swap(0) == logs[0].Index+1
	if !replacing {
		if err := r.s.guard.room(fmt.Sprintf("storing %d Raft log entries", len(logs))); err != nil {
			return fmt.Errorf("store: raft log: %w", err)
		}
	}
	for len(logs) > 0 {
		n, size := 0, 0
		for n < len(logs) && n < maxTxnEntries && size < maxTxnBytes {
			size += len(logs[n].Data) + len(logs[n].Extensions) + 64
			n++
		}
		part := logs[:n]
		logs = logs[n:]
		err := r.s.db.Update(func(txn *badger.Txn) error {
			for _, l := range part {
				b, err := encodeRaftLog(l)
				if err != nil {
					return err
				}
				if err := txn.Set(raftLogKey(l.Index), b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: raft log: %w", err)
		}
	}
	return nil
}

// DeleteRange deletes log entries min..max inclusive. On a full disk it
// deletes nothing and returns an error wrapping ErrDiskFull (deleting
// writes tombstones first and frees space only at compaction).
func (r *RaftStore) DeleteRange(min, max uint64) error {
	if err := r.s.guard.room("deleting Raft log entries"); err != nil {
		return fmt.Errorf("store: raft delete range: %w", err)
	}
	wb := r.s.db.NewWriteBatch()
	defer wb.Cancel()
	err := r.s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pRaft, 'l'}})
		defer it.Close()
		for it.Seek(raftLogKey(min)); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if binary.BigEndian.Uint64(k[2:]) > max {
				break
			}
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: raft delete range: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: raft delete range: %w", err)
	}
	r.truncated.Store(min + 1)
	return nil
}

// Set stores a stable value durably. It is never refused for a full disk
// (see RaftStore).
func (r *RaftStore) Set(key, val []byte) error {
	return r.s.db.Update(func(txn *badger.Txn) error { return txn.Set(raftStableKey(key), val) })
}

// Get returns a stable value; an error whose text is "not found" if none.
func (r *RaftStore) Get(key []byte) ([]byte, error) {
	var out []byte
	err := r.s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(raftStableKey(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

// SetUint64 stores a uint64 stable value.
func (r *RaftStore) SetUint64(key []byte, val uint64) error {
	return r.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns a uint64 stable value; "not found" if none.
func (r *RaftStore) GetUint64(key []byte) (uint64, error) {
	b, err := r.Get(key)
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: stable value %q is not a uint64", ErrCorrupt, key)
	}
	return binary.BigEndian.Uint64(b), nil
}
