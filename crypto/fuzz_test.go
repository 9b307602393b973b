package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// Fuzz targets, one per decoder (STYLE.md §12). The property is the same for
// each: the decoder never panics, and bytes it accepts encode back to exactly
// themselves, so the bytes stored are the bytes signed. A refusal must also be
// one of the error classes the package documents, so callers can test for it.
//
// Keys are made once per target, outside the fuzz function, so an iteration
// costs only the decode (plus signature checks where the decoder does them).
// The seeds are real encodings and a few damaged copies of each; run as unit
// tests they take well under a second, also under -race.
//
// Run one target at a time, e.g.:
//
//	go test ./crypto/ -run '^$' -fuzz '^FuzzParseCard$' -fuzztime 60s -parallel 2 -fuzzminimizetime 1s
//
// Keep -fuzzminimizetime short: fuzzing stops while a new input is minimized
// (60 s by default), and minimizing a 5–20 KB card or genesis, each try
// checking a signature, takes most of a 60 s run. Results: BENCHMARKS.md.

// fuzzSeeds adds the empty input and, for each valid encoding, the encoding
// itself, two truncations and three copies with one bit flipped (first,
// middle and last byte).
func fuzzSeeds(f *testing.F, valid ...[]byte) {
	f.Helper()
	f.Add([]byte{})
	for _, v := range valid {
		f.Add(bytes.Clone(v))
		f.Add(bytes.Clone(v[:len(v)/2]))
		f.Add(bytes.Clone(v[:len(v)-1]))
		for _, i := range []int{0, len(v) / 2, len(v) - 1} {
			m := bytes.Clone(v)
			m[i] ^= 0x01
			f.Add(m)
		}
	}
}

// fuzzCheckSame fails unless decode→encode gave back the input.
func fuzzCheckSame(t *testing.T, what string, in, out []byte) {
	t.Helper()
	if bytes.Equal(in, out) {
		return
	}
	i := 0
	for i < len(in) && i < len(out) && in[i] == out[i] {
		i++
	}
	t.Fatalf("%s: decode→encode changed the bytes: in %d bytes, out %d bytes, first difference at offset %d", what, len(in), len(out), i)
}

// fuzzCheckClass fails unless err is one of the documented classes.
func fuzzCheckClass(t *testing.T, what string, err error, classes ...error) {
	t.Helper()
	for _, c := range classes {
		if errors.Is(err, c) {
			return
		}
	}
	t.Fatalf("%s: error %q is none of the documented classes %v", what, err, classes)
}

// fuzzNetwork is admin (admin+cyclone), alice and bob (csirt) and the genesis
// that lists them.
func fuzzNetwork(f *testing.F) (admin, alice, bob *Identity, g *Genesis) {
	f.Helper()
	admin = newTestIdentity(f, "admin")
	alice = newTestIdentity(f, "alice")
	bob = newTestIdentity(f, "bob")
	return admin, alice, bob, testNetwork(f, admin, alice, bob)
}

func FuzzParseCard(f *testing.F) {
	alice := newTestIdentity(f, "alice")
	bob := newTestIdentity(f, "bob-the-second-member")
	fuzzSeeds(f, alice.Card().Bytes(), bob.Card().Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCard(b)
		if err != nil {
			fuzzCheckClass(t, "ParseCard", err, ErrMalformed, ErrNonCanonical, ErrBadKey, ErrBadSignature)
			return
		}
		fuzzCheckSame(t, "card", b, c.Bytes())
	})
}

// FuzzCardJSON fuzzes the card file members exchange (not a canonical
// encoding, so the property is weaker): UnmarshalJSON never panics, a card
// it accepts is the one its signed "card" field holds, and writing it out
// and reading it back gives the same card.
func FuzzCardJSON(f *testing.F) {
	alice := newTestIdentity(f, "alice")
	good, err := json.Marshal(alice.Card())
	if err != nil {
		f.Fatalf("MarshalJSON: %v", err)
	}
	edited := bytes.Replace(good, []byte(`"name":"alice"`), []byte(`"name":"alicf"`), 1)
	minimal := fmt.Appendf(nil, `{"card":%q}`, base64.StdEncoding.EncodeToString(alice.Card().Bytes()))
	fuzzSeeds(f, good, edited, minimal)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Card
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		if again, err := ParseCard(c.Bytes()); err != nil || !again.Equal(&c) {
			t.Fatalf("UnmarshalJSON accepted a card that ParseCard does not give back: %v", err)
		}
		out, err := json.Marshal(&c)
		if err != nil {
			t.Fatalf("MarshalJSON of an accepted card: %v", err)
		}
		var back Card
		if err := json.Unmarshal(out, &back); err != nil || !back.Equal(&c) {
			t.Fatalf("card file written and read back is not the same card: %v", err)
		}
	})
}

func FuzzParseGenesis(f *testing.F) {
	admin, alice, bob, g := fuzzNetwork(f)
	// A second genesis with address hints, so the fuzzer also reaches the
	// multiaddr parser (addresses are checked before the signature).
	spec := GenesisSpec{
		Network: "fuzz.net_2", Created: testTime, Admins: []MemberID{admin.ID()},
		Voters: []MemberID{admin.ID(), alice.ID(), bob.ID()},
		Members: []Member{
			{Card: admin.Card(), Roles: []Role{RoleAdmin}, Addrs: []string{"/ip4/192.0.2.1/udp/4001/quic-v1"}},
			{Card: alice.Card(), Roles: []Role{RoleCSIRT, RoleObserver}, Addrs: []string{"/dns4/alice.example/tcp/4001", "/ip6/2001:db8::1/tcp/4001"}},
			{Card: bob.Card(), Roles: []Role{RolePresidency}},
		},
	}
	g2, err := NewGenesis(spec, admin)
	if err != nil {
		f.Fatalf("NewGenesis: %v", err)
	}
	fuzzSeeds(f, g.Bytes(), g2.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGenesis(b)
		if err != nil {
			fuzzCheckClass(t, "ParseGenesis", err, ErrMalformed, ErrNonCanonical, ErrBadKey, ErrBadSignature, ErrRule)
			return
		}
		fuzzCheckSame(t, "genesis", b, g.Bytes())
	})
}

func FuzzParseUpdate(f *testing.F) {
	admin, alice, _, g := fuzzNetwork(f)
	carol := newTestIdentity(f, "carol")
	alice2 := newTestIdentity(f, "alice")
	r := g.Roster()
	var seeds [][]byte
	for _, spec := range []UpdateSpec{
		{Op: OpAdd, Member: &Member{Card: carol.Card(), Roles: []Role{RoleObserver, RoleENISA}, Addrs: []string{"/ip4/192.0.2.7/udp/4001/quic-v1"}}, Created: testTime},
		{Op: OpRevoke, Target: alice.ID(), Reason: "laptop lost", Created: testTime},
		{Op: OpRotate, NewCard: alice2.Card(), Target: alice.ID(), Created: testTime},
		{Op: OpGroup, Group: "ops", Members: []MemberID{admin.ID(), alice.ID()}, Created: testTime},
		{Op: OpVoters, Members: []MemberID{admin.ID()}, Created: testTime},
		{Op: OpAdd, Voter: true, Member: &Member{Card: carol.Card(), Roles: []Role{RoleAdmin}}, Created: testTime},
	} {
		u, err := NewUpdate(r, spec, admin)
		if err != nil {
			f.Fatalf("NewUpdate(%s): %v", spec.Op, err)
		}
		seeds = append(seeds, u.Bytes())
	}
	fuzzSeeds(f, seeds...)
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUpdate(b)
		if err != nil {
			fuzzCheckClass(t, "ParseUpdate", err, ErrMalformed, ErrNonCanonical)
			return
		}
		fuzzCheckSame(t, "update", b, u.Bytes())
	})
}

func FuzzParseApproval(f *testing.F) {
	admin, alice, _, g := fuzzNetwork(f)
	u, err := NewUpdate(g.Roster(), UpdateSpec{Op: OpRevoke, Target: alice.ID(), Reason: "x", Created: testTime}, admin)
	if err != nil {
		f.Fatal(err)
	}
	a, err := NewApproval(u, admin, testTime)
	if err != nil {
		f.Fatal(err)
	}
	fuzzSeeds(f, a.Bytes(), u.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseApproval(b)
		if err != nil {
			fuzzCheckClass(t, "ParseApproval", err, ErrMalformed, ErrNonCanonical)
			return
		}
		fuzzCheckSame(t, "approval", b, a.Bytes())
		// Judging it never panics, whatever it names.
		_ = g.Roster().CheckApproval(u, a)
	})
}

// fuzzEnvelopes seals a distinct payload to alice alone, to alice and bob,
// and to bob alone.
func fuzzEnvelopes(f *testing.F) (alice *Identity, network NetworkID, envs []*Envelope, payloads [][]byte) {
	f.Helper()
	_, alice, bob, g := fuzzNetwork(f)
	network = g.NetworkID()
	for i, to := range [][]*Identity{{alice}, {alice, bob}, {bob}} {
		var rs []Recipient
		for _, id := range to {
			rs = append(rs, id.Card().Recipient())
		}
		payload := fmt.Appendf(nil, "fuzz payload %d", i)
		env, err := Seal(network, fuzzPurpose, rs, []byte(fuzzAAD), payload)
		if err != nil {
			f.Fatalf("Seal: %v", err)
		}
		envs = append(envs, env)
		payloads = append(payloads, payload)
	}
	return alice, network, envs, payloads
}

const (
	fuzzPurpose = "entry-body"
	fuzzAAD     = "entry 42"
)

func FuzzParseEnvelope(f *testing.F) {
	_, _, envs, _ := fuzzEnvelopes(f)
	fuzzSeeds(f, fuzzEnvelopeBytes(envs)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			fuzzCheckClass(t, "ParseEnvelope", err, ErrMalformed, ErrNonCanonical)
			return
		}
		fuzzCheckSame(t, "envelope", b, e.Bytes())
	})
}

// FuzzOpenEnvelope opens whatever parses with a real identity (alice). It
// must never panic; it fails with ErrNotRecipient or ErrTampered, or opens
// only when the content and alice's stanza are those of an envelope sealed
// in setup, and then gives that envelope's payload; an envelope sealed to
// alice alone opens only unmodified. Other recipients' stanzas are not
// authenticated to alice: an envelope sealed to alice and bob still opens
// for alice with bob's stanza damaged or removed.
func FuzzOpenEnvelope(f *testing.F) {
	alice, network, envs, payloads := fuzzEnvelopes(f)
	me := alice.ID()
	fuzzSeeds(f, fuzzEnvelopeBytes(envs)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		pt, err := alice.Open(network, fuzzPurpose, e, []byte(fuzzAAD))
		if err != nil {
			fuzzCheckClass(t, "Open", err, ErrNotRecipient, ErrTampered)
			return
		}
		mine := fuzzStanza(e, me)
		for i, seed := range envs {
			sealed := fuzzStanza(seed, me)
			if mine != nil && sealed != nil && bytes.Equal(mine.Enc, sealed.Enc) && bytes.Equal(mine.Wrapped, sealed.Wrapped) &&
				bytes.Equal(e.w.KeyID, seed.w.KeyID) && bytes.Equal(e.w.Nonce, seed.w.Nonce) && bytes.Equal(e.w.Ciphertext, seed.w.Ciphertext) {
				if !bytes.Equal(pt, payloads[i]) {
					t.Fatalf("Open gave %q, the envelope was sealed with %q", pt, payloads[i])
				}
				if len(seed.w.Recipients) == 1 {
					fuzzCheckSame(t, "opened envelope vs the one sealed to alice alone", seed.Bytes(), b)
				}
				return
			}
		}
		t.Fatalf("Open accepted an envelope whose content or stanza was not sealed in setup (%d bytes): %q", len(b), pt)
	})
}

func fuzzEnvelopeBytes(envs []*Envelope) [][]byte {
	out := make([][]byte, len(envs))
	for i, e := range envs {
		out[i] = e.Bytes()
	}
	return out
}

// fuzzStanza returns member's stanza in e, or nil.
func fuzzStanza(e *Envelope, member MemberID) *stanza {
	for i := range e.w.Recipients {
		if bytes.Equal(e.w.Recipients[i].Member, member[:]) {
			return &e.w.Recipients[i]
		}
	}
	return nil
}

func FuzzParseKeyEnvelope(f *testing.F) {
	_, alice, bob, g := fuzzNetwork(f)
	var seeds [][]byte
	for _, tc := range []struct {
		group string
		epoch uint64
		to    []*Identity
	}{
		{"all", 1, []*Identity{alice, bob}},
		{"need-to-know/x", 1 << 40, []*Identity{bob}},
	} {
		gk, err := NewGroupKey(tc.group, tc.epoch)
		if err != nil {
			f.Fatalf("NewGroupKey: %v", err)
		}
		var rs []Recipient
		for _, id := range tc.to {
			rs = append(rs, id.Card().Recipient())
		}
		ke, err := NewKeyEnvelope(g.NetworkID(), gk, rs)
		if err != nil {
			f.Fatalf("NewKeyEnvelope: %v", err)
		}
		seeds = append(seeds, ke.Bytes())
	}
	fuzzSeeds(f, seeds...)
	f.Fuzz(func(t *testing.T, b []byte) {
		ke, err := ParseKeyEnvelope(b)
		if err != nil {
			fuzzCheckClass(t, "ParseKeyEnvelope", err, ErrMalformed, ErrNonCanonical)
			return
		}
		fuzzCheckSame(t, "key envelope", b, ke.Bytes())
	})
}

// FuzzParseKeyFile never unlocks with a passphrase: Argon2id with 64 MiB
// would make each iteration take a tenth of a second or more. Files without
// a passphrase are unlocked, which costs only key expansion.
//
// The checksum would stop the fuzzer at the door (it cannot forge SHA-256),
// so an input that decodes but fails only its checksum is tried a second
// time with the checksum fixed: that fuzzes the KDF parameter checks, the
// card and Unlock's decoding of the secrets behind it.
func FuzzParseKeyFile(f *testing.F) {
	alice := newTestIdentity(f, "alice")
	plain, err := MarshalKeyFile(alice, nil)
	if err != nil {
		f.Fatalf("MarshalKeyFile(nil): %v", err)
	}
	locked, err := MarshalKeyFile(alice, []byte("correct horse battery staple"))
	if err != nil {
		f.Fatalf("MarshalKeyFile(passphrase): %v", err)
	}
	fuzzSeeds(f, plain, locked)
	f.Fuzz(func(t *testing.T, b []byte) {
		if fuzzKeyFile(t, b) {
			return
		}
		var w keyFileWire
		if decMode.Unmarshal(b, &w) != nil {
			return
		}
		sum, err := keyFileChecksum(w)
		if err != nil || bytes.Equal(sum, w.Checksum) {
			return
		}
		w.Checksum = sum
		if fixed, err := marshal(&w); err == nil {
			fuzzKeyFile(t, fixed)
		}
	})
}

// fuzzKeyFile checks the key file properties on b and reports whether
// ParseKeyFile accepted it.
func fuzzKeyFile(t *testing.T, b []byte) bool {
	t.Helper()
	kf, err := ParseKeyFile(b)
	if err != nil {
		// Every refusal is ErrCorruptKeyFile except that of another file
		// version, whose error tells the operator to upgrade.
		var w keyFileWire
		if !errors.Is(err, ErrCorruptKeyFile) &&
			(decMode.Unmarshal(b, &w) != nil || w.Kind != keyFileKind || w.Version == keyFileVersion) {
			t.Fatalf("ParseKeyFile: error %q is neither ErrCorruptKeyFile nor a version refusal", err)
		}
		return false
	}
	fuzzCheckSame(t, "key file", b, kf.Bytes())
	id, err := kf.Unlock(nil)
	switch {
	case kf.Encrypted():
		if !errors.Is(err, ErrPassphraseRequired) {
			t.Fatalf("Unlock(nil) of an encrypted file: got %v, want ErrPassphraseRequired", err)
		}
	case err != nil:
		fuzzCheckClass(t, "Unlock", err, ErrCorruptKeyFile)
	case !id.Card().Equal(kf.Card()):
		t.Fatalf("Unlock gave an identity whose card is not the file's")
	}
	return true
}

// FuzzGroupCiphertext decodes through SealedKey and parseGroupCiphertext
// and opens with the real key: only the sealed bytes themselves may open.
func FuzzGroupCiphertext(f *testing.F) {
	var network NetworkID
	copy(network[:], "fuzz network")
	gk, err := NewGroupKey("tlp-red/5", 7)
	if err != nil {
		f.Fatalf("NewGroupKey: %v", err)
	}
	aad := []byte("entry 42")
	payloads := [][]byte{nil, []byte("fuzz group payload"), bytes.Repeat([]byte{0xa5}, 300)}
	var seeds [][]byte
	for _, p := range payloads {
		s, err := SealWith(gk, network, aad, p)
		if err != nil {
			f.Fatalf("SealWith: %v", err)
		}
		seeds = append(seeds, s)
	}
	fuzzSeeds(f, seeds...)
	f.Fuzz(func(t *testing.T, b []byte) {
		id, epoch, err := SealedKey(b)
		if err != nil {
			fuzzCheckClass(t, "SealedKey", err, ErrMalformed, ErrNonCanonical, ErrTampered)
		} else {
			w, err := parseGroupCiphertext(b)
			if err != nil {
				t.Fatalf("SealedKey accepted what parseGroupCiphertext refuses: %v", err)
			}
			if KeyID(w.KeyID) != id || w.Epoch != epoch {
				t.Fatalf("SealedKey gave %s/%d, the wire says %x/%d", id, epoch, w.KeyID, w.Epoch)
			}
			out, err := marshal(w)
			if err != nil {
				t.Fatalf("marshal of a decoded group ciphertext: %v", err)
			}
			fuzzCheckSame(t, "group ciphertext", b, out)
		}
		pt, err := OpenWith(gk, network, aad, b)
		if err != nil {
			fuzzCheckClass(t, "OpenWith", err, ErrMalformed, ErrNonCanonical, ErrTampered, ErrWrongKey)
			return
		}
		for i, s := range seeds {
			if bytes.Equal(b, s) {
				if !bytes.Equal(pt, payloads[i]) {
					t.Fatalf("OpenWith gave %q, want %q", pt, payloads[i])
				}
				return
			}
		}
		t.Fatalf("OpenWith opened %d bytes that were never sealed", len(b))
	})
}
