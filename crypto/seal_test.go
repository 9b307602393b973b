package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	a, b, c := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr"), newTestIdentity(t, "cert-de")
	net := NetworkID{1}
	aad := []byte("header")
	pt := []byte("TLP:RED sitrep")
	env, err := Seal(net, "entry-body", []Recipient{b.Card().Recipient(), a.Card().Recipient()}, aad, pt)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*Identity{a, b} {
		got, err := id.Open(net, "entry-body", env, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: got %q, %v; want %q", id.Name(), got, err, pt)
		}
	}
	if _, err := c.Open(net, "entry-body", env, aad); !errors.Is(err, ErrNotRecipient) {
		t.Errorf("non-recipient: got %v, want ErrNotRecipient", err)
	}
	// Through its encoding.
	env2, err := ParseEnvelope(env.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(env2.Bytes(), env.Bytes()) {
		t.Error("ParseEnvelope(Bytes()).Bytes() differs")
	}
	if got, err := a.Open(net, "entry-body", env2, aad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("after round trip: got %q, %v", got, err)
	}
	if got := env.Recipients(); len(got) != 2 {
		t.Errorf("got %d recipients, want 2", len(got))
	}
}

func TestSealTampered(t *testing.T) {
	a := newTestIdentity(t, "cert-lu")
	net := NetworkID{1}
	env, err := Seal(net, "entry-body", []Recipient{a.Card().Recipient()}, []byte("aad"), []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(w *envelopeWire)) *Envelope {
		w := env.w
		w.Recipients = append([]stanza(nil), env.w.Recipients...)
		f(&w)
		return &Envelope{w: w}
	}
	tests := []struct {
		name    string
		env     *Envelope
		net     NetworkID
		purpose string
		aad     []byte
	}{
		{"wrong network ID", env, NetworkID{2}, "entry-body", []byte("aad")},
		{"wrong purpose", env, net, "group-key", []byte("aad")},
		{"wrong aad", env, net, "entry-body", []byte("aab")},
		{"truncated ciphertext", tamper(func(w *envelopeWire) { w.Ciphertext = w.Ciphertext[:len(w.Ciphertext)-1] }), net, "entry-body", []byte("aad")},
		{"flipped ciphertext", tamper(func(w *envelopeWire) {
			w.Ciphertext = bytes.Clone(w.Ciphertext)
			w.Ciphertext[0] ^= 1
		}), net, "entry-body", []byte("aad")},
		{"flipped wrapped key", tamper(func(w *envelopeWire) {
			s := w.Recipients[0]
			s.Wrapped = bytes.Clone(s.Wrapped)
			s.Wrapped[3] ^= 1
			w.Recipients[0] = s
		}), net, "entry-body", []byte("aad")},
		{"flipped encapsulation", tamper(func(w *envelopeWire) {
			s := w.Recipients[0]
			s.Enc = bytes.Clone(s.Enc)
			s.Enc[1119] ^= 1
			w.Recipients[0] = s
		}), net, "entry-body", []byte("aad")},
		{"other key ID", tamper(func(w *envelopeWire) { w.KeyID = make([]byte, keyIDSize) }), net, "entry-body", []byte("aad")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Open(tc.net, tc.purpose, tc.env, tc.aad); !errors.Is(err, ErrTampered) {
				t.Errorf("got %v, want ErrTampered", err)
			}
		})
	}
}

func TestSealRefusals(t *testing.T) {
	a := newTestIdentity(t, "cert-lu")
	r := a.Card().Recipient()
	if _, err := Seal(NetworkID{}, "p", nil, nil, nil); err == nil {
		t.Error("no recipients: got nil error")
	}
	if _, err := Seal(NetworkID{}, "p", []Recipient{r, r}, nil, nil); err == nil {
		t.Error("duplicate recipient: got nil error")
	}
	if _, err := Seal(NetworkID{}, "", []Recipient{r}, nil, nil); err == nil {
		t.Error("empty purpose: got nil error")
	}
	if _, err := Seal(NetworkID{}, "p", []Recipient{{ID: r.ID}}, nil, nil); err == nil {
		t.Error("recipient without key: got nil error")
	}
}

func TestParseEnvelopeStrict(t *testing.T) {
	a, b := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr")
	env, err := Seal(NetworkID{}, "p", []Recipient{a.Card().Recipient(), b.Card().Recipient()}, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	enc := func(w envelopeWire) []byte {
		raw, err := marshal(&w)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	unsorted := env.w
	unsorted.Recipients = []stanza{env.w.Recipients[1], env.w.Recipients[0]}
	dup := env.w
	dup.Recipients = []stanza{env.w.Recipients[0], env.w.Recipients[0]}
	suite := env.w
	suite.Suite = "seal-chacha"
	short := env.w
	short.Nonce = short.Nonce[:8]
	raw := env.Bytes()
	for name, b := range map[string][]byte{
		"unsorted recipients":  enc(unsorted),
		"duplicate recipients": enc(dup),
		"unknown suite":        enc(suite),
		"short nonce":          enc(short),
		"trailing byte":        append(bytes.Clone(raw), 0),
		"truncated":            raw[:len(raw)-1],
		"empty":                nil,
	} {
		if _, err := ParseEnvelope(b); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}
