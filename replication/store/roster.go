package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	s.keyring = log.DeriveKeyring(s.network, s.roster, s.self, plain)
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
		keyring := log.DeriveKeyring(s.network, next, s.self, plain)
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

// learnKeys judges new key entries into the keyring. Opening an envelope
// costs a decapsulation per slot, so it runs outside mu; the caller holds
// wmu, so nobody else replaces the keyring meanwhile.
func (s *Store) learnKeys(es []*log.Entry) {
	s.mu.RLock()
	old, roster := s.keyring, s.roster
	s.mu.RUnlock()
	next := old.With(s.network, roster, s.self, es)
	s.mu.Lock()
	s.keyring = next
	s.noteKeyRefusalsLocked(old)
	s.mu.Unlock()
}

// An offence is one entry whose author broke a rule.
type offence struct {
	author crypto.MemberID
	rule   string
	entry  log.Hash
}

// An Offence counts the entries of one author that this node refused to
// trust or believe for one rule: a log.KeyRule* (a key entry sealed to this
// node that its keyring does not trust) or a log.Belief* (a valid entry
// this node does not believe, found when it was stored or read). Each
// entry counts once. Only what this node can open is judged, so the counts
// differ between nodes; they are kept in memory, and after a restart they
// count again as entries are read and keys judged.
type Offence struct {
	Author  crypto.MemberID
	Rule    string
	Entries int
}

// Offences returns the offences this node has seen, by author and rule.
func (s *Store) Offences() []Offence {
	s.mu.RLock()
	defer s.mu.RUnlock()
	count := map[offence]int{}
	for o := range s.offences {
		count[offence{author: o.author, rule: o.rule}]++
	}
	out := make([]Offence, 0, len(count))
	for o, n := range count {
		out = append(out, Offence{Author: o.author, Rule: o.rule, Entries: n})
	}
	slices.SortFunc(out, func(a, b Offence) int {
		if c := bytes.Compare(a.Author[:], b.Author[:]); c != 0 {
			return c
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return out
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

// Read returns the entry's body, opening it with the trusted group key it
// names. Without that key it returns ErrSealed: the entry is stored and
// forwarded all the same, and becomes readable when the key arrives. A body
// that log.Believe refuses (TLP:RED sealed to the whole network, …) is not
// returned: the error is a *log.NotBelievedError (errors.Is
// log.ErrNotBelieved) naming the rule, and the entry counts as an offence
// of its author.
func (s *Store) Read(e *log.Entry) (*log.Body, error) {
	if e.Header.Plain() {
		return e.Open(nil)
	}
	s.mu.RLock()
	keys := s.keyring.Keys(e.Header.KeyID)
	s.mu.RUnlock()
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w (key %s epoch %d)", ErrSealed, e.Header.KeyID, e.Header.Epoch)
	}
	var body *log.Body
	var key *crypto.GroupKey
	var err error
	for _, key = range keys {
		if body, err = e.Open(key); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.believe(e, key, body); err != nil {
		return nil, fmt.Errorf("store: read %s: %w", e.ID().Short(), err)
	}
	return body, nil
}

// believe applies log.Believe and records a refusal as an offence.
func (s *Store) believe(e *log.Entry, key *crypto.GroupKey, body *log.Body) error {
	err := log.Believe(e, key, body)
	var nb *log.NotBelievedError
	if errors.As(err, &nb) {
		s.mu.Lock()
		o := offence{author: e.Header.Author, rule: nb.Rule, entry: e.ID()}
		if _, had := s.offences[o]; !had {
			s.offences[o] = struct{}{}
			s.logger.Warn("entry not believed", "entry", e.ID().Short(), "author", e.Header.Author.Short(), "rule", nb.Rule, "detail", nb.Detail)
		}
		s.mu.Unlock()
	}
	return err
}

// NoteOffence records that entry e's author broke rule, a rule of a
// layer above the store (a consensus checkpoint with a forged vote, say):
// counted once per entry with the others (Offences). It reports whether
// the offence is new.
func (s *Store) NoteOffence(e *log.Entry, rule, detail string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := offence{author: e.Header.Author, rule: rule, entry: e.ID()}
	if _, had := s.offences[o]; had {
		return false
	}
	s.offences[o] = struct{}{}
	s.logger.Warn("offence", "entry", e.ID().Short(), "author", e.Header.Author.Short(), "rule", rule, "detail", detail)
	return true
}

// judgeBodies opens the newly stored entries this node holds the key of and
// records those it does not believe as offences of their authors, so an
// offence is counted when it arrives, not only when someone reads it.
// Their validity is not in question: they stay stored and relayed.
func (s *Store) judgeBodies(added []*log.Entry) {
	for _, e := range added {
		if e.Header.Plain() || e.Header.Author == s.self.ID() {
			continue // this node's own entries passed log.Build's rules
		}
		s.mu.RLock()
		keys := s.keyring.Keys(e.Header.KeyID)
		s.mu.RUnlock()
		for _, k := range keys {
			if body, err := e.Open(k); err == nil {
				_ = s.believe(e, k, body)
				break
			}
		}
	}
}
