package store

import (
	"context"
	"slices"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// learnKeys judges new key entries into the keyring. Opening an envelope
// costs a decapsulation per slot, so it runs outside mu; the caller holds
// wmu, so nobody else replaces the keyring meanwhile.
func (s *Store) learnKeys(es []*log.Entry) {
	s.mu.RLock()
	old, roster := s.keyring, s.roster
	s.mu.RUnlock()
	next := old.WithHeld(s.network, roster, s.held, es)
	s.mu.Lock()
	s.keyring = next
	s.noteKeyRefusalsLocked(old)
	s.mu.Unlock()
}

// noteKeyRefusalsLocked records the key refusals of the keyring that old
// (nil: none) did not have. The caller holds mu.
func (s *Store) noteKeyRefusalsLocked(old *log.Keyring) {
	seen := map[log.Hash]bool{}
	if old != nil {
		for _, r := range old.Refused() {
			seen[r.Entry] = true
		}
	}
	for _, r := range s.keyring.Refused() {
		s.offences[offence{author: r.Author, rule: r.Rule, entry: r.Entry}] = struct{}{}
		if !seen[r.Entry] {
			s.logger.Warn("key entry not trusted", "entry", r.Entry.Short(), "author", r.Author.Short(), "rule", r.Rule, "detail", r.Detail)
		}
	}
}

// Key returns a trusted group key with ID id, if this node holds one.
func (s *Store) Key(id crypto.KeyID) (*crypto.GroupKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := s.keyring.Keys(id)
	if len(keys) == 0 {
		return nil, false
	}
	return keys[0], true
}

// CurrentKey returns the trusted key of group with the highest epoch.
func (s *Store) CurrentKey(group string) (*crypto.GroupKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keyring.Current(group)
}

// KeyFor returns the current trusted key of the recipient-set group of
// exactly members (see log.RecipientGroup), if this node holds one. Only
// a key sealed to exactly those members, by one of them, qualifies.
func (s *Store) KeyFor(members []crypto.MemberID) (*crypto.GroupKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keyring.ForMembers(members)
}

// NetworkKey returns the key of group all to write under: the trusted one
// that leaves out the fewest active members, then the newest
// (log.Keyring.ForNetwork), so that one admin cannot lock members out of
// reading with a newer key sealed to only some of them.
func (s *Store) NetworkKey() (*crypto.GroupKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keyring.ForNetwork(s.roster.ActiveIDs())
}

// GroupKey returns the key to write under for the named group name: the
// trusted key sealed to exactly the members the roster lists for it
// (log.Keyring.ForGroup). ok is false when the group does not exist or has
// no such key yet (a member issues a new epoch).
func (s *Store) GroupKey(name string) (key *crypto.GroupKey, members []crypto.MemberID, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	members, exists := s.roster.Group(name)
	if !exists {
		return nil, nil, false
	}
	key, ok = s.keyring.ForGroup(name, members)
	return key, members, ok
}

// AppendKey distributes key to recipients with a key entry. This node is
// always among the recipients, so it can reopen the key after a restart.
func (s *Store) AppendKey(ctx context.Context, key *crypto.GroupKey, recipients []crypto.Recipient) (*log.Entry, error) {
	me := s.self.Card().Recipient()
	if !slices.ContainsFunc(recipients, func(r crypto.Recipient) bool { return r.ID == me.ID }) {
		recipients = append(recipients, me)
	}
	ke, err := crypto.NewKeyEnvelope(s.network, key, recipients)
	if err != nil {
		return nil, err
	}
	es, err := s.Append(ctx, log.Draft{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: ke.Bytes()}})
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// KeyRecipients returns the members the trusted group key with ID id was
// sealed to, over the key entries this node holds. Only recipients of a
// key learn its members (key envelopes hide them from everyone else), so
// it is nil for a key this node does not hold. Should someone issue
// another key under the same ID, this is the members of one of them: use
// KeyMembers where the key is at hand.
func (s *Store) KeyRecipients(id crypto.KeyID) []crypto.MemberID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := s.keyring.Keys(id)
	if len(keys) == 0 {
		return nil
	}
	return s.keyring.Members(keys[0])
}

// KeyMembers returns the members key was sealed to, over the key entries
// this node holds that carry it (nil if this node does not trust key).
// Unlike KeyRecipients it cannot be misled by another key issued under the
// same key ID.
func (s *Store) KeyMembers(key *crypto.GroupKey) []crypto.MemberID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keyring.Members(key)
}
