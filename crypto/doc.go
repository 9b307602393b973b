// Package crypto is crisismesh's small, misuse-resistant cryptographic core.
// Every other package signs, seals and verifies through it; none of them
// touches circl, crypto/hpke or crypto/ed25519 directly.
//
// It provides:
//
//   - [Identity]: a member's secret keys (a composite ML-DSA-65 + Ed25519
//     signing key, an X-Wing KEM key for HPKE, and a libp2p peer key), and
//     its public half, the [Card]. A [MemberID] is the SHA-256 of the
//     encoded composite public key.
//   - Signatures ([Identity.Sign], [Verify]) under the composite algorithm
//     id-MLDSA65-Ed25519-SHA512 of draft-ietf-lamps-pq-composite-sigs, with a
//     mandatory [Context] that separates every use (entries, roster, commands,
//     checkpoints, bundles, …). Both halves must verify.
//   - Provisional signatures ([ProvisionalOf], [VerifyProvisional]): the
//     Ed25519 half of a composite signature, which is itself an Ed25519
//     signature over the draft's M', sent alone ahead of the composite
//     where bytes are scarce. It proves nothing against an adversary that
//     can forge Ed25519, so it is never accepted where a composite is
//     required, and it cannot be made without the composite (split it off
//     one). What it may be used for is replication/log's business
//     ("Narrow links").
//   - Sealing ([Seal], [Identity.Open]): a payload encrypted once under a fresh
//     AES-256-GCM content key, which is wrapped to each recipient with HPKE
//     (X-Wing, HKDF-SHA256, AES-256-GCM). Group keys ([GroupKey],
//     [SealWith], [OpenWith]) seal many payloads under one key, distributed
//     once per epoch in a [KeyEnvelope]. A key envelope (format 2) hides
//     its group name and its recipients' member IDs inside the seal; its
//     recipient slots do not say whose they are, so a recipient finds its
//     own by trying each ([Identity.OpenGrant]). In clear stay the key ID,
//     the epoch and the number of slots. Format-1 envelopes, which named
//     both in clear, are still read. Whether to trust an opened key is not
//     decided here: see replication/log's keyring.
//   - Key files ([SaveIdentity], [LoadIdentity]): 0600, optional argon2id
//     passphrase, checksummed so corruption and a wrong passphrase are told
//     apart.
//   - The roster ([Genesis], [Update], [Roster]): the signed list of members,
//     roles, Raft voters and admins, and the pure function that applies
//     admin-signed updates in order.
//
// # Encoding
//
// Every structure that is signed, sealed or stored is encoded as
// deterministic CBOR (RFC 8949 §4.2 core deterministic encoding, integer map
// keys). Decoders are strict: unknown fields, duplicate keys, indefinite
// lengths and tags are refused, and any input that does not re-encode to the
// exact same bytes is refused with [ErrNonCanonical]. So the bytes stored are
// the bytes signed, and no encoding is malleable. Every structure names its
// algorithm suite, so stronger suites can be added later without a new
// network.
//
// # Strict checks
//
// Both halves of a composite signature, and a provisional signature, are
// verified strictly. The ML-DSA-65
// half is FIPS 204 ML-DSA.Verify with the draft's label as its context, so a
// plain ML-DSA signature (empty context) is not a valid half. The Ed25519
// half is RFC 8032 verification (crypto/ed25519, cofactorless) plus the
// checks libsodium makes: S < L; R canonical and not of small order; the
// public key canonical and not of small order, checked when a key is parsed
// ([ParsePublicKey], so a card carrying such a key is refused). Under a key
// of small order the Ed25519 half would prove nothing (with the identity as
// key, R = identity and S = 0 verify for every message), and the composite
// would rest on ML-DSA alone.
//
// X-Wing public keys are refused when parsed ([ParseKEMPublicKey], and so
// in cards) if they have the wrong length, an ML-KEM coefficient ≥ q, or an
// X25519 share of low order (one that gives the all-zero shared secret).
// Opening fails with [ErrTampered] itself, the same text whatever failed (a
// low-order or damaged X25519 share, a damaged ML-KEM ciphertext, the
// wrapped key, the content, bytes appended, another network, purpose or
// associated data), so failures are no oracle; [ErrNotRecipient] says only
// what the envelope's clear recipient list says.
//
// # What this package must not do
//
// It reads no clock (times come in as arguments) and touches no network. It
// never offers deterministic signing or encapsulation: those exist only in
// tests, against published vectors. Secret types carry an incomparable field,
// so comparing them with == does not compile; use their constant-time Equal.
package crypto
