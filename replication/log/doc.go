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
//     entry is the same entry whichever valid signature it travels with.
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
//
// # Forks
//
// Two different entries with the same author and seq, each signed or vouched
// for by a signed successor, prove that the author equivocated. Both are kept
// as evidence, the author's feed is frozen at the last seq before the fork
// (nothing of the author past it is accepted), and [ErrForked] reports it.
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
