package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Tests of strict composite verification: Ed25519 keys and R of small
// order, non-canonical encodings, and halves of a composite signature used
// out of place (another ML-DSA context, another message).

// ed25519L is the order of the Ed25519 base point.
var ed25519L, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// leInt and intLE convert between a little-endian 32-byte scalar and a big.Int.
func leInt(b []byte) *big.Int {
	r := slices.Clone(b)
	slices.Reverse(r)
	return new(big.Int).SetBytes(r)
}

func intLE(x *big.Int) []byte {
	b := x.FillBytes(make([]byte, 32))
	slices.Reverse(b)
	return b
}

// ed25519IdentityEncoding is the canonical encoding of the neutral point.
var ed25519IdentityEncoding = append([]byte{1}, make([]byte, 31)...)

// TestEd25519SmallOrderListIsSmallOrder shows that the block list is what it
// says: under every listed key, with either x sign bit, crypto/ed25519 (which
// does not check the key) accepts the forgery R = identity, S = 0 for some
// message, which only a point of small order allows; and under an honest
// key it accepts none of them.
func TestEd25519SmallOrderListIsSmallOrder(t *testing.T) {
	forgery := append(bytes.Clone(ed25519IdentityEncoding), make([]byte, 32)...)
	forges := func(pk []byte) bool {
		for i := range 256 {
			if ed25519.Verify(pk, fmt.Appendf(nil, "message %d", i), forgery) {
				return true
			}
		}
		return false
	}
	for i, p := range ed25519SmallOrder {
		for _, sign := range []byte{0, 0x80} {
			pk := p
			pk[31] |= sign
			if !ed25519SmallOrderPoint(pk[:]) {
				t.Errorf("entry %d (sign %#x): not reported as small order", i, sign)
			}
			if !ed25519Canonical(pk[:]) || (sign != 0 && (i == 0 || i == 1 || i == 4)) {
				// Non-canonical y, or x = 0 with the sign bit set (-0):
				// crypto/ed25519 may refuse to decode these at all.
				continue
			}
			if !forges(pk[:]) {
				t.Errorf("entry %d (sign %#x): crypto/ed25519 accepted no forgery under it; is it of small order?", i, sign)
			}
		}
	}
	honest := newTestIdentity(t, "cert-lu").Card().SigningKey().ed
	if forges(honest) {
		t.Fatal("the forgery verified under an honest key")
	}
	if ed25519SmallOrderPoint(honest) {
		t.Fatal("an honest key is reported as small order")
	}
}

func TestEd25519CanonicalEncoding(t *testing.T) {
	for _, tc := range []struct {
		first, last byte
		want        bool
	}{
		{0xec, 0x7f, true},  // p-1
		{0xed, 0x7f, false}, // p
		{0xff, 0x7f, false}, // 2^255-1
		{0xed, 0xff, false}, // p with the sign bit
		{0xed, 0x7e, true},
	} {
		b := ed25519Near(tc.first)
		b[31] = tc.last
		if got := ed25519Canonical(b[:]); got != tc.want {
			t.Errorf("%x…%x: got canonical=%v, want %v", tc.first, tc.last, got, tc.want)
		}
	}
}

// compositeKeyWithEd returns id's composite public key bytes with the
// Ed25519 half replaced by ed.
func compositeKeyWithEd(id *Identity, ed []byte) []byte {
	raw := bytes.Clone(id.Card().SigningKey().Bytes()[:mldsa65.PublicKeySize])
	return append(raw, ed...)
}

// TestCompositeSmallOrderEd25519KeyRefused: a composite key whose Ed25519
// half is of small order (in any encoding) or not canonical is refused.
func TestCompositeSmallOrderEd25519KeyRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	for i, p := range ed25519SmallOrder {
		for _, sign := range []byte{0, 0x80} {
			ed := p
			ed[31] |= sign
			if _, err := ParsePublicKey(compositeKeyWithEd(id, ed[:])); !errors.Is(err, ErrBadKey) {
				t.Errorf("small-order entry %d (sign %#x): got %v, want ErrBadKey", i, sign, err)
			}
		}
	}
	nc := ed25519Near(0xf0) // y = p + 3: not canonical
	if _, err := ParsePublicKey(compositeKeyWithEd(id, nc[:])); !errors.Is(err, ErrBadKey) {
		t.Errorf("non-canonical Ed25519 key: got %v, want ErrBadKey", err)
	}
}

// signedCard encodes a self-signed card body with the given keys; sign makes
// the signature over the body.
func signedCard(t *testing.T, id *Identity, sigKey, kemKey []byte, sign func(body []byte) []byte) []byte {
	t.Helper()
	body, err := marshal(&cardBody{
		Suite: SuiteCard, Name: "mallory", SigningKey: sigKey, KEMKey: kemKey,
		PeerKey: mustPeerKey(t, id), Created: testTime.Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := marshal(&signedWire{Body: body, Sig: sign(body)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustPeerKey(t *testing.T, id *Identity) []byte {
	t.Helper()
	var body cardBody
	var w signedWire
	if err := unmarshalCanonical(id.Card().Bytes(), &w); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalCanonical(w.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.PeerKey
}

// TestCardWithIdentityEd25519KeyRefused: with the neutral point as its
// Ed25519 key, a card's Ed25519 half "verifies" for every message with
// R = identity, S = 0 (crypto/ed25519 accepts it); such a card must be
// refused, or the composite rests on ML-DSA alone.
func TestCardWithIdentityEd25519KeyRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	sigKey := compositeKeyWithEd(id, ed25519IdentityEncoding)
	raw := signedCard(t, id, sigKey, id.Card().KEMKey().Bytes(), func(body []byte) []byte {
		mprime := messageRepresentative(ContextCard, body)
		sig := make([]byte, SignatureSize)
		if err := mldsa65.SignTo(id.sig.mldsa, mprime, compositeLabel, true, sig[:mldsa65.SignatureSize]); err != nil {
			t.Fatal(err)
		}
		copy(sig[mldsa65.SignatureSize:], ed25519IdentityEncoding) // R = identity, S = 0
		if !ed25519.Verify(ed25519IdentityEncoding, mprime, sig[mldsa65.SignatureSize:]) {
			t.Fatal("setup: crypto/ed25519 refused the forgery; the test shows nothing")
		}
		return sig
	})
	if _, err := ParseCard(raw); !errors.Is(err, ErrBadKey) {
		t.Fatalf("card with the identity as Ed25519 key: got %v, want ErrBadKey", err)
	}
}

// signedCommandMessage has a fresh identity sign "level 3" under
// ContextCommand.
func signedCommandMessage(t *testing.T) (id *Identity, msg, sig []byte) {
	t.Helper()
	id = newTestIdentity(t, "cert-lu")
	msg = []byte("level 3")
	sig, err := id.Sign(ContextCommand, msg)
	if err != nil {
		t.Fatal(err)
	}
	return id, msg, sig
}

// TestEd25519NonCanonicalSRefused: S + L in place of S is the same scalar
// mod L; strict verification refuses it.
func TestEd25519NonCanonicalSRefused(t *testing.T) {
	id, msg, sig := signedCommandMessage(t)
	edOff := mldsa65.SignatureSize
	s := leInt(sig[edOff+32:])
	bad := bytes.Clone(sig)
	copy(bad[edOff+32:], intLE(new(big.Int).Add(s, ed25519L)))
	if err := Verify(id.Card(), ContextCommand, msg, bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("S + L: got %v, want ErrBadSignature", err)
	}
}

// TestEd25519IdentityRRefused: a key holder can make a signature with
// R = identity (nonce r = 0: S = k·a). crypto/ed25519 accepts it; strict
// verification refuses an R of small order.
func TestEd25519IdentityRRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	msg := []byte("level 3")
	edSig := identityRSignature(t, id, messageRepresentative(ContextCommand, msg))
	sig, err := id.Sign(ContextCommand, msg)
	if err != nil {
		t.Fatal(err)
	}
	copy(sig[mldsa65.SignatureSize:], edSig)
	if err := Verify(id.Card(), ContextCommand, msg, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("R = identity: got %v, want ErrBadSignature", err)
	}
}

// identityRSignature makes, with id's Ed25519 secret, an Ed25519
// signature over mprime with nonce r = 0 (R = identity, S = k·a), which
// crypto/ed25519 accepts and strict verification refuses.
func identityRSignature(t *testing.T, id *Identity, mprime []byte) []byte {
	t.Helper()
	h := sha512.Sum512(id.sig.ed.Seed())
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	a := leInt(h[:32])
	pub := id.Card().SigningKey().ed
	kh := sha512.New()
	kh.Write(ed25519IdentityEncoding)
	kh.Write(pub)
	kh.Write(mprime)
	kd := kh.Sum(nil)
	slices.Reverse(kd)
	k := new(big.Int).Mod(new(big.Int).SetBytes(kd), ed25519L)
	S := new(big.Int).Mod(new(big.Int).Mul(k, a), ed25519L)
	edSig := append(bytes.Clone(ed25519IdentityEncoding), intLE(S)...)
	if !ed25519.Verify(pub, mprime, edSig) {
		t.Fatal("setup: crypto/ed25519 refused the R = identity signature; the test shows nothing")
	}
	return edSig
}

// TestMLDSAHalfEmptyContextRefused: the ML-DSA half is made with the
// composite label as its ML-DSA context, so it does not verify with the
// empty context, and a plain ML-DSA signature (empty context) over M' or M
// does not pass as the ML-DSA half.
func TestMLDSAHalfEmptyContextRefused(t *testing.T) {
	id, msg, sig := signedCommandMessage(t)
	pk := id.Card().SigningKey()
	mprime := messageRepresentative(ContextCommand, msg)
	half := sig[:mldsa65.SignatureSize]
	if !verifyMLDSA(&pk.mldsa, mprime, compositeLabel, half) {
		t.Fatal("setup: the ML-DSA half does not verify with the label")
	}
	if verifyMLDSA(&pk.mldsa, mprime, nil, half) {
		t.Error("the ML-DSA half verifies with the empty context")
	}
	for name, m := range map[string][]byte{"M'": mprime, "M": msg} {
		plain := bytes.Clone(sig)
		if err := mldsa65.SignTo(id.sig.mldsa, m, nil, true, plain[:mldsa65.SignatureSize]); err != nil {
			t.Fatal(err)
		}
		err := Verify(id.Card(), ContextCommand, msg, plain)
		if !errors.Is(err, ErrBadSignature) || !bytes.Contains([]byte(err.Error()), []byte("ML-DSA-65 half")) {
			t.Errorf("plain ML-DSA signature over %s with empty context as the ML-DSA half: got %v, want ErrBadSignature naming the ML-DSA half", name, err)
		}
	}
}

// TestCompositeSwappedHalvesRefused: halves of two valid signatures by the
// same key over two messages do not combine into a valid signature of
// either message.
func TestCompositeSwappedHalvesRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	msg1, msg2 := []byte("level 3"), []byte("level 0")
	sig1, err := id.Sign(ContextCommand, msg1)
	if err != nil {
		t.Fatal(err)
	}
	sig2, err := id.Sign(ContextCommand, msg2)
	if err != nil {
		t.Fatal(err)
	}
	n := mldsa65.SignatureSize
	ml1ed2 := append(bytes.Clone(sig1[:n]), sig2[n:]...)
	ml2ed1 := append(bytes.Clone(sig2[:n]), sig1[n:]...)
	for _, tc := range []struct {
		name string
		msg  []byte
		sig  []byte
		half string
	}{
		{"ML-DSA of msg1 + Ed25519 of msg2, against msg1", msg1, ml1ed2, "Ed25519 half"},
		{"ML-DSA of msg1 + Ed25519 of msg2, against msg2", msg2, ml1ed2, "ML-DSA-65 half"},
		{"ML-DSA of msg2 + Ed25519 of msg1, against msg1", msg1, ml2ed1, "ML-DSA-65 half"},
		{"ML-DSA of msg2 + Ed25519 of msg1, against msg2", msg2, ml2ed1, "Ed25519 half"},
	} {
		err := Verify(id.Card(), ContextCommand, tc.msg, tc.sig)
		if !errors.Is(err, ErrBadSignature) || !bytes.Contains([]byte(err.Error()), []byte(tc.half)) {
			t.Errorf("%s: got %v, want ErrBadSignature naming the %s", tc.name, err, tc.half)
		}
	}
}
