// Package archive is the after-action archive: one file holding the
// crisis log and the crisis decisions of a network, which anyone holding
// the network's genesis can verify offline, with no node, no membership
// and no network ([Verify]). It reads no clock, no disk and no network
// itself: the caller hands it readers, writers, the genesis and (to open
// bodies) keys. It must not import node, store or sync; package node
// writes archives from its store ([Writer]) and the CLI verifies them.
//
// # Format
//
// A file is the line [Magic], then records, then a signed trailer, then
// the trailer's length (4 bytes, big-endian), as a sync bundle is laid
// out. A record is a kind byte, a length (uvarint, shortest form) and
// that many bytes:
//
//   - entry (KindEntry): an entry of a feed, its exact bytes, in display
//     order (lamport, author, seq). Sealed bodies stay sealed.
//   - evidence (KindEvidence): an entry the exporter set aside: both
//     branches of a fork, or an entry a revocation refused.
//   - checkpoint (KindCheckpoint): the opened payload of a checkpoint
//     entry (a claimed crisis state with its author's vote, or one
//     voter's vote), with the entry's ID. Checkpoint bodies are sealed to
//     the network; the exporter opens them so that a verifier without
//     keys can count the votes. A payload needs no trust in the
//     exporter: each vote is a voter's signature over the statement
//     (network, Raft term and index, roster version, digest), and the
//     state must hash to the digest.
//   - decision (KindDecision): a committed Raft entry, a crisis command
//     with its member's signature or a roster update carried into Raft,
//     with its index, term and times, in index order: what the
//     exporter's Raft log still holds (Raft compacts it).
//
// Every decision also lives in the crisis log: each checkpoint and each
// vote carries the Raft entries its writer applied since its snapshot
// base (package consensus, "Checkpoints"), so the checkpoint records of
// an archive hold the whole history from the genesis however much the
// Raft logs were compacted.
//
// The trailer (deterministic CBOR, signed by the exporter in context
// crypto.ContextArchive) names the network, the exporter, the time of
// export, the window (From, To), the number, length and SHA-256 of the
// records, each feed's runs of seqs (segments), and the first index of
// the exporter's Raft log (RaftFirst: decisions before it were compacted
// away). [Read] refuses a file whose records are not exactly what the
// trailer counts and frames, so a truncated or extended file is named as
// such before anything in it is believed. A record altered in place (the
// SHA-256 differs, the framing holds) is reported by [Verify], which
// first checks the records so that its failure names the entry the
// alteration broke (with the checksum beside it), and fails on the
// checksum alone when every record still verifies: one flipped byte
// anywhere fails, and inside an entry it names the entry.
//
// # The window
//
// An export bounded by From and To (author time, inclusive) keeps the
// entries written in the window and, whatever their time, what verifying
// them and the decisions needs: every roster and key entry (the roster
// history), every checkpoint entry (certified states and the decisions
// they carry), and after a kept entry without a signature the entries of
// its feed up to the next signed one. Evidence and decision records are
// kept whole. A feed may then be several runs; the verifier checks each
// run's chain from its first entry's prev. An archive without a window
// must hold every feed from seq 1 without a gap.
//
// # What Verify checks, in order
//
// The network (the genesis's), the display order of the entries, the
// roster derived from the genesis and the roster entries (log.DeriveRoster:
// versions in order, each update signed by admins as the roster in force
// demands), the exporter's signature, every feed (its runs as the trailer
// lists them, then log.CheckRun against the final roster: chain, clocks,
// signatures, revocations with log.RevocationKeeps, so who could sign what
// when), the evidence (signatures; forks found and proven when two
// branches are signed or vouched for), every checkpoint's votes against
// the voters of the roster version it names (a state is certified by a
// majority of them; two certified states at one index fail), and the
// decisions, replayed from the genesis through consensus.Replayer (the
// state machine every node runs), certificate by certificate: the
// commands up to a certified index come from the archive's decision
// records or from the tails of that certificate's checkpoint and votes,
// and the first source that replays to the certified state (same term,
// roster version and digest) is the history. A decision record inside
// that history must be the certified one; after it, each must carry a
// valid signature. The first thing
// that does not verify is returned as a [*Failure]: what, where (record,
// entry, author and seq, Raft index) and the rule.
//
// # What one hostile member can do to an archive
//
// Entries, roster updates, votes and commands carry their authors'
// signatures: nobody else can alter or invent one. The exporter signs the
// file, so nobody else can drop or reorder its records unnoticed; the
// exporter itself can leave records out. What it leaves out is caught
// where something signed points at it: a feed's chain (a gap or a
// missing prev) and a revocation naming the head it saw.
//
// Decisions: a certified checkpoint's digest covers the state, the
// outcomes of every command applied (committed or refused, with its
// index) and the roster updates carried into Raft, and a majority of the
// voters of the roster version it names signs it. So no decision before a
// certified index can be altered, reordered, added or left out without
// the replay differing there; the index, term and time of a decision,
// which no member signs, are covered too. The history itself comes with
// the votes: every voter that votes carries, in its own vote, the
// commands it applied since its base, so a certificate brings the
// history of a majority of the voters with it, at least one of them
// honest. A hostile leader or voter can write a tail that lies or leaves
// commands out: it is not the history that replays, and another is. A
// hostile exporter can strip the tails and its Raft log from the archive:
// the certificates still verify, and the report says where the replay
// stopped (ReplayStopped). What stays possible: an exporter can leave out
// the newest entries of a feed, and everything after the last
// certificate, which no majority has signed yet.
package archive
