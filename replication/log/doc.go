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
// 3373-byte signature, 34 bytes per entry. A replica accepts unsigned
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
// # Revocation
//
// Revocation takes effect at a point of the revoked member's own feed, not
// at a point in time: the roster update that revokes (or rotates) a member
// names the last entry of its feed that stays valid (crypto.Member FeedSeq
// and FeedHead, the head as the revoking admin saw it). Entries up to that
// seq stay valid forever, so what was reported before revocation is not
// lost; entries after it are refused ([ReasonRevokedAuthor]) on every node,
// in whatever order nodes learn of the revocation and the entries. An
// entry stored before its node learned of the revocation is set aside as
// evidence by the store.
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
//   - any other, need-to-know, group: admins only. A member who wants a
//     private circle uses a recipient-set group.
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
