package log

import (
	"errors"
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// A Draft is an entry as its author writes it, before sealing, chaining and
// signing.
type Draft struct {
	Body Body
	Refs []Hash
	// Priority is Flash, Immediate or Routine; the zero value means
	// Routine. Kinds roster, key, proposal and checkpoint always get
	// Control.
	Priority Priority
	// Key seals the body. Nil for kinds roster and key, which travel in
	// clear; required for every other kind.
	Key *crypto.GroupKey
}

// A Tip is what an author knows of its own feed: the seq, ID and Lamport
// clock of its last entry (zero for an empty feed).
type Tip struct {
	Seq     uint64
	ID      Hash
	Lamport uint64
}

// Build seals, chains and signs drafts as the next entries of author's
// feed after tip. Each entry's Lamport clock is one more than the larger
// of the previous entry's and minLamport (the largest clock the caller has
// seen from anyone), saturating at MaxLamport: an author whose clock is at
// the cap writes at the cap, so Build never fails for the clock. The last
// entry is signed, and its signature vouches for the whole batch; so is
// every entry at which the entries since the previous signature reach
// MaxUnsignedRun bytes, so that a replica never holds more than that
// waiting for a signature (replication/sync cuts and scores a peer whose
// unsigned entries pass its memory budget). now is written as the author
// time.
func Build(author *crypto.Identity, network crypto.NetworkID, tip Tip, minLamport uint64, now time.Time, drafts []Draft) ([]*Entry, error) {
	if len(drafts) == 0 {
		return nil, errors.New("log: build: no drafts")
	}
	lamport := min(max(tip.Lamport, minLamport), MaxLamport)
	prev, seq := tip.ID, tip.Seq
	out := make([]*Entry, 0, len(drafts))
	unsigned := 0 // bytes since the last signed entry
	for i, d := range drafts {
		seq++
		if lamport < MaxLamport {
			lamport++
		}
		h := Header{
			Version: FormatVersion, Suite: SuiteV1, Network: network, Author: author.ID(), Seq: seq, Prev: prev,
			Lamport: lamport, Time: now.UnixMilli(), Refs: d.Refs, Priority: d.Priority,
		}
		if err := checkDraft(&d, &h); err != nil {
			return nil, fmt.Errorf("log: build draft %d: %w", i, err)
		}
		plain, err := d.Body.Encode()
		if err != nil {
			return nil, fmt.Errorf("log: build draft %d: %w", i, err)
		}
		hw := h.wire()
		header, err := crypto.MarshalCanonical(&hw)
		if err != nil {
			return nil, err
		}
		body := plain
		if d.Key != nil {
			if body, err = crypto.SealWith(d.Key, network, header, plain); err != nil {
				return nil, fmt.Errorf("log: build draft %d: %w", i, err)
			}
		}
		var sig []byte
		unsigned += len(header) + len(body)
		if i == len(drafts)-1 || unsigned >= MaxUnsignedRun {
			unsigned = 0
			id := entryID(header, body)
			if sig, err = author.Sign(crypto.ContextEntry, id[:]); err != nil {
				return nil, err
			}
		}
		e, err := assemble(h, header, body, sig)
		if err != nil {
			return nil, err
		}
		if e.Size() > MaxEntrySize {
			return nil, fmt.Errorf("log: build draft %d: %w", i, invalid(ReasonOversize, e, "%d bytes, limit %d: put large files in attachments", e.Size(), MaxEntrySize))
		}
		out = append(out, e)
		prev = e.ID()
	}
	return out, nil
}

// checkDraft applies the author-side rules and fills key fields of h.
func checkDraft(d *Draft, h *Header) error {
	if len(d.Refs) > MaxRefs {
		return invalid(ReasonTooManyRefs, nil, "%d refs, limit %d", len(d.Refs), MaxRefs)
	}
	if systemKind(d.Body.Kind) {
		h.Priority = Control
	} else if h.Priority == Control {
		h.Priority = Routine
	}
	if h.Priority > Routine {
		return fmt.Errorf("unknown priority %d", h.Priority)
	}
	switch {
	case plainKind(d.Body.Kind) && d.Key != nil:
		return fmt.Errorf("kind %s travels in clear: give no key", d.Body.Kind)
	case !plainKind(d.Body.Kind) && d.Key == nil:
		return fmt.Errorf("kind %s must be sealed: give the group key", d.Body.Kind)
	case d.Key != nil && d.Body.TLP == TLPRed && !IsRecipientGroup(d.Key.Group()):
		// Receivers do not believe it otherwise (Believe).
		return errors.New("TLP:RED must be sealed to an explicit recipient group (RecipientGroup), not to the whole network or a need-to-know group")
	}
	if d.Key != nil {
		h.KeyID, h.Epoch = d.Key.ID(), d.Key.Epoch()
	}
	return nil
}

// Open returns the entry's body: decoded directly for a plain entry,
// decrypted with key (which must be the group key the header names)
// otherwise.
func (e *Entry) Open(key *crypto.GroupKey) (*Body, error) {
	if e.Header.Plain() {
		return DecodeBody(e.body)
	}
	if key == nil {
		return nil, fmt.Errorf("log: entry %s is sealed under key %s epoch %d: no key", e.id.Short(), e.Header.KeyID, e.Header.Epoch)
	}
	if key.ID() != e.Header.KeyID {
		return nil, fmt.Errorf("log: entry %s is sealed under key %s, not %s: %w", e.id.Short(), e.Header.KeyID, key.ID(), crypto.ErrWrongKey)
	}
	plain, err := crypto.OpenWith(key, e.Header.Network, e.header, e.body)
	if err != nil {
		return nil, fmt.Errorf("log: entry %s: %w", e.id.Short(), err)
	}
	return DecodeBody(plain)
}
