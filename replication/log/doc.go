// Package log defines the crisis log: its entries, the rules an entry must
// pass, forks, and the one display order every node agrees on. It is pure:
// no disk, no network, no clock. Times, keys and rosters come in as
// arguments; package replication/store keeps entries on disk and
// replication/sync moves them between nodes.
//
// # Entries
//
// An [Entry] is a cleartext header, a body and, usually, a signature:
//
//   - The header names the format version and algorithm suite, the network,
//     the author (member ID), the author's seq (1, 2, …), prev (the ID of the
//     author's previous entry), a Lamport clock, the author's wall time, up to
//     64 refs to other entries, a priority and the group key the body is
//     sealed under.
//   - The body is a [Body] (kind, TLP 2.0 label, text, taxonomy fields,
//     attachments, a kind-specific payload), sealed with
//     [crypto.SealWith] under a group key, with the exact header bytes as
//     associated data. Only kinds roster and key travel in clear ("plain",
//     no key ID): every node, also one holding no group key, must read the
//     roster to validate authors, and a key entry's payload is a
//     [crypto.KeyEnvelope] that is already sealed to each recipient.
//   - The entry ID is SHA-256 over a domain prefix, the exact header bytes and
//     the exact body bytes. The author signs the ID with its composite key in
//     context crypto.ContextEntry ("crisismesh/entry/v1"). The signature is
//     not part of the ID, so a signature can be absent (see batches) and an
//     entry is the same entry whichever valid signature it travels with:
//     its composite, a provisional signature (see "Narrow links") or none.
//
// # Intel
//
// An entry of kind intel carries one item of threat intelligence imported
// from another tool in its payload, an [Intel]: the format (misp), the
// item's type, its own ID and version (a MISP UUID and timestamp) and the
// item itself as JSON, verbatim, so an export gives it back. [Body.Validate]
// checks that the payload is a canonical Intel; what the item means is the
// business of the format's package (interop/misp), not of the log.
//
// # Bridged messages
//
// A message entry that a bridge wrote for someone outside the mesh (a
// Matrix user: interop/matrix) carries a [Bridged] payload: the system,
// the outside sender and event. [Body.Validate] does not check a
// message's payload (messages written before bridges may carry any);
// readers decode it with [DecodeBridged] and treat an error as "not
// bridged".
//
// # Encoding
//
// Deterministic CBOR (RFC 8949 core deterministic encoding, integer map
// keys) through [crypto.MarshalCanonical], the same codec as every other
// signed structure of crisismesh. CBOR rather than protobuf because
// protobuf's encoding is not canonical (field order, unknown fields,
// default values may vary between encoders), while deterministic CBOR is
// specified and fxamacker/cbor enforces it on decode. Decoding re-encodes
// and refuses any input whose bytes differ ([ReasonNonCanonical]), so the
// bytes stored and sent are the bytes signed, and no entry is malleable.
//
// # Feeds and batches
//
// An author's entries form a hash chain (seq n names the ID of seq n-1). A
// signature on entry n vouches for entries 1..n, so [Build] signs only the
// last entry of a batch (group commit): a 100-entry burst carries one
// 3373-byte signature, 34 bytes per entry. A batch of large entries is
// also signed every MaxUnsignedRun bytes (8 MiB), so that what a replica
// holds waiting for a signature stays bounded. A replica accepts unsigned
// entries only together with a signed successor that chains to them
// ([ReasonUnsignedTail] otherwise); a feed's head is therefore always signed.
// "Signed" means a composite signature throughout this documentation,
// unless it says "provisional".
//
// # Forks
//
// Two different entries with the same author and seq, each signed or vouched
// for by a signed successor (each covered, see "Narrow links": entries that
// are only waiting prove nothing, [ProvesFork]), prove that the author
// equivocated. Both are kept
// as evidence, the author's feed is frozen at the last seq before the fork
// (nothing of the author past it is accepted), and [ErrForked] reports it.
//
// # Narrow links
//
// A composite signature is 3373 bytes; a 200-byte post carrying one is
// 3861. On a 64 kbit/s share that is two posts a second for the whole
// network. So an entry may travel with a provisional signature: the
// 64-byte Ed25519 half of its own composite signature
// ([crypto.ProvisionalOf]; the composite's Ed25519 half is an Ed25519
// signature over the draft's M', so one signing makes both). The author
// sends that now ([Entry.WithProvisional]) and the composite later, for
// the same entry ID.
//
// Encoding. The signature field of an entry holds 3373 bytes (composite)
// or 64 (provisional), or is absent; its size says which, nothing else
// changes. So an entry has exactly three encodings, one per kind of
// signature, each canonical, and entries written before decode byte for
// byte as they did. A composite signature sent on its own to cover an
// entry the receiver holds is a [Cover]: the entry ID and the 3373 bytes,
// 3413 bytes encoded.
//
// Covered and waiting ([Classify]). A composite signature on entry n
// covers entries 1..n, as the batch rule always had it. An entry is
// covered when it or a successor on its chain carries a valid composite
// signature. Otherwise it is waiting for its post-quantum signature when
// it or a successor carries a valid provisional signature (which vouches
// for its chain in the same way, with Ed25519's strength only); otherwise
// it is invalid for now. [CheckRun] accepts covered entries only, so
// everything built on it (a store's ingest and fork proofs, the archive's
// verification) counts composite signatures only, as before; an uncovered
// tail is [ReasonUnsignedTail], whether it waits or carries nothing, so a
// peer that sends one is not charged an offence. Every signature an entry
// carries must verify, composite or provisional, also when a successor
// covers it: a relay cannot attach garbage that nodes would store and
// pass on. An entry stripped of its ML-DSA half is at most waiting.
//
// System kinds. Entries at control priority, which [Build] gives to kinds
// roster, key, proposal and checkpoint and to nothing else, are valid only
// covered: a provisional signature on one is refused
// ([ReasonProvisionalSystem]), and one that only a provisional successor
// vouches for is never waiting. A proposal's or checkpoint's body is
// sealed, so its priority is what validity sees; [Believe] refuses a body
// of a system kind below control priority ([BeliefSystemControl]), so no
// author gets one past by lying about its priority. Flash entries travel
// with their composite as well ([TravelsSigned]): they are written to be
// acted on at once.
//
// Never acted on. A waiting entry is shown, marked as waiting for its
// post-quantum signature (or overdue), and nothing else. Where entries
// are applied or counted, only covered ones are handed in: the roster
// ([DeriveRoster]), the keyring ([DeriveKeyring]), replication/consensus
// (proposals, checkpoints), a feed's head, the frontier and its digest,
// the node's Lamport clock (the minLamport given to [Build]), refs an
// honest author writes, fork proofs, exports (archive, MISP, STIX, Matrix
// bridges). A store therefore keeps waiting entries apart from the feed:
// per author at most [MaxWaiting] entries (and [MaxUnsignedRun] bytes),
// every candidate for a seq included, refusing more beyond that. Two
// waiting candidates for one seq are both kept apart, shown as
// conflicting and unconfirmed, and neither is a fork proof; when a
// composite covers one branch, that branch joins the feed and the other
// candidates at its seqs are dropped (a waiting entry that conflicts with
// a covered one is no evidence of anything). If the other branch is later
// covered too, the author did equivocate, and [ProvesFork] says so.
//
// The window ([Window]). An author sends the composite signature of its
// head to each narrow-link peer at least every N entries ([Window.Due]:
// the entry that makes it due travels with its composite, which covers
// all before it) or T after the oldest entry still waiting at that peer
// (then as a Cover on its own), whichever comes first, and at once when a
// peer asks. A receiver shows an entry waiting for longer than T plus a
// grace ([Window.Overdue], [Window.StatusOf]) as overdue, so the operator
// sees which author owes which signatures since when. Wide links (LAN,
// internet) carry composite signatures as before.
//
// When the author goes offline right after posting. [Build] makes the
// composite signature when the entry is written, and the author's store
// keeps the entry with it, durably, before the post is acknowledged: the
// composite exists from the first moment, only its sending is deferred.
// A graceful shutdown sends the covers due first. After a crash or a cut,
// the author's first message to each peer on reconnecting is the cover of
// its head, before any entry. Meanwhile any peer that received the entry
// over a wide link holds it covered and passes it on covered, as sync
// always did, so coverage also spreads without the author. What is not
// bounded is an entry that left its author, provisionally only, on narrow
// links only, just before the author went silent: it stays waiting until
// the author (or a copy of its store) speaks again, is shown as overdue
// after T plus grace, and is never acted on. The window is thus bounded
// in the author's connected time, and an entry never covered costs
// visibility, never a wrong action.
//
// The arithmetic (TestNarrowLinkArithmetic prints it). A 200-byte sitrep
// at TLP:AMBER encodes to a 150-byte header and a 326-byte sealed body
// (the text, 19 bytes of body encoding, 107 of sealing: the suite's name,
// the key ID and epoch again, a 32-byte salt, the GCM tag, and their
// framing): 484 bytes unsigned, 551 with a provisional
// signature (+67), 3861 with the composite (+3377). An author posting
// once a second whose composite travels every k entries averages
// 551 + 3310/k bytes per entry. The target is 600 on the wire, and 20 of
// them are left for the push path's framing (sync messages, streams, TLS
// records), so k ≥ 3310/29 ≈ 114: hence [DefaultWindow], N = 128 entries
// or T = 120 s, 30 s of grace. At one post a second T comes first: 29
// composites an hour, 578.5 bytes per post. Posting less often costs more
// per post, as T bounds the wait: 835 bytes at a post every 10 s, 2257
// every minute, and at a post every few minutes every post carries its
// composite's worth. Format 1's 551-byte floor leaves little room; a
// later format could drop the sealed body's repeats of the header (suite
// name, key ID, epoch: about 50 bytes).
//
// Why this is safe: DESIGN's rule "both halves must verify", restated.
// Both halves of a composite signature must verify for anything a node
// acts on or counts: covered means exactly that, on the entry or on a
// successor that names it through the hash chain. A provisional
// signature is one half, and buys an entry one thing only: being shown
// as waiting. Consider an adversary that can forge Ed25519 but not
// ML-DSA-65 (a quantum computer, or a thief of a member's Ed25519 seed)
// and cannot find SHA-256 collisions (neither can). Within the window it
// can:
//
//   - make entries in any member's name, at any seq, with valid
//     provisional signatures: receivers show them as waiting, and then
//     overdue, never as the member's word; a reader sees "waiting for its
//     post-quantum signature" on them, and that is the residual risk;
//   - make two waiting candidates for one seq, shown as conflicting;
//   - strip the ML-DSA half off an honest entry in transit: it arrives
//     waiting instead of covered, until a composite comes by another way.
//
// It cannot:
//
//   - have anything acted on: acting needs a covered entry, covering needs
//     an ML-DSA-65 signature on it or on a successor whose chain of prev
//     hashes contains it, and it can neither forge one nor splice an
//     entry into a chain an honest signature covers;
//   - slip in a system entry (roster, key, proposal, checkpoint): those
//     are never waiting, and a system body below control priority is
//     not believed;
//   - freeze an honest feed: a fork proof needs both entries covered
//     ([ProvesFork]; a store's proofs go through CheckRun), so its
//     waiting candidates prove nothing, and they live apart from the
//     feed, which advances when the author's composite arrives whatever
//     waits beside it;
//   - exhaust a node or push honest entries out: waiting entries are
//     bounded per author (MaxWaiting, MaxUnsignedRun bytes); when the
//     bound is full, honest entries are simply shown later, covered;
//   - drag clocks or the frontier: waiting entries feed neither.
//
// An adversary that can forge ML-DSA-65 and Ed25519 both breaks the
// composite; one that can forge ML-DSA-65 alone gains nothing here, as
// every provisional signature is checked as strictly as the composite's
// Ed25519 half.
//
// # Roster
//
// The roster in force is one pure function of the genesis and the roster
// entries a node holds, [DeriveRoster]: updates apply in order of the
// roster version they create; for one version the first in display order
// that applies wins; an update counts only in its own signer's entry.
// Nodes holding the same entries hold the same roster, and package
// replication/store only persists the entries and enforces the result.
// With an admin threshold above 1 (in the genesis), an update applies only
// once enough admins approved it: approvals are roster entries too, each
// counting only in its signer's entry, and [DeriveRosterState] lists the
// updates still waiting for them (pending) with the time they expire.
//
// # Revocation
//
// A roster update that revokes a member (or rotates its keys) is carried by
// an entry of the admin who signed it ([DeriveRoster] ignores a copy in
// anyone else's entry), and names the last entry of the member's feed the
// admin saw (crypto.Member FeedSeq and FeedHead). Which of the member's
// entries stay valid is decided by [RevocationKeeps], on the entry, its
// feed and the roster only, so every node reaches the same verdict in
// whatever order it learns of the entries and the revocation:
//
//   - every entry up to FeedSeq stays, and the entry at FeedSeq must be
//     FeedHead (the revocation vouches for it as a signed successor
//     would, and settles a fork before it: the named branch counts);
//   - an entry after FeedSeq stays if its Lamport clock is below the clock
//     of the entry that carried the revocation (crypto.Member
//     RevokedClock): it may have been written before the admin acted,
//     whose clock exceeds everything it had seen;
//   - every other entry is refused ([ReasonRevokedAuthor]), and so is
//     everything after it, as clocks grow along a feed.
//
// Why not FeedSeq alone: then one admin erases a member's past by naming a
// low seq. Under this rule a low seq erases nothing the admin's clock had
// passed; to cut an entry the admin must write the revocation at a clock
// not above that entry's, which its own feed forbids once it carried that
// clock. What stays possible: an admin that kept its own clock low on
// purpose can still cut the entries at or above it (the approval
// threshold for roster changes is the remedy, not this rule), and a thief
// holding the revoked key can add entries after FeedSeq with clocks below
// the revocation's. Those sort before the revocation in display order, so
// nothing of the thief counts after it; if the owner wrote that seq too,
// the feed is forked and frozen before it. At the cap (a revocation at
// MaxLamport) "below" means nothing, so only FeedSeq counts; likewise for
// a roster built from updates alone, with no clock (RevokedClock 0). The
// rule needs honest clocks far from the cap, one more reason why nodes do
// not carry a clock that jumps (see Clocks): an admin dragged near the
// cap would open the thief a window as wide as the clock range.
//
// An entry stored before its node learned of the revocation, and refused
// by it, is set aside as evidence by the store.
//
// # Clocks
//
// Every entry carries a Lamport clock in 1..[MaxLamport]. Within a feed the
// clock grows, except at the cap: once an author's clock reached
// MaxLamport it writes at MaxLamport (an equal clock is valid only there).
// [Build] takes one more than the largest clock the author has seen,
// saturating at the cap, so it never fails for the clock. This is a rule
// on the entry and its author's feed only, so every node reaches the same
// verdict, and the order (lamport, author, seq) stays total: at the cap,
// entries of one author differ by seq.
//
// The cap alone would let one member's entry at MaxLamport-1 drag every
// honest clock to the cap, where causal order among honest entries is
// lost. So a node does not carry a clock that jumps more than [MaxJump]
// (2^32) above the largest clock it holds ([Jumped]): it stores and relays
// the entry, which is valid, and keeps writing at the clock it had. An
// entry whose clock lies more than MaxJump above its author's previous
// entry (0 before seq 1) is recorded as an offence of its author; that
// depends on the feed only, so every node charges the same entries. An
// honest clock grows by the number of entries written in between, never
// by MaxJump. The jumping entry sorts after the honest entries written since,
// and the attacker's own later entries stay at least as high: the cost
// falls on the attacker's place in the order, not on anyone's ability to
// write. An attacker that climbs in steps below MaxJump needs 2^30 entries
// to reach the cap, and even then the network keeps writing, at the cap.
//
// # Keys: the keyring
//
// Which group keys a member trusts is one pure function, [DeriveKeyring],
// of the roster, the key entries held and the member's own identity (to
// open the envelopes sealed to it); package store only keeps its result.
// The same roster and entries give the same keyring in any order, and
// every member of a group picks the same current key ([Keyring.Current]:
// highest epoch, then smallest key ID). A key is trusted only when its
// envelope is sealed to exactly the members it names (as many slots as
// members) with the author among them, and the author may issue it:
//
//   - group all (the whole network: TLP:CLEAR, GREEN, AMBER, proposals,
//     checkpoints): admins only;
//   - a recipient-set group (TLP:RED): its name is [RecipientGroup] of its
//     members, and any of those members may issue a key or a new epoch of
//     it, nobody else. So no member can slip a key it knows into a group
//     it is not in: the substitution of issue 11, finding 3;
//   - a named need-to-know group ("group/NAME"): the roster lists its
//     members (a roster update, so admins decide, with their threshold);
//     any member the key is sealed to may issue it, and a key is written
//     under only while it is sealed to exactly the roster's group
//     ([Keyring.ForGroup]): a member outside the group never receives it,
//     and every change of the group brings a new epoch;
//   - any other group: admins only. A member who wants a private circle
//     uses a recipient-set group.
//
// Each untrusted key entry is a [*KeyRefusal] naming its rule (KeyRule*).
// Only a recipient can open an envelope, so most rules are checked by the
// recipients only; a payload that is no key envelope, or one with more
// slots than the network has members, every member refuses.
//
// # Valid but not believed
//
// Validity ([CheckRun]) never depends on what a node can decrypt, so every
// node stores and relays the same entries. Some valid entries must still
// not be believed once opened: [Believe] refuses a TLP:RED body sealed
// under any key but a recipient-set group's ([BeliefRedToRecipients]),
// and a body of a system kind in an entry below control priority
// ([BeliefSystemControl], see "Narrow links"),
// with a [*NotBelievedError] (errors.Is [ErrNotBelieved]). Such an entry is
// never shown, exported or acted on, and counts as an offence of its
// author. [Build] refuses to write one.
//
// # What a relay still sees
//
// Key envelopes (crypto, format 2) hide the group name and the recipients'
// member IDs. In clear remain: every entry's author, seq, Lamport clock,
// time, refs, priority and size; the key ID and epoch an entry is sealed
// under (so entries under one key are linkable to each other and to the
// key entry that distributed it, and a relay learns that the authors of
// those entries share a group); and how many recipients a key has. Key
// entries of format 1, written before, keep their names and recipients in
// clear.
//
// # Order, frontier and digest
//
// The display order is (lamport, author, seq): identical on every node that
// holds the same entries ([OrderKey]). A [Frontier] maps each author to its
// feed head (seq, ID, lamport, forked); its [Digest] is one hash, the sum
// modulo 2^256 of one hash per author, so a store can keep it up to date in
// O(1) per appended entry and two nodes compare whole logs with 32 bytes.
package log
