package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Errors of the store.
var (
	// ErrCorrupt: the database is damaged. The message names what and how
	// to recover.
	ErrCorrupt = errors.New("store: database is damaged")
	// ErrNotFound: no such entry.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrWrongNetwork: the database belongs to another network.
	ErrWrongNetwork = errors.New("store: database belongs to another network")
)

const formatVersion = 1

// Key prefixes; see the package documentation.
const (
	pMeta     = 'm'
	pEntry    = 'e'
	pFeed     = 'a'
	pOrder    = 'o'
	pPlain    = 'p'
	pHead     = 'f'
	pEvidence = 'x'
	pWaiting  = 'w'
)

// maxTxnEntries and maxTxnBytes bound one write transaction: badger
// refuses a transaction over 15% of the memtable size (4.8 MB with 32 MB
// memtables). Larger writes are split; a single entry (≤ 1 MiB) always fits.
const (
	maxTxnEntries = 2000
	maxTxnBytes   = 2 << 20
)

// Store is a node's crisis log on disk. It is safe for concurrent use.
type Store struct {
	db      *badger.DB
	logger  *slog.Logger
	genesis *crypto.Genesis
	network crypto.NetworkID
	self    *crypto.Identity
	held    []*crypto.Identity // self, then the identities rotated away from
	now     func() time.Time
	guard   *diskGuard // nil: no disk to fill
	// raftTruncated is RaftStore.truncated.
	raftTruncated atomic.Uint64

	// wmu serialises writers; the writer holding it drains queue.
	wmu   sync.Mutex
	qmu   sync.Mutex
	queue []*appendReq
	qcond *sync.Cond // on qmu: the queue's front or a request finished
	// writers is how many appends waited at the last commit's end (its
	// batch and what queued behind it); gathering is set while a leader
	// waits for them (commit delay). Both on qmu.
	writers   int
	gathering bool
	// commitDelay is the package's commitDelay (tests lengthen it).
	commitDelay time.Duration

	mu       sync.RWMutex // guards the fields below
	closed   bool
	frontier log.Frontier
	digest   log.Digest
	// maxLamport is the clock this node's next entry builds on: the
	// largest clock held, leaving out clocks that jumped (log.Jumped).
	maxLamport uint64
	roster     *crypto.Roster
	// keyring: the group keys this member trusts, derived from the roster
	// and the key entries held (log.DeriveKeyring); never edited here.
	keyring *log.Keyring
	// offences: entries whose authors broke a rule no honest author
	// breaks, as this node found them (see Offences). In memory only.
	offences map[offence]struct{}
	forks    []Fork
	subs     []*Subscription
	// waiting: per author, the entries held apart from the feed until a
	// composite signature covers them (waiting.go).
	waiting map[crypto.MemberID]*waitFeed
}

// Options tunes a store. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// SkipIntegrityCheck skips the checks at open: of the feed heads and
	// of every table block's checksum (package doc, "Integrity").
	SkipIntegrityCheck bool
	// InMemory keeps the database in memory only (dir is ignored): for
	// tests and simulations that need many short-lived stores. Nothing
	// survives Close.
	InMemory bool
	// Now is the clock whose time Append writes as the author time
	// (informative only: order is by Lamport clock). Default time.Now.
	Now func() time.Time
	// FreeSpace returns the bytes free on the store's file system; nil
	// measures the directory with statfs (an in-memory store then has no
	// guard). Every write transaction asks it first and is refused with
	// ErrDiskFull below the reserve, so it must be cheap; simulators set
	// it to fake a full disk. An error lets writes through (unknown is not
	// full) and is logged once.
	FreeSpace func() (uint64, error)
	// Reserve is the free space below which writes are refused; zero
	// means DefaultReserve, computed from the badger options the store
	// uses. Lower it only where nothing else writes to the file system
	// and the store stays small (tests).
	Reserve uint64
	// Previous are the identities this member's keys were rotated away
	// from: the key envelopes sealed to them still open, so what was
	// sealed to the member before its rotation stays readable.
	Previous []*crypto.Identity
}

// Open opens (creating if needed) the store in dir for the network that
// genesis founds, acting as self. It checks the database's integrity.
func Open(dir string, genesis *crypto.Genesis, self *crypto.Identity, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.InMemory {
		dir = ""
	}
	bopts := badgerOptions(dir, opts, logger)
	guard := newDiskGuard(dir, opts, bopts, logger)
	if guard != nil && !opts.InMemory {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
	}
	if guard != nil {
		// Opening writes file headers through fresh memory maps: on a
		// file system with no room at all that would crash the process.
		if st := guard.measure(); st.Err == nil && st.Free < minOpenFree {
			return nil, fmt.Errorf("%w: cannot open the store: %s free, badger needs %s to start; free space on the file system of %s and start again",
				ErrDiskFull, bytesString(st.Free), bytesString(minOpenFree), dir)
		}
	}
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v; %s", ErrCorrupt, dir, err, recoverHint(dir))
	}
	s := &Store{
		db: db, logger: logger, genesis: genesis, network: genesis.NetworkID(), self: self,
		held:     append([]*crypto.Identity{self}, opts.Previous...),
		frontier: log.Frontier{}, roster: genesis.Roster(), offences: map[offence]struct{}{},
		waiting: map[crypto.MemberID]*waitFeed{}, now: opts.Now, guard: guard,
	}
	s.qcond = sync.NewCond(&s.qmu)
	s.commitDelay = commitDelay
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.load(!opts.SkipIntegrityCheck); err != nil {
		db.Close()
		if errors.Is(err, ErrWrongNetwork) || errors.Is(err, ErrDiskFull) {
			return nil, err
		}
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, fmt.Errorf("%w; %s", err, recoverHint(dir))
	}
	if !opts.SkipIntegrityCheck {
		if err := verifyTables(db, bopts); err != nil {
			db.Close()
			return nil, fmt.Errorf("%w: %v; %s", ErrCorrupt, err, recoverHint(dir))
		}
	}
	return s, nil
}

// badgerOptions are the badger options of a store in dir (in memory if
// dir is "").
// valueThreshold is the largest value kept in the LSM tree (see
// badgerOptions).
const valueThreshold = 16 << 10

func badgerOptions(dir string, opts Options, logger *slog.Logger) badger.Options {
	bopts := badger.DefaultOptions(dir).
		WithInMemory(opts.InMemory).
		WithSyncWrites(true).
		WithLogger(badgerLogger{logger}).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithMemTableSize(32 << 20).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true).
		WithNumCompactors(2).
		WithCompactL0OnClose(true).
		// Value-log files of 64 MiB (badger's default is 1 GiB): value-log
		// garbage collection rewrites a file at a time, and the disk-full
		// reserve must hold one such rewrite. Existing larger files stay
		// readable; new files rotate at the new size.
		WithValueLogFileSize(64 << 20)
	if !opts.InMemory {
		// Entries up to 16 KiB (a post of some KiB of text with its
		// 3.4 KB composite signature) stay in the LSM tree, so that
		// committing them syncs the write-ahead log only; larger ones
		// go to the value log, and a commit holding one syncs both.
		// With 4 KiB, a post of 1 KiB of text (a 4.7 KB entry) went to
		// the value log and each such commit cost two syncs (about 20 %
		// more per durable append, BENCHMARKS.md "Change 2").
		bopts = bopts.WithValueThreshold(valueThreshold)
	}
	return bopts
}

// recoverHint tells the operator what to do with a damaged database.
func recoverHint(dir string) string {
	return "to recover, stop the node, move " + dir + " aside and start again: it re-syncs every entry from peers (keep the old directory as evidence)"
}

// Close closes the database. It waits for a commit in progress.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, sub := range s.subs {
		close(sub.c)
	}
	s.subs = nil
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// load checks metadata, reads the frontier, the roster, the keys and the
// waiting entries (dropping those the feed has passed).
func (s *Store) load(check bool) error {
	var stale [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		if err := s.checkMetaLocked(txn); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pHead}, PrefetchValues: true})
		defer it.Close()
		var clocks []uint64
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 33 {
				return fmt.Errorf("%w: bad frontier key %x", ErrCorrupt, k)
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("%w: frontier: %v", ErrCorrupt, err)
			}
			h, err := decodeHead(v)
			if err != nil {
				return err
			}
			author := crypto.MemberID(k[1:])
			s.frontier[author] = h
			s.digest.Add(log.ItemHash(author, h))
			clocks = append(clocks, h.Lamport)
		}
		it.Close()
		s.maxLamport = carriedClock(clocks, s.frontier[s.self.ID()].Lamport)
		if err := s.loadPlainLocked(txn); err != nil {
			return err
		}
		if err := s.loadForksLocked(txn); err != nil {
			return err
		}
		var err error
		if stale, err = s.loadWaitingLocked(txn); err != nil {
			return err
		}
		if check {
			return s.checkIntegrityLocked(txn)
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	// Not refused on a full disk: deleting frees space.
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, k := range stale {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: drop %d stale waiting entries: %w", len(stale), err)
	}
	return nil
}

// checkMetaLocked records or checks the network this database belongs to.
// Called during open, before the store is shared.
func (s *Store) checkMetaLocked(txn *badger.Txn) error {
	item, err := txn.Get(metaKey("network"))
	if errors.Is(err, badger.ErrKeyNotFound) {
		if err := s.guard.room("creating the store"); err != nil {
			return err
		}
		return s.db.Update(func(w *badger.Txn) error {
			ver := binary.BigEndian.AppendUint32(nil, formatVersion)
			if err := w.Set(metaKey("format"), ver); err != nil {
				return err
			}
			return w.Set(metaKey("network"), s.network[:])
		})
	}
	if err != nil {
		return fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if !bytes.Equal(v, s.network[:]) {
		return fmt.Errorf("%w: it holds network %x, the genesis founds %s; use the data directory of this network", ErrWrongNetwork, v, s.network)
	}
	return nil
}

func metaKey(name string) []byte { return append([]byte{pMeta}, name...) }

func headKey(author crypto.MemberID) []byte { return append([]byte{pHead}, author[:]...) }

func entryKey(id log.Hash) []byte { return append([]byte{pEntry}, id[:]...) }

func feedKey(author crypto.MemberID, seq uint64) []byte {
	k := make([]byte, 41)
	k[0] = pFeed
	copy(k[1:33], author[:])
	binary.BigEndian.PutUint64(k[33:], seq)
	return k
}

func orderKey(prefix byte, k log.OrderKey) []byte { return append([]byte{prefix}, k[:]...) }

func evidenceKey(author crypto.MemberID, seq uint64, id log.Hash) []byte {
	return entryAtKey(pEvidence, author, seq, id)
}

// entryAtKey is the key of entry id of author at seq under prefix (fork
// evidence, waiting entries): 73 bytes.
func entryAtKey(prefix byte, author crypto.MemberID, seq uint64, id log.Hash) []byte {
	k := make([]byte, 0, 73)
	k = append(k, prefix)
	k = append(k, author[:]...)
	k = binary.BigEndian.AppendUint64(k, seq)
	return append(k, id[:]...)
}

func encodeHead(h log.Head) []byte {
	b := make([]byte, 0, 49)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = append(b, h.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Lamport)
	if h.Forked {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeHead(b []byte) (log.Head, error) {
	if len(b) != 49 || b[48] > 1 {
		return log.Head{}, fmt.Errorf("%w: bad feed head record", ErrCorrupt)
	}
	return log.Head{
		Seq: binary.BigEndian.Uint64(b[:8]), ID: log.Hash(b[8:40]),
		Lamport: binary.BigEndian.Uint64(b[40:48]), Forked: b[48] == 1,
	}, nil
}

// Frontier returns a copy of the frontier.
func (s *Store) Frontier() log.Frontier {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.frontier.Clone()
}

// Digest returns the digest of the frontier, in O(1).
func (s *Store) Digest() log.Digest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.digest
}

// FrontierDigest returns a copy of the frontier and its digest, read
// together: a peer whose digest equals it holds exactly that frontier.
func (s *Store) FrontierDigest() (log.Frontier, log.Digest) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.frontier.Clone(), s.digest
}

// Head returns an author's feed head.
func (s *Store) Head(author crypto.MemberID) (log.Head, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.frontier[author]
	return h, ok
}

// MaxLamport returns the clock this node's next entry builds on: the
// largest Lamport clock held, leaving out clocks that jumped more than
// log.MaxJump above what the node held when they arrived, so that one
// member's entry cannot drag every honest clock to the cap.
func (s *Store) MaxLamport() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxLamport
}

// carriedClock is the clock a store reopened with feed heads at clocks
// carries: the largest clock reachable from the lowest head in steps that
// do not jump (log.Jumped), or own, this node's own head, if larger.
func carriedClock(clocks []uint64, own uint64) uint64 {
	slices.Sort(clocks)
	var c uint64
	if len(clocks) > 0 {
		c = clocks[0]
	}
	for _, l := range clocks {
		if log.Jumped(c, l) {
			break
		}
		c = l
	}
	return max(c, own)
}

// The kinds of offence a store records.
const (
	// OffenceLamportJump: the entry's Lamport clock lies more than
	// log.MaxJump above its author's previous entry (0 for seq 1), which
	// no honest author's does: an honest clock grows by the number of
	// entries written in between, far less. Every node charges the same
	// entries. The entry is valid and kept.
	OffenceLamportJump = "lamport-jump"
)

// A Charge is one valid entry that no honest author writes, found when
// it was stored (IngestResult.Charges). It is a soft signal about the
// entry's author, not a verdict on the entry: the entry is stored and
// relayed like any other (its validity must be the same on every node),
// and the author is charged (Offences counts it under its Kind).
type Charge struct {
	Author crypto.MemberID
	Seq    uint64
	ID     log.Hash
	Kind   string // OffenceLamportJump
	Detail string
}

// Roster returns the current roster.
func (s *Store) Roster() *crypto.Roster {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.roster
}

// Network returns the network ID.
func (s *Store) Network() crypto.NetworkID { return s.network }

// Get returns the entry with ID id.
func (s *Store) Get(id log.Hash) (*log.Entry, error) {
	var e *log.Entry
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		e, err = getEntry(txn, id)
		return err
	})
	return e, err
}

// IDsWithPrefix returns the IDs of up to limit stored entries whose ID
// begins with the bytes of prefix, in ID order: a key scan, no entry is
// read. The caller filters further for an odd number of hex digits.
func (s *Store) IDsWithPrefix(prefix []byte, limit int) ([]log.Hash, error) {
	var out []log.Hash
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: append([]byte{pEntry}, prefix...)})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().Key()
			if len(k) != 1+len(log.Hash{}) {
				return fmt.Errorf("%w: entry key of %d bytes", ErrCorrupt, len(k))
			}
			out = append(out, log.Hash(k[1:]))
		}
		return nil
	})
	return out, err
}

func getEntry(txn *badger.Txn, id log.Hash) (*log.Entry, error) {
	item, err := txn.Get(entryKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: entry %s", ErrNotFound, id.Short())
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id.Short(), err)
	}
	var e *log.Entry
	err = item.Value(func(v []byte) error {
		var derr error
		e, derr = log.Decode(v)
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("%w: entry %s does not decode: %v", ErrCorrupt, id.Short(), err)
	}
	if e.ID() != id {
		return nil, fmt.Errorf("%w: entry stored under %s has ID %s", ErrCorrupt, id.Short(), e.ID().Short())
	}
	return e, nil
}

// Feed returns up to limit entries of author after seq (limit ≤ 0: all).
func (s *Store) Feed(author crypto.MemberID, after uint64, limit int) ([]*log.Entry, error) {
	prefix := append([]byte{pFeed}, author[:]...)
	return s.scanIndex(prefix, feedKey(author, after+1), limit, "feed index of "+author.Short())
}

// Entries returns up to limit entries in display order, starting after the
// order key after (nil: from the start).
func (s *Store) Entries(after *log.OrderKey, limit int) ([]*log.Entry, error) {
	start := []byte{pOrder}
	if after != nil {
		start = append(orderKey(pOrder, *after), 0)
	}
	return s.scanIndex([]byte{pOrder}, start, limit, "order index")
}

// scanIndex returns up to limit (≤ 0: all) of the entries whose IDs an
// index under prefix holds, from the key start on; index names it in the
// error for a corrupt value.
func (s *Store) scanIndex(prefix, start []byte, limit int, index string) ([]*log.Entry, error) {
	var out []*log.Entry
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			id, err := it.Item().ValueCopy(nil)
			if err != nil || len(id) != 32 {
				return fmt.Errorf("%w: %s: %v", ErrCorrupt, index, err)
			}
			e, err := getEntry(txn, log.Hash(id))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// A Fork is proof that an author equivocated: two entries with the same
// seq.
type Fork struct {
	Author crypto.MemberID
	Seq    uint64
	A, B   *log.Entry
}

// Forks returns the forks found, oldest first.
func (s *Store) Forks() []Fork {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.forks)
}

// Evidence returns every entry set aside as evidence (forks, entries past
// a revocation).
func (s *Store) Evidence() ([]*log.Entry, error) { return s.evidenceUnder([]byte{pEvidence}) }

// EvidenceOf returns the evidence held for one author.
func (s *Store) EvidenceOf(author crypto.MemberID) ([]*log.Entry, error) {
	return s.evidenceUnder(append([]byte{pEvidence}, author[:]...))
}

// evidenceUnder returns the evidence entries whose keys start with prefix.
func (s *Store) evidenceUnder(prefix []byte) ([]*log.Entry, error) {
	var out []*log.Entry
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			e, err := evidenceEntry(it.Item())
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// evidenceEntry decodes the entry an evidence key holds.
func evidenceEntry(item *badger.Item) (*log.Entry, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: evidence: %v", ErrCorrupt, err)
	}
	e, err := log.Decode(v)
	if err != nil {
		return nil, fmt.Errorf("%w: evidence: %v", ErrCorrupt, err)
	}
	return e, nil
}

func (s *Store) loadForksLocked(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pEvidence}, PrefetchValues: true})
	defer it.Close()
	var prev *log.Entry
	for it.Rewind(); it.Valid(); it.Next() {
		e, err := evidenceEntry(it.Item())
		if err != nil {
			return err
		}
		if prev != nil && prev.Header.Author == e.Header.Author && prev.Header.Seq == e.Header.Seq {
			s.forks = append(s.forks, Fork{Author: e.Header.Author, Seq: e.Header.Seq, A: prev, B: e})
		}
		prev = e
	}
	return nil
}

// checkIntegrityLocked verifies every feed head and the last links of its
// chain. Run at open, before the store is shared.
func (s *Store) checkIntegrityLocked(txn *badger.Txn) error {
	const links = 8
	for _, author := range s.frontier.Authors() {
		h := s.frontier[author]
		if h.Seq == 0 {
			continue
		}
		name := author.Short()
		var card *crypto.Card
		if m, ok := s.roster.Member(author); ok {
			name = m.Card.Name() + " (" + author.Short() + ")"
			card = m.Card
		}
		damaged := func(seq uint64, what string) error {
			return fmt.Errorf("%w: feed of %s at seq %d: %s", ErrCorrupt, name, seq, what)
		}
		want := h.ID
		for seq := h.Seq; seq > 0 && seq+links > h.Seq; seq-- {
			item, err := txn.Get(feedKey(author, seq))
			if err != nil {
				return damaged(seq, "feed index entry missing")
			}
			id, err := item.ValueCopy(nil)
			if err != nil || log.Hash(id) != want {
				return damaged(seq, "feed index does not match the chain")
			}
			e, err := getEntry(txn, want)
			if err != nil {
				return damaged(seq, err.Error())
			}
			if e.Header.Seq != seq || e.Header.Author != author {
				return damaged(seq, "entry is not where its index says")
			}
			if seq == h.Seq && card != nil && e.Signed() {
				if err := e.VerifySignature(card); err != nil {
					return damaged(seq, "head signature does not verify")
				}
			}
			want = e.Header.Prev
		}
	}
	return nil
}

// badgerLogger sends badger's logs to slog.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
