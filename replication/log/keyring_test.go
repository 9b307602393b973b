package log

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
)

func (n *net) keyEntry(t testing.TB, who *crypto.Identity, tip Tip, key *crypto.GroupKey, to ...*crypto.Identity) *Entry {
	t.Helper()
	var rs []crypto.Recipient
	for _, id := range to {
		rs = append(rs, id.Card().Recipient())
	}
	ke, err := crypto.NewKeyEnvelope(n.id, key, rs)
	if err != nil {
		t.Fatal(err)
	}
	return n.build(t, who, tip, Draft{Body: Body{Kind: KindKey, TLP: TLPClear, Payload: ke.Bytes()}})[0]
}

// The keyring is a function of the roster and the key entries only: every
// order of the same entries, and any split into With steps, gives the same
// keys, the same current key of each group and the same refusals.
func TestKeyringDeterministic(t *testing.T) {
	n := newNet(t)
	pair := []crypto.MemberID{n.lu.ID(), n.fr.ID()}
	all1, _ := crypto.NewGroupKey(GroupAll, 1)
	all2, _ := crypto.NewGroupKey(GroupAll, 2)
	p1, _ := crypto.NewGroupKey(RecipientGroup(pair), 1)
	p1b, _ := crypto.NewGroupKey(RecipientGroup(pair), 1) // both wrote epoch 1 at once
	bad, _ := crypto.NewGroupKey(GroupAll, 3)
	a1 := n.keyEntry(t, n.admin, Tip{}, all1, n.admin, n.lu, n.fr)
	a2 := n.keyEntry(t, n.admin, tipOf(a1), all2, n.admin, n.lu, n.fr)
	l1 := n.keyEntry(t, n.lu, Tip{}, p1, n.lu, n.fr)
	l2 := n.keyEntry(t, n.lu, tipOf(l1), bad, n.lu, n.fr) // not an admin
	f1 := n.keyEntry(t, n.fr, Tip{}, p1b, n.fr, n.lu)
	entries := []*Entry{a1, a2, l1, l2, f1}
	want := DeriveKeyring(n.id, n.roster, n.fr, entries)
	if k, ok := want.Current(GroupAll); !ok || !k.Equal(all2) {
		t.Fatal("the current key of group all is not the admin's epoch 2")
	}
	wantPair := p1
	if id1, id2 := p1.ID(), p1b.ID(); string(id2[:]) < string(id1[:]) {
		wantPair = p1b
	}
	if k, ok := want.ForMembers(pair); !ok || !k.Equal(wantPair) {
		t.Fatal("of two keys of one epoch, the current one is not the one with the smaller key ID")
	}
	if r := want.Refused(); len(r) != 1 || r[0].Entry != l2.ID() || r[0].Rule != KeyRuleIssuer || !errors.Is(r[0], ErrUntrustedKey) {
		t.Fatalf("refused: %v", r)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		es := slices.Clone(entries)
		rng.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		cut := rng.IntN(len(es) + 1)
		got := DeriveKeyring(n.id, n.roster, n.fr, es[:cut]).With(n.id, n.roster, n.fr, es[cut:])
		for _, g := range []string{GroupAll, RecipientGroup(pair)} {
			a, _ := got.Current(g)
			b, _ := want.Current(g)
			if !a.Equal(b) {
				t.Errorf("order %v: current key of %s differs", es, g)
			}
		}
		for _, k := range []*crypto.GroupKey{all1, all2, p1, p1b} {
			if !slices.Equal(got.Members(k), want.Members(k)) || len(got.Keys(k.ID())) != 1 {
				t.Errorf("members of %s differ", k.ID())
			}
		}
		if len(got.Refused()) != 1 {
			t.Errorf("refusals differ: %v", got.Refused())
		}
	}
	// A member outside a group neither holds its key nor judges its entry.
	admin := DeriveKeyring(n.id, n.roster, n.admin, entries)
	if _, ok := admin.ForMembers(pair); ok || len(admin.Refused()) != 0 {
		t.Error("the admin holds or judged the key of a pair it is not in")
	}
}

// TLP:RED is believed only when sealed under a recipient-set group's key.
func TestBelieveRed(t *testing.T) {
	n := newNet(t)
	pair, _ := crypto.NewGroupKey(RecipientGroup([]crypto.MemberID{n.lu.ID(), n.fr.ID()}), 1)
	ntk, _ := crypto.NewGroupKey("need-to-know/x", 1)
	e := n.build(t, n.lu, Tip{}, n.msg("x"))[0]
	for _, tc := range []struct {
		name string
		key  *crypto.GroupKey
		tlp  TLP
		want bool
	}{
		{"amber to all", n.key, TLPAmber, true},
		{"red to all", n.key, TLPRed, false},
		{"red to a need-to-know group", ntk, TLPRed, false},
		{"red to a recipient set", pair, TLPRed, true},
		{"red, no key", nil, TLPRed, false},
	} {
		err := Believe(e, tc.key, &Body{Kind: KindMessage, TLP: tc.tlp})
		var nb *NotBelievedError
		switch {
		case tc.want && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.want && (!errors.Is(err, ErrNotBelieved) || !errors.As(err, &nb) || nb.Rule != BeliefRedToRecipients || nb.Author != n.lu.ID()):
			t.Errorf("%s: got %v, want a NotBelievedError for %s", tc.name, err, BeliefRedToRecipients)
		}
	}
}

// Every key entry the keyring does not trust names the rule it breaks.
func TestKeyringRefusals(t *testing.T) {
	n := newNet(t)
	outsider, err := crypto.NewIdentity("cert-xx", t0)
	if err != nil {
		t.Fatal(err)
	}
	pair := []crypto.MemberID{n.lu.ID(), n.fr.ID()}
	key := func(group string) *crypto.GroupKey {
		k, err := crypto.NewGroupKey(group, 2)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	var many []*crypto.Identity
	for range 4 {
		id, err := crypto.NewIdentity("cert-yy", t0)
		if err != nil {
			t.Fatal(err)
		}
		many = append(many, id)
	}
	garbage := n.build(t, n.lu, Tip{}, Draft{Body: Body{Kind: KindKey, TLP: TLPClear, Payload: []byte{0xa0}}})[0]
	for _, tc := range []struct {
		name string
		e    *Entry
		rule string
	}{
		{"no key envelope", garbage, KeyRuleMalformed},
		{"sealed to a non-member", n.keyEntry(t, n.lu, Tip{}, key(RecipientGroup([]crypto.MemberID{n.lu.ID(), n.fr.ID(), outsider.ID()})), n.lu, n.fr, outsider), KeyRuleRecipients},
		{"more slots than members", n.keyEntry(t, n.lu, Tip{}, key(RecipientGroup(pair)), append([]*crypto.Identity{n.lu, n.fr}, many...)...), KeyRuleRecipients},
		{"not sealed to its author", n.keyEntry(t, n.admin, Tip{}, key(RecipientGroup(pair)), n.lu, n.fr), KeyRuleAuthor},
		{"name of another set", n.keyEntry(t, n.lu, Tip{}, key(RecipientGroup(pair)), n.lu, n.fr, n.admin), KeyRuleGroup},
		{"group all from a non-admin", n.keyEntry(t, n.lu, Tip{}, key(GroupAll), n.lu, n.fr, n.admin), KeyRuleIssuer},
		{"need-to-know from a non-admin", n.keyEntry(t, n.lu, Tip{}, key("need-to-know/x"), n.lu, n.fr), KeyRuleIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := DeriveKeyring(n.id, n.roster, n.fr, []*Entry{tc.e})
			r := k.Refused()
			if len(r) != 1 || r[0].Rule != tc.rule || r[0].Entry != tc.e.ID() || r[0].Author != tc.e.Header.Author {
				t.Fatalf("got %v, want one refusal for %s", r, tc.rule)
			}
			if len(k.byID) != 0 {
				t.Error("the refused key is held")
			}
		})
	}
	// A key entry past the seq a revocation keeps issues nothing, also
	// one the node stored before it learned of the revocation.
	l1 := n.keyEntry(t, n.lu, Tip{}, key(RecipientGroup(pair)), n.lu, n.fr)
	l2 := n.keyEntry(t, n.lu, tipOf(l1), key(RecipientGroup(pair)), n.lu, n.fr)
	u, err := crypto.NewUpdate(n.roster, crypto.UpdateSpec{Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "key stolen", Created: t0, FeedSeq: 1, FeedHead: l1.ID()}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := n.roster.Apply(u)
	if err != nil {
		t.Fatal(err)
	}
	k := DeriveKeyring(n.id, revoked, n.fr, []*Entry{l1, l2})
	if r := k.Refused(); len(r) != 1 || r[0].Entry != l2.ID() || r[0].Rule != KeyRuleIssuer {
		t.Errorf("revoked: got %v, want l2 refused for %s", r, KeyRuleIssuer)
	}
	if len(k.Keys(keyIDOf(t, l1))) != 1 {
		t.Error("the key entry the revocation keeps is not trusted")
	}
}

func keyIDOf(t *testing.T, e *Entry) crypto.KeyID {
	t.Helper()
	b, err := DecodeBody(e.BodyBytes())
	if err != nil {
		t.Fatal(err)
	}
	ke, err := crypto.ParseKeyEnvelope(b.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return ke.KeyID()
}

// A named group's key: any member it is sealed to may issue it (no admin
// needed), and ForGroup returns only a key sealed to exactly the group's
// members: a key a member slipped in that also names an outsider is held
// but never written under, and once the group changes no old key fits.
func TestKeyringNamedGroup(t *testing.T) {
	n := newNet(t)
	ops := []crypto.MemberID{n.lu.ID(), n.fr.ID()}
	k1, _ := crypto.NewGroupKey(crypto.GroupKeyName("ops"), 1)
	wide, _ := crypto.NewGroupKey(crypto.GroupKeyName("ops"), 2)
	e1 := n.keyEntry(t, n.lu, Tip{}, k1, n.lu, n.fr)
	e2 := n.keyEntry(t, n.fr, Tip{}, wide, n.fr, n.lu, n.admin) // names the admin too
	kr := DeriveKeyring(n.id, n.roster, n.lu, []*Entry{e1, e2})
	if len(kr.Refused()) != 0 {
		t.Fatalf("refused: %v", kr.Refused())
	}
	if k, ok := kr.ForGroup("ops", ops); !ok || !k.Equal(k1) {
		t.Fatal("the key sealed to exactly the group is not the one to write under")
	}
	if k, ok := kr.Current(crypto.GroupKeyName("ops")); !ok || !k.Equal(wide) {
		t.Fatal("the wider key of a higher epoch is not held (its entries must stay readable)")
	}
	if _, ok := kr.ForGroup("ops", []crypto.MemberID{n.lu.ID()}); ok {
		t.Fatal("a key fits a group it was not sealed to exactly")
	}
	if _, ok := kr.ForGroup("other", ops); ok {
		t.Fatal("a key of one group fits another")
	}
	bad, _ := crypto.NewGroupKey("group/a/b", 1)
	kr = DeriveKeyring(n.id, n.roster, n.lu, []*Entry{n.keyEntry(t, n.fr, Tip{}, bad, n.fr, n.lu)})
	if r := kr.Refused(); len(r) != 1 || r[0].Rule != KeyRuleGroup {
		t.Fatalf("a key of an invalid group name: refused %v", r)
	}
}

// One admin cannot lock members out of reading: a newer network key sealed
// to only some members is not written under while a key every active
// member holds exists; once the newer key reaches everyone, it is.
func TestKeyringNetworkKeyLockout(t *testing.T) {
	n := newNet(t)
	active := []crypto.MemberID{n.admin.ID(), n.lu.ID(), n.fr.ID()}
	all1, _ := crypto.NewGroupKey(GroupAll, 1)
	all2, _ := crypto.NewGroupKey(GroupAll, 2)
	e1 := n.keyEntry(t, n.admin, Tip{}, all1, n.admin, n.lu, n.fr)
	e2 := n.keyEntry(t, n.admin, tipOf(e1), all2, n.admin, n.lu) // leaves fr out
	kr := DeriveKeyring(n.id, n.roster, n.lu, []*Entry{e1, e2})
	if k, ok := kr.Current(GroupAll); !ok || !k.Equal(all2) {
		t.Fatal("the newest key is not the partial one")
	}
	if k, ok := kr.ForNetwork(active); !ok || !k.Equal(all1) {
		t.Fatal("lu writes under a key that leaves fr out")
	}
	// An honest admin gives the newer key to everyone (the whole set, so
	// every member sees who holds it).
	e3 := n.keyEntry(t, n.admin, tipOf(e2), all2, n.admin, n.lu, n.fr)
	kr = DeriveKeyring(n.id, n.roster, n.lu, []*Entry{e1, e2, e3})
	if k, ok := kr.ForNetwork(active); !ok || !k.Equal(all2) {
		t.Fatal("once every member holds the newer key, it is not the one written under")
	}
}
