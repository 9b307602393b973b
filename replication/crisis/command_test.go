package crisis

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
)

func TestSignedRoundTrip(t *testing.T) {
	t.Parallel()
	c := cast(t)
	cmd := Command{
		ID: newID(), Kind: KindReserveRequest, Crisis: newID(), Sector: "health",
		Services: []string{"incident response", "forensics"}, Note: "hospital network\nward 3",
	}
	sc, err := Sign(c.ids["cert-lu"], c.network, cmd)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSigned(sc.Bytes())
	if err != nil {
		t.Fatalf("ParseSigned(Bytes()): %v", err)
	}
	if string(back.Bytes()) != string(sc.Bytes()) {
		t.Error("bytes differ after a round trip")
	}
	if got := back.Command(); !reflect.DeepEqual(got, cmd) {
		t.Errorf("Command() = %+v, want %+v", got, cmd)
	}
	if back.ID() != cmd.ID || back.Signer() != c.ids["cert-lu"].ID() || back.Network() != c.network {
		t.Error("accessors do not return what was signed")
	}
	// Command returns a copy.
	got := back.Command()
	got.Services[0] = "scribbled"
	if back.Command().Services[0] != "incident response" {
		t.Error("Command() shares memory with the signed command")
	}
}

func TestParseSignedRefuses(t *testing.T) {
	t.Parallel()
	c := cast(t)
	sc := c.sign(t, "cert-lu", Command{Kind: KindOpen, Title: "t", Level: 1})
	good := sc.Bytes()
	bodyWith := func(change func(*commandBody)) []byte {
		b := sc.dec
		change(&b)
		body, err := marshal(&b)
		if err != nil {
			t.Fatal(err)
		}
		return signedBytes(t, body, sc.sig)
	}
	zeroCrisisPresent := func() []byte {
		// A zero crisis ID written out instead of left out: same value,
		// second encoding.
		var m map[int]any
		if err := decMode.Unmarshal(sc.body, &m); err != nil {
			t.Fatal(err)
		}
		inner := m[4].(map[any]any)
		inner[uint64(3)] = make([]byte, 16)
		body, err := encMode.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return signedBytes(t, body, sc.sig)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, crypto.ErrMalformed},
		{"truncated", good[:len(good)-1], crypto.ErrMalformed},
		{"trailing byte", append(slices.Clone(good), 0), crypto.ErrMalformed},
		{"not canonical", nonCanonical(t, good), crypto.ErrNonCanonical},
		{"unknown field", withExtraField(t, good), crypto.ErrMalformed},
		{"too big", make([]byte, maxCommandSize+1), crypto.ErrMalformed},
		{"other suite", bodyWith(func(b *commandBody) { b.Suite = "crisismesh-command-v0" }), crypto.ErrMalformed},
		{"zero crisis written out", zeroCrisisPresent(), crypto.ErrNonCanonical},
		{"indefinite length", append([]byte{0xbf}, append(good[1:], 0xff)...), crypto.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseSigned(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("ParseSigned = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignNeedsIdentity(t *testing.T) {
	if _, err := Sign(nil, crypto.NetworkID{}, Command{ID: newID(), Kind: KindOpen, Title: "t", Level: 1}); err == nil {
		t.Error("Sign(nil identity) succeeded")
	}
}

// TestKindsHaveFields keeps Kinds, kindFields and apply in step.
func TestKindsHaveFields(t *testing.T) {
	kinds := Kinds()
	if len(kinds) != len(kindFields) {
		t.Errorf("Kinds() has %d kinds, kindFields %d", len(kinds), len(kindFields))
	}
	for _, k := range kinds {
		if _, ok := kindFields[k]; !ok {
			t.Errorf("kind %s has no field set", k)
		}
	}
}

func TestEnums(t *testing.T) {
	textRoundTrip(t, "mode", ModeNone, ModeMonitoring, ModeInfoSharing, ModeFull)
	textRoundTrip(t, "phase", PhasePreparedness, PhaseDetection, PhaseResponse, PhaseRecovery)
	if _, err := ParseMode("partial"); err == nil {
		t.Error(`ParseMode("partial") succeeded`)
	}
	if _, err := Mode(9).MarshalText(); err == nil {
		t.Error("Mode(9).MarshalText succeeded")
	}
	if got := LevelLargeScale.String(); got != "level 3 (large-scale incident)" {
		t.Errorf("LevelLargeScale.String() = %q", got)
	}
	id := newID()
	var back ID
	if err := back.UnmarshalText([]byte(id.String())); err != nil || back != id {
		t.Errorf("ID text round trip: %s, %v", back, err)
	}
	if _, err := ParseID("xyz"); err == nil {
		t.Error(`ParseID("xyz") succeeded`)
	}
}

// textRoundTrip checks that each of vs, the values of an enumeration
// named what, comes back unchanged from its text form.
func textRoundTrip[T interface {
	comparable
	fmt.Stringer
	encoding.TextMarshaler
}, PT interface {
	*T
	encoding.TextUnmarshaler
}](t *testing.T, what string, vs ...T) {
	t.Helper()
	for _, v := range vs {
		b, err := v.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back T
		if err := PT(&back).UnmarshalText(b); err != nil || back != v {
			t.Errorf("%s %s: text round trip gave %s, %v", what, v, back, err)
		}
	}
}

func TestTaxonomy(t *testing.T) {
	for _, tt := range []struct {
		name  string
		terms []Term
		n     int
		has   string
	}{
		{"sectors", Sectors(), 18, "digital-infrastructure"},
		{"severities", Severities(), 4, "red"},
		{"outlooks", Outlooks(), 3, "worsening"},
		{"root causes", RootCauses(), 5, "third-party-failures"},
		{"member states", MemberStates(), 27, "GR"},
	} {
		if len(tt.terms) != tt.n {
			t.Errorf("%s: %d terms, want %d", tt.name, len(tt.terms), tt.n)
		}
		if !slices.ContainsFunc(tt.terms, func(x Term) bool { return x.Value == tt.has && x.Label != "" }) {
			t.Errorf("%s: no labelled term %q", tt.name, tt.has)
		}
	}
	ms := MemberStates()
	if !slices.IsSortedFunc(ms, func(a, b Term) int { return strings.Compare(a.Value, b.Value) }) {
		t.Error("member states are not sorted by code")
	}
	if _, err := parseTaxonomy([]byte(`{"namespace":"rsit","values":[]}`)); err == nil {
		t.Error("a taxonomy other than nis2 was accepted")
	}
}
