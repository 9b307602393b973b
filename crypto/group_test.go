package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestGroupKeySealOpen(t *testing.T) {
	net := NetworkID{7}
	g, err := NewGroupKey("all", 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := SealWith(g, net, []byte("hdr"), []byte("sitrep"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := OpenWith(g, net, []byte("hdr"), ct)
	if err != nil || string(pt) != "sitrep" {
		t.Fatalf("got %q, %v", pt, err)
	}
	ct2, _ := SealWith(g, net, []byte("hdr"), []byte("sitrep"))
	if bytes.Equal(ct, ct2) {
		t.Error("two seals of the same message are equal: salt not fresh")
	}
	id, epoch, err := SealedKey(ct)
	if err != nil || id != g.ID() || epoch != 1 {
		t.Errorf("SealedKey: got %s %d %v, want %s 1", id, epoch, err, g.ID())
	}

	other, _ := NewGroupKey("all", 1)
	if _, err := OpenWith(other, net, []byte("hdr"), ct); !errors.Is(err, ErrWrongKey) {
		t.Errorf("other key: got %v, want ErrWrongKey", err)
	}
	if _, err := OpenWith(g, NetworkID{8}, []byte("hdr"), ct); !errors.Is(err, ErrTampered) {
		t.Errorf("other network: got %v, want ErrTampered", err)
	}
	if _, err := OpenWith(g, net, []byte("hdR"), ct); !errors.Is(err, ErrTampered) {
		t.Errorf("other aad: got %v, want ErrTampered", err)
	}
	w, _ := parseGroupCiphertext(ct)
	w.Ciphertext = w.Ciphertext[:len(w.Ciphertext)-1]
	trunc, _ := marshal(w)
	if _, err := OpenWith(g, net, []byte("hdr"), trunc); !errors.Is(err, ErrTampered) {
		t.Errorf("truncated: got %v, want ErrTampered", err)
	}
	if _, err := OpenWith(g, net, []byte("hdr"), ct[:len(ct)-3]); err == nil {
		t.Error("cut encoding: got nil error")
	}
}

func TestGroupKeyNames(t *testing.T) {
	for _, ok := range []string{"all", "tlp-red/42", "need-to-know.energy"} {
		if _, err := NewGroupKey(ok, 0); err != nil {
			t.Errorf("NewGroupKey(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "All", "a b", "x\x00y", string(bytes.Repeat([]byte("a"), 65))} {
		if _, err := NewGroupKey(bad, 0); err == nil {
			t.Errorf("NewGroupKey(%q): got nil error", bad)
		}
	}
}

func TestKeyEnvelope(t *testing.T) {
	a, b, c := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr"), newTestIdentity(t, "cert-de")
	net := NetworkID{3}
	g, _ := NewGroupKey("tlp-red/1", 4)
	ke := keyEnvelopeTo(t, net, g, a, b)
	ke2, err := ParseKeyEnvelope(ke.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ke2.Bytes(), ke.Bytes()) {
		t.Error("ParseKeyEnvelope(Bytes()).Bytes() differs")
	}
	got, err := b.OpenKeyEnvelope(net, ke2)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(g) {
		t.Error("opened group key differs from the sealed one")
	}
	if ke2.KeyID() != g.ID() {
		t.Errorf("KeyID() = %s, want %s", ke2.KeyID(), g.ID())
	}
	if got.Group() != "tlp-red/1" || got.Epoch() != 4 || got.ID() != g.ID() {
		t.Errorf("got %s/%d/%s", got.Group(), got.Epoch(), got.ID())
	}
	// A message sealed by a under g opens with b's copy.
	ct, _ := SealWith(g, net, nil, []byte("x"))
	if pt, err := OpenWith(got, net, nil, ct); err != nil || string(pt) != "x" {
		t.Errorf("OpenWith copy: %q %v", pt, err)
	}
	if _, err := c.OpenKeyEnvelope(net, ke); !errors.Is(err, ErrNotRecipient) {
		t.Errorf("non-member: got %v, want ErrNotRecipient", err)
	}
	// Presented for another network, or replayed for another epoch or key
	// ID: the clear labels change, the seal does not, so no slot opens (a
	// slot does not say whose it is, so this is "not a recipient").
	w := *ke.w2
	for name, re := range map[string]*KeyEnvelope{
		"other network": ke,
		"other epoch":   {version: keyEnvelopeV2, epoch: 5, keyID: ke.keyID, w2: &keyEnvelopeV2Wire{Version: 2, Epoch: 5, KeyID: w.KeyID, Slots: w.Slots, Nonce: w.Nonce, Ciphertext: w.Ciphertext}},
		"other key ID":  {version: keyEnvelopeV2, epoch: 4, keyID: KeyID{9}, w2: &keyEnvelopeV2Wire{Version: 2, Epoch: 4, KeyID: make([]byte, keyIDSize), Slots: w.Slots, Nonce: w.Nonce, Ciphertext: w.Ciphertext}},
	} {
		re2, err := ParseKeyEnvelope(re.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		network := net
		if name == "other network" {
			network = NetworkID{4}
		}
		if _, err := a.OpenKeyEnvelope(network, re2); !errors.Is(err, ErrNotRecipient) {
			t.Errorf("%s: got %v, want ErrNotRecipient", name, err)
		}
	}
}
