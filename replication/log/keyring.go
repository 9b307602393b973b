package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
)

// The group every member holds a key of. Only admins issue its keys.
const GroupAll = "all"

// recipientPrefix starts the name of every recipient-set group.
const recipientPrefix = "to/"

// RecipientGroup returns the name of the group whose members are exactly
// ids (order and repeats do not matter): "to/" and 16 hex digits of a hash
// of the sorted IDs. The name travels only inside sealed key envelopes
// (format 2); a member finds its key with [Keyring.ForMembers].
func RecipientGroup(ids []crypto.MemberID) string {
	ids = sortedIDs(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write(id[:])
	}
	return recipientPrefix + hex.EncodeToString(h.Sum(nil)[:8])
}

// IsRecipientGroup reports whether group is a recipient-set group, the only
// kind of group TLP:RED may be sealed to.
func IsRecipientGroup(group string) bool { return strings.HasPrefix(group, recipientPrefix) }

func sortedIDs(ids []crypto.MemberID) []crypto.MemberID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b crypto.MemberID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ids)
}

// ErrUntrustedKey is the class of every key entry the keyring does not
// trust; errors.Is(err, ErrUntrustedKey) holds for every [*KeyRefusal].
var ErrUntrustedKey = errors.New("log: group key not trusted")

// The rules a [KeyRefusal] names. They are stable: they appear in logs,
// metrics and the API.
const (
	// KeyRuleMalformed: the key entry holds no key envelope, or one whose
	// sealed part does not open as one.
	KeyRuleMalformed = "key-malformed"
	// KeyRuleRecipients: the envelope is not sealed to exactly the members
	// it names (as many slots as members, every one a member of the
	// network, never more slots than the network has members).
	KeyRuleRecipients = "key-recipients"
	// KeyRuleAuthor: the author is not among the members the key is sealed
	// to. An issuer always holds the key it draws, so a key that leaves
	// its issuer out is not what it claims to be.
	KeyRuleAuthor = "key-author"
	// KeyRuleGroup: a recipient-set group whose name is not the one of the
	// members the key is sealed to.
	KeyRuleGroup = "key-group"
	// KeyRuleIssuer: a key of group all or of a need-to-know group from a
	// member who is not an admin.
	KeyRuleIssuer = "key-issuer"
)

// A KeyRefusal is a key entry the keyring does not trust, and why.
type KeyRefusal struct {
	Entry  Hash
	Author crypto.MemberID
	Rule   string
	Detail string
}

func (r *KeyRefusal) Error() string {
	return fmt.Sprintf("log: key entry %s of %s not trusted (%s): %s", r.Entry.Short(), r.Author.Short(), r.Rule, r.Detail)
}

// Is makes errors.Is(err, ErrUntrustedKey) true.
func (r *KeyRefusal) Is(target error) bool { return target == ErrUntrustedKey }

// ErrNotBelieved is the class of entries that are valid (stored and relayed
// like any other: validity never depends on what a node can decrypt) but
// that a node must not believe: never show, export or act on.
// errors.Is(err, ErrNotBelieved) holds for every [*NotBelievedError].
var ErrNotBelieved = errors.New("log: entry is valid but not believed")

// The rules a [NotBelievedError] names. They are stable.
const (
	// BeliefRedToRecipients: a TLP:RED entry must be sealed to a
	// recipient-set group; one sealed to the whole network or to a
	// need-to-know group breaks its own label.
	BeliefRedToRecipients = "red-not-to-recipients"
	// BeliefSystemControl: a body of a system kind (roster, key,
	// proposal, checkpoint) must come in an entry at control priority.
	// Build writes nothing else, and only entries at control priority are
	// held to a composite signature before they count: a sealed proposal
	// or checkpoint is opaque to validity, so its header's priority is
	// what says "system" there (see the package documentation, "Narrow
	// links").
	BeliefSystemControl = "system-kind-not-control"
)

// A NotBelievedError is an entry a node does not believe, and why. It
// counts as an offence of the entry's author.
type NotBelievedError struct {
	Rule   string
	Author crypto.MemberID
	Seq    uint64
	Detail string
}

func (e *NotBelievedError) Error() string {
	return fmt.Sprintf("log: entry %s/%d not believed (%s): %s", e.Author.Short(), e.Seq, e.Rule, e.Detail)
}

// Is makes errors.Is(err, ErrNotBelieved) true.
func (e *NotBelievedError) Is(target error) bool { return target == ErrNotBelieved }

// Believe returns nil if a node may believe body, the opened body of e,
// which key opened; otherwise a [*NotBelievedError] naming the rule.
func Believe(e *Entry, key *crypto.GroupKey, body *Body) error {
	if systemKind(body.Kind) && e.Header.Priority != Control {
		return &NotBelievedError{Rule: BeliefSystemControl, Author: e.Header.Author, Seq: e.Header.Seq,
			Detail: fmt.Sprintf("a %s entry at %s priority; system kinds are written at control priority only", body.Kind, e.Header.Priority)}
	}
	if body.TLP == TLPRed && !e.Header.Plain() && (key == nil || !IsRecipientGroup(key.Group())) {
		group := "no group"
		if key != nil {
			group = "a group that is not a recipient list"
			if key.Group() == GroupAll {
				group = "the whole network"
			}
		}
		return &NotBelievedError{Rule: BeliefRedToRecipients, Author: e.Header.Author, Seq: e.Header.Seq,
			Detail: "labelled TLP:RED but sealed to " + group + "; RED goes to named recipients only"}
	}
	return nil
}

// A grant is one trusted group key and the members it was sealed to.
type grant struct {
	key     *crypto.GroupKey
	members []crypto.MemberID // sorted, unique: the union over its entries
	entry   Hash              // the smallest ID of the entries that carry it
}

// A Keyring is the group keys one member trusts: the result of
// [DeriveKeyring]. It is immutable and safe for concurrent use; slices it
// returns are the caller's.
type Keyring struct {
	// byID: the trusted keys of one key ID. Several only if someone issued
	// a key with a key ID already in use; every one is tried when opening.
	byID    map[crypto.KeyID][]*grant
	refused map[Hash]*KeyRefusal
}

// DeriveKeyring returns the group keys me trusts, given roster and the key
// entries the node holds (other entries are skipped). It is the whole of
// the key policy, and deterministic: the same roster and entries give the
// same keyring on every member, in any order. For each key entry sealed to
// me:
//
//   - the envelope must be sealed to exactly the members it names: as many
//     recipient slots as members ([KeyRuleRecipients]), every one a member
//     of the network, and the author among them ([KeyRuleAuthor]);
//   - group all: the author is an admin ([KeyRuleIssuer]);
//   - a recipient-set group ("to/…"): its name is [RecipientGroup] of the
//     members ([KeyRuleGroup]); any of those members may issue it (a new
//     epoch too), nobody else;
//   - a named need-to-know group ("group/…", [crypto.GroupKeyName]): any
//     member it is sealed to may issue it. The roster says who is in the
//     group (admins decide, with their threshold); a key is written under
//     only while it is sealed to exactly the roster's group
//     ([Keyring.ForGroup]), so a key naming anyone else is held but never
//     used, and every change of the group brings a new epoch. Old epochs
//     stay trusted, so what was written under them stays readable to
//     those they were sealed to;
//   - any other group: the author is an admin ([KeyRuleIssuer]);
//   - an entry a revoked author wrote past the seq its revocation keeps
//     issues nothing ([KeyRuleIssuer]).
//
// An admin revoked later stays an issuer for the key entries its
// revocation keeps valid, so what was sealed under its keys stays
// readable.
//
// A member can check only its own slot: "sealed to exactly" rests on the
// slot count and on the author being in the set, so an outsider cannot
// issue a key for a set it is not in, and a member of the set could leak
// the key anyway. Envelopes with more slots than the network has members
// are refused before any slot is tried (trying costs a decapsulation per
// slot). Apart from that and from a payload that is no key envelope, which
// every member refuses, key entries not sealed to me are skipped unjudged:
// only their recipients can judge them.
func DeriveKeyring(network crypto.NetworkID, roster *crypto.Roster, me *crypto.Identity, entries []*Entry) *Keyring {
	return DeriveKeyringHeld(network, roster, []*crypto.Identity{me}, entries)
}

// DeriveKeyringHeld is DeriveKeyring for a member holding several
// identities: its own and those its keys were rotated away from, whose key
// envelopes it still opens so that what was sealed to them stays readable.
func DeriveKeyringHeld(network crypto.NetworkID, roster *crypto.Roster, held []*crypto.Identity, entries []*Entry) *Keyring {
	k := &Keyring{byID: map[crypto.KeyID][]*grant{}, refused: map[Hash]*KeyRefusal{}}
	return k.WithHeld(network, roster, held, entries)
}

// With returns the keyring after also judging entries, under the same
// roster as k was derived with (when the roster changes, derive again):
// k.With(…, a).With(…, b) equals DeriveKeyring(…, a+b).
func (k *Keyring) With(network crypto.NetworkID, roster *crypto.Roster, me *crypto.Identity, entries []*Entry) *Keyring {
	return k.WithHeld(network, roster, []*crypto.Identity{me}, entries)
}

// WithHeld is With for a member holding several identities
// (DeriveKeyringHeld).
func (k *Keyring) WithHeld(network crypto.NetworkID, roster *crypto.Roster, held []*crypto.Identity, entries []*Entry) *Keyring {
	next := &Keyring{byID: make(map[crypto.KeyID][]*grant, len(k.byID)), refused: make(map[Hash]*KeyRefusal, len(k.refused))}
	for id, gs := range k.byID {
		next.byID[id] = slices.Clone(gs)
	}
	for h, r := range k.refused {
		next.refused[h] = r
	}
	for _, e := range entries {
		g, refusal := judgeKey(network, roster, held, e)
		switch {
		case refusal != nil:
			next.refused[e.ID()] = refusal
		case g != nil:
			next.add(g)
		}
	}
	return next
}

// add merges g: the same key (ID, group, epoch, secret) from another entry
// adds its members; another key under a key ID in use is kept beside it,
// in a canonical order so that the order of arrival does not matter.
func (k *Keyring) add(g *grant) {
	gs := k.byID[g.key.ID()]
	for i, have := range gs {
		if have.key.Equal(g.key) {
			first := have.entry
			if bytes.Compare(g.entry[:], first[:]) < 0 {
				first = g.entry
			}
			gs[i] = &grant{key: have.key, members: sortedIDs(append(slices.Clone(have.members), g.members...)), entry: first}
			return
		}
	}
	gs = append(gs, g)
	slices.SortFunc(gs, func(a, b *grant) int { return bytes.Compare(a.entry[:], b.entry[:]) })
	k.byID[g.key.ID()] = gs
}

// judgeKey returns the grant of a trusted key entry sealed to me, a refusal,
// or neither (not a key entry, or not sealed to me).
func judgeKey(network crypto.NetworkID, roster *crypto.Roster, held []*crypto.Identity, e *Entry) (*grant, *KeyRefusal) {
	if !e.Header.Plain() {
		return nil, nil
	}
	b, err := DecodeBody(e.BodyBytes())
	if err != nil || b.Kind != KindKey {
		return nil, nil
	}
	author := e.Header.Author
	refuse := func(rule, format string, args ...any) (*grant, *KeyRefusal) {
		return nil, &KeyRefusal{Entry: e.ID(), Author: author, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	ke, err := crypto.ParseKeyEnvelope(b.Payload)
	if err != nil {
		return refuse(KeyRuleMalformed, "%v", err)
	}
	m, ok := roster.Member(author)
	if !ok {
		return refuse(KeyRuleIssuer, "the author is not a member of the network")
	}
	if m.Revoked && e.Header.Seq > m.FeedSeq {
		// CheckRun refuses such entries; one stored before its node
		// learned of the revocation is set aside, but must not count
		// meanwhile.
		return refuse(KeyRuleIssuer, "%s was revoked (%s); its entries after seq %d do not count", m.Card.Name(), m.Reason, m.FeedSeq)
	}
	if n := len(roster.Members()); ke.Slots() > n {
		return refuse(KeyRuleRecipients, "%d recipient slots, but the network has %d members", ke.Slots(), n)
	}
	var gr *crypto.Grant
	err = crypto.ErrNotRecipient
	for _, me := range held {
		if gr, err = me.OpenGrant(network, ke); !errors.Is(err, crypto.ErrNotRecipient) {
			break
		}
	}
	if errors.Is(err, crypto.ErrNotRecipient) {
		return nil, nil
	}
	if err != nil {
		return refuse(KeyRuleMalformed, "%v", err)
	}
	key := gr.Key
	if len(gr.Members) != ke.Slots() {
		return refuse(KeyRuleRecipients, "the key of epoch %d names %d members but is sealed to %d slots", key.Epoch(), len(gr.Members), ke.Slots())
	}
	for _, id := range gr.Members {
		if _, ok := roster.Member(id); !ok {
			return refuse(KeyRuleRecipients, "the key of epoch %d is sealed to %s, who is not a member of the network", key.Epoch(), id.Short())
		}
	}
	if !slices.Contains(gr.Members, author) {
		return refuse(KeyRuleAuthor, "%s issued a key of epoch %d that is not sealed to itself", m.Card.Name(), key.Epoch())
	}
	admin := roster.IsAdmin(author) || (m.Revoked && m.HasRole(crypto.RoleAdmin))
	switch {
	case IsRecipientGroup(key.Group()):
		if want := RecipientGroup(gr.Members); key.Group() != want {
			return refuse(KeyRuleGroup, "the key of epoch %d is for group %s, but its %d members make group %s", key.Epoch(), key.Group(), len(gr.Members), want)
		}
	case IsNamedGroup(key.Group()):
		// The roster says who is in a named group (admins decide); any of
		// the members the key is sealed to may issue it. A key is written
		// under only while it is sealed to exactly the roster's group
		// (ForGroup), so a key naming someone else is never used.
		if err := crypto.CheckGroupName(strings.TrimPrefix(key.Group(), namedPrefix)); err != nil {
			return refuse(KeyRuleGroup, "%v", err)
		}
	case !admin && key.Group() == GroupAll:
		return refuse(KeyRuleIssuer, "%s is not an admin: only admins issue keys of the whole network", m.Card.Name())
	case !admin:
		return refuse(KeyRuleIssuer, "%s is not an admin: only admins issue keys of need-to-know groups; a recipient-set group names its members exactly", m.Card.Name())
	}
	return &grant{key: key, members: gr.Members, entry: e.ID()}, nil
}

// Keys returns the trusted keys with ID id: usually one, several only if
// someone issued a key under an ID already in use.
func (k *Keyring) Keys(id crypto.KeyID) []*crypto.GroupKey {
	var out []*crypto.GroupKey
	for _, g := range k.byID[id] {
		out = append(out, g.key)
	}
	return out
}

// Current returns the trusted key of group with the highest epoch (of
// equal epochs, the one with the smallest key ID, so every member picks the
// same one).
func (k *Keyring) Current(group string) (*crypto.GroupKey, bool) {
	var best *grant
	for _, gs := range k.byID {
		for _, g := range gs {
			if g.key.Group() == group && (best == nil || newer(g, best)) {
				best = g
			}
		}
	}
	if best == nil {
		return nil, false
	}
	return best.key, true
}

// newer orders the keys of one group: higher epoch first, then smaller key
// ID, then (keys under one ID) smaller entry ID.
func newer(a, b *grant) bool {
	if a.key.Epoch() != b.key.Epoch() {
		return a.key.Epoch() > b.key.Epoch()
	}
	aid, bid := a.key.ID(), b.key.ID()
	if c := bytes.Compare(aid[:], bid[:]); c != 0 {
		return c < 0
	}
	return bytes.Compare(a.entry[:], b.entry[:]) < 0
}

// ForNetwork returns the key of group all to write under, given the active
// members: of the trusted keys, the one that leaves out the fewest active
// members, then the newest. An admin cannot lock members out of reading by
// issuing a newer epoch sealed to only some of them: the others' nodes
// keep writing under a key every member holds, and an honest admin's node
// gives the newer key to those it left out, which settles it.
func (k *Keyring) ForNetwork(active []crypto.MemberID) (*crypto.GroupKey, bool) {
	var best *grant
	bestMissing := 0
	for _, gs := range k.byID {
		for _, g := range gs {
			if g.key.Group() != GroupAll {
				continue
			}
			missing := 0
			for _, id := range active {
				if !slices.Contains(g.members, id) {
					missing++
				}
			}
			if best == nil || missing < bestMissing || missing == bestMissing && newer(g, best) {
				best, bestMissing = g, missing
			}
		}
	}
	if best == nil {
		return nil, false
	}
	return best.key, true
}

// namedPrefix starts the key group of a named need-to-know group.
const namedPrefix = "group/"

// IsNamedGroup reports whether a key group is a named group's
// (crypto.GroupKeyName).
func IsNamedGroup(group string) bool { return strings.HasPrefix(group, namedPrefix) }

// ForGroup returns the key to write under for the named group name whose
// members (in the roster) are members: the trusted key of the group sealed
// to exactly those members with the highest epoch (then the smallest key
// ID). None: the group changed since its last key, and a member issues a
// new epoch.
func (k *Keyring) ForGroup(name string, members []crypto.MemberID) (*crypto.GroupKey, bool) {
	want := sortedIDs(members)
	var best *grant
	for _, gs := range k.byID {
		for _, g := range gs {
			if g.key.Group() == crypto.GroupKeyName(name) && slices.Equal(sortedIDs(g.members), want) && (best == nil || newer(g, best)) {
				best = g
			}
		}
	}
	if best == nil {
		return nil, false
	}
	return best.key, true
}

// ForMembers returns the current key of the recipient-set group of exactly
// ids.
func (k *Keyring) ForMembers(ids []crypto.MemberID) (*crypto.GroupKey, bool) {
	return k.Current(RecipientGroup(ids))
}

// Members returns the members key was sealed to, over every trusted entry
// that carries it (nil for a key the keyring does not trust).
func (k *Keyring) Members(key *crypto.GroupKey) []crypto.MemberID {
	for _, g := range k.byID[key.ID()] {
		if g.key.Equal(key) {
			return slices.Clone(g.members)
		}
	}
	return nil
}

// Refused returns the key entries sealed to this member that it does not
// trust, in order of entry ID.
func (k *Keyring) Refused() []*KeyRefusal {
	out := make([]*KeyRefusal, 0, len(k.refused))
	for _, r := range k.refused {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *KeyRefusal) int { return bytes.Compare(a.Entry[:], b.Entry[:]) })
	return out
}
