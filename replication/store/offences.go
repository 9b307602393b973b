package store

import (
	"bytes"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

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
