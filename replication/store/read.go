package store

import (
	"errors"
	"fmt"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

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
