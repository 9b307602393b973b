package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// Key rotation of this node's own member. `crisismesh init --rotate` makes
// the next identity in D/next beside the current one; an admin runs
// `crisismesh member rotate NAME --card D/next/card.json`; once the node
// holds that roster update it adopts the next identity (at its next start:
// Open), keeping the old one in D/previous so that what was sealed to it
// stays readable. Its data directory, log and Raft state are kept.
const (
	nextDir     = "next"
	previousDir = "previous"
)

// PrepareRotation makes the next identity of the member in dir (same name,
// same passphrase) in dir/next and returns its card, for the admin's
// `member rotate`.
func PrepareRotation(dir string, passphrase []byte, now time.Time) (*crypto.Card, error) {
	cur, err := LoadIdentity(dir, passphrase)
	if err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	next := filepath.Join(dir, nextDir)
	if c, err := ReadCard(next); err == nil {
		return nil, fmt.Errorf("rotate: %s already holds the next identity (member ID %s): give %s to an admin (crisismesh member rotate %s --card %s)", next, c.ID().Short(), filepath.Join(next, CardFile), cur.Name(), filepath.Join(next, CardFile))
	}
	return Keygen(KeygenOptions{Name: cur.Name(), Dir: next, Passphrase: passphrase, Now: now})
}

// loadPrevious loads the identities this member was rotated away from.
func loadPrevious(dir string, passphrase []byte) ([]*crypto.Identity, error) {
	keys, err := filepath.Glob(filepath.Join(dir, previousDir, "*.key"))
	if err != nil {
		return nil, err
	}
	var out []*crypto.Identity
	for _, k := range keys {
		id, err := LoadIdentity(k, passphrase)
		if err != nil {
			return nil, fmt.Errorf("node: previous identity %s: %w", k, err)
		}
		out = append(out, id)
	}
	return out, nil
}

// rotationDue reports whether roster r has rotated the member of dir from
// cur to the identity waiting in dir/next.
func rotationDue(dir string, r *crypto.Roster, cur *crypto.Identity) (bool, error) {
	card, err := ReadCard(filepath.Join(dir, nextDir))
	if errors.Is(err, os.ErrNotExist) || err != nil && strings.Contains(err.Error(), "no such file") {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	old, ok := r.Member(cur.ID())
	return ok && old.Revoked && old.Reason == "rotated" && r.Active(card.ID()), nil
}

// adoptNext makes the identity in dir/next the member's identity: the old
// key goes to dir/previous (kept to open what was sealed to it). Each step
// is a rename, so a crash leaves either identity in place and the next
// start finishes the move.
func adoptNext(dir string, old *crypto.Identity) error {
	prev := filepath.Join(dir, previousDir)
	if err := os.MkdirAll(prev, 0o700); err != nil {
		return fmt.Errorf("node: rotate: %w", err)
	}
	short := old.ID().String()[:16]
	moves := [][2]string{
		{filepath.Join(dir, IdentityFile), filepath.Join(prev, short+".key")},
		{filepath.Join(dir, CardFile), filepath.Join(prev, short+".card.json")},
	}
	for _, m := range moves {
		if err := os.Link(m[0], m[1]); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("node: rotate: %w", err)
		}
	}
	// The old files are kept in previous/; the renames replace them.
	if err := os.Rename(filepath.Join(dir, nextDir, IdentityFile), filepath.Join(dir, IdentityFile)); err != nil {
		return fmt.Errorf("node: rotate: %w", err)
	}
	return finishAdopt(dir)
}

// finishAdopt completes adoptNext after the key has moved: the card
// follows and dir/next goes. A start after a crash between the two calls
// it (a next/ with a card but no key).
func finishAdopt(dir string) error {
	next := filepath.Join(dir, nextDir)
	if _, err := os.Stat(filepath.Join(next, IdentityFile)); err == nil {
		return nil // not adopted yet
	}
	if _, err := os.Stat(filepath.Join(next, CardFile)); err == nil {
		if err := os.Rename(filepath.Join(next, CardFile), filepath.Join(dir, CardFile)); err != nil {
			return fmt.Errorf("node: rotate: %w", err)
		}
	}
	if err := os.RemoveAll(next); err != nil {
		return fmt.Errorf("node: rotate: %w", err)
	}
	return nil
}
