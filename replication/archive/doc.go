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
//     with its index, term and times, in index order.
//
// The trailer (deterministic CBOR, signed by the exporter in context
// crypto.ContextArchive) names the network, the exporter, the time of
// export, the window (From, To), the number, length and SHA-256 of the
// records, each feed's runs of seqs (segments), and the first index of
// the exporter's Raft log (RaftFirst: decisions before it were compacted
// away). [Read] refuses a file whose records are not exactly what the
// trailer counts and hashes, so a truncated or altered file is named as
// such before anything in it is believed.
//
// # The window
//
// An export bounded by From and To (author time, inclusive) keeps the
// entries written in the window and, whatever their time, what verifying
// them needs: every roster and key entry (the roster history), and after
// a kept entry without a signature the entries of its feed up to the next
// signed one. Evidence, decisions and the checkpoints of kept entries are
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
// decisions: each command's signature against its signer's card, and,
// when the archive holds the Raft log from its start (RaftFirst 1), a
// replay from the genesis through consensus.Replayer, the state machine
// every node runs, whose claim after each certified index must be the
// certified one (same term, roster version and digest). The first thing
// that does not verify is returned as a [*Failure]: what, where (record,
// entry, author and seq, Raft index) and the rule.
//
// # What one hostile member can do to an archive
//
// Entries, roster updates, votes and commands carry their authors'
// signatures: nobody else can alter or invent one. The exporter signs the
// file, so nobody else can drop or reorder its records unnoticed; the
// exporter itself can leave out records. What it leaves out is caught
// where something signed points at it: a feed's chain (a gap or a
// missing prev), a revocation naming the head it saw, and the decisions:
// a certified checkpoint's digest covers the state, the outcomes of the
// commands applied and the roster updates carried into Raft, so a
// decision left out, altered, reordered or added before a certified index
// makes the replay differ there. A voter, even the leader, cannot certify
// alone (a majority of the voters signs each certificate), and the Raft
// index, term and time of a decision, which no member signs, are covered
// by the same certificates. What stays possible: an exporter can leave
// out the newest entries of a feed and everything after the last
// certificate, and an archive whose exporter's Raft log was compacted
// (RaftFirst above 1) is checked command by command but not replayed.
package archive
