package node

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// MinIDPrefix is the fewest hex digits an ID may be given by: every place
// that takes an ID (an entry, a crisis command, a Reserve request, a
// roster update) takes any prefix of at least this many digits that names
// one ID this node knows, so what the text listings print (8 to 16
// digits) can be typed back.
const MinIDPrefix = 8

// ErrAmbiguous reports an ID prefix that names more than one ID; the
// error lists them. It wraps ErrBadRequest.
var ErrAmbiguous = fmt.Errorf("%w: ambiguous ID prefix", ErrBadRequest)

// maxMatches is how many matches an ambiguous prefix lists.
const maxMatches = 8

// idPrefix checks a prefix as a person typed it and returns it in lower
// case; full is the length of the full ID in hex digits.
func idPrefix(what, s string, full int) (string, error) {
	p := strings.ToLower(strings.TrimSpace(s))
	if _, err := hex.DecodeString(p + strings.Repeat("0", len(p)%2)); err != nil || len(p) > full {
		return "", fmt.Errorf("%w: %s ID %q: want hex digits, at least %d of the %d", ErrBadRequest, what, s, MinIDPrefix, full)
	}
	if len(p) < MinIDPrefix {
		return "", fmt.Errorf("%w: %s ID %q is too short: give at least %d hex digits", ErrBadRequest, what, s, MinIDPrefix)
	}
	return p, nil
}

// resolveID returns the one ID among candidates (full IDs in lower-case
// hex) that begins with prefix: ErrNotFound if none, ErrAmbiguous listing
// them if several.
func resolveID(what, s string, full int, candidates []string) (string, error) {
	p, err := idPrefix(what, s, full)
	if err != nil {
		return "", err
	}
	var matches []string
	for _, c := range candidates {
		if strings.HasPrefix(c, p) && !slices.Contains(matches, c) {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w: this node knows no %s whose ID begins with %s", ErrNotFound, what, p)
	case 1:
		return matches[0], nil
	}
	slices.Sort(matches)
	shown := matches[:min(len(matches), maxMatches)]
	return "", fmt.Errorf("%w: %s names %d %ss: %s; give more digits", ErrAmbiguous, p, len(matches), what, strings.Join(shown, ", "))
}

// resolveEntry resolves an entry ID prefix against the store.
func (n *Node) resolveEntry(s string) (log.Hash, error) {
	full := 2 * len(log.Hash{})
	p, err := idPrefix("entry", s, full)
	if err != nil {
		return log.Hash{}, err
	}
	b, _ := hex.DecodeString(p[:len(p)/2*2])
	ids, err := n.store.IDsWithPrefix(b, 16*(maxMatches+1))
	if err != nil {
		return log.Hash{}, err
	}
	var candidates []string
	for _, id := range ids {
		candidates = append(candidates, id.String())
	}
	r, err := resolveID("entry", p, full, candidates)
	if err != nil {
		return log.Hash{}, err
	}
	return log.ParseHash(r)
}

// resolveCommand resolves a crisis command ID prefix against the commands
// this node knows: provisional ones, the decisions in the history, the
// Reserve requests and the newest outcomes.
func (n *Node) resolveCommand(s string) (crisis.ID, error) {
	v := n.engine.Local()
	var candidates []string
	for _, p := range v.Provisional {
		candidates = append(candidates, p.Command.ID.String())
	}
	for _, d := range v.State.History {
		candidates = append(candidates, d.Command.String())
	}
	for _, r := range v.State.Requests {
		candidates = append(candidates, r.ID.String())
	}
	for _, o := range n.engine.Outcomes() {
		candidates = append(candidates, o.ID.String())
	}
	r, err := resolveID("command", s, 2*len(crisis.ID{}), candidates)
	if err != nil {
		return crisis.ID{}, err
	}
	return crisis.ParseID(r)
}

// resolveRequest resolves a Reserve request ID prefix against the
// requests of the crisis state.
func (n *Node) resolveRequest(s string) (crisis.ID, error) {
	var candidates []string
	for _, r := range n.engine.Local().State.Requests {
		candidates = append(candidates, r.ID.String())
	}
	r, err := resolveID("Reserve request", s, 2*len(crisis.ID{}), candidates)
	if err != nil {
		return crisis.ID{}, err
	}
	return crisis.ParseID(r)
}

// resolveUpdate resolves a roster update ID prefix against the updates
// of a roster state: applied, pending and refused.
func resolveUpdate(s string, st log.RosterState) (crypto.UpdateID, error) {
	var candidates []string
	for _, a := range st.Applied {
		candidates = append(candidates, a.Update.ID().String())
	}
	for _, p := range st.Pending {
		candidates = append(candidates, p.Update.ID().String())
	}
	for _, f := range st.Refused {
		if u, ok := updateOf(f); ok {
			candidates = append(candidates, u.ID().String())
		}
	}
	var id crypto.UpdateID
	r, err := resolveID("roster update", s, 2*len(id), candidates)
	if err != nil {
		return id, err
	}
	b, _ := hex.DecodeString(r)
	copy(id[:], b)
	return id, nil
}

// updateOf is the roster update a refused roster entry carries, if it
// carries one.
func updateOf(f log.RosterRefusal) (*crypto.Update, bool) {
	body, err := log.DecodeBody(f.Entry.BodyBytes())
	if err != nil {
		return nil, false
	}
	u, err := crypto.ParseUpdate(body.Payload)
	return u, err == nil
}
