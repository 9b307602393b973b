package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCardRoundTrip(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	c := id.Card()
	if c.Name() != "cert-lu" || c.ID() != id.ID() || c.PeerID() != id.PeerID() || !c.Created().Equal(testTime) {
		t.Errorf("card fields: got %s %s %s %v", c.Name(), c.ID().Short(), c.PeerID(), c.Created())
	}
	c2, err := ParseCard(c.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Equal(c) {
		t.Error("ParseCard(Bytes()) differs")
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var c3 Card
	if err := json.Unmarshal(j, &c3); err != nil {
		t.Fatal(err)
	}
	if !c3.Equal(c) {
		t.Error("card JSON round trip differs")
	}
	for _, field := range []string{`"member_id"`, `"peer_id"`, `"name":"cert-lu"`, `"signature_suite":"id-MLDSA65-Ed25519-SHA512"`} {
		if !bytes.Contains(j, []byte(field)) {
			t.Errorf("card JSON lacks %s: %s", field, j)
		}
	}
}

func TestCardJSONEdited(t *testing.T) {
	id, other := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-fr")
	j, _ := json.Marshal(id.Card())
	var m map[string]any
	_ = json.Unmarshal(j, &m)
	edits := map[string]func(){
		"name":      func() { m["name"] = "cert-fr" },
		"member_id": func() { m["member_id"] = other.ID().String() },
		"peer_id":   func() { m["peer_id"] = other.PeerID().String() },
		"card":      func() { m["card"] = "!!!" },
	}
	for field, edit := range edits {
		orig := m[field]
		edit()
		b, _ := json.Marshal(m)
		var c Card
		if err := json.Unmarshal(b, &c); err == nil {
			t.Errorf("edited %s: got nil error", field)
		}
		m[field] = orig
	}
}

func TestCardForged(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	var w signedWire
	if err := unmarshalCanonical(id.Card().Bytes(), &w); err != nil {
		t.Fatal(err)
	}
	var body cardBody
	_ = unmarshalCanonical(w.Body, &body)
	body.Name = "cert-fr" // claim another name under the same signature
	w.Body, _ = marshal(&body)
	forged, _ := marshal(&w)
	if _, err := ParseCard(forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("renamed card: got %v, want ErrBadSignature", err)
	}
	for _, bad := range []string{"", "a", "Cert-LU", "cert lu", "-cert", "1cert", strings.Repeat("a", 64)} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q): got nil error", bad)
		}
	}
	if _, err := NewIdentity("Bad Name", testTime); err == nil {
		t.Error("NewIdentity with a bad name: got nil error")
	}
}

// The cards of a genesis are the members' own, byte for byte.
func TestGenesisKeepsCards(t *testing.T) {
	admin, m := newTestIdentity(t, "enisa"), newTestIdentity(t, "cert-lu")
	g := testNetwork(t, admin, m)
	got, ok := g.Roster().Member(m.ID())
	if !ok || !got.Card.Equal(m.Card()) {
		t.Fatalf("member card in genesis differs or missing (found=%v)", ok)
	}
}
