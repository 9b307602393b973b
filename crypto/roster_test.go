package crypto

// Tests of the genesis document and the Roster accessors (roster.go).
// Helpers defined here and in update_test.go are prefixed "rt" so that they
// cannot collide with helpers of the package's other test files.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
)

// rtMarshal encodes v canonically or fails the test.
func rtMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// rtRule returns the Rule of the *RuleError in err's chain, or "" when
// there is none.
func rtRule(err error) string {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Rule
	}
	return ""
}

// rtCard makes a self-signed card from the given keys; a nil key is drawn
// fresh. It builds what NewIdentity never does: two cards sharing a signing
// key, or a peer key.
func rtCard(t testing.TB, name string, sk *signingKey, kk *kemKey, peerPub libp2pcrypto.PubKey) *Card {
	t.Helper()
	var err error
	if sk == nil {
		if sk, err = newSigningKey(); err != nil {
			t.Fatal(err)
		}
	}
	if kk == nil {
		if kk, err = newKEMKey(); err != nil {
			t.Fatal(err)
		}
	}
	if peerPub == nil {
		if _, peerPub, err = libp2pcrypto.GenerateEd25519Key(rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	c, err := newCard(name, sk, kk, peerPub, testTime)
	if err != nil {
		t.Fatalf("newCard(%q): %v", name, err)
	}
	return c
}

// rtSplit decodes a signed document (genesis or update) into its wire form.
func rtSplit(t testing.TB, raw []byte) signedWire {
	t.Helper()
	var w signedWire
	if err := unmarshalCanonical(raw, &w); err != nil {
		t.Fatalf("decode signed document: %v", err)
	}
	return w
}

// rtGenesisBody decodes the body of g.
func rtGenesisBody(t testing.TB, g *Genesis) genesisBody {
	t.Helper()
	var body genesisBody
	if err := unmarshalCanonical(rtSplit(t, g.Bytes()).Body, &body); err != nil {
		t.Fatalf("decode genesis body: %v", err)
	}
	return body
}

// rtSignDoc signs body bytes as signer in ctx and wraps them as a signed
// document, without checking any rule.
func rtSignDoc(t testing.TB, body []byte, signer *Identity, ctx Context) []byte {
	t.Helper()
	sig, err := signer.Sign(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	id := signer.ID()
	return rtMarshal(t, &signedWire{Body: body, Signer: id[:], Sig: sig})
}

// rtReorder re-encodes a canonical CBOR map whose keys are small integers
// with its keys in descending order: same value, non-canonical bytes.
func rtReorder(t testing.TB, canon []byte) []byte {
	t.Helper()
	var m map[uint64]cbor.RawMessage
	if err := cbor.Unmarshal(canon, &m); err != nil {
		t.Fatalf("decode map: %v", err)
	}
	if len(m) < 2 || len(m) > 23 {
		t.Fatalf("rtReorder: map of %d entries", len(m))
	}
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	out := []byte{0xa0 | byte(len(m))}
	for _, k := range keys {
		out = append(out, rtMarshal(t, k)...)
		out = append(out, m[k]...)
	}
	if bytes.Equal(out, canon) {
		t.Fatal("rtReorder: reordering changed nothing")
	}
	return out
}

// rtNonMinimalBody re-encodes a signed document with the body's byte-string
// length in 8 bytes instead of the shortest form.
func rtNonMinimalBody(t testing.TB, raw []byte) []byte {
	t.Helper()
	w := rtSplit(t, raw)
	if len(w.Signer) == 0 {
		t.Fatal("rtNonMinimalBody: document has no signer")
	}
	out := []byte{0xa3, 0x01, 0x5b}
	out = binary.BigEndian.AppendUint64(out, uint64(len(w.Body)))
	out = append(out, w.Body...)
	out = append(out, 0x02)
	out = append(out, rtMarshal(t, w.Signer)...)
	out = append(out, 0x03)
	out = append(out, rtMarshal(t, w.Sig)...)
	return out
}

// rtIDs returns the member IDs of ids in canonical (byte) order.
func rtIDs(ids ...*Identity) []MemberID {
	out := make([]MemberID, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.ID())
	}
	slices.SortFunc(out, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// rtNames lists the members' names in the order given.
func rtNames(ms []*Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Card.Name()
	}
	return out
}

func TestGenesisRoundTrip(t *testing.T) {
	admin := newTestIdentity(t, "admin-eu")
	lu := newTestIdentity(t, "cert-lu")
	fr := newTestIdentity(t, "cyclone-fr")
	outsider := newTestIdentity(t, "outsider")
	g := testNetwork(t, admin, fr, lu) // input order is not name order

	g2, err := ParseGenesis(g.Bytes())
	if err != nil {
		t.Fatalf("ParseGenesis(g.Bytes()): %v", err)
	}
	if !bytes.Equal(g2.Bytes(), g.Bytes()) {
		t.Errorf("ParseGenesis(g.Bytes()).Bytes() differs from g.Bytes()")
	}
	want := NetworkID(sha256.Sum256(g.Bytes()))
	for _, c := range []struct {
		name string
		got  NetworkID
	}{
		{"g.NetworkID()", g.NetworkID()},
		{"g.Roster().NetworkID()", g.Roster().NetworkID()},
		{"parsed.NetworkID()", g2.NetworkID()},
		{"parsed.Roster().NetworkID()", g2.Roster().NetworkID()},
	} {
		if c.got != want {
			t.Errorf("%s = %x, want SHA-256 of the bytes %x", c.name, c.got, want)
		}
	}

	for _, r := range []*Roster{g.Roster(), g2.Roster()} {
		if got := r.Name(); got != "test-net" {
			t.Errorf("Name() = %q, want %q", got, "test-net")
		}
		if got := r.Created(); !got.Equal(testTime) {
			t.Errorf("Created() = %v, want %v", got, testTime)
		}
		if got := r.Version(); got != 0 {
			t.Errorf("Version() = %d, want 0", got)
		}
		if diff := cmp.Diff([]string{"admin-eu", "cert-lu", "cyclone-fr"}, rtNames(r.Members())); diff != "" {
			t.Errorf("Members() names (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(rtIDs(admin, lu, fr), r.Voters()); diff != "" {
			t.Errorf("Voters() (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]MemberID{admin.ID()}, r.Admins()); diff != "" {
			t.Errorf("Admins() (-want +got):\n%s", diff)
		}

		for _, tc := range []struct {
			id     *Identity
			member bool
			roles  []Role
			voter  bool
			admin  bool
		}{
			{admin, true, []Role{RoleAdmin, RoleCyclone}, true, true},
			{lu, true, []Role{RoleCSIRT}, true, false},
			{fr, true, []Role{RoleCSIRT}, true, false},
			{outsider, false, nil, false, false},
		} {
			t.Run(tc.id.Name(), func(t *testing.T) {
				id := tc.id.ID()
				m, ok := r.Member(id)
				if ok != tc.member {
					t.Fatalf("Member(%s) found = %v, want %v", tc.id.Name(), ok, tc.member)
				}
				if ok {
					if !m.Card.Equal(tc.id.Card()) {
						t.Errorf("Member(%s).Card is not the member's card", tc.id.Name())
					}
					if diff := cmp.Diff(tc.roles, m.Roles); diff != "" {
						t.Errorf("Member(%s).Roles (-want +got):\n%s", tc.id.Name(), diff)
					}
					if m.Revoked || m.Reason != "" || m.RevokedAt != 0 {
						t.Errorf("Member(%s) revoked = %v %q %d, want not revoked", tc.id.Name(), m.Revoked, m.Reason, m.RevokedAt)
					}
				}
				if got := r.Active(id); got != tc.member {
					t.Errorf("Active = %v, want %v", got, tc.member)
				}
				bn, ok := r.ByName(tc.id.Name())
				if ok != tc.member || (ok && bn.Card.ID() != id) {
					t.Errorf("ByName(%q) = %v, %v, want the member: %v", tc.id.Name(), bn, ok, tc.member)
				}
				bp, ok := r.ByPeer(tc.id.PeerID())
				if ok != tc.member || (ok && bp.Card.ID() != id) {
					t.Errorf("ByPeer(%s) = %v, %v, want the member: %v", tc.id.PeerID(), bp, ok, tc.member)
				}
				if got := r.IsVoter(id); got != tc.voter {
					t.Errorf("IsVoter = %v, want %v", got, tc.voter)
				}
				if got := r.IsAdmin(id); got != tc.admin {
					t.Errorf("IsAdmin = %v, want %v", got, tc.admin)
				}
				for _, role := range Roles {
					if got, want := r.HasRole(id, role), slices.Contains(tc.roles, role); got != want {
						t.Errorf("HasRole(%s) = %v, want %v", role, got, want)
					}
				}
			})
		}
	}
}

// TestRosterReturnsCopies checks that what the accessors return is the
// caller's: changing it does not change the roster.
func TestRosterReturnsCopies(t *testing.T) {
	admin := newTestIdentity(t, "admin-eu")
	lu := newTestIdentity(t, "cert-lu")
	fr := newTestIdentity(t, "cyclone-fr")
	r := testNetwork(t, admin, lu, fr).Roster()

	ms := r.Members()
	ms[0].Roles[0] = RoleObserver
	ms[0].Revoked = true
	ms[1] = nil
	if m, _ := r.Member(admin.ID()); m.Roles[0] != RoleAdmin {
		m.Roles[0] = RoleObserver
	}
	if m, _ := r.ByName("cert-lu"); m != nil {
		m.Roles = append(m.Roles[:0], RoleObserver)
	}
	if m, _ := r.ByPeer(fr.PeerID()); m != nil {
		m.Revoked = true
	}
	r.Voters()[0] = MemberID{}
	r.Admins()[0] = MemberID{}

	if diff := cmp.Diff([]string{"admin-eu", "cert-lu", "cyclone-fr"}, rtNames(r.Members())); diff != "" {
		t.Errorf("Members() after editing a returned copy (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		id   *Identity
		role Role
	}{{admin, RoleAdmin}, {lu, RoleCSIRT}, {fr, RoleCSIRT}} {
		if !r.HasRole(tc.id.ID(), tc.role) || !r.Active(tc.id.ID()) {
			t.Errorf("%s: HasRole(%s) = %v, Active = %v after editing copies, want true, true",
				tc.id.Name(), tc.role, r.HasRole(tc.id.ID(), tc.role), r.Active(tc.id.ID()))
		}
	}
	if diff := cmp.Diff(rtIDs(admin, lu, fr), r.Voters()); diff != "" {
		t.Errorf("Voters() after editing a returned copy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]MemberID{admin.ID()}, r.Admins()); diff != "" {
		t.Errorf("Admins() after editing a returned copy (-want +got):\n%s", diff)
	}
}

// rtGenesisIDs are the identities the genesis rule tests share.
type rtGenesisIDs struct {
	admin, lu, fr, outsider *Identity
}

// spec is a valid genesis: admin-eu (admin, cyclone), cert-lu (csirt),
// cyclone-fr (cyclone); all three vote; admin-eu is the admin. Every call
// returns fresh slices, so a test case may change them.
func (ids *rtGenesisIDs) spec() GenesisSpec {
	return GenesisSpec{
		Network: "eu-cyclone",
		Created: testTime,
		Members: []Member{
			{Card: ids.admin.Card(), Roles: []Role{RoleAdmin, RoleCyclone}, Addrs: []string{"/ip4/192.0.2.1/udp/4001/quic-v1"}},
			{Card: ids.lu.Card(), Roles: []Role{RoleCSIRT}},
			{Card: ids.fr.Card(), Roles: []Role{RoleCyclone}},
		},
		Voters: []MemberID{ids.admin.ID(), ids.lu.ID(), ids.fr.ID()},
		Admins: []MemberID{ids.admin.ID()},
	}
}

func TestGenesisRules(t *testing.T) {
	ids := &rtGenesisIDs{
		admin:    newTestIdentity(t, "admin-eu"),
		lu:       newTestIdentity(t, "cert-lu"),
		fr:       newTestIdentity(t, "cyclone-fr"),
		outsider: newTestIdentity(t, "outsider"),
	}
	luTwin := newTestIdentity(t, "cert-lu") // same name, other keys
	// Same signing (and KEM and peer) key as cert-lu, another name: same ID.
	sameID := rtCard(t, "cert-lu-twin", ids.lu.sig, ids.lu.kem, ids.lu.peer.GetPublic())
	// Fresh signing key, cert-lu's peer key: same peer ID.
	samePeer := rtCard(t, "peer-twin", nil, nil, ids.lu.peer.GetPublic())
	if sameID.ID() != ids.lu.ID() || samePeer.PeerID() != ids.lu.PeerID() || samePeer.ID() == ids.lu.ID() {
		t.Fatal("rtCard did not build the twins the cases need")
	}

	tests := []struct {
		name   string
		edit   func(s *GenesisSpec)
		signer *Identity // default ids.admin
		want   string
	}{
		{name: "valid", edit: func(*GenesisSpec) {}, want: ""},
		{name: "network name empty", edit: func(s *GenesisSpec) { s.Network = "" }, want: "network-name"},
		{name: "network name upper case", edit: func(s *GenesisSpec) { s.Network = "EU-Cyclone" }, want: "network-name"},
		{name: "network name with space", edit: func(s *GenesisSpec) { s.Network = "eu cyclone" }, want: "network-name"},
		{name: "network name starts with dash", edit: func(s *GenesisSpec) { s.Network = "-eu" }, want: "network-name"},
		{name: "network name 64 characters", edit: func(s *GenesisSpec) { s.Network = strings.Repeat("a", 64) }, want: "network-name"},
		{name: "network name 63 characters", edit: func(s *GenesisSpec) { s.Network = strings.Repeat("a", 63) }, want: ""},
		{name: "no members", edit: func(s *GenesisSpec) { s.Members = nil }, want: "members-nonempty"},
		{name: "member without card", edit: func(s *GenesisSpec) { s.Members[1].Card = nil }, want: "member-card"},
		{
			name: "two members with one name",
			edit: func(s *GenesisSpec) {
				s.Members = append(s.Members, Member{Card: luTwin.Card(), Roles: []Role{RoleCSIRT}})
			},
			want: "unique-name",
		},
		{
			// The same card twice also has the same name, and the name
			// check runs first while members are read in name order, so
			// it is refused as unique-name, not unique-id.
			name: "same card twice",
			edit: func(s *GenesisSpec) { s.Members = append(s.Members, s.Members[1]) },
			want: "unique-name",
		},
		{
			name: "two cards with one signing key",
			edit: func(s *GenesisSpec) { s.Members = append(s.Members, Member{Card: sameID, Roles: []Role{RoleCSIRT}}) },
			want: "unique-id",
		},
		{
			name: "two cards with one peer key",
			edit: func(s *GenesisSpec) { s.Members = append(s.Members, Member{Card: samePeer, Roles: []Role{RoleCSIRT}}) },
			want: "unique-peer",
		},
		{name: "member without role", edit: func(s *GenesisSpec) { s.Members[1].Roles = nil }, want: "roles-nonempty"},
		{name: "unknown role", edit: func(s *GenesisSpec) { s.Members[1].Roles = []Role{"root"} }, want: "roles-valid"},
		{name: "role in upper case", edit: func(s *GenesisSpec) { s.Members[1].Roles = []Role{"CSIRT"} }, want: "roles-valid"},
		{name: "address not a multiaddr", edit: func(s *GenesisSpec) { s.Members[1].Addrs = []string{"192.0.2.7:4001"} }, want: "addrs-valid"},
		{name: "no voters", edit: func(s *GenesisSpec) { s.Voters = nil }, want: "voters-odd"},
		{name: "two voters", edit: func(s *GenesisSpec) { s.Voters = s.Voters[:2] }, want: "voters-odd"},
		{name: "one voter", edit: func(s *GenesisSpec) { s.Voters = s.Voters[:1] }, want: ""},
		{
			name: "voter not a member",
			edit: func(s *GenesisSpec) { s.Voters = []MemberID{ids.admin.ID(), ids.lu.ID(), ids.outsider.ID()} },
			want: "voters-members",
		},
		{name: "no admins", edit: func(s *GenesisSpec) { s.Admins = nil }, want: "admins-nonempty"},
		{
			name: "admin not a member",
			edit: func(s *GenesisSpec) { s.Admins = append(s.Admins, ids.outsider.ID()) },
			want: "admins-members",
		},
		{
			name: "admin without the admin role",
			edit: func(s *GenesisSpec) { s.Admins = append(s.Admins, ids.lu.ID()) },
			want: "admins-role",
		},
		{
			// cert-lu holds the admin role but is not listed as an admin.
			name: "signed by a member with the role who is not an admin",
			edit: func(s *GenesisSpec) {
				s.Members[1].Roles = []Role{RoleAdmin, RoleCSIRT}
			},
			signer: ids.lu,
			want:   "signer-admin",
		},
		{name: "signed by a member who is not an admin", edit: func(*GenesisSpec) {}, signer: ids.lu, want: "signer-admin"},
		{name: "signed by a stranger", edit: func(*GenesisSpec) {}, signer: ids.outsider, want: "signer-admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := ids.spec()
			tc.edit(&spec)
			signer := tc.signer
			if signer == nil {
				signer = ids.admin
			}
			g, err := NewGenesis(spec, signer)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("NewGenesis: got error %v, want none", err)
				}
				if _, err := ParseGenesis(g.Bytes()); err != nil {
					t.Errorf("ParseGenesis(NewGenesis(…).Bytes()): got error %v, want none", err)
				}
				return
			}
			if got := rtRule(err); got != tc.want {
				t.Fatalf("NewGenesis: got rule %q (error %v), want rule %q", got, err, tc.want)
			}
			var re *RuleError
			errors.As(err, &re)
			if !errors.Is(err, ErrRule) {
				t.Errorf("errors.Is(err, ErrRule) = false for %v, want true", err)
			}
			if re.Index != -1 {
				t.Errorf("RuleError.Index = %d, want -1 outside ApplyUpdates", re.Index)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name its rule %q", err, tc.want)
			}
		})
	}
}

// TestGenesisEncoding checks documents that were not made by NewGenesis:
// tampered signatures, non-canonical and malformed encodings, and bodies
// that break a rule but are validly signed.
func TestGenesisEncoding(t *testing.T) {
	ids := &rtGenesisIDs{
		admin: newTestIdentity(t, "admin-eu"),
		lu:    newTestIdentity(t, "cert-lu"),
		fr:    newTestIdentity(t, "cyclone-fr"),
	}
	g, err := NewGenesis(ids.spec(), ids.admin)
	if err != nil {
		t.Fatal(err)
	}
	valid := g.Bytes()

	// outer changes the signed document; body changes the body, which is
	// then signed again by the admin.
	outer := func(f func(w *signedWire)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			w := rtSplit(t, valid)
			w.Sig = slices.Clone(w.Sig)
			f(&w)
			return rtMarshal(t, &w)
		}
	}
	body := func(f func(b *genesisBody)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			b := rtGenesisBody(t, g)
			f(&b)
			return rtSignDoc(t, rtMarshal(t, &b), ids.admin, ContextRoster)
		}
	}
	raw := func(f func(t *testing.T, b []byte) []byte) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return f(t, slices.Clone(valid)) }
	}

	tests := []struct {
		name string
		doc  func(t *testing.T) []byte
		want error  // checked with errors.Is
		rule string // if set, the RuleError's rule
	}{
		{name: "unchanged", doc: raw(func(_ *testing.T, b []byte) []byte { return b }), want: nil},
		{name: "re-signed unchanged body", doc: body(func(*genesisBody) {}), want: nil},

		{name: "ML-DSA half of signature flipped", doc: outer(func(w *signedWire) { w.Sig[0] ^= 1 }), want: ErrBadSignature},
		{name: "Ed25519 half of signature flipped", doc: outer(func(w *signedWire) { w.Sig[len(w.Sig)-1] ^= 0x80 }), want: ErrBadSignature},
		{name: "signature truncated", doc: outer(func(w *signedWire) { w.Sig = w.Sig[:len(w.Sig)-1] }), want: ErrBadSignature},
		{name: "signature empty", doc: outer(func(w *signedWire) { w.Sig = []byte{} }), want: ErrBadSignature},
		{
			name: "body changed after signing",
			doc: outer(func(w *signedWire) {
				var b genesisBody
				if err := unmarshalCanonical(w.Body, &b); err != nil {
					panic(err)
				}
				b.Network = "eu-cyclone-2"
				w.Body, _ = marshal(&b)
			}),
			want: ErrBadSignature,
		},
		{
			name: "signed in the roster-update context",
			doc: func(t *testing.T) []byte {
				return rtSignDoc(t, rtSplit(t, valid).Body, ids.admin, ContextRosterUpdate)
			},
			want: ErrBadSignature,
		},
		{name: "no signer", doc: outer(func(w *signedWire) { w.Signer = nil }), want: ErrRule, rule: "signer-admin"},
		{name: "signer ID truncated", doc: outer(func(w *signedWire) { w.Signer = w.Signer[:31] }), want: ErrRule, rule: "signer-admin"},

		{name: "outer map keys out of order", doc: raw(func(t *testing.T, b []byte) []byte { return rtReorder(t, b) }), want: ErrNonCanonical},
		{name: "body length not in shortest form", doc: raw(func(t *testing.T, b []byte) []byte { return rtNonMinimalBody(t, b) }), want: ErrNonCanonical},
		{
			name: "body map keys out of order, signed",
			doc: func(t *testing.T) []byte {
				return rtSignDoc(t, rtReorder(t, rtSplit(t, valid).Body), ids.admin, ContextRoster)
			},
			want: ErrNonCanonical,
		},
		{name: "members not in name order, signed", doc: body(func(b *genesisBody) { slices.Reverse(b.Members) }), want: ErrNonCanonical},
		{name: "roles not sorted, signed", doc: body(func(b *genesisBody) { b.Members[0].Roles = []string{"cyclone", "admin"} }), want: ErrNonCanonical},
		{name: "role listed twice, signed", doc: body(func(b *genesisBody) { b.Members[1].Roles = []string{"csirt", "csirt"} }), want: ErrNonCanonical},
		{name: "voters not sorted, signed", doc: body(func(b *genesisBody) { slices.Reverse(b.Voters) }), want: ErrNonCanonical},
		{name: "admin listed twice, signed", doc: body(func(b *genesisBody) { b.Admins = append(b.Admins, b.Admins[0]) }), want: ErrNonCanonical},

		{name: "trailing byte", doc: raw(func(_ *testing.T, b []byte) []byte { return append(b, 0) }), want: ErrMalformed},
		{name: "truncated", doc: raw(func(_ *testing.T, b []byte) []byte { return b[:len(b)-1] }), want: ErrMalformed},
		{name: "empty", doc: raw(func(_ *testing.T, _ []byte) []byte { return nil }), want: ErrMalformed},
		{
			name: "indefinite-length map",
			doc: raw(func(t *testing.T, b []byte) []byte {
				if b[0] != 0xa3 {
					t.Fatalf("document starts with %#x, want a map of 3 (0xa3)", b[0])
				}
				b[0] = 0xbf
				return append(b, 0xff)
			}),
			want: ErrMalformed,
		},
		{
			name: "tagged",
			doc:  raw(func(_ *testing.T, b []byte) []byte { return append([]byte{0xd9, 0xd9, 0xf7}, b...) }),
			want: ErrMalformed,
		},
		{
			name: "unknown outer field",
			doc: func(t *testing.T) []byte {
				w := rtSplit(t, valid)
				return rtMarshal(t, &struct {
					Body   []byte `cbor:"1,keyasint"`
					Signer []byte `cbor:"2,keyasint"`
					Sig    []byte `cbor:"3,keyasint"`
					Extra  []byte `cbor:"4,keyasint"`
				}{w.Body, w.Signer, w.Sig, []byte{1}})
			},
			want: ErrMalformed,
		},
		{name: "unknown suite, signed", doc: body(func(b *genesisBody) { b.Suite = "crisismesh-roster-v2" }), want: ErrMalformed},
		{name: "voter ID of 31 bytes, signed", doc: body(func(b *genesisBody) { b.Voters[0] = b.Voters[0][:31] }), want: ErrMalformed},
		{name: "admin ID of 33 bytes, signed", doc: body(func(b *genesisBody) { b.Admins[0] = append(b.Admins[0], 0) }), want: ErrMalformed},
		{name: "member card not a card, signed", doc: body(func(b *genesisBody) { b.Members[1].Card = []byte{0x01} }), want: ErrMalformed},

		// Rules are checked on parsed documents, not only by NewGenesis.
		{name: "two voters, signed", doc: body(func(b *genesisBody) { b.Voters = b.Voters[:2] }), want: ErrRule, rule: "voters-odd"},
		{name: "member without role, signed", doc: body(func(b *genesisBody) { b.Members[1].Roles = nil }), want: ErrRule, rule: "roles-nonempty"},
		{
			name: "admin not listed, signed",
			doc:  body(func(b *genesisBody) { b.Admins = [][]byte{} }),
			want: ErrRule, rule: "admins-nonempty",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc(t)
			got, err := ParseGenesis(doc)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ParseGenesis: got error %v, want none", err)
				}
				if !bytes.Equal(got.Bytes(), doc) {
					t.Errorf("Bytes() differs from the parsed document")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseGenesis: got error %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Errorf("ParseGenesis: got a genesis along with error %v, want nil", err)
			}
			if r := rtRule(err); r != tc.rule {
				t.Errorf("ParseGenesis: got rule %q, want %q (error %v)", r, tc.rule, err)
			}
		})
	}
}

// TestGenesisCanonicalOrder checks that the order in which members, roles,
// voters and admins are given does not change the document.
func TestGenesisCanonicalOrder(t *testing.T) {
	ids := &rtGenesisIDs{
		admin: newTestIdentity(t, "admin-eu"),
		lu:    newTestIdentity(t, "cert-lu"),
		fr:    newTestIdentity(t, "cyclone-fr"),
	}
	zz := newTestIdentity(t, "zz-observer")
	base := func() GenesisSpec {
		s := ids.spec()
		s.Members = append(s.Members, Member{Card: zz.Card(), Roles: []Role{RoleObserver}})
		return s
	}
	ref, err := NewGenesis(base(), ids.admin)
	if err != nil {
		t.Fatal(err)
	}
	wantBody := rtGenesisBody(t, ref)

	tests := []struct {
		name string
		edit func(s *GenesisSpec)
	}{
		{"as given", func(*GenesisSpec) {}},
		{"members reversed", func(s *GenesisSpec) { slices.Reverse(s.Members) }},
		{"members rotated", func(s *GenesisSpec) { s.Members = append(s.Members[2:], s.Members[:2]...) }},
		{"voters reversed", func(s *GenesisSpec) { slices.Reverse(s.Voters) }},
		{"voter listed twice", func(s *GenesisSpec) { s.Voters = append(s.Voters, s.Voters[1]) }},
		{"admin listed twice", func(s *GenesisSpec) { s.Admins = append(s.Admins, s.Admins[0]) }},
		{"roles reversed", func(s *GenesisSpec) { s.Members[0].Roles = []Role{RoleCyclone, RoleAdmin} }},
		{"role listed twice", func(s *GenesisSpec) { s.Members[0].Roles = []Role{RoleCyclone, RoleAdmin, RoleCyclone} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base()
			tc.edit(&spec)
			g, err := NewGenesis(spec, ids.admin)
			if err != nil {
				t.Fatalf("NewGenesis: %v", err)
			}
			// Signing is hedged, so only the bodies can be compared.
			if diff := cmp.Diff(wantBody, rtGenesisBody(t, g)); diff != "" {
				t.Errorf("genesis body (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"admin-eu", "cert-lu", "cyclone-fr", "zz-observer"}, rtNames(g.Roster().Members())); diff != "" {
				t.Errorf("Members() names (-want +got):\n%s", diff)
			}
			m, _ := g.Roster().Member(ids.admin.ID())
			if diff := cmp.Diff([]Role{RoleAdmin, RoleCyclone}, m.Roles); diff != "" {
				t.Errorf("admin roles (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(rtIDs(ids.admin, ids.lu, ids.fr), g.Roster().Voters()); diff != "" {
				t.Errorf("Voters() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"csirt", RoleCSIRT, false},
		{"cyclone", RoleCyclone, false},
		{"presidency", RolePresidency, false},
		{"commission", RoleCommission, false},
		{"enisa", RoleENISA, false},
		{"cert-eu", RoleCERTEU, false},
		{"observer", RoleObserver, false},
		{"admin", RoleAdmin, false},
		{"", "", true},
		{"Admin", "", true},
		{"root", "", true},
		{" csirt", "", true},
		{"certeu", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRole(tc.in)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("ParseRole(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "csirt, cyclone") {
				t.Errorf("ParseRole(%q) error %q does not list the valid roles", tc.in, err)
			}
		})
	}
	// Every role in Roles parses, and the table above covers each.
	if len(Roles) != 8 {
		t.Errorf("len(Roles) = %d, want 8: update this test", len(Roles))
	}
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); got != r || err != nil {
			t.Errorf("ParseRole(%q) = %q, %v; want %q, nil", r, got, err, r)
		}
	}
}

// TestRosterByNameNewestRevoked checks ByName on a name that several
// members held over time.
func TestRosterByNameNewestRevoked(t *testing.T) {
	admin := newTestIdentity(t, "admin-eu")
	lu1 := newTestIdentity(t, "cert-lu")
	lu2 := newTestIdentity(t, "cert-lu")
	g := testNetwork(t, admin, lu1)

	// Rotate cert-lu to new keys: the active member is the new one.
	r1 := rtApply(t, g.Roster(), rtUpdate(t, g.Roster(), UpdateSpec{Op: OpRotate, Target: lu1.ID(), NewCard: lu2.Card(), Created: testTime}, admin))
	if m, ok := r1.ByName("cert-lu"); !ok || m.Card.ID() != lu2.ID() {
		t.Fatalf("after rotate, ByName(cert-lu) = %v, %v; want the new card %s", m, ok, lu2.ID().Short())
	}
	// Then revoke it: both cert-lu cards are revoked.
	r2 := rtApply(t, r1, rtUpdate(t, r1, UpdateSpec{Op: OpRevoke, Target: lu2.ID(), Reason: "left the network", Created: testTime}, admin))
	m, ok := r2.ByName("cert-lu")
	if !ok {
		t.Fatal("after revoke, ByName(cert-lu) found nothing, want the newest revoked member")
	}
	if m.Card.ID() != lu2.ID() {
		// Regression: ByName kept the oldest match when all were revoked.
		t.Errorf("ByName(cert-lu) = %s (reason %q), want the newest revoked member %s (reason %q)",
			m.Card.ID().Short(), m.Reason, lu2.ID().Short(), "left the network")
	}
	if m.Reason != "left the network" || m.RevokedAt != 2 {
		t.Errorf("ByName(cert-lu) reason, version = %q, %d; want %q, 2", m.Reason, m.RevokedAt, "left the network")
	}
}
