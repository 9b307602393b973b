package log

import (
	"bytes"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
)

// Fuzz targets for the decoders of this package (STYLE.md §12): an entry
// (with a composite signature, a provisional one or none), a body and a
// cover. Both must never panic, and what they accept must
// encode back to exactly the input, so the bytes stored and sent are the
// bytes signed.
//
// Identities, the roster and the seed entries are made once per target,
// outside the fuzz function; an iteration costs a decode and, for entries
// whose author is a member, one signature check. Run one target at a time:
//
//	go test ./replication/log/ -run '^$' -fuzz '^FuzzDecode$' -fuzztime 60s -parallel 2
//	go test ./replication/log/ -run '^$' -fuzz '^FuzzDecodeBody$' -fuzztime 60s -parallel 2
//	go test ./replication/log/ -run '^$' -fuzz '^FuzzDecodeCover$' -fuzztime 60s -parallel 2

// fuzzEntries builds real entries of every shape Decode must read: a signed
// incident with every taxonomy field and an attachment, a three-entry batch
// (two unsigned members, signed last), an entry with refs, a plain roster
// entry and a plain key entry carrying a real key envelope.
func fuzzEntries(tb testing.TB, n *net) []*Entry {
	tb.Helper()
	incident := n.build(tb, n.lu, Tip{}, Draft{
		Body: Body{
			Kind: KindIncident, TLP: TLPAmberStrict, Text: "ransomware at a hospital",
			RSITClass: "malicious-code", RSITType: "infected-system", Sectors: []string{"health", "energy"},
			Impact: "red", Outlook: "worsening", Exercise: true,
			Attachments: []Attachment{{Name: "ioc.csv", MediaType: "text/csv", Size: 12, SHA256: make([]byte, 32)}},
		},
		Priority: Flash, Key: n.key,
	})
	batch := n.build(tb, n.lu, tipOf(incident[0]), n.msg("b1"), n.msg("b2"), n.msg("b3"))
	withRefs := n.msg("ack of the incident and the batch")
	withRefs.Body.Kind = KindAck
	withRefs.Refs = []Hash{incident[0].ID(), batch[2].ID()}
	refs := n.build(tb, n.fr, Tip{}, withRefs)
	roster := n.build(tb, n.admin, Tip{}, Draft{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: []byte{0xa0}}})
	ke, err := crypto.NewKeyEnvelope(n.id, n.key, []crypto.Recipient{n.lu.Card().Recipient(), n.fr.Card().Recipient()})
	if err != nil {
		tb.Fatal(err)
	}
	key := n.build(tb, n.admin, tipOf(roster[0]), Draft{Body: Body{Kind: KindKey, TLP: TLPClear, Payload: ke.Bytes()}})
	all := append(incident, batch...)
	all = append(all, refs...)
	all = append(all, roster...)
	return append(all, key...)
}

// addMutants adds b, the empty input, two truncations and three copies of b
// with one bit flipped (first, middle and last byte).
func addMutants(f *testing.F, b []byte) {
	f.Add(bytes.Clone(b))
	f.Add(bytes.Clone(b[:len(b)/2]))
	f.Add(bytes.Clone(b[:len(b)-1]))
	for _, i := range []int{0, len(b) / 2, len(b) - 1} {
		m := bytes.Clone(b)
		m[i] ^= 0x01
		f.Add(m)
	}
}

func FuzzDecode(f *testing.F) {
	n := newNet(f)
	seeds := fuzzEntries(f, n)
	signed := map[Hash]bool{} // IDs that carry a real signature
	f.Add([]byte{})
	for _, e := range seeds {
		addMutants(f, e.Bytes())
		if e.Signed() {
			signed[e.ID()] = true
			addMutants(f, e.Unsigned().Bytes())
			if p, err := e.WithProvisional(); err == nil {
				addMutants(f, p.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("Decode error %v is not an *InvalidError", err)
			}
			return
		}
		if !bytes.Equal(e.Bytes(), in) {
			t.Fatalf("Bytes() differs from the decoded input (%d vs %d bytes)", len(e.Bytes()), len(in))
		}
		again, err := Decode(e.Bytes())
		if err != nil || again.ID() != e.ID() || again.Signed() != e.Signed() {
			t.Fatalf("Decode(Bytes()) = %v; want the same entry", err)
		}
		// The header fields describe the header bytes exactly.
		hw := e.Header.wire()
		hb, err := crypto.MarshalCanonical(&hw)
		if err != nil || !bytes.Equal(hb, e.HeaderBytes()) {
			t.Fatalf("the decoded header does not encode back to the header bytes (%v)", err)
		}
		h := e.Header
		if h.Seq == 0 || len(h.Refs) > MaxRefs || h.Priority > Routine || e.Size() > MaxEntrySize {
			t.Fatalf("Decode accepted a header out of its limits: %+v", h)
		}
		if e.Signed() && len(e.Signature()) != crypto.SignatureSize {
			t.Fatalf("Decode accepted a %d-byte signature", len(e.Signature()))
		}
		if e.Signed() == e.Provisional() && e.sig != nil {
			t.Fatalf("Decode accepted a %d-byte signature that is neither composite nor provisional", len(e.sig))
		}
		// Stripping the signature keeps the ID and gives a decodable entry.
		u := e.Unsigned()
		if u.ID() != e.ID() || u.Signed() {
			t.Fatal("Unsigned() changed the ID or kept the signature")
		}
		if _, err := Decode(u.Bytes()); err != nil {
			t.Fatalf("Decode(Unsigned().Bytes()): %v", err)
		}
		// Nothing but a seed's own signature makes an entry valid, or
		// even waiting; a provisional signature never makes it covered.
		if k, _ := CheckRun(n.id, n.roster, Head{}, []*Entry{e}); k != 0 && !signed[e.ID()] {
			t.Fatalf("CheckRun accepted entry %s that no member signed", e.ID().Short())
		}
		c, w, _ := Classify(n.id, n.roster, Head{}, []*Entry{e})
		if (c != 0 || w != 0) && !signed[e.ID()] {
			t.Fatalf("Classify: entry %s that no member signed is %d covered, %d waiting", e.ID().Short(), c, w)
		}
		if c != 0 && !e.Signed() {
			t.Fatalf("Classify: entry %s without a composite signature is covered", e.ID().Short())
		}
		if h.Plain() {
			_, _ = e.Open(nil)
		} else {
			_, _ = e.Open(n.key)
		}
		_ = e.Order()
	})
}

func FuzzDecodeBody(f *testing.F) {
	n := newNet(f)
	f.Add([]byte{})
	for _, e := range fuzzEntries(f, n) {
		var b *Body
		var err error
		if e.Header.Plain() {
			b, err = e.Open(nil)
		} else {
			b, err = e.Open(n.key)
		}
		if err != nil {
			f.Fatal(err)
		}
		raw, err := crypto.MarshalCanonical(b)
		if err != nil {
			f.Fatal(err)
		}
		addMutants(f, raw)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := DecodeBody(in)
		if err != nil {
			return
		}
		out, err := crypto.MarshalCanonical(b)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("DecodeBody→MarshalCanonical changed the bytes (%d vs %d bytes)", len(out), len(in))
		}
		if enc, err := b.Encode(); err != nil || !bytes.Equal(enc, in) {
			t.Fatalf("Encode of an accepted body: %v", err)
		}
	})
}

func FuzzDecodeCover(f *testing.F) {
	n := newNet(f)
	f.Add([]byte{})
	for _, e := range fuzzEntries(f, n) {
		if c, err := CoverOf(e); err == nil {
			raw, err := c.Encode()
			if err != nil {
				f.Fatal(err)
			}
			addMutants(f, raw)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := DecodeCover(in)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("DecodeCover error %v is not an *InvalidError", err)
			}
			return
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode of an accepted cover: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("DecodeCover→Encode changed the bytes (%d vs %d bytes)", len(out), len(in))
		}
	})
}
