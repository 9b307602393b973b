package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
)

// SuiteKEM names how content keys are wrapped to members: HPKE (RFC 9180)
// base mode with KEM X-Wing (ML-KEM-768 + X25519, id 0x647A), KDF
// HKDF-SHA256 and AEAD AES-256-GCM.
const SuiteKEM = "hpke-xwing-hkdf-sha256-aes-256-gcm"

// SuiteSeal names an [Envelope]: a fresh AES-256-GCM content key per
// envelope, wrapped to each recipient under [SuiteKEM].
const SuiteSeal = "seal-aes-256-gcm+" + SuiteKEM

// Sizes of the X-Wing KEM.
const (
	KEMPublicKeySize = 1216 // ML-KEM-768 encapsulation key ‖ X25519 point
	kemSeedSize      = 32
	kemEncSize       = 1120 // ML-KEM-768 ciphertext ‖ X25519 point
	contentKeySize   = 32
	gcmTagSize       = 16
	gcmNonceSize     = 12
	keyIDSize        = 16
	wrappedKeySize   = contentKeySize + gcmTagSize
	maxPurposeSize   = 255
	maxRecipients    = 1024
)

// ErrNotRecipient reports an envelope that was not sealed to this member.
var ErrNotRecipient = errors.New("crypto: not a recipient of this envelope")

// ErrTampered reports an envelope or ciphertext that fails authentication:
// it was modified, cut short, or is presented for another network, purpose,
// group or associated data than it was sealed for.
var ErrTampered = errors.New("crypto: ciphertext fails authentication (tampered, truncated, or sealed for another network or purpose)")

// hpkeSuite returns the fixed HPKE parameters of [SuiteKEM].
func hpkeSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.AES256GCM()
}

// KEMPublicKey is a member's X-Wing public key. It is immutable and safe for
// concurrent use.
type KEMPublicKey struct {
	raw []byte
	pk  hpke.PublicKey
}

// ParseKEMPublicKey parses a 1216-byte X-Wing public key.
func ParseKEMPublicKey(b []byte) (*KEMPublicKey, error) {
	if len(b) != KEMPublicKeySize {
		return nil, fmt.Errorf("%w: X-Wing public key is %d bytes, want %d", ErrBadKey, len(b), KEMPublicKeySize)
	}
	kem, _, _ := hpkeSuite()
	pk, err := kem.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: X-Wing public key: %v", ErrBadKey, err)
	}
	if x25519LowOrder(b[KEMPublicKeySize-x25519Size:]) {
		return nil, fmt.Errorf("%w: X-Wing public key: its X25519 share is a point of low order (all-zero shared secret)", ErrBadKey)
	}
	return &KEMPublicKey{raw: append([]byte(nil), b...), pk: pk}, nil
}

const x25519Size = 32

// x25519Probe is a fixed X25519 scalar. X25519 clamps every scalar to a
// multiple of the cofactor 8, so any point of low order (on the curve or its
// twist), in any encoding, gives the all-zero shared secret with it, which
// crypto/ecdh refuses.
var x25519Probe = [x25519Size]byte{1: 0x63, 2: 0x72, 3: 0x69, 4: 0x73, 5: 0x69, 6: 0x73, 31: 0x40}

// x25519LowOrder reports whether the X25519 share b is of low order.
// crypto/hpke accepts such a key, and encapsulating to it then fails; it
// would also leave X-Wing resting on ML-KEM alone. It is refused when a key
// is parsed, so a card carrying one is refused.
func x25519LowOrder(b []byte) bool {
	priv, err := ecdh.X25519().NewPrivateKey(x25519Probe[:])
	if err != nil {
		return true
	}
	pub, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return true
	}
	_, err = priv.ECDH(pub)
	return err != nil
}

// Bytes returns the encoded key. The caller must not modify it.
func (k *KEMPublicKey) Bytes() []byte { return k.raw }

// kemKey is a member's X-Wing private key, kept as its 32-byte seed.
type kemKey struct {
	_    incomparable
	seed [kemSeedSize]byte
	sk   hpke.PrivateKey
	pub  *KEMPublicKey
}

func kemKeyFromSeed(seed []byte) (*kemKey, error) {
	if len(seed) != kemSeedSize {
		return nil, fmt.Errorf("%w: X-Wing private key is %d bytes, want %d", ErrBadKey, len(seed), kemSeedSize)
	}
	kem, _, _ := hpkeSuite()
	sk, err := kem.NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: X-Wing private key: %v", ErrBadKey, err)
	}
	pub, err := ParseKEMPublicKey(sk.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	k := &kemKey{sk: sk, pub: pub}
	copy(k.seed[:], seed)
	return k, nil
}

func newKEMKey() (*kemKey, error) {
	var seed [kemSeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("crypto: read randomness: %w", err)
	}
	return kemKeyFromSeed(seed[:])
}

// A NetworkID names one crisismesh network: the SHA-256 of its genesis
// document. Every seal binds it, so nothing sealed for one network opens in
// another.
type NetworkID [32]byte

// String returns the ID in lowercase hex.
func (n NetworkID) String() string { return fmt.Sprintf("%x", n[:]) }

// MarshalText implements encoding.TextMarshaler (hex).
func (n NetworkID) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex).
func (n *NetworkID) UnmarshalText(b []byte) error {
	id, err := ParseMemberID(string(b))
	if err != nil {
		return fmt.Errorf("crypto: network ID %q is not 64 hex digits", b)
	}
	*n = NetworkID(id)
	return nil
}

// A KeyID names a content key or a group key. It is random, not derived from
// the key.
type KeyID [keyIDSize]byte

// String returns the ID in lowercase hex.
func (k KeyID) String() string { return fmt.Sprintf("%x", k[:]) }

// A Recipient is a member an envelope is sealed to.
type Recipient struct {
	ID  MemberID
	Key *KEMPublicKey
}

// Stanza is one recipient's wrapped copy of an envelope's content key.
type stanza struct {
	Member  []byte `cbor:"1,keyasint"` // MemberID
	Enc     []byte `cbor:"2,keyasint"` // X-Wing encapsulation
	Wrapped []byte `cbor:"3,keyasint"` // AES-256-GCM(content key)
}

type envelopeWire struct {
	Suite      string   `cbor:"1,keyasint"`
	KeyID      []byte   `cbor:"2,keyasint"`
	Recipients []stanza `cbor:"3,keyasint"`
	Nonce      []byte   `cbor:"4,keyasint"`
	Ciphertext []byte   `cbor:"5,keyasint"`
}

// An Envelope is a payload sealed to a list of members. It is immutable once
// built and safe for concurrent use.
//
// The envelope authenticates its content to each recipient, not its list of
// recipients: a party on the path can drop or damage another recipient's
// stanza, and a recipient could add one. Envelopes therefore always travel
// inside a signed structure (a log entry signed by its author), whose
// signature covers the whole list; Recipients is only as trustworthy as
// that signature.
type Envelope struct {
	w envelopeWire
}

// Seal encrypts plaintext to recipients. A fresh random content key
// encrypts the payload once (AES-256-GCM, with aad as associated data); the
// content key is wrapped to every recipient with HPKE X-Wing under an info
// string that binds the network, the purpose, the envelope's key ID and the
// recipient's member ID. purpose names what the payload is for (e.g.
// "entry-body", "group-key/…"); Open must be given the same purpose, network
// and aad.
func Seal(network NetworkID, purpose string, recipients []Recipient, aad, plaintext []byte) (*Envelope, error) {
	if err := checkPurpose(purpose); err != nil {
		return nil, err
	}
	if len(recipients) == 0 {
		return nil, errors.New("crypto: seal: no recipients")
	}
	if len(recipients) > maxRecipients {
		return nil, fmt.Errorf("crypto: seal: %d recipients is over the limit of %d", len(recipients), maxRecipients)
	}
	seen := make(map[MemberID]bool, len(recipients))
	for _, r := range recipients {
		if r.Key == nil || r.ID.IsZero() {
			return nil, errors.New("crypto: seal: recipient without member ID or KEM key")
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("crypto: seal: recipient %s listed twice", r.ID.Short())
		}
		seen[r.ID] = true
	}

	var contentKey [contentKeySize]byte
	var keyID KeyID
	nonce := make([]byte, gcmNonceSize)
	for _, b := range [][]byte{contentKey[:], keyID[:], nonce} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("crypto: read randomness: %w", err)
		}
	}
	aead, err := newGCM(contentKey[:])
	if err != nil {
		return nil, err
	}
	w := envelopeWire{
		Suite:      SuiteSeal,
		KeyID:      keyID[:],
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plaintext, contentAAD(network, purpose, keyID, aad)),
	}
	_, kdf, hpkeAEAD := hpkeSuite()
	for _, r := range recipients {
		enc, sender, err := hpke.NewSender(r.Key.pk, kdf, hpkeAEAD, wrapInfo(network, purpose, keyID, r.ID))
		if err != nil {
			return nil, fmt.Errorf("crypto: seal to %s: %w", r.ID.Short(), err)
		}
		wrapped, err := sender.Seal(nil, contentKey[:])
		if err != nil {
			return nil, fmt.Errorf("crypto: seal to %s: %w", r.ID.Short(), err)
		}
		w.Recipients = append(w.Recipients, stanza{Member: r.ID[:], Enc: enc, Wrapped: wrapped})
	}
	// Canonical order, so the same recipients always encode the same way.
	slices.SortFunc(w.Recipients, func(a, b stanza) int { return bytes.Compare(a.Member, b.Member) })
	return &Envelope{w: w}, nil
}

// open unwraps the content key with k and decrypts.
func (e *Envelope) open(k *kemKey, me MemberID, network NetworkID, purpose string, aad []byte) ([]byte, error) {
	if err := checkPurpose(purpose); err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(e.w.Recipients, me[:], func(s stanza, id []byte) int { return bytes.Compare(s.Member, id) })
	if !found {
		return nil, fmt.Errorf("%w (member %s; the envelope has %d recipients)", ErrNotRecipient, me.Short(), len(e.w.Recipients))
	}
	st := e.w.Recipients[i]
	var keyID KeyID
	copy(keyID[:], e.w.KeyID)
	_, kdf, hpkeAEAD := hpkeSuite()
	// Every failure from here on is ErrTampered itself, with no detail: which
	// step failed (a low-order X25519 share, a damaged ML-KEM ciphertext, the
	// wrapped key, the content) is not said, so failures are no oracle.
	r, err := hpke.NewRecipient(st.Enc, k.sk, kdf, hpkeAEAD, wrapInfo(network, purpose, keyID, me))
	if err != nil {
		return nil, ErrTampered
	}
	contentKey, err := r.Open(nil, st.Wrapped)
	if err != nil {
		return nil, ErrTampered
	}
	defer clear(contentKey)
	aead, err := newGCM(contentKey)
	if err != nil {
		return nil, ErrTampered
	}
	pt, err := aead.Open(nil, e.w.Nonce, e.w.Ciphertext, contentAAD(network, purpose, keyID, aad))
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

// KeyID returns the envelope's random key ID.
func (e *Envelope) KeyID() KeyID {
	var id KeyID
	copy(id[:], e.w.KeyID)
	return id
}

// Recipients returns the member IDs the envelope is sealed to, in canonical
// order. The slice is the caller's.
func (e *Envelope) Recipients() []MemberID {
	ids := make([]MemberID, len(e.w.Recipients))
	for i, s := range e.w.Recipients {
		copy(ids[i][:], s.Member)
	}
	return ids
}

// Bytes returns the canonical encoding of the envelope.
func (e *Envelope) Bytes() []byte {
	b, err := marshal(&e.w)
	if err != nil {
		// Only reachable with a value this package did not build.
		panic(err)
	}
	return b
}

// ParseEnvelope decodes an envelope strictly: canonical encoding, known
// suite, exact sizes, recipients sorted and unique.
func ParseEnvelope(b []byte) (*Envelope, error) {
	var w envelopeWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("crypto: envelope: %w", err)
	}
	if err := w.check(); err != nil {
		return nil, fmt.Errorf("crypto: envelope: %w: %v", ErrMalformed, err)
	}
	return &Envelope{w: w}, nil
}

func (w *envelopeWire) check() error {
	if w.Suite != SuiteSeal {
		return fmt.Errorf("unknown suite %q (this version knows %q)", w.Suite, SuiteSeal)
	}
	if err := checkWrapped(w.KeyID, w.Nonce, w.Ciphertext, len(w.Recipients), "recipients"); err != nil {
		return err
	}
	for i, s := range w.Recipients {
		if len(s.Member) != len(MemberID{}) {
			return fmt.Errorf("recipient %d: member ID is %d bytes", i, len(s.Member))
		}
		if err := checkSlot(s.Enc, s.Wrapped, "recipient", i); err != nil {
			return err
		}
		if i > 0 && bytes.Compare(w.Recipients[i-1].Member, s.Member) >= 0 {
			return fmt.Errorf("recipients are not sorted and unique at %d", i)
		}
	}
	return nil
}

// checkWrapped checks the sizes of what an envelope and a v2 key envelope
// share: a key ID, an AES-GCM nonce and ciphertext, and n recipients
// (named so in an error).
func checkWrapped(keyID, nonce, ciphertext []byte, n int, recipients string) error {
	switch {
	case len(keyID) != keyIDSize:
		return fmt.Errorf("key ID is %d bytes, want %d", len(keyID), keyIDSize)
	case len(nonce) != gcmNonceSize:
		return fmt.Errorf("nonce is %d bytes, want %d", len(nonce), gcmNonceSize)
	case len(ciphertext) < gcmTagSize:
		return fmt.Errorf("ciphertext of %d bytes is shorter than its tag", len(ciphertext))
	case n == 0 || n > maxRecipients:
		return fmt.Errorf("%d %s (want 1 to %d)", n, recipients, maxRecipients)
	}
	return nil
}

// checkSlot checks the sizes of recipient i's KEM encapsulation and
// wrapped key; what names a recipient in an error.
func checkSlot(enc, wrapped []byte, what string, i int) error {
	switch {
	case len(enc) != kemEncSize:
		return fmt.Errorf("%s %d: encapsulation is %d bytes, want %d", what, i, len(enc), kemEncSize)
	case len(wrapped) != wrappedKeySize:
		return fmt.Errorf("%s %d: wrapped key is %d bytes, want %d", what, i, len(wrapped), wrappedKeySize)
	}
	return nil
}

func checkPurpose(purpose string) error {
	if purpose == "" || len(purpose) > maxPurposeSize {
		return fmt.Errorf("crypto: seal purpose must be 1 to %d bytes, got %d", maxPurposeSize, len(purpose))
	}
	return nil
}

// wrapInfo is the HPKE info string of one recipient's stanza.
func wrapInfo(network NetworkID, purpose string, keyID KeyID, member MemberID) []byte {
	b := []byte("crisismesh/seal/v1/wrap\x00")
	b = append(b, network[:]...)
	b = append(b, byte(len(purpose)))
	b = append(b, purpose...)
	b = append(b, keyID[:]...)
	return append(b, member[:]...)
}

// contentAAD binds the content ciphertext to its network, purpose and key ID
// as well as to the caller's associated data (last, so it needs no length).
func contentAAD(network NetworkID, purpose string, keyID KeyID, aad []byte) []byte {
	b := []byte("crisismesh/seal/v1/content\x00")
	b = append(b, network[:]...)
	b = append(b, byte(len(purpose)))
	b = append(b, purpose...)
	b = append(b, keyID[:]...)
	return append(b, aad...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: AES: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("crypto: GCM: %w", err)
	}
	return aead, nil
}

// equalSecret compares two secrets in constant time.
func equalSecret(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
