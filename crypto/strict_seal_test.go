package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Tests of sealing against what an attacker sends: keys and shares of low
// order, invalid ML-KEM keys, damaged or extended ciphertexts, and error
// texts that could serve as an oracle.

// x25519LowOrderPoints are the X25519 u-coordinates of low order, canonical
// or not (RFC 7748 §6.1 says to check for the all-zero output they give).
var x25519LowOrderPoints = func() [][]byte {
	pts := [][]byte{
		make([]byte, 32),                       // 0
		append([]byte{1}, make([]byte, 31)...), // 1
		{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
			0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
		{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
			0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	}
	for _, first := range []byte{0xec, 0xed, 0xee} { // p-1, p, p+1
		b := ed25519Near(first)
		pts = append(pts, b[:])
	}
	for _, p := range pts[:7] { // the top bit is ignored (RFC 7748 §5)
		b := bytes.Clone(p)
		b[31] |= 0x80
		pts = append(pts, b)
	}
	return pts
}()

// TestKEMPublicKeyInvalidRefused: X-Wing keys with a wrong length, an
// ML-KEM coefficient ≥ q, or a low-order X25519 share are refused when
// parsed, and so is a self-signed card that carries one.
func TestKEMPublicKeyInvalidRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	good := id.Card().KEMKey().Bytes()
	bad := map[string][]byte{
		"empty":                   nil,
		"one byte short":          good[:len(good)-1],
		"one byte long":           append(bytes.Clone(good), 0),
		"ML-KEM key only":         good[:1184],
		"X25519 share only":       good[1184:],
		"ML-KEM coefficient 4095": func() []byte { b := bytes.Clone(good); b[0], b[1] = 0xff, b[1]|0x0f; return b }(),
		"ML-KEM coefficient q":    func() []byte { b := bytes.Clone(good); b[0], b[1] = 0x01, b[1]&0xf0|0x0d; return b }(),
		"ML-KEM last coefficient q": func() []byte {
			b := bytes.Clone(good)
			b[1151], b[1150] = 0xd0, b[1150]&0x0f|0x10 // the high 12 bits of the last 3 bytes of t̂
			return b
		}(),
	}
	for i, p := range x25519LowOrderPoints {
		bad[fmt.Sprintf("X25519 low-order share %d", i)] = append(bytes.Clone(good[:1184]), p...)
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKEMPublicKey(b); !errors.Is(err, ErrBadKey) {
				t.Errorf("ParseKEMPublicKey: got %v, want ErrBadKey", err)
			}
			raw := signedCard(t, id, id.Card().SigningKey().Bytes(), b, func(body []byte) []byte {
				sig, err := id.sig.sign(ContextCard, body)
				if err != nil {
					t.Fatal(err)
				}
				return sig
			})
			if _, err := ParseCard(raw); !errors.Is(err, ErrBadKey) {
				t.Errorf("ParseCard: got %v, want ErrBadKey", err)
			}
		})
	}
	if _, err := ParseKEMPublicKey(good); err != nil {
		t.Fatalf("the good key: %v", err)
	}
}

// sealedTo seals a payload to id alone and returns the envelope's wire
// form for tampering.
func sealedTo(t *testing.T, id *Identity) envelopeWire {
	t.Helper()
	env, err := Seal(NetworkID{1}, "entry-body", []Recipient{id.Card().Recipient()}, []byte("aad"), []byte("TLP:RED sitrep"))
	if err != nil {
		t.Fatal(err)
	}
	return env.w
}

// tamperEnc returns w with its one stanza's encapsulation changed by f.
func tamperEnc(w envelopeWire, f func(enc []byte) []byte) *Envelope {
	s := w.Recipients[0]
	s.Enc = f(bytes.Clone(s.Enc))
	w.Recipients = []stanza{s}
	return &Envelope{w: w}
}

// openFailures opens envelopes damaged in every way that still parses and
// returns the errors, by what was damaged.
func openFailures(t *testing.T, id *Identity) map[string]error {
	t.Helper()
	w := sealedTo(t, id)
	const mlkemCT = 1088
	envs := map[string]*Envelope{
		"ML-KEM ciphertext, first byte": tamperEnc(w, func(b []byte) []byte { b[0] ^= 1; return b }),
		"ML-KEM ciphertext, last byte":  tamperEnc(w, func(b []byte) []byte { b[mlkemCT-1] ^= 0x80; return b }),
		"ML-KEM ciphertext, zeroed":     tamperEnc(w, func(b []byte) []byte { clear(b[:mlkemCT]); return b }),
		"X25519 share, one bit":         tamperEnc(w, func(b []byte) []byte { b[mlkemCT] ^= 1; return b }),
		"wrapped key": func() *Envelope {
			w := w
			s := w.Recipients[0]
			s.Wrapped = bytes.Clone(s.Wrapped)
			s.Wrapped[0] ^= 1
			w.Recipients = []stanza{s}
			return &Envelope{w: w}
		}(),
		"content ciphertext": {w: func() envelopeWire { w := w; w.Ciphertext = bytes.Clone(w.Ciphertext); w.Ciphertext[0] ^= 1; return w }()},
		"content tag": {w: func() envelopeWire {
			w := w
			w.Ciphertext = bytes.Clone(w.Ciphertext)
			w.Ciphertext[len(w.Ciphertext)-1] ^= 1
			return w
		}()},
		"content truncated": {w: func() envelopeWire { w := w; w.Ciphertext = w.Ciphertext[:len(w.Ciphertext)-1]; return w }()},
		"content extended":  {w: func() envelopeWire { w := w; w.Ciphertext = append(bytes.Clone(w.Ciphertext), 0); return w }()},
		"content extended 16B": {w: func() envelopeWire {
			w := w
			w.Ciphertext = append(bytes.Clone(w.Ciphertext), make([]byte, 16)...)
			return w
		}()},
		"nonce":  {w: func() envelopeWire { w := w; w.Nonce = bytes.Clone(w.Nonce); w.Nonce[0] ^= 1; return w }()},
		"key ID": {w: func() envelopeWire { w := w; w.KeyID = bytes.Clone(w.KeyID); w.KeyID[0] ^= 1; return w }()},
	}
	for i, p := range x25519LowOrderPoints {
		envs[fmt.Sprintf("X25519 share of low order %d", i)] = tamperEnc(w, func(b []byte) []byte { copy(b[mlkemCT:], p); return b })
	}
	out := map[string]error{}
	for name, env := range envs {
		// Through the encoding, as a peer would send it.
		parsed, err := ParseEnvelope(env.Bytes())
		if err != nil {
			t.Fatalf("%s: ParseEnvelope: %v", name, err)
		}
		_, out[name] = id.Open(NetworkID{1}, "entry-body", parsed, []byte("aad"))
	}
	good := &Envelope{w: w}
	_, out["other network"] = id.Open(NetworkID{2}, "entry-body", good, []byte("aad"))
	_, out["other purpose"] = id.Open(NetworkID{1}, "group-key", good, []byte("aad"))
	_, out["other aad"] = id.Open(NetworkID{1}, "entry-body", good, []byte("aae"))
	_, out["aad extended"] = id.Open(NetworkID{1}, "entry-body", good, []byte("aad\x00"))
	return out
}

// TestSealLowOrderX25519ShareRefused: an encapsulation whose X25519 share is
// of low order (the all-zero shared secret) does not open.
func TestSealLowOrderX25519ShareRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	for name, err := range openFailures(t, id) {
		if bytes.HasPrefix([]byte(name), []byte("X25519 share of low order")) && !errors.Is(err, ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
	}
}

// TestSealTamperedMLKEMCiphertextRefused: a damaged ML-KEM part of the
// encapsulation (implicit rejection gives another shared secret) does not
// open.
func TestSealTamperedMLKEMCiphertextRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	for name, err := range openFailures(t, id) {
		if bytes.HasPrefix([]byte(name), []byte("ML-KEM")) && !errors.Is(err, ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
	}
}

// TestSealExtensionRefused: bytes appended anywhere (to the content
// ciphertext, the encapsulation, the wrapped key, the encoding, a group
// ciphertext) are refused.
func TestSealExtensionRefused(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	w := sealedTo(t, id)
	env := &Envelope{w: w}
	for name, err := range openFailures(t, id) {
		if bytes.HasPrefix([]byte(name), []byte("content extended")) && !errors.Is(err, ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
	}
	enc := func(w envelopeWire) []byte {
		b, err := marshal(&w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	extEnc, extWrapped := w, w
	extEnc.Recipients = []stanza{{Member: w.Recipients[0].Member, Enc: append(bytes.Clone(w.Recipients[0].Enc), 0), Wrapped: w.Recipients[0].Wrapped}}
	extWrapped.Recipients = []stanza{{Member: w.Recipients[0].Member, Enc: w.Recipients[0].Enc, Wrapped: append(bytes.Clone(w.Recipients[0].Wrapped), 0)}}
	for name, b := range map[string][]byte{
		"encapsulation extended": enc(extEnc),
		"wrapped key extended":   enc(extWrapped),
		"encoding extended":      append(env.Bytes(), 0),
	} {
		if _, err := ParseEnvelope(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}

	g, sealed, gw := sealedGroupBody(t)
	gw.Ciphertext = append(gw.Ciphertext, 0)
	extended, err := marshal(&gw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(g, NetworkID{1}, []byte("header"), extended); !errors.Is(err, ErrTampered) {
		t.Errorf("group ciphertext extended: got %v, want ErrTampered", err)
	}
	if _, err := OpenWith(g, NetworkID{1}, []byte("header"), append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("group ciphertext encoding extended: got %v, want ErrMalformed", err)
	}
}

// sealedGroupBody seals "body" with a fresh group key in network {1}
// under the header "header"; it returns the key, the sealed bytes and
// their decoded wire form.
func sealedGroupBody(t *testing.T) (*GroupKey, []byte, groupWire) {
	t.Helper()
	g, err := NewGroupKey("all", 1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealWith(g, NetworkID{1}, []byte("header"), []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	var gw groupWire
	if err := unmarshalCanonical(sealed, &gw); err != nil {
		t.Fatal(err)
	}
	return g, sealed, gw
}

// TestOpenFailuresUniform: every way an envelope for this member fails to
// open gives the same error text, ErrTampered's, so a peer that submits
// envelopes learns nothing about which step failed. (ErrNotRecipient is
// another text: it says only what the clear recipient list says.) The same
// holds for group ciphertexts.
func TestOpenFailuresUniform(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	for name, err := range openFailures(t, id) {
		if err == nil || err.Error() != ErrTampered.Error() {
			t.Errorf("%s: got %q, want exactly %q", name, err, ErrTampered)
		}
	}

	g, sealed, gw := sealedGroupBody(t)
	reenc := func(f func(w *groupWire)) []byte {
		w := gw
		w.Ciphertext = bytes.Clone(gw.Ciphertext)
		w.Salt = bytes.Clone(gw.Salt)
		f(&w)
		b, err := marshal(&w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, tc := range map[string]struct {
		net    NetworkID
		aad, b []byte
	}{
		"flipped":         {NetworkID{1}, []byte("header"), reenc(func(w *groupWire) { w.Ciphertext[0] ^= 1 })},
		"extended":        {NetworkID{1}, []byte("header"), reenc(func(w *groupWire) { w.Ciphertext = append(w.Ciphertext, 0) })},
		"truncated":       {NetworkID{1}, []byte("header"), reenc(func(w *groupWire) { w.Ciphertext = w.Ciphertext[:len(w.Ciphertext)-1] })},
		"below the tag":   {NetworkID{1}, []byte("header"), reenc(func(w *groupWire) { w.Ciphertext = w.Ciphertext[:gcmTagSize-1] })},
		"salt":            {NetworkID{1}, []byte("header"), reenc(func(w *groupWire) { w.Salt[0] ^= 1 })},
		"other network":   {NetworkID{2}, []byte("header"), sealed},
		"other header":    {NetworkID{1}, []byte("headeR"), sealed},
		"header extended": {NetworkID{1}, []byte("header\x00"), sealed},
	} {
		_, err := OpenWith(g, tc.net, tc.aad, tc.b)
		if err == nil || err.Error() != ErrTampered.Error() {
			t.Errorf("group ciphertext, %s: got %q, want exactly %q", name, err, ErrTampered)
		}
	}
}

// TestKeyEnvelopeOpenFailuresUniform: a key envelope (format 2) that fails
// to open gives one text per class, whatever failed: every slot failure
// (another network, key ID or epoch, a damaged encapsulation, a zero
// X25519 share, a damaged wrapped key) says "not a recipient" alike, and
// every failure of the sealed payload says ErrTampered alike.
func TestKeyEnvelopeOpenFailuresUniform(t *testing.T) {
	a, b := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr")
	net := NetworkID{3}
	g, err := NewGroupKey("tlp-red/1", 4)
	if err != nil {
		t.Fatal(err)
	}
	ke := keyEnvelopeTo(t, net, g, a, b)
	if ke.w2 == nil {
		t.Fatal("NewKeyEnvelope did not write format 2")
	}
	damaged := func(f func(w *keyEnvelopeV2Wire)) *KeyEnvelope {
		w := *ke.w2
		w.KeyID = bytes.Clone(w.KeyID)
		w.Nonce, w.Ciphertext = bytes.Clone(w.Nonce), bytes.Clone(w.Ciphertext)
		w.Slots = slices.Clone(w.Slots)
		for i := range w.Slots {
			w.Slots[i].Enc, w.Slots[i].Wrapped = bytes.Clone(w.Slots[i].Enc), bytes.Clone(w.Slots[i].Wrapped)
		}
		f(&w)
		return &KeyEnvelope{version: ke.version, epoch: w.Epoch, keyID: KeyID(w.KeyID), w2: &w}
	}
	allSlots := func(f func(s *keySlot)) func(w *keyEnvelopeV2Wire) {
		return func(w *keyEnvelopeV2Wire) {
			for i := range w.Slots {
				f(&w.Slots[i])
			}
		}
	}
	classes := []struct {
		want  error
		cases map[string]*KeyEnvelope
		net   NetworkID
	}{
		{ErrNotRecipient, map[string]*KeyEnvelope{
			"other key ID": damaged(func(w *keyEnvelopeV2Wire) { w.KeyID[0] ^= 1 }),
			"other epoch":  damaged(func(w *keyEnvelopeV2Wire) { w.Epoch++ }),
			"ML-KEM part":  damaged(allSlots(func(s *keySlot) { s.Enc[0] ^= 1 })),
			"X25519 zero":  damaged(allSlots(func(s *keySlot) { clear(s.Enc[1088:]) })),
			"wrapped key":  damaged(allSlots(func(s *keySlot) { s.Wrapped[0] ^= 1 })),
		}, net},
		{ErrNotRecipient, map[string]*KeyEnvelope{"other network": ke}, NetworkID{4}},
		{ErrTampered, map[string]*KeyEnvelope{
			"ciphertext": damaged(func(w *keyEnvelopeV2Wire) { w.Ciphertext[0] ^= 1 }),
			"nonce":      damaged(func(w *keyEnvelopeV2Wire) { w.Nonce[0] ^= 1 }),
			"extended":   damaged(func(w *keyEnvelopeV2Wire) { w.Ciphertext = append(w.Ciphertext, 0) }),
		}, net},
	}
	texts := map[error]string{}
	for _, cl := range classes {
		for name, c := range cl.cases {
			parsed, err := ParseKeyEnvelope(c.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			_, err = a.OpenKeyEnvelope(cl.net, parsed)
			if !errors.Is(err, cl.want) {
				t.Errorf("%s: got %v, want %v", name, err, cl.want)
				continue
			}
			// The text names the envelope's clear epoch (public).
			got := strings.ReplaceAll(err.Error(), fmt.Sprintf("epoch %d", parsed.Epoch()), "epoch N")
			if w, ok := texts[cl.want]; !ok {
				texts[cl.want] = got
			} else if got != w {
				t.Errorf("%s: got %q, want %q as for the other failures of its class", name, got, w)
			}
		}
	}
}
