package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// SuiteSignature names the one signature algorithm of suite version 1: the
// composite id-MLDSA65-Ed25519-SHA512 of draft-ietf-lamps-pq-composite-sigs.
const SuiteSignature = "id-MLDSA65-Ed25519-SHA512"

// Sizes of the composite algorithm, as the draft fixes them.
const (
	PublicKeySize = mldsa65.PublicKeySize + ed25519.PublicKeySize // 1984
	SignatureSize = mldsa65.SignatureSize + ed25519.SignatureSize // 3373
	// signingSeedSize is the composite private key: the ML-DSA-65 seed
	// followed by the Ed25519 seed, as in the draft's test vectors.
	signingSeedSize = mldsa65.SeedSize + ed25519.SeedSize // 64
)

// compositePrefix and compositeLabel build the draft's message
// representative M' = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M).
var (
	compositePrefix = []byte("CompositeAlgorithmSignatures2025")
	compositeLabel  = []byte("COMPSIG-MLDSA65-Ed25519-SHA512")
)

// ErrBadSignature reports a signature that does not verify. The wrapped
// message says which half failed; callers test with errors.Is.
var ErrBadSignature = errors.New("crypto: bad signature")

// ErrBadKey reports a public or private key of the wrong size or form.
var ErrBadKey = errors.New("crypto: bad key")

// A Context separates the uses of one signing key: a signature made for one
// context never verifies under another. Use the constants; a context is at
// most 255 bytes and never empty.
type Context string

// The contexts of crisismesh. Each names its structure and version.
const (
	ContextEntry        Context = "crisismesh/entry/v1"
	ContextCard         Context = "crisismesh/card/v1"
	ContextRoster       Context = "crisismesh/roster/v1"
	ContextRosterUpdate Context = "crisismesh/roster-update/v1"
	ContextApproval     Context = "crisismesh/roster-approval/v1"
	ContextCommand      Context = "crisismesh/command/v1"
	ContextCheckpoint   Context = "crisismesh/checkpoint/v1"
	ContextBundle       Context = "crisismesh/bundle/v1"
	ContextArchive      Context = "crisismesh/archive/v1"
)

func (c Context) check() error {
	if len(c) == 0 {
		return errors.New("crypto: empty signature context: every signature needs a crypto.Context")
	}
	if len(c) > 255 {
		return fmt.Errorf("crypto: signature context of %d bytes is over 255", len(c))
	}
	return nil
}

// A MemberID is the SHA-256 of a member's encoded composite public key.
type MemberID [32]byte

// String returns the ID in lowercase hex.
func (id MemberID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 16 hex digits, for display next to a name.
func (id MemberID) Short() string { return hex.EncodeToString(id[:8]) }

// IsZero reports whether id is the zero ID, which no member has.
func (id MemberID) IsZero() bool { return id == MemberID{} }

// ParseMemberID parses the 64-hex-digit form that String returns.
func ParseMemberID(s string) (MemberID, error) {
	var id MemberID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("crypto: member ID %q is not 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// MarshalText implements encoding.TextMarshaler (hex).
func (id MemberID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex).
func (id *MemberID) UnmarshalText(b []byte) error {
	v, err := ParseMemberID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// PublicKey is a composite id-MLDSA65-Ed25519-SHA512 public key. It is
// immutable and safe for concurrent use.
type PublicKey struct {
	raw   []byte // ML-DSA-65 public key ‖ Ed25519 public key
	id    MemberID
	mldsa mldsa65.PublicKey
	ed    ed25519.PublicKey
}

// ParsePublicKey parses the draft's encoding: the 1952-byte ML-DSA-65 public
// key followed by the 32-byte Ed25519 public key.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%w: composite public key is %d bytes, want %d", ErrBadKey, len(b), PublicKeySize)
	}
	pk := &PublicKey{raw: append([]byte(nil), b...)}
	mpk, err := parseMLDSAPublicKey(pk.raw[:mldsa65.PublicKeySize])
	if err != nil {
		return nil, err
	}
	pk.mldsa = *mpk
	pk.ed = ed25519.PublicKey(pk.raw[mldsa65.PublicKeySize:])
	if err := checkEd25519PublicKey(pk.ed); err != nil {
		return nil, err
	}
	pk.id = sha256.Sum256(pk.raw)
	return pk, nil
}

// parseMLDSAPublicKey parses the ML-DSA-65 half of a composite key,
// enforcing its exact size.
func parseMLDSAPublicKey(b []byte) (*mldsa65.PublicKey, error) {
	if len(b) != mldsa65.PublicKeySize {
		return nil, fmt.Errorf("%w: ML-DSA-65 public key is %d bytes, want %d", ErrBadKey, len(b), mldsa65.PublicKeySize)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: ML-DSA-65 public key: %v", ErrBadKey, err)
	}
	return &pk, nil
}

// verifyMLDSA is the ML-DSA-65 half of composite verification (FIPS 204
// ML-DSA.Verify with context ctx), enforcing exact sizes. The published
// Wycheproof vectors are run through it.
func verifyMLDSA(pk *mldsa65.PublicKey, msg, ctx, sig []byte) bool {
	if len(sig) != mldsa65.SignatureSize || len(ctx) > 255 {
		return false
	}
	return mldsa65.Verify(pk, msg, ctx, sig)
}

// ed25519SmallOrder lists every encoding of an Ed25519 point of small
// order (1, 2, 4 or 8) with the x sign bit cleared, canonical or not: the
// identity, (0, -1), y = 0, the two y of the order-8 points, and the
// non-canonical y = p and y = p+1. It is libsodium's block list.
var ed25519SmallOrder = [...][32]byte{
	{0x00},
	{0x01},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	ed25519Near(0xec), // p-1
	ed25519Near(0xed), // p, non-canonical 0
	ed25519Near(0xee), // p+1, non-canonical 1
}

// ed25519Near returns the encoding 0x??ff…ff7f of y = p-1, p or p+1.
func ed25519Near(first byte) [32]byte {
	var b [32]byte
	for i := range b {
		b[i] = 0xff
	}
	b[0], b[31] = first, 0x7f
	return b
}

// ed25519SmallOrderPoint reports whether b encodes a point of small order.
func ed25519SmallOrderPoint(b []byte) bool {
	var y [32]byte
	copy(y[:], b)
	y[31] &= 0x7f
	for _, s := range ed25519SmallOrder {
		if y == s {
			return true
		}
	}
	return false
}

// ed25519Canonical reports whether b encodes y < p = 2^255 - 19 (the
// encodings of y = p … 2^255-1 are the non-canonical ones).
func ed25519Canonical(b []byte) bool {
	if b[31]&0x7f != 0x7f || b[0] < 0xed {
		return true
	}
	for _, c := range b[1:31] {
		if c != 0xff {
			return true
		}
	}
	return false
}

// checkEd25519PublicKey refuses an Ed25519 public key that is not a
// canonical encoding or is a point of small order. With such a key the
// Ed25519 half proves nothing (with the identity as key, R = identity and
// S = 0 verify for every message), so the composite would rest on ML-DSA
// alone.
func checkEd25519PublicKey(pk []byte) error {
	switch {
	case len(pk) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: Ed25519 public key is %d bytes, want %d", ErrBadKey, len(pk), ed25519.PublicKeySize)
	case !ed25519Canonical(pk):
		return fmt.Errorf("%w: Ed25519 public key is not canonically encoded", ErrBadKey)
	case ed25519SmallOrderPoint(pk):
		return fmt.Errorf("%w: Ed25519 public key is a point of small order", ErrBadKey)
	}
	return nil
}

// verifyEd25519 is the Ed25519 half of composite verification, strict:
// crypto/ed25519 (RFC 8032, cofactorless) refuses S ≥ L and, as it compares
// R with the canonical encoding of the point it computes, any non-canonical
// R; this also refuses an R of small order, as libsodium does. The key was
// checked by [ParsePublicKey].
func verifyEd25519(pk ed25519.PublicKey, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || ed25519SmallOrderPoint(sig[:32]) {
		return false
	}
	return ed25519.Verify(pk, msg, sig)
}

// Bytes returns the encoded key. The caller must not modify it.
func (pk *PublicKey) Bytes() []byte { return pk.raw }

// ID returns the member ID: SHA-256 of the encoded key.
func (pk *PublicKey) ID() MemberID { return pk.id }

// Equal reports whether two public keys are the same.
func (pk *PublicKey) Equal(other *PublicKey) bool {
	return other != nil && subtle.ConstantTimeCompare(pk.raw, other.raw) == 1
}

// Verify checks sig over msg under ctx. Both the ML-DSA-65 and the Ed25519
// halves must verify; the signature must be exactly [SignatureSize] bytes.
func (pk *PublicKey) Verify(ctx Context, msg, sig []byte) error {
	if err := ctx.check(); err != nil {
		return err
	}
	return pk.verify(ctx, msg, sig)
}

// verify is Verify without the check that ctx is a real context, so the
// draft's vectors with an empty context can run through it.
func (pk *PublicKey) verify(ctx Context, msg, sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadSignature, len(sig), SignatureSize)
	}
	mprime := messageRepresentative(ctx, msg)
	// Check both halves always, so timing does not say which one failed.
	okML := verifyMLDSA(&pk.mldsa, mprime, compositeLabel, sig[:mldsa65.SignatureSize])
	okEd := verifyEd25519(pk.ed, mprime, sig[mldsa65.SignatureSize:])
	switch {
	case !okML && !okEd:
		return fmt.Errorf("%w: neither half verifies", ErrBadSignature)
	case !okML:
		return fmt.Errorf("%w: ML-DSA-65 half does not verify", ErrBadSignature)
	case !okEd:
		return fmt.Errorf("%w: Ed25519 half does not verify", ErrBadSignature)
	}
	return nil
}

// messageRepresentative is the draft's M' = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖
// SHA-512(M). The caller has checked that len(ctx) ≤ 255.
func messageRepresentative(ctx Context, msg []byte) []byte {
	ph := sha512.Sum512(msg)
	m := make([]byte, 0, len(compositePrefix)+len(compositeLabel)+1+len(ctx)+len(ph))
	m = append(m, compositePrefix...)
	m = append(m, compositeLabel...)
	m = append(m, byte(len(ctx)))
	m = append(m, ctx...)
	return append(m, ph[:]...)
}

// incomparable makes a struct that contains it not comparable with ==, so
// secrets are compared only with their constant-time Equal.
type incomparable [0]func()

// signingKey is the composite private key. Signing is always hedged
// (randomized): deterministic ML-DSA signing exists only in tests.
type signingKey struct {
	_     incomparable
	seed  [signingSeedSize]byte
	mldsa *mldsa65.PrivateKey
	ed    ed25519.PrivateKey
	pub   *PublicKey
}

// newSigningKey draws a fresh composite key from crypto/rand.
func newSigningKey() (*signingKey, error) {
	var seed [signingSeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("crypto: read randomness: %w", err)
	}
	return signingKeyFromSeed(seed[:])
}

// signingKeyFromSeed expands the 64-byte composite private key (ML-DSA-65
// seed ‖ Ed25519 seed), the draft's private-key encoding.
func signingKeyFromSeed(seed []byte) (*signingKey, error) {
	if len(seed) != signingSeedSize {
		return nil, fmt.Errorf("%w: composite private key is %d bytes, want %d", ErrBadKey, len(seed), signingSeedSize)
	}
	k := &signingKey{}
	copy(k.seed[:], seed)
	var mseed [mldsa65.SeedSize]byte
	copy(mseed[:], seed[:mldsa65.SeedSize])
	mpub, mpriv := mldsa65.NewKeyFromSeed(&mseed)
	k.mldsa = mpriv
	k.ed = ed25519.NewKeyFromSeed(seed[mldsa65.SeedSize:])
	raw := make([]byte, 0, PublicKeySize)
	raw = append(raw, mpub.Bytes()...)
	raw = append(raw, k.ed.Public().(ed25519.PublicKey)...)
	pub, err := ParsePublicKey(raw)
	if err != nil {
		return nil, err
	}
	k.pub = pub
	return k, nil
}

// sign makes a composite signature: ML-DSA-65 (hedged, with the label as its
// context) ‖ Ed25519, both over M'.
func (k *signingKey) sign(ctx Context, msg []byte) ([]byte, error) {
	if err := ctx.check(); err != nil {
		return nil, err
	}
	mprime := messageRepresentative(ctx, msg)
	sig := make([]byte, SignatureSize)
	if err := mldsa65.SignTo(k.mldsa, mprime, compositeLabel, true, sig[:mldsa65.SignatureSize]); err != nil {
		return nil, fmt.Errorf("crypto: ML-DSA-65 sign: %w", err)
	}
	copy(sig[mldsa65.SignatureSize:], ed25519.Sign(k.ed, mprime))
	return sig, nil
}
