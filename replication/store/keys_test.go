package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// keyNet is a network of an admin, two CSIRTs A and B who talk in private,
// and a member M who wants to listen.
type keyNet struct {
	*testNet
	m *crypto.Identity
}

var (
	keyNetOnce   sync.Once
	sharedKeyNet *keyNet
)

func newKeyNet(t testing.TB) *keyNet {
	t.Helper()
	keyNetOnce.Do(func() {
		n, more := makeTestNet("keys", "cert-xx")
		sharedKeyNet = &keyNet{testNet: n, m: more[0]}
	})
	return sharedKeyNet
}

// keyEntryOf builds, as author's seq 1, a key entry that seals key to the
// given members (exactly those: the author only if listed).
func (n *keyNet) keyEntryOf(t testing.TB, author *crypto.Identity, key *crypto.GroupKey, to ...*crypto.Identity) *log.Entry {
	t.Helper()
	var rs []crypto.Recipient
	for _, id := range to {
		rs = append(rs, id.Card().Recipient())
	}
	e, err := buildKeyEntry(author, n.genesis.NetworkID(), key, rs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// pairGroup is the name of the recipient-set group of ids.
func pairGroup(ids ...crypto.MemberID) string { return log.RecipientGroup(ids) }

// keyFor is the key s would seal a post to exactly members with.
func keyFor(s *Store, members ...crypto.MemberID) (*crypto.GroupKey, bool) {
	return s.KeyFor(members)
}

// Finding 3 of issue 11: M hands out a newer key for the group of A and B
// (sealed to A, B and M, or to A and B while M keeps the key it drew); A
// must not take it, or A's next TLP:RED post to B is readable by M. Each
// refusal names its rule and counts as an offence of M.
func TestKeySubstitutionRefused(t *testing.T) {
	n := newKeyNet(t)
	ab := []crypto.MemberID{n.lu.ID(), n.fr.ID()}
	for _, tc := range []struct {
		name  string
		group string
		to    []*crypto.Identity
		rule  string
	}{
		{"sealed to the pair and the attacker", pairGroup(ab...), []*crypto.Identity{n.lu, n.fr, n.m}, log.KeyRuleGroup},
		{"sealed to the pair, the attacker keeps the key it drew", pairGroup(ab...), []*crypto.Identity{n.lu, n.fr}, log.KeyRuleAuthor},
		{"a need-to-know group from a non-admin", "need-to-know/ab", []*crypto.Identity{n.lu, n.fr, n.m}, log.KeyRuleIssuer},
		{"the whole network from a non-admin", "all", []*crypto.Identity{n.admin, n.lu, n.fr, n.m}, log.KeyRuleIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := openStore(t, t.TempDir(), n.testNet, n.lu)
			own, _ := crypto.NewGroupKey(pairGroup(ab...), 1)
			if _, err := a.AppendKey(context.Background(), own, []crypto.Recipient{n.fr.Card().Recipient()}); err != nil {
				t.Fatal(err)
			}
			evil, _ := crypto.NewGroupKey(tc.group, 2)
			mustIngest(t, a, n.keyEntryOf(t, n.m, evil, tc.to...))
			if k, ok := keyFor(a, ab...); !ok || !k.Equal(own) {
				t.Errorf("A would seal its next post to B under key %v (epoch %d), want its own key", k.ID(), k.Epoch())
			}
			if _, ok := a.Key(evil.ID()); ok {
				t.Error("A trusts the key M issued")
			}
			want := []Offence{{Author: n.m.ID(), Rule: tc.rule, Entries: 1}}
			if got := a.Offences(); !slices.Equal(got, want) {
				t.Errorf("offences: got %+v, want %+v", got, want)
			}
		})
	}
	// B, the other member of the pair, may issue a new epoch: A takes it.
	a := openStore(t, t.TempDir(), n.testNet, n.lu)
	own, _ := crypto.NewGroupKey(pairGroup(ab...), 1)
	if _, err := a.AppendKey(context.Background(), own, []crypto.Recipient{n.fr.Card().Recipient()}); err != nil {
		t.Fatal(err)
	}
	next, _ := crypto.NewGroupKey(pairGroup(ab...), 2)
	mustIngest(t, a, n.keyEntryOf(t, n.fr, next, n.fr, n.lu))
	if k, ok := keyFor(a, ab...); !ok || !k.Equal(next) {
		t.Error("A does not take the new epoch B, a member of the pair, issued")
	}
	if got := a.Offences(); len(got) != 0 {
		t.Errorf("offences of honest members: %+v", got)
	}
}

// redToAll builds, as author's next entry after tip, what log.Build refuses to write: a
// TLP:RED entry sealed under key (the whole-network key), signed.
func redToAll(t testing.TB, n *testNet, author *crypto.Identity, tip log.Tip, key *crypto.GroupKey, text string) *log.Entry {
	t.Helper()
	es, err := log.Build(author, n.genesis.NetworkID(), tip, 0, t0, []log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: "placeholder"}, Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := (&log.Body{Kind: log.KindMessage, TLP: log.TLPRed, Text: text}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	body, err := crypto.SealWith(key, n.genesis.NetworkID(), es[0].HeaderBytes(), plain)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("crisismesh/entry-id/v1\x00"))
	h.Write(es[0].HeaderBytes())
	h.Write(body)
	sig, err := author.Sign(crypto.ContextEntry, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalCanonical(map[uint64][]byte{1: es[0].HeaderBytes(), 2: body, 3: sig})
	if err != nil {
		t.Fatal(err)
	}
	e, err := log.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Finding 5 of issue 11: TLP:RED was enforced only by its author. An entry
// labelled RED but sealed to the whole network is valid (stored and relayed
// like any other) but is never believed: Read refuses it naming the rule,
// and it counts once as an offence of its author, from when it arrives.
func TestRedSealedToAllNotBelieved(t *testing.T) {
	n := newKeyNet(t)
	red := redToAll(t, n.testNet, n.m, log.Tip{}, n.key, "for everyone, labelled red")
	s := openStore(t, t.TempDir(), n.testNet, n.fr)
	mustIngest(t, s, n.keyEntry)
	if res := mustIngest(t, s, red); len(res.Added) != 1 {
		t.Fatalf("the entry is valid and must be stored: added %d, rejected %v", len(res.Added), res.Rejected)
	}
	want := []Offence{{Author: n.m.ID(), Rule: log.BeliefRedToRecipients, Entries: 1}}
	if got := s.Offences(); !slices.Equal(got, want) {
		t.Errorf("offences on arrival: got %+v, want %+v", got, want)
	}
	for range 2 {
		b, err := s.Read(red)
		var nb *log.NotBelievedError
		switch {
		case err == nil:
			t.Fatalf("Read showed a TLP:RED entry sealed to the whole network: %q", b.Text)
		case !errors.Is(err, log.ErrNotBelieved) || !errors.As(err, &nb) || nb.Rule != log.BeliefRedToRecipients:
			t.Fatalf("Read: got %v, want a NotBelievedError for rule %s", err, log.BeliefRedToRecipients)
		}
	}
	if got := s.Offences(); !slices.Equal(got, want) {
		t.Errorf("offences after reading twice: got %+v, want %+v", got, want)
	}
	// Relayed like any other entry.
	relay := openStore(t, t.TempDir(), n.testNet, n.lu)
	if res := mustIngest(t, relay, red); len(res.Added) != 1 {
		t.Errorf("a second node refuses the valid entry: %v", res.Rejected)
	}
	// RED to a need-to-know group (an admin's) is not believed either; RED
	// to a recipient-set group is.
	admin := openStore(t, t.TempDir(), n.testNet, n.admin)
	mustIngest(t, admin, n.keyEntry)
	ntk, _ := crypto.NewGroupKey("need-to-know/x", 1)
	ke, err := admin.AppendKey(context.Background(), ntk, []crypto.Recipient{n.fr.Card().Recipient(), n.m.Card().Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, ke)
	h, _ := admin.Head(n.admin.ID())
	if _, err := s.Read(redToAll(t, n.testNet, n.admin, log.Tip{Seq: h.Seq, ID: h.ID, Lamport: h.Lamport}, ntk, "need to know")); !errors.Is(err, log.ErrNotBelieved) {
		t.Errorf("RED sealed to a need-to-know group: got %v, want ErrNotBelieved", err)
	}
	pair, _ := crypto.NewGroupKey(pairGroup(n.lu.ID(), n.fr.ID()), 1)
	lu := openStore(t, t.TempDir(), n.testNet, n.lu)
	ke, err = lu.AppendKey(context.Background(), pair, []crypto.Recipient{n.fr.Card().Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	es := mustAppend(t, lu, log.Draft{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPRed, Text: "for B"}, Key: pair})
	mustIngest(t, s, ke, es[0])
	if b, err := s.Read(es[0]); err != nil || b.Text != "for B" {
		t.Errorf("RED to a recipient set: %v", err)
	}
}

// Finding 6 of issue 11: a key entry named its recipients' member IDs and a
// group name derived from them in clear, so every relay learned who talks
// to whom. Now neither is in the entry's bytes, and a relay that is not a
// recipient knows nothing of the recipients.
func TestKeyEntryHidesRecipients(t *testing.T) {
	n := newKeyNet(t)
	a := openStore(t, t.TempDir(), n.testNet, n.lu)
	key, _ := crypto.NewGroupKey(pairGroup(n.lu.ID(), n.fr.ID()), 1)
	e, err := a.AppendKey(context.Background(), key, []crypto.Recipient{n.fr.Card().Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	fr, lu := n.fr.ID(), n.lu.ID()
	for what, secret := range map[string][]byte{
		"the recipient's member ID": fr[:],
		"the author's member ID":    lu[:],
		"the group name":            []byte(key.Group()),
		"the group name's hash":     []byte(strings.TrimPrefix(key.Group(), "to/")),
	} {
		if bytes.Contains(e.BodyBytes(), secret) {
			t.Errorf("the key entry's body holds %s in clear", what)
		}
	}
	relay := openStore(t, t.TempDir(), n.testNet, n.m)
	mustIngest(t, relay, e)
	if got := relay.KeyRecipients(key.ID()); len(got) != 0 {
		t.Errorf("a relay outside the group knows its recipients: %v", got)
	}
	// B, a recipient, learns the group and its members.
	b := openStore(t, t.TempDir(), n.testNet, n.fr)
	mustIngest(t, b, e)
	if got := b.KeyRecipients(key.ID()); len(got) != 2 {
		t.Errorf("B knows %d recipients of its own group, want 2", len(got))
	}
	if k, ok := keyFor(b, n.lu.ID(), n.fr.ID()); !ok || !k.Equal(key) {
		t.Error("B does not hold the key of its group with A")
	}
}

// Key entries of format 1 (recipients and group name in clear), written by
// the code before format 2, still open in a store of today, also after a
// restart, and the keys they carry pass the keyring's rules.
func TestKeyEntriesOfFormat1StillOpen(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "keys-v1", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	g, err := crypto.ParseGenesis(read("genesis.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	kf, err := crypto.ParseKeyFile(read("cert-fr.key"))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := kf.Unlock(nil)
	if err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	if err := crypto.UnmarshalCanonical(read("entries.cbor"), &raw); err != nil {
		t.Fatal(err)
	}
	var es []*log.Entry
	for _, b := range raw {
		e, err := log.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	dir := t.TempDir()
	for round := range 2 {
		s, err := Open(dir, g, fr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if res := mustIngest(t, s, es...); len(res.Added) != 4 {
				t.Fatalf("added %d of 4: %v", len(res.Added), res.Rejected)
			}
		}
		for i, want := range map[int]string{1: "amber to all, format 1", 3: "red to cert-fr, format 1"} {
			if b, err := s.Read(es[i]); err != nil || b.Text != want {
				t.Errorf("round %d, entry %d: %v", round, i, err)
			}
		}
		lu, _ := s.Roster().ByName("cert-lu")
		if _, ok := s.KeyFor([]crypto.MemberID{lu.Card.ID(), fr.ID()}); !ok {
			t.Errorf("round %d: the format-1 key of cert-lu and cert-fr is not found", round)
		}
		if got := s.Offences(); len(got) != 0 {
			t.Errorf("round %d: offences %+v", round, got)
		}
		s.Close()
	}
}
