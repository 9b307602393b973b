package crypto

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// keyEnvelopeTo seals g in network net to exactly the members ids, in
// that order.
func keyEnvelopeTo(t *testing.T, net NetworkID, g *GroupKey, ids ...*Identity) *KeyEnvelope {
	t.Helper()
	var rs []Recipient
	for _, id := range ids {
		rs = append(rs, id.Card().Recipient())
	}
	ke, err := NewKeyEnvelope(net, g, rs)
	if err != nil {
		t.Fatal(err)
	}
	return ke
}

// A format-2 key envelope names neither its group nor its recipients in
// clear; each recipient learns both by opening its own slot.
func TestKeyEnvelopeHidesRecipients(t *testing.T) {
	a, b, c := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr"), newTestIdentity(t, "cert-de")
	net := NetworkID{3}
	g, _ := NewGroupKey("to/0123456789abcdef", 7)
	ke := keyEnvelopeTo(t, net, g, b, a)
	raw := ke.Bytes()
	aID, bID := a.ID(), b.ID()
	for what, secret := range map[string][]byte{"a's member ID": aID[:], "b's member ID": bID[:], "the group name": []byte("0123456789abcdef")} {
		if bytes.Contains(raw, secret) {
			t.Errorf("the envelope holds %s in clear", what)
		}
	}
	parsed, err := ParseKeyEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Version() != 2 || parsed.Slots() != 2 || parsed.Epoch() != 7 || parsed.KeyID() != g.ID() {
		t.Errorf("clear part: version %d, %d slots, epoch %d, key %s", parsed.Version(), parsed.Slots(), parsed.Epoch(), parsed.KeyID())
	}
	want := []MemberID{aID, bID}
	slices.SortFunc(want, func(x, y MemberID) int { return bytes.Compare(x[:], y[:]) })
	for _, id := range []*Identity{a, b} {
		gr, err := id.OpenGrant(net, parsed)
		if err != nil {
			t.Fatalf("%s: %v", id.Name(), err)
		}
		if !gr.Key.Equal(g) || !slices.Equal(gr.Members, want) {
			t.Errorf("%s: got group %q members %v", id.Name(), gr.Key.Group(), gr.Members)
		}
	}
	if _, err := c.OpenGrant(net, parsed); !errors.Is(err, ErrNotRecipient) {
		t.Errorf("non-member: got %v, want ErrNotRecipient", err)
	}
	// Any slot changed, dropped or added (a copy of another's) makes the
	// sealed payload fail for everyone.
	mutate := func(f func(w *keyEnvelopeV2Wire)) *KeyEnvelope {
		w := *ke.w2
		w.Slots = slices.Clone(w.Slots)
		f(&w)
		return &KeyEnvelope{version: keyEnvelopeV2, epoch: w.Epoch, keyID: ke.keyID, w2: &w}
	}
	for name, re := range map[string]*KeyEnvelope{
		"slot dropped":  mutate(func(w *keyEnvelopeV2Wire) { w.Slots = w.Slots[:1] }),
		"slot changed":  mutate(func(w *keyEnvelopeV2Wire) { w.Slots[1].Wrapped = bytes.Repeat([]byte{1}, wrappedKeySize) }),
		"payload flips": mutate(func(w *keyEnvelopeV2Wire) { w.Ciphertext = append([]byte{w.Ciphertext[0] ^ 1}, w.Ciphertext[1:]...) }),
	} {
		for _, id := range []*Identity{a, b} {
			_, err := id.OpenGrant(net, re)
			if err == nil {
				t.Errorf("%s: %s opened it", name, id.Name())
			} else if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrNotRecipient) {
				t.Errorf("%s: %s got %v", name, id.Name(), err)
			}
		}
	}
}

// Format-1 envelopes (group and recipients in clear), which existing stores
// hold, still parse, re-encode to the same bytes and open.
func TestKeyEnvelopeFormat1StillOpens(t *testing.T) {
	a, b := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr")
	net := NetworkID{3}
	g, _ := NewGroupKey("need-to-know/x", 2)
	// Written as the code before format 2 wrote it.
	payload := append(append([]byte{}, g.id[:]...), g.secret[:]...)
	env, err := Seal(net, keyPurpose(g.group, g.epoch), []Recipient{a.Card().Recipient(), b.Card().Recipient()}, nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := marshal(&keyEnvelopeWire{Group: g.group, Epoch: g.epoch, Envelope: env.Bytes(), KeyID: g.id[:]})
	if err != nil {
		t.Fatal(err)
	}
	ke, err := ParseKeyEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ke.Bytes(), raw) || ke.Version() != 1 || ke.Slots() != 2 {
		t.Fatalf("format 1: version %d, %d slots, same bytes %v", ke.Version(), ke.Slots(), bytes.Equal(ke.Bytes(), raw))
	}
	gr, err := b.OpenGrant(net, ke)
	if err != nil {
		t.Fatal(err)
	}
	if !gr.Key.Equal(g) || len(gr.Members) != 2 {
		t.Errorf("format 1 grant: group %q, %d members", gr.Key.Group(), len(gr.Members))
	}
}

// BenchmarkOpenGrantNotRecipient is the cost a node pays for a format-2
// key envelope of 30 recipients it is not among: it tries every slot.
func BenchmarkOpenGrantNotRecipient(b *testing.B) {
	var rs []Recipient
	for range 30 {
		rs = append(rs, newTestIdentity(b, "cert-xx").Card().Recipient())
	}
	g, _ := NewGroupKey("all", 1)
	ke, err := NewKeyEnvelope(NetworkID{1}, g, rs)
	if err != nil {
		b.Fatal(err)
	}
	other := newTestIdentity(b, "cert-yy")
	for b.Loop() {
		if _, err := other.OpenGrant(NetworkID{1}, ke); !errors.Is(err, ErrNotRecipient) {
			b.Fatal(err)
		}
	}
}
