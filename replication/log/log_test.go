package log

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// net is a small test network: an admin and two CSIRTs, one group key.
type net struct {
	admin, lu, fr *crypto.Identity
	genesis       *crypto.Genesis
	id            crypto.NetworkID
	roster        *crypto.Roster
	key           *crypto.GroupKey
}

func newNet(t testing.TB) *net {
	t.Helper()
	n := &net{}
	var err error
	for _, p := range []struct {
		id   **crypto.Identity
		name string
	}{{&n.admin, "enisa"}, {&n.lu, "cert-lu"}, {&n.fr, "cert-fr"}} {
		if *p.id, err = crypto.NewIdentity(p.name, t0); err != nil {
			t.Fatal(err)
		}
	}
	n.genesis, err = crypto.NewGenesis(crypto.GenesisSpec{
		Network: "test", Created: t0,
		Members: []crypto.Member{
			{Card: n.admin.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}},
			{Card: n.lu.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
			{Card: n.fr.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
		},
		Voters: []crypto.MemberID{n.admin.ID()}, Admins: []crypto.MemberID{n.admin.ID()},
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	n.id, n.roster = n.genesis.NetworkID(), n.genesis.Roster()
	if n.key, err = crypto.NewGroupKey("all", 1); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *net) msg(text string) Draft {
	return Draft{Body: Body{Kind: KindMessage, TLP: TLPAmber, Text: text}, Key: n.key}
}

func (n *net) build(t testing.TB, who *crypto.Identity, tip Tip, drafts ...Draft) []*Entry {
	t.Helper()
	es, err := Build(who, n.id, tip, 0, t0, drafts)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func tipOf(e *Entry) Tip { return Tip{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport} }
func headOf(e *Entry) Head {
	return Head{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport}
}

func TestBuildDecodeOpen(t *testing.T) {
	n := newNet(t)
	es := n.build(t, n.lu, Tip{}, Draft{
		Body: Body{Kind: KindIncident, TLP: TLPAmber, Text: "ransomware at a hospital", RSITClass: "malicious-code",
			RSITType: "infected-system", Sectors: []string{"health"}, Impact: "red", Outlook: "worsening"},
		Priority: Flash, Key: n.key,
	})
	e := es[0]
	if !e.Signed() || e.Header.Seq != 1 || !e.Header.Prev.IsZero() || e.Header.Priority != Flash || e.Header.Lamport != 1 {
		t.Fatalf("header: %+v signed=%v", e.Header, e.Signed())
	}
	d, err := Decode(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if d.ID() != e.ID() || !bytes.Equal(d.Bytes(), e.Bytes()) {
		t.Error("Decode(Bytes()) differs")
	}
	b, err := d.Open(n.key)
	if err != nil {
		t.Fatal(err)
	}
	if b.Text != "ransomware at a hospital" || b.Sectors[0] != "health" {
		t.Errorf("body: %+v", b)
	}
	if _, err := d.Open(nil); err == nil {
		t.Error("Open without key: got nil error")
	}
	other, _ := crypto.NewGroupKey("all", 1)
	if _, err := d.Open(other); !errors.Is(err, crypto.ErrWrongKey) {
		t.Errorf("Open with another key: got %v", err)
	}
	if n, err := CheckRun(n.id, n.roster, Head{}, []*Entry{d}); n != 1 || err != nil {
		t.Errorf("CheckRun: %d, %v", n, err)
	}
	// The header is the associated data: a body moved under another
	// header does not open.
	es2 := n.build(t, n.lu, tipOf(e), n.msg("second"))
	swapped, _ := assemble(es2[0].Header, es2[0].header, e.body, nil)
	if _, err := swapped.Open(n.key); !errors.Is(err, crypto.ErrTampered) {
		t.Errorf("body under another header: got %v, want ErrTampered", err)
	}
}

func TestBatchSignsLast(t *testing.T) {
	n := newNet(t)
	drafts := make([]Draft, 100)
	for i := range drafts {
		drafts[i] = n.msg(strings.Repeat("x", 1024))
	}
	es := n.build(t, n.lu, Tip{}, drafts...)
	signed, total, unsignedTotal := 0, 0, 0
	for i, e := range es {
		if e.Signed() {
			signed++
		}
		if e.Header.Seq != uint64(i+1) || (i > 0 && e.Header.Prev != es[i-1].ID()) {
			t.Fatalf("entry %d does not chain", i)
		}
		total += e.Size()
		unsignedTotal += e.Unsigned().Size()
	}
	if signed != 1 || !es[99].Signed() {
		t.Fatalf("got %d signed entries, want only the last", signed)
	}
	perEntry := float64(total-unsignedTotal) / 100
	t.Logf("signature overhead: %.1f bytes/entry over a 100-entry burst", perEntry)
	if perEntry > 64 {
		t.Errorf("signature overhead %.1f bytes/entry, want ≤ 64", perEntry)
	}
	if k, err := CheckRun(n.id, n.roster, Head{}, es); k != 100 || err != nil {
		t.Errorf("CheckRun(batch): %d, %v", k, err)
	}
	// Without its signed last entry, the batch is an unsigned tail.
	k, err := CheckRun(n.id, n.roster, Head{}, es[:99])
	if k != 0 || ReasonOf(err) != ReasonUnsignedTail {
		t.Errorf("CheckRun(unsigned tail): %d, %v", k, err)
	}
}

func TestCheckRunReasons(t *testing.T) {
	n := newNet(t)
	first := n.build(t, n.lu, Tip{}, n.msg("1"), n.msg("2"))
	head := headOf(first[1])
	next := func(d ...Draft) []*Entry { return n.build(t, n.lu, tipOf(first[1]), d...) }
	good := next(n.msg("3"))[0]

	otherNet := *n
	otherNet.id = crypto.NetworkID{9}
	wrongNet := otherNet.build(t, n.lu, tipOf(first[1]), n.msg("3"))[0]

	outsider, _ := crypto.NewIdentity("cert-xx", t0)
	unknown := n.build(t, outsider, Tip{}, n.msg("hi"))[0]

	gap := n.build(t, n.lu, Tip{Seq: 3, ID: good.ID(), Lamport: good.Header.Lamport}, n.msg("5"))[0]
	badPrev := n.build(t, n.lu, Tip{Seq: 2, ID: Hash{1}, Lamport: head.Lamport}, n.msg("3"))[0]
	lowLamport := n.build(t, n.lu, Tip{Seq: 2, ID: head.ID, Lamport: 0}, n.msg("3"))[0]

	frSig, _ := n.fr.Sign(crypto.ContextEntry, good.id[:])
	badSig, _ := assemble(good.Header, good.header, good.body, frSig)
	flipped := bytes.Clone(good.sig)
	flipped[100] ^= 1
	flippedSig, _ := assemble(good.Header, good.header, good.body, flipped)

	// A plain message: hand-built, as no honest Build makes one.
	h := good.Header
	h.KeyID, h.Epoch, h.Priority = crypto.KeyID{}, 0, Control
	hw := h.wire()
	hb, _ := crypto.MarshalCanonical(&hw)
	bb, _ := (&Body{Kind: KindMessage, TLP: TLPClear, Text: "in clear"}).Encode()
	plainID := entryID(hb, bb)
	plainSig, _ := n.lu.Sign(crypto.ContextEntry, plainID[:])
	plainMsg, _ := assemble(h, hb, bb, plainSig)

	tests := []struct {
		name string
		head Head
		run  []*Entry
		want Reason
	}{
		{"wrong network", head, []*Entry{wrongNet}, ReasonWrongNetwork},
		{"unknown author", Head{}, []*Entry{unknown}, ReasonUnknownAuthor},
		{"gap", head, []*Entry{gap}, ReasonGap},
		{"duplicate seq", head, []*Entry{first[1]}, ReasonDuplicateSeq},
		{"bad prev", head, []*Entry{badPrev}, ReasonBadPrev},
		{"lamport not greater", head, []*Entry{lowLamport}, ReasonLamport},
		{"signature by another member", head, []*Entry{badSig}, ReasonBadSignature},
		{"flipped signature", head, []*Entry{flippedSig}, ReasonBadSignature},
		{"unsigned tail", head, []*Entry{good.Unsigned()}, ReasonUnsignedTail},
		{"forked author", Head{Seq: 2, ID: head.ID, Lamport: head.Lamport, Forked: true}, []*Entry{good}, ReasonForked},
		{"plain message", head, []*Entry{plainMsg}, ReasonPlainKind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := CheckRun(n.id, n.roster, tc.head, tc.run)
			if k != 0 || ReasonOf(err) != tc.want {
				t.Errorf("got %d valid, %v; want 0 valid, reason %s", k, err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
	if k, err := CheckRun(n.id, n.roster, head, []*Entry{good}); k != 1 || err != nil {
		t.Errorf("good entry: %d, %v", k, err)
	}
	_, err := CheckRun(n.id, n.roster, Head{Seq: 2, Forked: true}, []*Entry{good})
	if !errors.Is(err, ErrForked) {
		t.Errorf("forked: got %v, want ErrForked", err)
	}
}

func TestRevocationKeepsEarlierEntries(t *testing.T) {
	n := newNet(t)
	es := n.build(t, n.lu, Tip{}, n.msg("1"), n.msg("2"))
	u, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{
		Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "laptop stolen", Created: t0,
		FeedSeq: 2, FeedHead: es[1].ID(),
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := n.roster.Apply(u)
	if err != nil {
		t.Fatal(err)
	}
	// Entries up to the kept head stay valid, in any order of learning.
	if k, err := CheckRun(n.id, revoked, Head{}, es); k != 2 || err != nil {
		t.Errorf("kept entries: %d, %v", k, err)
	}
	after := n.build(t, n.lu, tipOf(es[1]), n.msg("3"))
	if _, err := CheckRun(n.id, revoked, headOf(es[1]), after); ReasonOf(err) != ReasonRevokedAuthor {
		t.Errorf("entry after revocation: got %v, want revoked-author", err)
	}
	// Another entry at the kept seq (a fork made after revocation) is refused.
	alt := n.build(t, n.lu, tipOf(es[0]), n.msg("2'"))
	if _, err := CheckRun(n.id, revoked, headOf(es[0]), alt); ReasonOf(err) != ReasonRevokedAuthor {
		t.Errorf("other entry at kept seq: got %v, want revoked-author", err)
	}
}

func TestDecodeRefusals(t *testing.T) {
	n := newNet(t)
	e := n.build(t, n.lu, Tip{}, n.msg("x"))[0]
	var w entryWire
	if err := crypto.UnmarshalCanonical(e.Bytes(), &w); err != nil {
		t.Fatal(err)
	}
	refs := make([]Hash, MaxRefs+1)
	for i := range refs {
		refs[i] = Hash{byte(i)}
	}
	h := e.Header
	h.Refs = refs
	hw := h.wire()
	hb, _ := crypto.MarshalCanonical(&hw)
	tooMany, _ := crypto.MarshalCanonical(&entryWire{Header: hb, Body: w.Body})
	h = e.Header
	h.Version = 2
	hw = h.wire()
	hb, _ = crypto.MarshalCanonical(&hw)
	v2, _ := crypto.MarshalCanonical(&entryWire{Header: hb, Body: w.Body})

	// Non-canonical: byte-string lengths in a longer form than needed.
	var buf bytes.Buffer
	buf.WriteByte(0xa3)           // map of 3
	buf.Write([]byte{0x01})       // key 1
	writeBstrLong(&buf, w.Header) // header as a 4-byte-length bstr
	buf.Write([]byte{0x02})       // key 2
	writeBstrLong(&buf, w.Body)   //
	buf.Write([]byte{0x03})       // key 3
	writeBstrLong(&buf, w.Sig)    //
	nonCanon := buf.Bytes()

	tests := []struct {
		name string
		b    []byte
		want Reason
	}{
		{"empty", nil, ReasonMalformed},
		{"truncated", e.Bytes()[:len(e.Bytes())-1], ReasonMalformed},
		{"trailing byte", append(bytes.Clone(e.Bytes()), 0), ReasonMalformed},
		{"non-canonical", nonCanon, ReasonNonCanonical},
		{"too many refs", tooMany, ReasonTooManyRefs},
		{"unknown version", v2, ReasonMalformed},
		{"oversize", make([]byte, MaxEntrySize+1), ReasonOversize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.b); ReasonOf(err) != tc.want {
				t.Errorf("got %v, want reason %s", err, tc.want)
			}
		})
	}
}

func writeBstrLong(buf *bytes.Buffer, b []byte) {
	buf.WriteByte(0x5a) // byte string, 4-byte length
	buf.Write([]byte{byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))})
	buf.Write(b)
}

func TestBuildRefusals(t *testing.T) {
	n := newNet(t)
	red, _ := crypto.NewGroupKey(RecipientGroup([]crypto.MemberID{n.lu.ID(), n.fr.ID()}), 1)
	ntk, _ := crypto.NewGroupKey("need-to-know/1", 1)
	tests := []struct {
		name  string
		draft Draft
	}{
		{"unknown TLP", Draft{Body: Body{Kind: KindMessage, TLP: "purple"}, Key: n.key}},
		{"TLP 1.0 white", Draft{Body: Body{Kind: KindMessage, TLP: "white"}, Key: n.key}},
		{"unknown kind", Draft{Body: Body{Kind: "gossip", TLP: TLPClear}, Key: n.key}},
		{"RSIT type of another class", Draft{Body: Body{Kind: KindIncident, TLP: TLPClear, RSITClass: "fraud", RSITType: "ddos"}, Key: n.key}},
		{"unknown RSIT class", Draft{Body: Body{Kind: KindIncident, TLP: TLPClear, RSITClass: "aliens"}, Key: n.key}},
		{"unknown NIS2 sector", Draft{Body: Body{Kind: KindIncident, TLP: TLPClear, Sectors: []string{"tourism"}}, Key: n.key}},
		{"unknown impact", Draft{Body: Body{Kind: KindIncident, TLP: TLPClear, Impact: "purple"}, Key: n.key}},
		{"unknown outlook", Draft{Body: Body{Kind: KindIncident, TLP: TLPClear, Outlook: "sunny"}, Key: n.key}},
		{"sealed kind without key", Draft{Body: Body{Kind: KindMessage, TLP: TLPClear}}},
		{"plain kind with key", Draft{Body: Body{Kind: KindRoster, TLP: TLPClear}, Key: n.key}},
		{"TLP:RED to the whole network", Draft{Body: Body{Kind: KindMessage, TLP: TLPRed}, Key: n.key}},
		{"TLP:RED to a need-to-know group", Draft{Body: Body{Kind: KindMessage, TLP: TLPRed}, Key: ntk}},
		{"too many refs", Draft{Body: Body{Kind: KindMessage, TLP: TLPClear}, Key: n.key, Refs: make([]Hash, MaxRefs+1)}},
		{"oversize", Draft{Body: Body{Kind: KindMessage, TLP: TLPClear, Text: strings.Repeat("x", MaxEntrySize)}, Key: n.key}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(n.lu, n.id, Tip{}, 0, t0, []Draft{tc.draft}); err == nil {
				t.Error("got nil error")
			}
		})
	}
	if _, err := Build(n.lu, n.id, Tip{}, 0, t0, []Draft{{Body: Body{Kind: KindMessage, TLP: TLPRed}, Key: red}}); err != nil {
		t.Errorf("TLP:RED to an explicit group: %v", err)
	}
	if _, err := Build(n.lu, n.id, Tip{}, 0, t0, nil); err == nil {
		t.Error("no drafts: got nil error")
	}
	es, err := Build(n.admin, n.id, Tip{}, 0, t0, []Draft{{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: []byte{1}}}})
	if err != nil || !es[0].Header.Plain() || es[0].Header.Priority != Control {
		t.Errorf("plain roster entry: %v plain=%v prio=%v", err, es[0].Header.Plain(), es[0].Header.Priority)
	}
	if b, err := es[0].Open(nil); err != nil || b.Kind != KindRoster {
		t.Errorf("open plain entry without a key: %v", err)
	}
}

// Display order is the same whatever order entries are held in, and the
// digest does not depend on the order heads are added.
func TestOrderAndDigest(t *testing.T) {
	n := newNet(t)
	var all []*Entry
	tips := map[*crypto.Identity]Tip{}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	var maxLamport uint64
	for i := 0; i < 30; i++ {
		who := []*crypto.Identity{n.lu, n.fr, n.admin}[r.IntN(3)]
		es, err := Build(who, n.id, tips[who], maxLamport*uint64(r.IntN(2)), t0, []Draft{n.msg("m")})
		if err != nil {
			t.Fatal(err)
		}
		tips[who] = tipOf(es[0])
		maxLamport = max(maxLamport, es[0].Header.Lamport)
		all = append(all, es...)
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b *Entry) int { ka, kb := a.Order(), b.Order(); return bytes.Compare(ka[:], kb[:]) })
	shuffled := slices.Clone(all)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	slices.SortFunc(shuffled, func(a, b *Entry) int { ka, kb := a.Order(), b.Order(); return bytes.Compare(ka[:], kb[:]) })
	for i := range sorted {
		if sorted[i] != shuffled[i] {
			t.Fatal("display order depends on the order entries are held in")
		}
		if i > 0 && !Less(sorted[i-1], sorted[i]) {
			t.Fatal("Less disagrees with OrderKey")
		}
	}
	f := Frontier{}
	var d Digest
	for _, e := range all {
		old, had := f[e.Header.Author]
		f[e.Header.Author] = headOf(e)
		d.Move(e.Header.Author, old, had, headOf(e))
	}
	if d != f.Digest() {
		t.Error("incremental digest differs from the full digest")
	}
	g := f.Clone()
	lu := g[n.lu.ID()]
	lu.Forked = true
	g[n.lu.ID()] = lu
	if g.Digest() == f.Digest() {
		t.Error("a fork does not change the digest")
	}
	if m := g.Missing(f); len(m) != 1 {
		t.Errorf("Missing: got %v, want the forked author", m)
	}
	delete(g, n.fr.ID())
	if m := f.Missing(g); m[n.fr.ID()] != 0 || len(m) != 1 {
		t.Errorf("Missing: got %v", m)
	}
	var empty Digest
	if (Frontier{}).Digest() != empty {
		t.Error("empty frontier digest is not zero")
	}
}

// Digest arithmetic is modulo 2^256, with carries and borrows across the
// 64-bit words, and Sub undoes Add.
func TestDigestArithmetic(t *testing.T) {
	one := [32]byte{31: 1}
	var ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	wordCarry := [32]byte{23: 1} // 2^64
	lowWord := [32]byte{24: 0xff, 25: 0xff, 26: 0xff, 27: 0xff, 28: 0xff, 29: 0xff, 30: 0xff, 31: 0xff}
	for _, tc := range []struct {
		name      string
		start     Digest
		add, want [32]byte
	}{
		{"zero plus one", Digest{}, one, one},
		{"all ones plus one wraps to zero", Digest(ones), one, [32]byte{}},
		{"a full low word carries into the next", Digest(lowWord), one, wordCarry},
	} {
		d := tc.start
		d.Add(tc.add)
		if d != Digest(tc.want) {
			t.Errorf("%s: Add gives %x, want %x", tc.name, d, tc.want)
		}
		d.Sub(tc.add)
		if d != tc.start {
			t.Errorf("%s: Sub after Add gives %x, want %x", tc.name, d, tc.start)
		}
	}
	var d Digest
	d.Sub(one)
	if d != Digest(ones) {
		t.Errorf("zero minus one gives %x, want all ones", d)
	}
}

func TestBridgedRoundTrip(t *testing.T) {
	b := &Bridged{Via: "matrix", Sender: "@alice:example.org", Event: "$ev1", Room: "!room:example.org"}
	raw, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBridged(raw)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *b {
		t.Errorf("got %+v, want %+v", got, b)
	}
	if _, err := (&Bridged{Via: "matrix"}).Encode(); !errors.Is(err, ErrBridged) {
		t.Errorf("no sender or event: got %v, want ErrBridged", err)
	}
	if _, err := DecodeBridged([]byte("junk")); !errors.Is(err, ErrBridged) {
		t.Errorf("junk: got %v, want ErrBridged", err)
	}
}
