package log

import (
	"errors"
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// Narrow links: entries that travel with a provisional signature and are
// covered by a composite one within a window. The argument is in the
// package documentation, "Narrow links".

// A Status is how far an entry is vouched for by its author. Its string is
// stable: it appears in the API and on the dashboard.
type Status uint8

// The statuses of an entry a node holds or is shown.
const (
	// Covered: the entry or a successor carries a valid composite
	// signature. Only a covered entry is acted on.
	Covered Status = iota + 1
	// Waiting: a valid provisional signature on the entry or a successor
	// vouches for it, and no composite does yet. Shown as waiting for its
	// post-quantum signature, never acted on.
	Waiting
	// Overdue: waiting for longer than the window allows
	// ([Window.Overdue]). Shown as such, never acted on.
	Overdue
)

var statusNames = []string{"", "covered", "waiting", "overdue"}

func (s Status) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// A Window bounds how long an author's entries wait for their composite
// signature on a narrow link: the author sends the composite for its head
// at least every Entries entries or Interval, whichever comes first, and
// at once when a peer asks. A receiver shows an entry waiting longer than
// Interval + Grace as overdue. A Window is a plain value.
type Window struct {
	// Entries is N: at most this many entries travel before one carries a
	// composite signature (which covers all of them).
	Entries int
	// Interval is T: the oldest entry still waiting at a peer gets its
	// composite signature at most this long after it was sent.
	Interval time.Duration
	// Grace is how much longer than Interval a receiver waits before it
	// shows a waiting entry as overdue: the link's delay and a retry.
	Grace time.Duration
}

// Defaults of [Window], from the arithmetic in the package documentation
// ("Narrow links"): with today's entry format a 200-byte post carrying a
// provisional signature is 551 bytes, a composite signature adds 3310,
// and a post a second must average at most 600 bytes on the wire.
const (
	DefaultWindowEntries  = 128
	DefaultWindowInterval = 120 * time.Second
	DefaultWindowGrace    = 30 * time.Second
)

// ErrWindow is the class of every problem [Window.Validate] reports.
var ErrWindow = errors.New("log: bad narrow-link window")

// DefaultWindow returns the default window: 128 entries or 120 s, 30 s of
// grace.
func DefaultWindow() Window {
	return Window{Entries: DefaultWindowEntries, Interval: DefaultWindowInterval, Grace: DefaultWindowGrace}
}

// Validate reports every problem of w, each wrapping [ErrWindow], joined
// into one error; nil if there is none.
func (w Window) Validate() error {
	var errs []error
	if w.Entries < 1 {
		errs = append(errs, fmt.Errorf("%w: Entries %d, want at least 1", ErrWindow, w.Entries))
	}
	if w.Entries > MaxWaiting/2 {
		errs = append(errs, fmt.Errorf("%w: Entries %d, want at most %d (half of what a store keeps waiting per author)", ErrWindow, w.Entries, MaxWaiting/2))
	}
	if w.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%w: Interval %v, want more than 0", ErrWindow, w.Interval))
	}
	if w.Grace < 0 {
		errs = append(errs, fmt.Errorf("%w: negative Grace %v", ErrWindow, w.Grace))
	}
	return errors.Join(errs...)
}

// Due reports whether the author must send the composite signature of its
// head to a peer now: uncovered entries are waiting at that peer
// (counting one about to be sent), and the oldest of them was sent oldest
// ago. An author sends the composite with the entry it is sending when
// that entry makes it due, and on its own ([Cover]) when time makes it
// due with nothing to send.
func (w Window) Due(uncovered int, oldest time.Duration) bool {
	return uncovered > 0 && (uncovered >= w.Entries || oldest >= w.Interval)
}

// Overdue reports whether an entry that has been waiting for waited (since
// this node received it) is overdue.
func (w Window) Overdue(waited time.Duration) bool { return waited > w.Interval+w.Grace }

// StatusOf returns the status to show for an entry: Covered if covered,
// else Waiting or Overdue by how long it has waited.
func (w Window) StatusOf(covered bool, waited time.Duration) Status {
	switch {
	case covered:
		return Covered
	case w.Overdue(waited):
		return Overdue
	}
	return Waiting
}

// MaxWaiting is the most entries of one author a store keeps waiting for
// their composite signature, all candidates for a seq included; beyond it
// it refuses more of that author's waiting entries (they come back covered
// with the next composite). An honest author has at most
// [Window.Entries] waiting at a time, and [Window.Validate] keeps that at
// half of MaxWaiting.
const MaxWaiting = 512

// TravelsSigned reports whether e must travel with its composite
// signature also on a narrow link: a system kind (control priority) is
// valid only so, and a flash entry is sent to be acted on at once, which a
// waiting entry never is.
func TravelsSigned(e *Entry) bool { return e.Header.Priority <= Flash }

// ProvesFork reports whether two branches of one author's feed, a and b,
// each starting at the seq after head with different entries, prove that
// the author forked: both first entries must be covered, by a composite
// signature of their own or of a successor on their branch that chains to
// them. Entries that are only waiting prove nothing: an adversary that can
// forge Ed25519 alone must not be able to freeze an honest author's feed.
func ProvesFork(network crypto.NetworkID, roster *crypto.Roster, head Head, a, b []*Entry) bool {
	if len(a) == 0 || len(b) == 0 || a[0].ID() == b[0].ID() || a[0].Header.Seq != head.Seq+1 || b[0].Header.Seq != head.Seq+1 {
		return false
	}
	na, _ := CheckRun(network, roster, head, a)
	nb, _ := CheckRun(network, roster, head, b)
	return na > 0 && nb > 0
}

// A Cover is an entry's composite signature sent on its own, to cover an
// entry the receiver holds as waiting (and, through the chain, its
// waiting predecessors): 3373 bytes of signature and the entry's ID. It
// is a plain value; the receiver attaches it with [Cover.Attach] and
// checks the result with [Classify] or [CheckRun].
type Cover struct {
	ID  Hash
	Sig []byte // composite, crypto.SignatureSize bytes
}

type coverWire struct {
	ID  []byte `cbor:"1,keyasint"`
	Sig []byte `cbor:"2,keyasint"`
}

// CoverOf returns e's composite signature as a Cover. It fails for an
// entry without one.
func CoverOf(e *Entry) (Cover, error) {
	if !e.Signed() {
		return Cover{}, fmt.Errorf("log: entry %s carries no composite signature to send as a cover", e.id.Short())
	}
	return Cover{ID: e.ID(), Sig: e.sig}, nil
}

// Encode returns the canonical encoding of c.
func (c Cover) Encode() ([]byte, error) {
	if len(c.Sig) != crypto.SignatureSize {
		return nil, fmt.Errorf("log: cover of %s: signature of %d bytes, want %d", c.ID.Short(), len(c.Sig), crypto.SignatureSize)
	}
	return crypto.MarshalCanonical(&coverWire{ID: c.ID[:], Sig: c.Sig})
}

// DecodeCover parses a cover strictly: the canonical encoding, a 32-byte
// ID, a composite signature of exactly crypto.SignatureSize bytes. It does
// not verify the signature: attach it and check the entry.
func DecodeCover(b []byte) (Cover, error) {
	var w coverWire
	if err := crypto.UnmarshalCanonical(b, &w); err != nil {
		return Cover{}, decodeErr(err)
	}
	if len(w.ID) != len(Hash{}) {
		return Cover{}, &InvalidError{Reason: ReasonMalformed, Detail: fmt.Sprintf("cover: ID of %d bytes", len(w.ID))}
	}
	if len(w.Sig) != crypto.SignatureSize {
		return Cover{}, &InvalidError{Reason: ReasonBadSignature, Detail: fmt.Sprintf("cover: signature of %d bytes, want %d", len(w.Sig), crypto.SignatureSize)}
	}
	return Cover{ID: Hash(w.ID), Sig: w.Sig}, nil
}

// Attach returns e carrying c's composite signature. It fails unless c
// names e's ID; it does not verify the signature.
func (c Cover) Attach(e *Entry) (*Entry, error) {
	if c.ID != e.ID() {
		return nil, fmt.Errorf("log: cover of %s does not name entry %s", c.ID.Short(), e.ID().Short())
	}
	if len(c.Sig) != crypto.SignatureSize {
		return nil, invalid(ReasonBadSignature, e, "cover: signature of %d bytes, want %d", len(c.Sig), crypto.SignatureSize)
	}
	return e.WithSignature(c.Sig)
}
