package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// plainEntries returns the held plain entries (roster, key) in display
// order.
func plainEntries(txn *badger.Txn) ([]*log.Entry, error) {
	var out []*log.Entry
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pPlain}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		id, err := it.Item().ValueCopy(nil)
		if err != nil || len(id) != 32 {
			return nil, fmt.Errorf("%w: plain index: %v", ErrCorrupt, err)
		}
		e, err := getEntry(txn, log.Hash(id))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// loadPlainLocked rebuilds roster and keys at open.
func (s *Store) loadPlainLocked(txn *badger.Txn) error {
	plain, err := plainEntries(txn)
	if err != nil {
		return err
	}
	s.roster = s.rosterFrom(plain)
	for _, e := range plain {
		s.learnKey(e)
	}
	return nil
}

// applyPlain takes effect of newly stored plain entries: keys sealed to us
// are opened; roster updates rebuild the roster and set aside what a
// revocation refuses. The caller holds wmu.
func (s *Store) applyPlain(added []*log.Entry) error {
	rosterChanged := false
	for _, e := range added {
		body, err := log.DecodeBody(e.BodyBytes())
		if err != nil {
			continue // CheckRun let it in, so it decodes; be safe anyway
		}
		switch body.Kind {
		case log.KindKey:
			s.mu.Lock()
			s.learnKey(e)
			s.mu.Unlock()
		case log.KindRoster:
			rosterChanged = true
		}
	}
	if !rosterChanged {
		return nil
	}
	// Enforcing a revocation may set aside roster entries (of a revoked
	// admin), which changes the roster again: repeat until it holds still.
	// Each round only removes entries, so this ends.
	var before []log.Hash
	for {
		var plain []*log.Entry
		err := s.db.View(func(txn *badger.Txn) error {
			var err error
			plain, err = plainEntries(txn)
			return err
		})
		if err != nil {
			return err
		}
		now := make([]log.Hash, len(plain))
		for i, e := range plain {
			now[i] = e.ID()
		}
		if before != nil && slices.Equal(before, now) {
			return nil
		}
		before = now
		next := s.rosterFrom(plain)
		s.mu.Lock()
		s.roster = next
		s.mu.Unlock()
		if err := s.enforceRevocations(next); err != nil {
			return err
		}
	}
}

// RosterUpdates returns the roster updates in force, in version order:
// those that build the current roster from the genesis.
func (s *Store) RosterUpdates() ([]*crypto.Update, error) {
	var plain []*log.Entry
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		plain, err = plainEntries(txn)
		return err
	})
	if err != nil {
		return nil, err
	}
	_, applied, _ := log.DeriveRoster(s.genesis.Roster(), plain)
	out := make([]*crypto.Update, len(applied))
	for i, a := range applied {
		out[i] = a.Update
	}
	return out, nil
}

// rosterFrom derives the roster from the genesis and the roster entries
// among plain (log.DeriveRoster), logging the entries that do not count.
func (s *Store) rosterFrom(plain []*log.Entry) *crypto.Roster {
	r, _, refused := log.DeriveRoster(s.genesis.Roster(), plain)
	for _, f := range refused {
		if f.Rule != "superseded" {
			s.logger.Warn("roster entry does not count", "entry", f.Entry.ID().Short(), "author", f.Entry.Header.Author.Short(), "rule", f.Rule, "err", f.Err)
		}
	}
	return r
}

// learnKey opens a key entry sealed to us and remembers the group key. The
// caller holds mu (or is opening the store).
func (s *Store) learnKey(e *log.Entry) {
	b, err := log.DecodeBody(e.BodyBytes())
	if err != nil || b.Kind != log.KindKey {
		return
	}
	ke, err := crypto.ParseKeyEnvelope(b.Payload)
	if err != nil {
		s.logger.Warn("key entry does not hold a key envelope", "entry", e.ID().Short(), "err", err)
		return
	}
	// Keys of the whole-network group come from admins only: otherwise any
	// member could hand out a newer "all" key that leaves others out.
	if ke.Group() == "all" && !s.roster.IsAdmin(e.Header.Author) {
		s.logger.Warn("ignoring a key for group all from a non-admin", "entry", e.ID().Short(), "author", e.Header.Author.Short())
		return
	}
	// Recipients are as the entries' (signed) authors declared them; a key
	// may be sealed again later to members who joined since.
	for _, r := range ke.Recipients() {
		if !slices.Contains(s.keyRecipients[ke.KeyID()], r) {
			s.keyRecipients[ke.KeyID()] = append(s.keyRecipients[ke.KeyID()], r)
		}
	}
	me := s.self.ID()
	if !slices.Contains(ke.Recipients(), me) {
		return
	}
	k, err := s.self.OpenKeyEnvelope(s.network, ke)
	if err != nil {
		s.logger.Warn("cannot open a group key sealed to us", "entry", e.ID().Short(), "group", ke.Group(), "epoch", ke.Epoch(), "err", err)
		return
	}
	s.keys[k.ID()] = k
}

// Key returns the group key with ID id, if this node holds it.
func (s *Store) Key(id crypto.KeyID) (*crypto.GroupKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	return k, ok
}

// CurrentKey returns the held key of group with the highest epoch.
func (s *Store) CurrentKey(group string) (*crypto.GroupKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *crypto.GroupKey
	for _, k := range s.keys {
		if k.Group() == group && (best == nil || k.Epoch() > best.Epoch()) {
			best = k
		}
	}
	return best, best != nil
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

// AppendRosterUpdate writes an admin-signed roster update into the log.
func (s *Store) AppendRosterUpdate(ctx context.Context, u *crypto.Update) (*log.Entry, error) {
	if _, err := s.Roster().Apply(u); err != nil {
		return nil, fmt.Errorf("store: roster update would be refused: %w", err)
	}
	es, err := s.Append(ctx, log.Draft{Body: log.Body{Kind: log.KindRoster, TLP: log.TLPClear, Payload: u.Bytes()}})
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// ErrSealed reports an entry whose group key this node does not hold.
var ErrSealed = errors.New("store: sealed: this node does not hold the key")

// Read returns the entry's body, opening it with the group key it names.
// Without that key it returns ErrSealed: the entry is stored and
// forwarded all the same, and becomes readable when the key arrives.
func (s *Store) Read(e *log.Entry) (*log.Body, error) {
	if e.Header.Plain() {
		return e.Open(nil)
	}
	k, ok := s.Key(e.Header.KeyID)
	if !ok {
		return nil, fmt.Errorf("%w (key %s epoch %d)", ErrSealed, e.Header.KeyID, e.Header.Epoch)
	}
	return e.Open(k)
}
