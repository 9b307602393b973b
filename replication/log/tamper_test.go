package log

import (
	"bytes"
	"errors"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
)

// Tests that a signed entry cannot be edited, relabelled or re-read in
// another way: whatever a relay changes in the header or body, the entry is
// refused, and an entry naming a suite this build does not know is refused
// even when its author signed it.

// encodeEntry encodes header, body and signature as an entry, the way a
// peer would send it.
func encodeEntry(t *testing.T, header, body, sig []byte) []byte {
	t.Helper()
	b, err := crypto.MarshalCanonical(&entryWire{Header: header, Body: body, Sig: sig})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editHeader returns e's header bytes with the wire header changed by f.
func editHeader(t *testing.T, e *Entry, f func(w *headerWire)) []byte {
	t.Helper()
	var w headerWire
	if err := crypto.UnmarshalCanonical(e.header, &w); err != nil {
		t.Fatal(err)
	}
	f(&w)
	b, err := crypto.MarshalCanonical(&w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signAs returns a signature by who over the ID of header and body.
func signAs(t *testing.T, who *crypto.Identity, header, body []byte) []byte {
	t.Helper()
	id := entryID(header, body)
	sig, err := who.Sign(crypto.ContextEntry, id[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// verdict decodes raw and checks it as the continuation of head: the error
// of whichever refuses it first, nil if both accept.
func verdict(n *net, head Head, raw []byte, before ...*Entry) error {
	e, err := Decode(raw)
	if err != nil {
		return err
	}
	if _, err := CheckRun(n.id, n.roster, head, append(before, e)); err != nil {
		return err
	}
	return nil
}

// TestEntryUnknownSuiteRefused: an entry of an unknown suite or format
// version is refused when decoded, also when its author signed exactly
// those bytes.
func TestEntryUnknownSuiteRefused(t *testing.T) {
	n := newNet(t)
	e := n.build(t, n.lu, Tip{}, n.msg("x"))[0]
	for name, f := range map[string]func(w *headerWire){
		"suite 0":   func(w *headerWire) { w.Suite = 0 },
		"suite 2":   func(w *headerWire) { w.Suite = SuiteV1 + 1 },
		"suite max": func(w *headerWire) { w.Suite = ^uint(0) },
		"version 2": func(w *headerWire) { w.Version = FormatVersion + 1 },
	} {
		t.Run(name, func(t *testing.T) {
			hb := editHeader(t, e, f)
			raw := encodeEntry(t, hb, e.body, signAs(t, n.lu, hb, e.body))
			if err := verdict(n, Head{}, raw); ReasonOf(err) != ReasonMalformed {
				t.Errorf("got %v, want reason %s", err, ReasonMalformed)
			}
		})
	}
	if err := verdict(n, Head{}, e.Bytes()); err != nil {
		t.Fatalf("the unedited entry: %v", err)
	}
}

// TestSignedEntryEditsRefused: changing the Lamport clock, suite, epoch,
// priority, time or TLP label of a signed entry, keeping its signature, is
// refused; so is an edit of an unsigned entry that a signed successor
// vouches for.
func TestSignedEntryEditsRefused(t *testing.T) {
	n := newNet(t)
	sealed := n.build(t, n.lu, Tip{}, n.msg("amber"))[0]
	ke, err := crypto.NewKeyEnvelope(n.id, n.key, []crypto.Recipient{n.lu.Card().Recipient(), n.fr.Card().Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	plain := n.build(t, n.admin, Tip{}, Draft{Body: Body{Kind: KindKey, TLP: TLPClear, Payload: ke.Bytes()}})[0]
	batch := n.build(t, n.fr, Tip{}, n.msg("b1"), n.msg("b2"))

	header := func(e *Entry, f func(w *headerWire)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return encodeEntry(t, editHeader(t, e, f), e.body, e.sig) }
	}
	// relabel re-encodes e's body with another TLP label: in clear for a
	// plain entry; for a sealed one, as a holder of the group key would,
	// re-sealed under the same header.
	relabel := func(e *Entry, tlp TLP) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			b, err := e.Open(n.key)
			if err != nil {
				t.Fatal(err)
			}
			b.TLP = tlp
			body, err := b.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !e.Header.Plain() {
				if body, err = crypto.SealWith(n.key, n.id, e.header, body); err != nil {
					t.Fatal(err)
				}
			}
			return encodeEntry(t, e.header, body, e.sig)
		}
	}
	tests := []struct {
		name   string
		head   Head
		before []*Entry
		raw    func(t *testing.T) []byte
		want   Reason
	}{
		{"lamport +1", Head{}, nil, header(sealed, func(w *headerWire) { w.Lamport++ }), ReasonBadSignature},
		{"lamport to the limit", Head{}, nil, header(sealed, func(w *headerWire) { w.Lamport = MaxLamport - 1 }), ReasonBadSignature},
		{"suite", Head{}, nil, header(sealed, func(w *headerWire) { w.Suite = SuiteV1 + 1 }), ReasonMalformed},
		{"epoch", Head{}, nil, header(sealed, func(w *headerWire) { w.Epoch++ }), ReasonBadSignature},
		{"priority", Head{}, nil, header(sealed, func(w *headerWire) { w.Priority = uint8(Flash) }), ReasonBadSignature},
		{"time", Head{}, nil, header(sealed, func(w *headerWire) { w.Time-- }), ReasonBadSignature},
		{"TLP of a sealed body, amber to clear", Head{}, nil, relabel(sealed, TLPClear), ReasonBadSignature},
		{"TLP of a sealed body, amber to red", Head{}, nil, relabel(sealed, TLPRed), ReasonBadSignature},
		{"TLP of a plain body, clear to red", Head{}, nil, relabel(plain, TLPRed), ReasonBadSignature},
		{"TLP of a plain body, clear to green", Head{}, nil, relabel(plain, TLPGreen), ReasonBadSignature},
		{"lamport of an unsigned entry vouched for by its successor", Head{}, nil, func(t *testing.T) []byte {
			return encodeEntry(t, editHeader(t, batch[0], func(w *headerWire) { w.Lamport++ }), batch[0].body, nil)
		}, ReasonBadPrev},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw(t)
			var err error
			if tc.want == ReasonBadPrev {
				// The edited first entry, then the untouched signed second.
				var first *Entry
				if first, err = Decode(raw); err == nil {
					_, err = CheckRun(n.id, n.roster, tc.head, []*Entry{first, batch[1]})
				}
			} else {
				err = verdict(n, tc.head, raw, tc.before...)
			}
			if ReasonOf(err) != tc.want {
				t.Errorf("got %v, want reason %s", err, tc.want)
			}
		})
	}
	for _, e := range []*Entry{sealed, plain} {
		if err := verdict(n, Head{}, e.Bytes()); err != nil {
			t.Fatalf("unedited entry: %v", err)
		}
	}
	if _, err := CheckRun(n.id, n.roster, Head{}, batch); err != nil {
		t.Fatalf("unedited batch: %v", err)
	}
	// The epoch is also bound into the seal: the edited header does not
	// open under the key, whatever the signature.
	edited := editHeader(t, sealed, func(w *headerWire) { w.Epoch++ })
	if _, err := crypto.OpenWith(n.key, n.id, edited, sealed.body); !errors.Is(err, crypto.ErrTampered) && !errors.Is(err, crypto.ErrWrongKey) {
		t.Errorf("body under the header with another epoch: got %v, want a refusal", err)
	}
}

// dupTLPBody is a body whose map carries the TLP key (2) twice: "clear",
// then "red". Which one a lax decoder kept would decide who may read it.
func dupTLPBody(kind Kind) []byte {
	var b bytes.Buffer
	b.WriteByte(0xa3) // map of 3 pairs
	b.WriteByte(0x01) // kind
	b.WriteByte(0x60 | byte(len(kind)))
	b.WriteString(string(kind))
	b.WriteByte(0x02) // tlp
	b.WriteByte(0x65)
	b.WriteString("clear")
	b.WriteByte(0x02) // tlp again
	b.WriteByte(0x63)
	b.WriteString("red")
	return b.Bytes()
}

// TestEntryDuplicateTLPRefused: a body with two TLP values (a duplicate CBOR
// map key) is refused, whoever signed it: a plain entry fails CheckRun; a
// sealed one (whose body no relay can read) fails to open, so it is never
// shown. A header with a duplicate key is refused when decoded.
func TestEntryDuplicateTLPRefused(t *testing.T) {
	n := newNet(t)
	if _, err := DecodeBody(dupTLPBody(KindMessage)); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("DecodeBody: got %v, want crypto.ErrMalformed", err)
	}

	// Plain: a key entry, hand-built and signed by its author.
	tmpl := n.build(t, n.admin, Tip{}, Draft{Body: Body{Kind: KindKey, TLP: TLPClear, Payload: []byte{0xa0}}})[0]
	body := dupTLPBody(KindKey)
	raw := encodeEntry(t, tmpl.header, body, signAs(t, n.admin, tmpl.header, body))
	if err := verdict(n, Head{}, raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("plain entry with two TLP values: got %v, want a refusal", err)
	}

	// Sealed: a message whose plaintext has two TLP values, signed.
	tmpl = n.build(t, n.lu, Tip{}, n.msg("x"))[0]
	sealedBody, err := crypto.SealWith(n.key, n.id, tmpl.header, dupTLPBody(KindMessage))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Decode(encodeEntry(t, tmpl.header, sealedBody, signAs(t, n.lu, tmpl.header, sealedBody)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Open(n.key); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("sealed entry with two TLP values: Open got %v, want crypto.ErrMalformed", err)
	}

	// Header: two Lamport values (key 7 twice), the second larger.
	var hw headerWire
	if err := crypto.UnmarshalCanonical(tmpl.header, &hw); err != nil {
		t.Fatal(err)
	}
	dupHeader := dupKey(t, tmpl.header, 7, hw.Lamport+1000)
	if err := verdict(n, Head{}, encodeEntry(t, dupHeader, tmpl.body, signAs(t, n.lu, dupHeader, tmpl.body))); ReasonOf(err) != ReasonMalformed {
		t.Errorf("header with two Lamport values: got %v, want reason %s", err, ReasonMalformed)
	}
}

// dupKey returns the canonical CBOR map m (fewer than 24 pairs, small
// integer keys) with one more pair key: v inserted right after the pair
// with that key.
func dupKey(t *testing.T, m []byte, key byte, v uint64) []byte {
	t.Helper()
	var pairs map[uint64]any
	if err := crypto.UnmarshalCanonical(m, &pairs); err != nil {
		t.Fatal(err)
	}
	if len(pairs) >= 23 || m[0] != 0xa0|byte(len(pairs)) {
		t.Fatalf("dupKey: unexpected map header %#x", m[0])
	}
	extra, err := crypto.MarshalCanonical(map[uint64]uint64{uint64(key): v})
	if err != nil {
		t.Fatal(err)
	}
	pair := extra[1:] // drop the one-pair map header
	// Find the pair after key by re-encoding the prefix of pairs up to key.
	prefix := map[uint64]any{}
	for k, val := range pairs {
		if k <= uint64(key) {
			prefix[k] = val
		}
	}
	pb, err := crypto.MarshalCanonical(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pb[1:], m[1:len(pb)]) {
		t.Fatal("dupKey: the prefix does not re-encode to the same bytes")
	}
	out := []byte{m[0] + 1}
	out = append(out, m[1:len(pb)]...)
	out = append(out, pair...)
	return append(out, m[len(pb):]...)
}
