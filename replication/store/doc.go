// Package store keeps a node's crisis log, and Raft's log and stable store
// ([Store.Raft]), durably in one badger database per node directory. It is
// the only package that touches the log's files.
//
// # Files
//
// store.go opens the database, checks it and reads entries, feeds and fork
// evidence; verify.go checks every block of every table at open; write.go
// appends (group commit) and ingests; waiting.go holds entries waiting
// for their composite signature; revoke.go enforces revocations;
// roster.go derives the roster from the plain entries (roster and key) and
// writes roster updates; keyring.go holds the group keys and writes key
// entries; read.go opens and believes bodies; offences.go counts offences;
// disk.go (with statfs_*.go) guards the disk; watch.go hands new entries to
// subscribers; raft.go is Raft's LogStore and StableStore.
//
// # Layout
//
// One-byte key prefixes make every question a range scan:
//
//	'm' name                       metadata (format, network ID, self)
//	'e' entryID                    the entry's exact bytes
//	'a' author seq                 → entryID: an author's feed; "after seq S" is a scan
//	'o' lamport author seq         → entryID: the display order
//	'p' lamport author seq         → entryID: plain entries (roster, key), read at open
//	'f' author                     → feed head (seq, ID, Lamport, forked): the frontier
//	'x' author seq entryID         → evidence: forked or revoked entries set aside
//	'w' author seq entryID         → a waiting entry: since (8 bytes, unix nanos) + its bytes
//	'r' 'l' index                  → a Raft log entry
//	'r' 's' key                    → a Raft stable-store value (term, vote)
//
// Integers are big-endian, so byte order is numeric order. The frontier is
// held in memory (one head per author) and its digest is kept up to date
// incrementally on every write; neither needs a scan.
//
// # Durability
//
// Writes use badger with SyncWrites: [Store.Append] and [Store.Ingest]
// return only after the write-ahead log is fsynced. Concurrent appenders
// are group committed: whoever takes the write lock commits every queued
// append as one signed batch in one transaction, so N concurrent appends
// cost one signature and one fsync. With several writers (at least 4 waited
// at the last commit) the leader first waits up to 1 ms for as many to
// queue (commit delay, as PostgreSQL's commit_delay with commit_siblings):
// the writers just acknowledged are that far from appending again, and
// without the wait they and the writers that queued meanwhile would take
// turns, half of them per fsync. A lone writer never waits. An append is
// still acknowledged only once its batch is fsynced. Entries up to 16 KiB
// (every post of a few KiB of text) are kept in the LSM tree, so such a
// commit syncs badger's write-ahead log only; a larger entry goes to the
// value log, and its commit syncs that too.
//
// # Disk space
//
// Badger writes through memory-mapped files that it creates sparse; on a
// file system that is really full a write into such a file is a SIGBUS, a
// crash. So the store refuses to write before the disk is full: every
// write transaction (a group-committed append batch, an ingested run,
// waiting entries, fork evidence, a Raft StoreLogs or DeleteRange) first
// measures the free space of the directory (statfs, about 1 µs) and is
// refused with ErrDiskFull, writing nothing, below a reserve computed from
// the badger options (DefaultReserve, 318 MiB). Reads keep working;
// writing resumes by itself once space is freed. Writes that complete one
// already made (setting aside what a revocation refuses) and Raft's term
// and vote are not refused: they are small, and stopping them half-way
// would leave the log or Raft inconsistent; nor is dropping waiting
// entries, which frees space. Options.FreeSpace replaces the measurement
// (simulators fake a full disk with it).
//
// # Ingest
//
// Remote entries are grouped by author and sorted by seq, so any arrival
// order that chains within one call is accepted. An entry whose
// predecessor this node lacks (in the feed or waiting, see "Waiting
// entries") is refused with log.ReasonGap (not buffered): sync sends feeds
// in seq order and retries, and nothing unvalidated is ever stored. Ingest
// is idempotent. A second, different entry at a seq the node already
// holds, covered (signed, or vouched for by a signed successor) by its
// author, is a fork: both are kept as evidence under 'x', the author's
// feed is cut back to the seq before the fork and frozen, and the fork is
// reported; for a revoked author the revocation may settle the fork (it
// names one branch), and the rest of the run goes on. An entry already
// held as evidence counts as a duplicate.
//
// # Waiting entries (narrow links)
//
// An entry that only a provisional signature vouches for (its own or a
// successor's: log.Classify says waiting) is held apart from the feed
// until a composite signature covers it, as package log's "Narrow links"
// requires: a waiting entry is shown, never acted on, so it never
// touches the frontier, Digest, Head, MaxLamport, the 'a', 'o', 'p' and
// 'e' indexes (Entries, Feed, Get, IDsWithPrefix), the roster, the
// keyring, revocations, fork evidence or subscribers. Only [Store.Waiting],
// [Store.WaitingOf], [Store.WaitingHead] and [Store.Cover] see them.
//
// Held: Ingest holds, per author, the entries of a run that no composite
// covers and that a provisional signature vouches for, up to the last
// such signature on their chain (IngestResult.Waiting; entries already
// held count as duplicates), as received (with a provisional signature
// or none) and since when (Options.Now). Every waiting entry chains from
// its author's feed head through waiting entries. An unsigned tail that
// nothing vouches for is refused with log.ReasonUnsignedTail as before
// (sync carries it), and so is an entry at control priority, and what
// follows it, which never waits; a provisional signature on one is
// log.ReasonProvisionalSystem. A revoked or forked author's entries are
// never held.
//
// Bounded: per author at most log.MaxWaiting entries and
// log.MaxUnsignedRun bytes (Entry.Size) wait, every candidate for a seq
// counted; beyond that an entry is refused wrapping ErrWaitingFull (no
// offence: it comes back covered with the author's next composite), so a
// forger cannot exhaust a node, and honest entries are only shown later.
//
// Candidates: two waiting entries at one seq are both held, each marked
// Conflicting, and are no fork proof: a forger holding an author's
// Ed25519 key but not its ML-DSA key can make such candidates, and must
// not be able to freeze the feed. Only covered entries prove a fork, as
// before.
//
// Promoted: a composite signature covers a waiting entry when it arrives
// on a successor (Ingest: a run that starts after the feed head is first
// completed from the waiting area, following the hash chain back to the
// head through the candidates) or on its own ([Store.Cover]). The covered
// chain is checked with log.CheckRun, which verifies every signature, and
// joins the feed like any ingested run (IngestResult.Added, subscribers).
// No provisional signature enters the feed: the entry carrying the
// composite keeps it and the entries it covers are stored unsigned, as a
// group commit's are, so a feed holds what the author's own store holds
// of it, or less of the signatures, and the digest is the same. A cover
// that does not verify is a log.InvalidError (ReasonBadSignature) and
// changes nothing; a cover of an entry that is in the feed is a
// duplicate; one of an entry not held wraps ErrNotWaiting (an honest
// peer may send it: the entry was dropped, or covered another way).
//
// Dropped: whenever an author's feed head moves (a covered run from any
// peer, a cover, a fork, a revocation), its waiting entries at seqs up to
// the head are dropped, in the transaction that moves it: those that
// were promoted, and the candidates that conflict with a covered entry,
// which are evidence of nothing; so are those that chained only through
// them. A fork (the head frozen) or a revocation of the author drops all
// of them.
//
// Durable: each is a 'w' record, written with the disk guard as ingest
// is (ErrDiskFull). At open the records are read into memory (per author)
// and judged again against the feed head and the roster as ingest judges
// them (log.Classify): those at seqs up to the head, or that the roster
// now refuses, are dropped. A damaged record is ErrCorrupt, naming it.
//
// # Clocks and offences
//
// [Store.Append] builds on the largest Lamport clock the store holds,
// leaving out a clock that jumped more than log.MaxJump above what the
// store held when it arrived, so one member's entry near the cap cannot
// drag every honest clock there; at open the clock is rebuilt from the
// feed heads the same way. An entry whose clock jumps more than
// log.MaxJump above its author's previous entry is valid and stored, but
// its author is charged (a [Charge] of kind lamport-jump in
// [IngestResult].Charges, counted per author and rule by
// [Store.Offences]). That judgement depends on the feed only, so every node
// charges the same entries and an honest author, whose clock grows by the
// entries written in between, is never charged.
//
// # Roster and keys
//
// The roster is derived by one pure function, log.DeriveRoster, from the
// genesis and the roster entries this node holds; the store only persists
// those entries and enforces the result. When a revocation arrives, the
// revoked member's entries that the revocation rule (package log,
// "Revocation") refuses are set aside as evidence; as that may set aside a
// revoked admin's roster entries, the roster is derived again until it
// holds still. Group keys come from key entries: the keyring is
// log.DeriveKeyring of the roster and the key entries held, judged anew
// when the roster changes and extended (Keyring.With) as key entries
// arrive; the store never edits it. It is kept in memory only (the node's
// identity file is what protects keys at rest) and derived again at open,
// which costs one KEM decapsulation per recipient slot of each key entry
// not sealed to this node (about 0.16 ms a slot). A key that arrives later
// makes earlier entries readable at once: bodies are opened when read
// ([Store.Read]), with the trusted keys only.
//
// # Belief and offences
//
// Read refuses a body that log.Believe does not believe (TLP:RED sealed to
// the whole network, …) with a *log.NotBelievedError; the entry stays
// stored and relayed. Such entries, key entries sealed to this node that
// its keyring does not trust, and entries whose Lamport clock jumps far
// beyond their author's previous one (OffenceLamportJump, see "Clocks and
// offences") count as offences of their authors ([Store.Offences]): found
// when stored (for entries under a key this node holds) or when read, each
// entry once, in memory.
//
// # Integrity
//
// At open every feed head is checked: its index entry, its entry bytes, its
// ID, its signature, and the last links of its chain. Then every block of
// every table of badger's LSM tree is checked against its checksum, as
// badger's DB.VerifyChecksum does, but streamed: one table at a time, read
// with pread into one reused buffer and checked there by badger's own
// table code, with no block cache. DB.VerifyChecksum read the tables
// through the database's own memory maps, which stay mapped, so every
// table became resident: +550 MiB at 1,000,000 entries, against +170 MiB
// now (about 100 MiB of it heap garbage from decompressing blocks, 65 MiB
// the pages the feed-head check reads; BENCHMARKS.md, "Open with the
// streamed check"). The value log is covered as it was:
// badger checks each value's checksum whenever it reads one, and the
// feed-head check reads the head entries.
// Every waiting record is decoded at open too (see "Waiting entries").
// Damage yields ErrCorrupt with an error that names the feed or the table
// and says how to recover, never a panic and never a silently served bad
// entry. Options.SkipIntegrityCheck skips both checks.
package store
