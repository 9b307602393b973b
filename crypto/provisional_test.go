package crypto

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/big"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// TestProvisionalVectors: the provisional signature is the composite's own
// Ed25519 half, so one signing gives both, and the draft's published
// composite vectors carry valid provisional signatures.
func TestProvisionalVectors(t *testing.T) {
	msg, ctx, vectors := compositeVectors(t)
	for _, tc := range vectors {
		pk, err := ParsePublicKey(tc.pk)
		if err != nil {
			t.Fatal(err)
		}
		s, sCtx := tc.s, tc.sCtx
		ps, err := ProvisionalOf(s)
		if err != nil {
			t.Fatal(err)
		}
		psCtx, err := ProvisionalOf(sCtx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ps, s[len(s)-ProvisionalSize:]) {
			t.Error("ProvisionalOf is not the last 64 bytes of the composite")
		}
		if err := pk.verifyProvisional("", msg, ps); err != nil {
			t.Errorf("Ed25519 half of vector s (empty context): %v", err)
		}
		if err := pk.VerifyProvisional(ctx, msg, psCtx); err != nil {
			t.Errorf("Ed25519 half of vector sWithContext: %v", err)
		}
		if err := pk.VerifyProvisional(ctx, msg, ps); !errors.Is(err, ErrBadSignature) {
			t.Errorf("half of s under the vector's context: got %v, want ErrBadSignature", err)
		}
		if err := pk.verifyProvisional("", msg, psCtx); !errors.Is(err, ErrBadSignature) {
			t.Errorf("half of sWithContext under the empty context: got %v, want ErrBadSignature", err)
		}
		// Neither verify takes the other's signature.
		if err := pk.VerifyProvisional(ctx, msg, sCtx); !errors.Is(err, ErrBadSignature) {
			t.Errorf("VerifyProvisional of a whole composite: got %v, want ErrBadSignature", err)
		}
		if err := pk.Verify(ctx, msg, psCtx); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify (composite) of a provisional signature: got %v, want ErrBadSignature", err)
		}
	}
}

func TestProvisionalOfSize(t *testing.T) {
	for _, n := range []int{0, ProvisionalSize, SignatureSize - 1, SignatureSize + 1} {
		if _, err := ProvisionalOf(make([]byte, n)); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%d bytes: got %v, want ErrBadSignature", n, err)
		}
	}
	sig := bytes.Repeat([]byte{7}, SignatureSize)
	p, err := ProvisionalOf(sig)
	if err != nil {
		t.Fatal(err)
	}
	p[0] ^= 1
	if sig[mldsa65.SignatureSize] != 7 {
		t.Error("ProvisionalOf returned a slice of the composite, not a copy")
	}
}

// signBoth signs msg as id in ContextEntry and returns the composite
// signature and the provisional one split off it.
func signBoth(t testing.TB, id *Identity, msg []byte) (sig, prov []byte) {
	t.Helper()
	sig, err := id.Sign(ContextEntry, msg)
	if err != nil {
		t.Fatal(err)
	}
	if prov, err = ProvisionalOf(sig); err != nil {
		t.Fatal(err)
	}
	return sig, prov
}

// TestVerifyProvisionalRefuses: every way to present 64 bytes that the
// author's composite signing did not make is refused, with the same strict
// checks as the Ed25519 half of a composite.
func TestVerifyProvisionalRefuses(t *testing.T) {
	alice := newTestIdentity(t, "cert-lu")
	bob := newTestIdentity(t, "cert-fr")
	msg := []byte("entry id")
	sig, prov := signBoth(t, alice, msg)
	if err := VerifyProvisional(alice.Card(), ContextEntry, msg, prov); err != nil {
		t.Fatalf("valid provisional signature: %v", err)
	}
	bobSig, err := bob.Sign(ContextEntry, msg)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		s := bytes.Clone(prov)
		s[i] ^= 1
		return s
	}
	sPlusL := bytes.Clone(prov)
	copy(sPlusL[32:], intLE(new(big.Int).Add(leInt(prov[32:]), ed25519L)))
	checkRefused(t, VerifyProvisional, []refusal{
		{"wrong context", alice.Card(), ContextCommand, msg, prov},
		{"wrong message", alice.Card(), ContextEntry, []byte("another id"), prov},
		{"wrong signer", bob.Card(), ContextEntry, msg, prov},
		{"another signer's half", alice.Card(), ContextEntry, msg, bobSig[mldsa65.SignatureSize:]},
		{"R flipped", alice.Card(), ContextEntry, msg, flip(3)},
		{"S flipped", alice.Card(), ContextEntry, msg, flip(40)},
		{"S + L (non-canonical S)", alice.Card(), ContextEntry, msg, sPlusL},
		{"R = identity (small order)", alice.Card(), ContextEntry, msg, identityRSignature(t, alice, messageRepresentative(ContextEntry, msg))},
		{"plain Ed25519 over the message, not M'", alice.Card(), ContextEntry, msg, ed25519.Sign(alice.sig.ed, msg)},
		{"first 64 bytes of the ML-DSA half", alice.Card(), ContextEntry, msg, sig[:ProvisionalSize]},
		{"whole composite", alice.Card(), ContextEntry, msg, sig},
		{"one byte appended", alice.Card(), ContextEntry, msg, append(bytes.Clone(prov), 0)},
		{"one byte short", alice.Card(), ContextEntry, msg, prov[:ProvisionalSize-1]},
		{"empty", alice.Card(), ContextEntry, msg, nil},
	})
	if err := VerifyProvisional(nil, ContextEntry, msg, prov); err == nil {
		t.Error("no card: got nil error")
	}
	if err := VerifyProvisional(alice.Card(), "", msg, prov); err == nil {
		t.Error("empty context: got nil error")
	}
	// A provisional signature is never a composite one, however it is padded.
	if err := Verify(alice.Card(), ContextEntry, msg, append(make([]byte, mldsa65.SignatureSize), prov...)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("provisional signature behind a zero ML-DSA half: got %v, want ErrBadSignature", err)
	}
}

// FuzzVerifyProvisional: VerifyProvisional never panics, and nothing but a
// signature the author made verifies.
func FuzzVerifyProvisional(f *testing.F) {
	id := newTestIdentity(f, "cert-lu")
	msg := []byte("entry id")
	sig, prov := signBoth(f, id, msg)
	f.Add(msg, prov)
	f.Add(msg, sig)
	f.Add([]byte{}, []byte{})
	for _, i := range []int{0, 31, 32, 63} {
		m := bytes.Clone(prov)
		m[i] ^= 0x80
		f.Add(msg, m)
	}
	f.Fuzz(func(t *testing.T, m, s []byte) {
		err := VerifyProvisional(id.Card(), ContextEntry, m, s)
		if err == nil && !(bytes.Equal(m, msg) && bytes.Equal(s, prov)) {
			t.Fatalf("a signature the author did not make verifies: msg %x sig %x", m, s)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("error %v is not ErrBadSignature", err)
		}
	})
}
