package log

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// provisional returns e carrying the provisional signature split off its
// composite, failing the test if it cannot.
func provisional(t testing.TB, e *Entry) *Entry {
	t.Helper()
	p, err := e.WithProvisional()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// encodedCover returns the encoded cover of e, which must carry its
// composite signature.
func encodedCover(t testing.TB, e *Entry) []byte {
	t.Helper()
	c, err := CoverOf(e)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withSig returns e carrying sig, failing the test if the size is wrong.
func withSig(t testing.TB, e *Entry, sig []byte) *Entry {
	t.Helper()
	w, err := e.WithSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// post200 builds, as lu's entry after seq 1 at a realistic Lamport clock,
// the 200-byte sitrep of the narrow-link target.
func post200(t testing.TB, n *net) *Entry {
	t.Helper()
	first := n.build(t, n.lu, Tip{}, n.msg("first"))
	d := Draft{Body: Body{Kind: KindSitrep, TLP: TLPAmber, Text: strings.Repeat("s", 200)}, Key: n.key}
	es, err := Build(n.lu, n.id, tipOf(first[0]), 1_000_000, t0, []Draft{d})
	if err != nil {
		t.Fatal(err)
	}
	return es[0]
}

// wireAllowance is what the narrow-link budget leaves, per entry, for the
// push path's framing (sync messages, streams, TLS records): the next step
// must measure it in the narrow-link scenario and keep it under this.
const wireAllowance = 20

// TestNarrowLinkArithmetic measures what a 200-byte post costs in the
// entry encoding, with each kind of signature, and shows that the default
// window keeps a post a second per author under 600 bytes per entry with
// its share of composite signatures, wireAllowance bytes left for the push
// path. The sizes are printed (go test -v -run NarrowLinkArithmetic).
func TestNarrowLinkArithmetic(t *testing.T) {
	n := newNet(t)
	e := post200(t, n)
	p := provisional(t, e)
	cb := encodedCover(t, e)
	b, err := e.Open(n.key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("200-byte sitrep: header %d B, body %d B plain, %d B sealed; entry unsigned %d B, provisional %d B, composite %d B; a cover %d B",
		len(e.HeaderBytes()), len(plain), len(e.BodyBytes()), e.Unsigned().Size(), p.Size(), e.Size(), len(cb))
	if got, want := p.Size()-e.Unsigned().Size(), crypto.ProvisionalSize+3; got != want {
		t.Errorf("a provisional signature adds %d bytes, want %d (64, the byte string's 2-byte head, the map key)", got, want)
	}
	w := DefaultWindow()
	avg, composites := narrowAverage(w, time.Second, 3600, p.Size(), e.Size(), len(cb))
	t.Logf("default window (%d entries or %v), a post a second for an hour: %d composites, %.1f B per post on average", w.Entries, w.Interval, composites, avg)
	if limit := float64(600 - wireAllowance); avg > limit {
		t.Errorf("%.1f B per post, want at most %.0f (600 minus %d for the push path)", avg, limit, wireAllowance)
	}
	for _, every := range []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute} {
		avg, _ := narrowAverage(w, every, 3600, p.Size(), e.Size(), len(cb))
		t.Logf("a post every %v: %.1f B per post on average", every, avg)
	}
}

// narrowAverage simulates an author posting every interval, posts times,
// under window w: each entry travels with a provisional signature (prov
// bytes) unless the window is due, then with its composite (signed bytes),
// which covers every entry before it; when time alone makes the window due
// before the next post, a cover (cover bytes) goes on its own. It returns
// the bytes per post and how many composites were sent.
func narrowAverage(w Window, every time.Duration, posts, prov, signed, cover int) (float64, int) {
	sent, composites, uncovered := 0, 0, 0
	var oldest time.Duration
	for i := range posts {
		now := time.Duration(i) * every
		if uncovered > 0 && w.Due(uncovered, now-oldest) {
			// The timer fired before this post (at oldest+Interval).
			sent += cover
			composites++
			uncovered = 0
		}
		if uncovered == 0 {
			oldest = now
		}
		uncovered++
		if w.Due(uncovered, now-oldest) {
			sent += signed
			composites++
			uncovered = 0
		} else {
			sent += prov
		}
	}
	return float64(sent) / float64(posts), composites
}

// An entry carrying a provisional signature decodes to the same entry,
// with one encoding; entries with a composite signature or none keep
// theirs byte for byte.
func TestProvisionalEntryEncoding(t *testing.T) {
	n := newNet(t)
	e := post200(t, n)
	p := provisional(t, e)
	if p.ID() != e.ID() || p.Signed() || !p.Provisional() || p.Signature() != nil || len(p.ProvisionalSignature()) != crypto.ProvisionalSize {
		t.Fatalf("provisional form: id same %v signed %v provisional %v", p.ID() == e.ID(), p.Signed(), p.Provisional())
	}
	if e.Provisional() || e.ProvisionalSignature() != nil || !e.Signed() {
		t.Fatal("a composite-signed entry reports itself provisional")
	}
	sig, err := crypto.ProvisionalOf(e.Signature())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.ProvisionalSignature(), sig) {
		t.Error("the provisional signature is not the Ed25519 half of the entry's composite")
	}
	for name, x := range map[string]*Entry{"composite": e, "provisional": p, "unsigned": e.Unsigned()} {
		d, err := Decode(x.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(d.Bytes(), x.Bytes()) || d.ID() != e.ID() || d.Signed() != x.Signed() || d.Provisional() != x.Provisional() {
			t.Errorf("%s: Decode(Bytes()) is not the same entry", name)
		}
		if again := encodeEntry(t, x.HeaderBytes(), x.BodyBytes(), x.sig); !bytes.Equal(again, x.Bytes()) {
			t.Errorf("%s: the wire form is not the entry's bytes", name)
		}
	}
	if u := p.Unsigned(); u.Provisional() || !bytes.Equal(u.Bytes(), e.Unsigned().Bytes()) {
		t.Error("Unsigned() of the provisional form keeps a signature")
	}
	back := withSig(t, p, e.Signature())
	if !bytes.Equal(back.Bytes(), e.Bytes()) {
		t.Error("the provisional form with its composite attached is not the signed entry byte for byte")
	}
	for _, size := range []int{1, crypto.ProvisionalSize - 1, crypto.ProvisionalSize + 1, crypto.SignatureSize - 1, crypto.SignatureSize + 1} {
		raw := encodeEntry(t, e.HeaderBytes(), e.BodyBytes(), make([]byte, size))
		if _, err := Decode(raw); ReasonOf(err) != ReasonBadSignature {
			t.Errorf("%d-byte signature: got %v, want %s", size, err, ReasonBadSignature)
		}
		if _, err := e.WithSignature(make([]byte, size)); ReasonOf(err) != ReasonBadSignature {
			t.Errorf("WithSignature of %d bytes: got %v, want %s", size, err, ReasonBadSignature)
		}
	}
	if _, err := e.Unsigned().WithProvisional(); err == nil {
		t.Error("WithProvisional of an unsigned entry: got nil error")
	}
	if _, err := p.WithProvisional(); err == nil {
		t.Error("WithProvisional of a provisional entry: got nil error")
	}
	roster := n.build(t, n.admin, Tip{}, Draft{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: []byte{0xa0}}})[0]
	if _, err := roster.WithProvisional(); err == nil {
		t.Error("WithProvisional of a system entry: got nil error")
	}
	if err := p.VerifySignature(n.lu.Card()); ReasonOf(err) != ReasonUnsignedTail {
		t.Errorf("VerifySignature of a provisional entry: got %v, want %s", err, ReasonUnsignedTail)
	}
	if err := p.VerifyProvisional(n.lu.Card()); err != nil {
		t.Errorf("VerifyProvisional: %v", err)
	}
	if err := e.VerifyProvisional(n.lu.Card()); ReasonOf(err) != ReasonBadSignature {
		t.Errorf("VerifyProvisional of a composite-signed entry: got %v, want %s", err, ReasonBadSignature)
	}
}

// classified runs Classify and CheckRun on run and checks that they agree
// on what is covered.
func classified(t *testing.T, n *net, head Head, run []*Entry) (covered, waiting int, err error) {
	t.Helper()
	covered, waiting, err = Classify(n.id, n.roster, head, run)
	k, cerr := CheckRun(n.id, n.roster, head, run)
	if k != covered {
		t.Errorf("CheckRun covers %d entries, Classify %d", k, covered)
	}
	if (cerr == nil) != (covered == len(run)) {
		t.Errorf("CheckRun error %v with %d of %d covered", cerr, covered, len(run))
	}
	if (err == nil) != (covered+waiting == len(run)) {
		t.Errorf("Classify error %v with %d covered and %d waiting of %d", err, covered, waiting, len(run))
	}
	return covered, waiting, err
}

// Every "cannot" of the narrow-link scheme (package documentation,
// "Narrow links"), on one author's feed.
func TestClassify(t *testing.T) {
	n := newNet(t)
	es := n.build(t, n.lu, Tip{}, n.msg("1"))
	es = append(es, n.build(t, n.lu, tipOf(es[0]), n.msg("2"))...)
	es = append(es, n.build(t, n.lu, tipOf(es[1]), n.msg("3"))...)
	e1, e2, e3 := es[0], es[1], es[2]
	p1, p2, p3 := provisional(t, e1), provisional(t, e2), provisional(t, e3)
	mlLen := crypto.SignatureSize - crypto.ProvisionalSize
	frSig, err := n.fr.Sign(crypto.ContextEntry, func() []byte { id := e1.ID(); return id[:] }())
	if err != nil {
		t.Fatal(err)
	}
	frHalf, _ := crypto.ProvisionalOf(frSig)
	zeroML := append(make([]byte, mlLen), p1.ProvisionalSignature()...)
	flipped := bytes.Clone(p1.ProvisionalSignature())
	flipped[40] ^= 1
	batch := n.build(t, n.lu, Tip{}, n.msg("b1"), n.msg("b2")) // b1 unsigned, b2 signed

	sysAdmin := n.build(t, n.admin, Tip{}, Draft{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: []byte{0xa0}}}, n.msg("after the roster entry"))
	sysSigned := n.build(t, n.admin, Tip{}, Draft{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: []byte{0xa0}}})[0]
	proposal := n.build(t, n.lu, Tip{}, Draft{Body: Body{Kind: KindProposal, TLP: TLPAmber, Payload: []byte{1}}, Key: n.key})[0]
	if proposal.Header.Priority != Control {
		t.Fatal("setup: Build wrote a proposal below control priority")
	}

	tests := []struct {
		name             string
		run              []*Entry
		covered, waiting int
		reason           Reason // "" for no error
	}{
		{"composite", []*Entry{e1}, 1, 0, ""},
		{"provisional alone waits", []*Entry{p1}, 0, 1, ""},
		{"provisional chain waits", []*Entry{p1, p2, p3}, 0, 3, ""},
		{"an unsigned entry waits for a provisional successor", []*Entry{batch[0], provisional(t, batch[1])}, 0, 2, ""},
		{"covered, then waiting", []*Entry{e1, p2}, 1, 1, ""},
		{"covered once a successor's composite arrives", []*Entry{p1, p2, e3}, 3, 0, ""},
		{"a composite in the middle covers what precedes it", []*Entry{p1, e2, p3}, 2, 1, ""},
		{"forged provisional (another member's half)", []*Entry{withSig(t, e1, frHalf)}, 0, 0, ReasonBadSignature},
		{"forged provisional (bit flipped)", []*Entry{withSig(t, e1, flipped)}, 0, 0, ReasonBadSignature},
		{"forged provisional under a covering successor", []*Entry{withSig(t, e1, flipped), e2}, 0, 0, ReasonBadSignature},
		{"composite stripped of its ML-DSA half waits, never covered", []*Entry{withSig(t, e1, e1.Signature()[mlLen:])}, 0, 1, ""},
		{"ML-DSA half zeroed is no composite", []*Entry{withSig(t, e1, zeroML)}, 0, 0, ReasonBadSignature},
		{"unsigned tail after waiting", []*Entry{p1, e2.Unsigned()}, 0, 1, ReasonUnsignedTail},
		{"provisional on a system kind (roster)", []*Entry{withSig(t, sysSigned, sysSigned.Signature()[mlLen:])}, 0, 0, ReasonProvisionalSystem},
		{"provisional on a system kind (sealed proposal)", []*Entry{provisionalAnyway(t, proposal)}, 0, 0, ReasonProvisionalSystem},
		{"a system entry never waits for a provisional successor", []*Entry{sysAdmin[0], provisional(t, sysAdmin[1])}, 0, 0, ReasonUnsignedTail},
		{"a system entry covered by its successor", sysAdmin, 2, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, w, err := classified(t, n, Head{}, tc.run)
			if c != tc.covered || w != tc.waiting || ReasonOf(err) != tc.reason {
				t.Errorf("got %d covered, %d waiting, %v; want %d, %d, reason %q", c, w, err, tc.covered, tc.waiting, tc.reason)
			}
		})
	}

	// A cover (the head's composite on its own) turns a waiting chain
	// into a covered one.
	got, err := DecodeCover(encodedCover(t, e2))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := got.Attach(p2)
	if err != nil {
		t.Fatal(err)
	}
	if c, w, err := classified(t, n, Head{}, []*Entry{p1, c2, p3}); c != 2 || w != 1 || err != nil {
		t.Errorf("after the cover of seq 2: %d covered, %d waiting, %v; want 2, 1, nil", c, w, err)
	}
	if _, err := got.Attach(p3); err == nil {
		t.Error("a cover attached to another entry: got nil error")
	}
	// A waiting run continues a covered head.
	if c, w, err := classified(t, n, headOf(e1), []*Entry{p2, p3}); c != 0 || w != 2 || err != nil {
		t.Errorf("waiting after a covered head: %d, %d, %v", c, w, err)
	}
}

// provisionalAnyway gives an entry at control priority the provisional
// signature split off its composite, as a forger or a careless relay
// would: WithProvisional refuses to.
func provisionalAnyway(t *testing.T, e *Entry) *Entry {
	t.Helper()
	half, err := crypto.ProvisionalOf(e.Signature())
	if err != nil {
		t.Fatal(err)
	}
	return withSig(t, e, half)
}

// Fork evidence counts only when both entries are covered: an adversary
// that forges Ed25519 alone cannot freeze an honest feed.
func TestProvesFork(t *testing.T) {
	n := newNet(t)
	a := n.build(t, n.lu, Tip{}, n.msg("branch a"))
	b := n.build(t, n.lu, Tip{}, n.msg("branch b"))
	b2 := n.build(t, n.lu, tipOf(b[0]), n.msg("b's successor"))
	for _, tc := range []struct {
		name string
		a, b []*Entry
		want bool
	}{
		{"both covered", a, b, true},
		{"one covered by its successor", a, []*Entry{b[0].Unsigned(), b2[0]}, true},
		{"one waiting", a, []*Entry{provisional(t, b[0])}, false},
		{"one waiting for a provisional successor", a, []*Entry{b[0].Unsigned(), provisional(t, b2[0])}, false},
		{"both waiting", []*Entry{provisional(t, a[0])}, []*Entry{provisional(t, b[0])}, false},
		{"one unsigned", a, []*Entry{b[0].Unsigned()}, false},
		{"the same entry", a, []*Entry{provisional(t, a[0])}, false},
		{"not at the next seq", a, b2, false},
	} {
		if got := ProvesFork(n.id, n.roster, Head{}, tc.a, tc.b); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if ProvesFork(n.id, n.roster, Head{Forked: true}, a, b) {
		t.Error("a fork past a frozen head counted")
	}
}

func TestWindow(t *testing.T) {
	w := DefaultWindow()
	if err := w.Validate(); err != nil {
		t.Fatalf("default window: %v", err)
	}
	err := Window{Entries: 0, Interval: 0, Grace: -1}.Validate()
	if !errors.Is(err, ErrWindow) || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("bad window: got %v, want three problems wrapping ErrWindow", err)
	}
	if err := (Window{Entries: MaxWaiting, Interval: time.Second}).Validate(); !errors.Is(err, ErrWindow) {
		t.Errorf("window over half of MaxWaiting: got %v", err)
	}
	for _, tc := range []struct {
		uncovered int
		oldest    time.Duration
		want      bool
	}{
		{0, time.Hour, false},
		{1, 0, false},
		{w.Entries - 1, w.Interval - 1, false},
		{w.Entries, 0, true},
		{1, w.Interval, true},
	} {
		if got := w.Due(tc.uncovered, tc.oldest); got != tc.want {
			t.Errorf("Due(%d, %v) = %v, want %v", tc.uncovered, tc.oldest, got, tc.want)
		}
	}
	limit := w.Interval + w.Grace
	for _, tc := range []struct {
		covered bool
		waited  time.Duration
		want    Status
	}{
		{true, time.Hour, Covered},
		{false, 0, Waiting},
		{false, limit, Waiting},
		{false, limit + 1, Overdue},
	} {
		if got := w.StatusOf(tc.covered, tc.waited); got != tc.want {
			t.Errorf("StatusOf(%v, %v) = %v, want %v", tc.covered, tc.waited, got, tc.want)
		}
	}
	for s, want := range map[Status]string{Covered: "covered", Waiting: "waiting", Overdue: "overdue", 0: "status(0)", 9: "status(9)"} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
}

// Flash and system entries travel with their composite; the rest may
// travel provisional.
func TestTravelsSigned(t *testing.T) {
	n := newNet(t)
	for _, p := range []struct {
		prio Priority
		want bool
	}{{Flash, true}, {Immediate, false}, {Routine, false}} {
		d := n.msg("x")
		d.Priority = p.prio
		if got := TravelsSigned(n.build(t, n.lu, Tip{}, d)[0]); got != p.want {
			t.Errorf("%v: got %v, want %v", p.prio, got, p.want)
		}
	}
	roster := n.build(t, n.admin, Tip{}, Draft{Body: Body{Kind: KindRoster, TLP: TLPClear, Payload: []byte{0xa0}}})[0]
	if !TravelsSigned(roster) {
		t.Error("a roster entry may travel provisional")
	}
}

func TestDecodeCoverRefusals(t *testing.T) {
	n := newNet(t)
	e := n.build(t, n.lu, Tip{}, n.msg("x"))[0]
	good := encodedCover(t, e)
	c, err := DecodeCover(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CoverOf(provisional(t, e)); err == nil {
		t.Error("CoverOf a provisional entry: got nil error")
	}
	if _, err := (Cover{ID: e.ID(), Sig: make([]byte, crypto.ProvisionalSize)}).Encode(); err == nil {
		t.Error("Encode of a cover with a provisional signature: got nil error")
	}
	enc := func(v any) []byte {
		b, err := crypto.MarshalCanonical(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, raw := range map[string][]byte{
		"empty":              nil,
		"truncated":          good[:len(good)-1],
		"appended":           append(bytes.Clone(good), 0),
		"short ID":           enc(&coverWire{ID: make([]byte, 31), Sig: c.Sig}),
		"provisional-sized":  enc(&coverWire{ID: c.ID[:], Sig: make([]byte, crypto.ProvisionalSize)}),
		"unknown field":      enc(map[uint64][]byte{1: c.ID[:], 2: c.Sig, 3: {1}}),
		"signature missing":  enc(map[uint64][]byte{1: c.ID[:]}),
		"not a map":          enc([]byte{1, 2, 3}),
		"composite too long": enc(&coverWire{ID: c.ID[:], Sig: make([]byte, crypto.SignatureSize+1)}),
	} {
		if _, err := DecodeCover(raw); ReasonOf(err) == "" {
			t.Errorf("%s: got %v, want an *InvalidError", name, err)
		}
	}
}

// A body of a system kind in an entry below control priority is not
// believed: validity holds only entries at control priority to a
// composite signature, and a sealed body's kind is opaque to validity.
func TestBelieveSystemKindOnlyAtControl(t *testing.T) {
	n := newNet(t)
	routine := n.build(t, n.lu, Tip{}, n.msg("x"))[0]
	proposal := n.build(t, n.lu, Tip{}, Draft{Body: Body{Kind: KindProposal, TLP: TLPAmber, Payload: []byte{1}}, Key: n.key})[0]
	for _, k := range []Kind{KindProposal, KindCheckpoint, KindKey, KindRoster} {
		err := Believe(routine, n.key, &Body{Kind: k, TLP: TLPAmber})
		var nb *NotBelievedError
		if !errors.As(err, &nb) || nb.Rule != BeliefSystemControl {
			t.Errorf("%s body at routine priority: got %v, want %s", k, err, BeliefSystemControl)
		}
	}
	if err := Believe(proposal, n.key, &Body{Kind: KindProposal, TLP: TLPAmber}); err != nil {
		t.Errorf("a proposal at control priority: %v", err)
	}
	if err := Believe(routine, n.key, &Body{Kind: KindMessage, TLP: TLPAmber}); err != nil {
		t.Errorf("a message at routine priority: %v", err)
	}
}
