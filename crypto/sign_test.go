package crypto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestSignVerify(t *testing.T) {
	alice := newTestIdentity(t, "cert-lu")
	bob := newTestIdentity(t, "cert-fr")
	msg := []byte("level 3: large-scale incident")
	sig, err := alice.Sign(ContextCommand, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != SignatureSize {
		t.Fatalf("got signature of %d bytes, want %d", len(sig), SignatureSize)
	}
	if err := Verify(alice.Card(), ContextCommand, msg, sig); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	sig2, err := alice.Sign(ContextCommand, msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sig, sig2) {
		t.Error("two signatures of one message are equal: signing must be hedged")
	}

	mlLen := SignatureSize - 64
	flip := func(i int) []byte {
		s := bytes.Clone(sig)
		s[i] ^= 1
		return s
	}
	otherSig, err := bob.Sign(ContextCommand, msg)
	if err != nil {
		t.Fatal(err)
	}
	checkRefused(t, Verify, []refusal{
		{"wrong context", alice.Card(), ContextEntry, msg, sig},
		{"wrong message", alice.Card(), ContextCommand, []byte("level 4"), sig},
		{"wrong signer", bob.Card(), ContextCommand, msg, sig},
		{"ML-DSA half flipped", alice.Card(), ContextCommand, msg, flip(10)},
		{"Ed25519 half flipped", alice.Card(), ContextCommand, msg, flip(mlLen + 5)},
		{"ML-DSA half stripped", alice.Card(), ContextCommand, msg, sig[mlLen:]},
		{"Ed25519 half stripped", alice.Card(), ContextCommand, msg, sig[:mlLen]},
		{"halves swapped", alice.Card(), ContextCommand, msg, append(bytes.Clone(sig[mlLen:]), sig[:mlLen]...)},
		{"ML-DSA half from another signer", alice.Card(), ContextCommand, msg, append(bytes.Clone(otherSig[:mlLen]), sig[mlLen:]...)},
		{"Ed25519 half from another signer", alice.Card(), ContextCommand, msg, append(bytes.Clone(sig[:mlLen]), otherSig[mlLen:]...)},
		{"one byte appended", alice.Card(), ContextCommand, msg, append(bytes.Clone(sig), 0)},
		{"empty", alice.Card(), ContextCommand, msg, nil},
	})
}

// A refusal is a signature check that must fail with ErrBadSignature.
type refusal struct {
	name string
	card *Card
	ctx  Context
	msg  []byte
	sig  []byte
}

// checkRefused runs each case through verify (Verify or
// VerifyProvisional) as a subtest and wants ErrBadSignature.
func checkRefused(t *testing.T, verify func(*Card, Context, []byte, []byte) error, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tc.card, tc.ctx, tc.msg, tc.sig)
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("got %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestSignVerifyHalfNamed(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	sig, _ := id.Sign(ContextEntry, []byte("x"))
	mlLen := SignatureSize - 64
	s := bytes.Clone(sig)
	s[mlLen+1] ^= 0x80
	err := Verify(id.Card(), ContextEntry, []byte("x"), s)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("Ed25519 half")) {
		t.Errorf("got %v, want an error naming the Ed25519 half", err)
	}
}

func TestContextRequired(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	if _, err := id.Sign("", []byte("x")); err == nil {
		t.Error("Sign with empty context: got nil error")
	}
	long := Context(bytes.Repeat([]byte("a"), 256))
	if _, err := id.Sign(long, []byte("x")); err == nil {
		t.Error("Sign with 256-byte context: got nil error")
	}
	sig, _ := id.Sign(ContextEntry, []byte("x"))
	if err := Verify(id.Card(), "", []byte("x"), sig); err == nil {
		t.Error("Verify with empty context: got nil error")
	}
}

func TestParsePublicKeySizes(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	raw := id.Card().SigningKey().Bytes()
	for _, b := range [][]byte{nil, raw[:len(raw)-1], append(bytes.Clone(raw), 0)} {
		if _, err := ParsePublicKey(b); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%d bytes): got %v, want ErrBadKey", len(b), err)
		}
	}
	pk, err := ParsePublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if pk.ID() != id.ID() {
		t.Errorf("got ID %s, want %s", pk.ID(), id.ID())
	}
}

func TestMemberIDText(t *testing.T) {
	id := newTestIdentity(t, "cert-lu").ID()
	got, err := ParseMemberID(id.String())
	if err != nil || got != id {
		t.Errorf("ParseMemberID(String()): got %v, %v", got, err)
	}
	for _, bad := range []string{"", "zz", id.String()[:62], id.String() + "00"} {
		if _, err := ParseMemberID(bad); err == nil {
			t.Errorf("ParseMemberID(%q): got nil error", bad)
		}
	}
}

// Secret-holding types must not be comparable with ==.
func TestSecretsIncomparable(t *testing.T) {
	for _, v := range []any{Identity{}, GroupKey{}, signingKey{}, kemKey{}} {
		if reflect.TypeOf(v).Comparable() {
			t.Errorf("%T is comparable with ==", v)
		}
	}
}

func TestNetworkIDText(t *testing.T) {
	n := NetworkID{1, 2, 3}
	b, err := n.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got NetworkID
	if err := got.UnmarshalText(b); err != nil || got != n {
		t.Errorf("round trip: %v %v", got, err)
	}
	if err := got.UnmarshalText([]byte("xyz")); err == nil {
		t.Error("bad text: got nil error")
	}
}
