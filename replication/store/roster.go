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
	s.keyring = log.DeriveKeyringHeld(s.network, s.roster, s.held, plain)
	s.noteKeyRefusalsLocked(nil)
	return nil
}

// applyPlain takes effect of newly stored plain entries: key entries are
// judged into the keyring; roster updates rebuild the roster (and so the
// keyring) and set aside what a revocation refuses. The caller holds wmu.
func (s *Store) applyPlain(added []*log.Entry) error {
	rosterChanged := false
	var keys []*log.Entry
	for _, e := range added {
		body, err := log.DecodeBody(e.BodyBytes())
		if err != nil {
			continue // CheckRun let it in, so it decodes; be safe anyway
		}
		switch body.Kind {
		case log.KindKey:
			keys = append(keys, e)
		case log.KindRoster:
			rosterChanged = true
		}
	}
	if !rosterChanged {
		if len(keys) > 0 {
			s.learnKeys(keys)
		}
		return nil
	}
	// Enforcing a revocation may set aside roster entries (of a revoked
	// admin), which changes the roster again: repeat until it holds still.
	// Each round only removes entries, so this ends.
	var before []log.Hash
	for {
		plain, err := s.heldPlain()
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
		keyring := log.DeriveKeyringHeld(s.network, next, s.held, plain)
		s.mu.Lock()
		s.roster = next
		old := s.keyring
		s.keyring = keyring
		s.noteKeyRefusalsLocked(old)
		s.mu.Unlock()
		if err := s.enforceRevocations(next); err != nil {
			return err
		}
	}
}

// RosterUpdates returns the roster updates in force, in version order,
// each with the approvals that made it take effect: those that build the
// current roster from the genesis.
func (s *Store) RosterUpdates() ([]crypto.ApprovedUpdate, error) {
	st, err := s.RosterState()
	if err != nil {
		return nil, err
	}
	out := make([]crypto.ApprovedUpdate, len(st.Applied))
	for i, a := range st.Applied {
		out[i] = crypto.ApprovedUpdate{Update: a.Update, Approvals: a.Approvals}
	}
	return out, nil
}

// RosterState derives the roster from the roster entries held, with the
// updates in force, those refused and those waiting for approvals
// (log.DeriveRosterState).
func (s *Store) RosterState() (log.RosterState, error) {
	plain, err := s.heldPlain()
	if err != nil {
		return log.RosterState{}, err
	}
	return log.DeriveRosterState(s.genesis.Roster(), plain), nil
}

// heldPlain returns the plain entries held, in display order.
func (s *Store) heldPlain() ([]*log.Entry, error) {
	var plain []*log.Entry
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		plain, err = plainEntries(txn)
		return err
	})
	return plain, err
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

// AppendRosterUpdate writes an admin-signed roster update into the log.
// An update refused by a roster rule is not written; one that needs more
// admins' approvals is written and waits for them (RosterState lists it
// as pending).
func (s *Store) AppendRosterUpdate(ctx context.Context, u *crypto.Update) (*log.Entry, error) {
	if _, err := s.Roster().Apply(u); err != nil {
		var re *crypto.RuleError
		if !errors.As(err, &re) || re.Rule != "approvals" {
			return nil, fmt.Errorf("store: roster update would be refused: %w", err)
		}
	}
	return s.appendPlain(ctx, log.KindRoster, u.Bytes())
}

// AppendApproval writes this node's admin's approval of a roster update.
// It is refused unless it would count (crypto.Roster.CheckApproval).
func (s *Store) AppendApproval(ctx context.Context, u *crypto.Update, a *crypto.Approval) (*log.Entry, error) {
	if err := s.Roster().CheckApproval(u, a); err != nil {
		return nil, fmt.Errorf("store: approval would not count: %w", err)
	}
	return s.appendPlain(ctx, log.KindRoster, a.Bytes())
}

func (s *Store) appendPlain(ctx context.Context, kind log.Kind, payload []byte) (*log.Entry, error) {
	es, err := s.Append(ctx, log.Draft{Body: log.Body{Kind: kind, TLP: log.TLPClear, Payload: payload}})
	if err != nil {
		return nil, err
	}
	return es[0], nil
}
