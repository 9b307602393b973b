package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/crisismesh/crisismesh/crypto"
)

// Format limits.
const (
	// FormatVersion is the entry format this package writes and reads.
	FormatVersion = 1
	// SuiteV1 is the algorithm suite of format 1: composite
	// id-MLDSA65-Ed25519-SHA512 signatures over the entry ID, bodies sealed
	// with crypto.SuiteGroup.
	SuiteV1 = 1
	// MaxEntrySize is the largest encoded entry (header, body, signature).
	MaxEntrySize = 1 << 20
	// MaxUnsignedRun bounds the bytes of entries Build writes between two
	// signed ones (see Build): 8 MiB, well inside what a replica holds
	// for a peer in memory while it waits for a signature.
	MaxUnsignedRun = 8 << 20
	// MaxRefs is the most refs one entry may carry.
	MaxRefs = 64
	// MaxLamport is the cap of the Lamport clock. The clock saturates
	// there: an author whose clock reached the cap writes at the cap (see
	// the package documentation, "Clocks"), so no entry can push the clock
	// so far that honest members stop writing.
	MaxLamport = 1 << 62
	// MaxJump is how far a clock may jump: an entry whose clock lies more
	// than MaxJump above its author's previous one is an offence of its
	// author, and a node does not carry a clock more than MaxJump above
	// the largest it holds into its own entries. An honest clock never
	// exceeds the number of entries written in the whole network, far
	// below MaxJump. A jump is not a reason to refuse the entry: validity
	// is the same rule on every node (see the package documentation,
	// "Clocks").
	MaxJump = 1 << 32
)

// Jumped reports whether clock lamport jumps more than [MaxJump] above
// held.
func Jumped(held, lamport uint64) bool { return lamport > held && lamport-held > MaxJump }

// ErrForked reports that an author equivocated: two different entries with
// the same seq. Its feed is frozen and both entries are kept as evidence.
var ErrForked = errors.New("log: author forked its feed")

// A Hash is a SHA-256 value; an entry ID is one.
type Hash [32]byte

// String returns lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex digits, for display.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("log: %q is not a 64-hex-digit hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	*h = v
	return err
}

// A Priority orders what sync sends first. Control is set by the system for
// its own kinds (roster, key, proposal, checkpoint); people choose among
// flash, immediate and routine.
type Priority uint8

// Priorities, most urgent first.
const (
	Control Priority = iota
	Flash
	Immediate
	Routine
)

var priorityNames = []string{"control", "flash", "immediate", "routine"}

func (p Priority) String() string {
	if int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// ParsePriority parses a priority name.
func ParsePriority(s string) (Priority, error) {
	for i, n := range priorityNames {
		if n == s {
			return Priority(i), nil
		}
	}
	return 0, fmt.Errorf("log: unknown priority %q (want flash, immediate or routine)", s)
}

// headerWire is the canonical encoding of a header.
type headerWire struct {
	Version  uint     `cbor:"1,keyasint"`
	Suite    uint     `cbor:"2,keyasint"`
	Network  []byte   `cbor:"3,keyasint"`
	Author   []byte   `cbor:"4,keyasint"`
	Seq      uint64   `cbor:"5,keyasint"`
	Prev     []byte   `cbor:"6,keyasint,omitempty"` // absent for seq 1
	Lamport  uint64   `cbor:"7,keyasint"`
	Time     int64    `cbor:"8,keyasint"` // author's clock, Unix milliseconds
	Refs     [][]byte `cbor:"9,keyasint,omitempty"`
	Priority uint8    `cbor:"10,keyasint"`
	KeyID    []byte   `cbor:"11,keyasint,omitempty"` // absent: plain body
	Epoch    uint64   `cbor:"12,keyasint,omitempty"`
}

// Header is the cleartext part of an entry.
type Header struct {
	Version  uint
	Suite    uint
	Network  crypto.NetworkID
	Author   crypto.MemberID
	Seq      uint64
	Prev     Hash
	Lamport  uint64
	Time     int64 // Unix milliseconds, the author's clock
	Refs     []Hash
	Priority Priority
	// KeyID and Epoch name the group key the body is sealed under; a zero
	// KeyID means the body is plain (kinds roster and key only).
	KeyID crypto.KeyID
	Epoch uint64
}

// Plain reports whether the body travels in clear.
func (h *Header) Plain() bool { return h.KeyID == crypto.KeyID{} }

func (h *Header) wire() headerWire {
	w := headerWire{
		Version: h.Version, Suite: h.Suite, Network: h.Network[:], Author: h.Author[:], Seq: h.Seq,
		Lamport: h.Lamport, Time: h.Time, Priority: uint8(h.Priority), Epoch: h.Epoch,
	}
	if h.Seq > 1 {
		w.Prev = h.Prev[:]
	}
	for _, r := range h.Refs {
		w.Refs = append(w.Refs, r[:])
	}
	if !h.Plain() {
		w.KeyID = h.KeyID[:]
	}
	return w
}

func (w *headerWire) header() (Header, error) {
	h := Header{Version: w.Version, Suite: w.Suite, Seq: w.Seq, Lamport: w.Lamport, Time: w.Time, Priority: Priority(w.Priority), Epoch: w.Epoch}
	if len(w.Network) != len(h.Network) || len(w.Author) != len(h.Author) {
		return h, errors.New("network or author ID has the wrong size")
	}
	copy(h.Network[:], w.Network)
	copy(h.Author[:], w.Author)
	switch {
	case w.Seq == 0:
		return h, errors.New("seq 0 (feeds start at 1)")
	case w.Seq == 1 && len(w.Prev) != 0:
		return h, errors.New("seq 1 names a prev")
	case w.Seq > 1 && len(w.Prev) != len(h.Prev):
		return h, errors.New("prev has the wrong size")
	}
	copy(h.Prev[:], w.Prev)
	for _, r := range w.Refs {
		if len(r) != len(Hash{}) {
			return h, errors.New("a ref has the wrong size")
		}
		h.Refs = append(h.Refs, Hash(r))
	}
	switch {
	case len(w.KeyID) == 0 && w.Epoch != 0:
		return h, errors.New("a plain body names an epoch")
	case len(w.KeyID) != 0 && len(w.KeyID) != len(h.KeyID):
		return h, errors.New("key ID has the wrong size")
	case len(w.KeyID) != 0 && bytes.Equal(w.KeyID, make([]byte, len(h.KeyID))):
		return h, errors.New("key ID is zero")
	}
	copy(h.KeyID[:], w.KeyID)
	if h.Priority > Routine {
		return h, fmt.Errorf("unknown priority %d", w.Priority)
	}
	return h, nil
}

type entryWire struct {
	Header []byte `cbor:"1,keyasint"`
	Body   []byte `cbor:"2,keyasint"`
	Sig    []byte `cbor:"3,keyasint,omitempty"`
}

// An Entry is one record of the crisis log. It keeps the exact bytes it
// was decoded from or built with; it is immutable and safe for concurrent
// use.
type Entry struct {
	Header Header
	header []byte // exact header bytes
	body   []byte // exact body bytes: ciphertext, or the plain body
	sig    []byte // composite or provisional signature; nil when vouched for by a successor
	id     Hash
	raw    []byte
}

// ID returns the entry ID.
func (e *Entry) ID() Hash { return e.id }

// Signed reports whether the entry carries its own composite signature.
// An entry carrying only a provisional signature is not Signed: see
// [Entry.Provisional].
func (e *Entry) Signed() bool { return len(e.sig) == crypto.SignatureSize }

// Provisional reports whether the entry carries a provisional signature
// (the Ed25519 half of its composite signature) instead of the composite:
// until a composite signature covers it, it is at most waiting for its
// post-quantum signature (see the package documentation, "Narrow links").
func (e *Entry) Provisional() bool { return len(e.sig) == crypto.ProvisionalSize }

// Bytes returns the canonical encoding (with the signature, composite or
// provisional, if any). The caller must not modify it.
func (e *Entry) Bytes() []byte { return e.raw }

// HeaderBytes returns the exact header bytes (the AEAD associated data).
func (e *Entry) HeaderBytes() []byte { return e.header }

// BodyBytes returns the exact body bytes: ciphertext, or a plain body.
func (e *Entry) BodyBytes() []byte { return e.body }

// Signature returns the composite signature, or nil (also for an entry
// that carries a provisional signature). The caller must not modify it.
func (e *Entry) Signature() []byte {
	if !e.Signed() {
		return nil
	}
	return e.sig
}

// ProvisionalSignature returns the provisional signature the entry
// carries, or nil (also for an entry that carries its composite). The
// caller must not modify it.
func (e *Entry) ProvisionalSignature() []byte {
	if !e.Provisional() {
		return nil
	}
	return e.sig
}

// Size returns the encoded size in bytes.
func (e *Entry) Size() int { return len(e.raw) }

// Unsigned returns the same entry without its signature (composite or
// provisional).
func (e *Entry) Unsigned() *Entry {
	if e.sig == nil {
		return e
	}
	u, err := assemble(e.Header, e.header, e.body, nil)
	if err != nil {
		panic(err) // re-encoding a valid entry cannot fail
	}
	return u
}

// WithProvisional returns the same entry carrying the provisional
// signature split off its composite ([crypto.ProvisionalOf]) instead of
// the composite: the form a narrow link carries (see the package
// documentation, "Narrow links"). It fails for an entry that carries no
// composite signature, and for one at control priority (kinds roster, key,
// proposal, checkpoint), which always travels with its composite.
func (e *Entry) WithProvisional() (*Entry, error) {
	if !e.Signed() {
		return nil, fmt.Errorf("log: entry %s carries no composite signature to split", e.id.Short())
	}
	if e.Header.Priority == Control {
		return nil, fmt.Errorf("log: entry %s is at control priority (a system kind): it travels with its composite signature", e.id.Short())
	}
	p, err := crypto.ProvisionalOf(e.sig)
	if err != nil {
		return nil, err
	}
	return assemble(e.Header, e.header, e.body, p)
}

// WithSignature returns the same entry (the same ID) carrying sig, a
// composite or a provisional signature, in place of what it carried: how
// a composite signature sent on its own ([Cover]) is attached to the entry
// it covers. It checks only the size; [CheckRun] and [Classify] verify.
func (e *Entry) WithSignature(sig []byte) (*Entry, error) {
	if len(sig) != crypto.SignatureSize && len(sig) != crypto.ProvisionalSize {
		return nil, invalid(ReasonBadSignature, e, "signature of %d bytes, want %d (composite) or %d (provisional)", len(sig), crypto.SignatureSize, crypto.ProvisionalSize)
	}
	return assemble(e.Header, e.header, e.body, bytes.Clone(sig))
}

// entryID is the hash that identifies an entry and that its author signs.
func entryID(header, body []byte) Hash {
	h := sha256.New()
	h.Write([]byte("crisismesh/entry-id/v1\x00"))
	h.Write(header)
	h.Write(body)
	return Hash(h.Sum(nil))
}

func assemble(h Header, header, body, sig []byte) (*Entry, error) {
	raw, err := crypto.MarshalCanonical(&entryWire{Header: header, Body: body, Sig: sig})
	if err != nil {
		return nil, err
	}
	return &Entry{Header: h, header: header, body: body, sig: sig, id: entryID(header, body), raw: raw}, nil
}

// Decode parses an entry strictly: canonical encoding of the entry and of
// its header, known version and suite, sizes within limits. It does not
// check the signature or the chain: see [Check].
func Decode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, &InvalidError{Reason: ReasonOversize, Detail: fmt.Sprintf("%d bytes, limit %d", len(b), MaxEntrySize)}
	}
	var w entryWire
	if err := crypto.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeErr(err)
	}
	var hw headerWire
	if err := crypto.UnmarshalCanonical(w.Header, &hw); err != nil {
		return nil, decodeErr(err)
	}
	if hw.Version != FormatVersion || hw.Suite != SuiteV1 {
		return nil, &InvalidError{Reason: ReasonMalformed, Detail: fmt.Sprintf("format %d suite %d; this build reads format %d suite %d (upgrade crisismesh)", hw.Version, hw.Suite, FormatVersion, SuiteV1)}
	}
	if len(hw.Refs) > MaxRefs {
		return nil, &InvalidError{Reason: ReasonTooManyRefs, Detail: fmt.Sprintf("%d refs, limit %d", len(hw.Refs), MaxRefs)}
	}
	h, err := hw.header()
	if err != nil {
		return nil, &InvalidError{Reason: ReasonMalformed, Detail: "header: " + err.Error()}
	}
	if w.Sig != nil && len(w.Sig) != crypto.SignatureSize && len(w.Sig) != crypto.ProvisionalSize {
		return nil, &InvalidError{Reason: ReasonBadSignature, Author: h.Author, Seq: h.Seq, Detail: fmt.Sprintf("signature of %d bytes, want %d (composite) or %d (provisional)", len(w.Sig), crypto.SignatureSize, crypto.ProvisionalSize)}
	}
	e := &Entry{Header: h, header: w.Header, body: w.Body, sig: w.Sig, id: entryID(w.Header, w.Body), raw: append([]byte(nil), b...)}
	return e, nil
}

// VerifyProvisional checks the entry's own provisional signature against
// the author's card. An entry without one fails, also one that carries its
// composite (verify that with [Entry.VerifySignature]). A valid
// provisional signature makes an entry at most waiting, never covered.
func (e *Entry) VerifyProvisional(card *crypto.Card) error {
	if !e.Provisional() {
		return &InvalidError{Reason: ReasonBadSignature, Author: e.Header.Author, Seq: e.Header.Seq, Detail: "entry carries no provisional signature"}
	}
	if err := crypto.VerifyProvisional(card, crypto.ContextEntry, e.id[:], e.sig); err != nil {
		return &InvalidError{Reason: ReasonBadSignature, Author: e.Header.Author, Seq: e.Header.Seq, Detail: err.Error()}
	}
	return nil
}

func decodeErr(err error) error {
	if errors.Is(err, crypto.ErrNonCanonical) {
		return &InvalidError{Reason: ReasonNonCanonical, Detail: err.Error()}
	}
	return &InvalidError{Reason: ReasonMalformed, Detail: err.Error()}
}

// VerifySignature checks the entry's own composite signature against the
// author's card. An entry without one fails, also one that carries a
// provisional signature (see [Entry.VerifyProvisional]).
func (e *Entry) VerifySignature(card *crypto.Card) error {
	if !e.Signed() {
		detail := "entry carries no signature"
		if e.Provisional() {
			detail = "entry carries only a provisional signature, no composite"
		}
		return &InvalidError{Reason: ReasonUnsignedTail, Author: e.Header.Author, Seq: e.Header.Seq, Detail: detail}
	}
	if err := card.Verify(crypto.ContextEntry, e.id[:], e.sig); err != nil {
		return &InvalidError{Reason: ReasonBadSignature, Author: e.Header.Author, Seq: e.Header.Seq, Detail: err.Error()}
	}
	return nil
}

// OrderKey is the display-order key (lamport, author, seq), 48 bytes,
// big-endian, so byte order is display order.
type OrderKey [48]byte

// Order returns the entry's display-order key.
func (e *Entry) Order() OrderKey {
	return MakeOrderKey(e.Header.Lamport, e.Header.Author, e.Header.Seq)
}

// MakeOrderKey builds an order key.
func MakeOrderKey(lamport uint64, author crypto.MemberID, seq uint64) OrderKey {
	var k OrderKey
	binary.BigEndian.PutUint64(k[:8], lamport)
	copy(k[8:40], author[:])
	binary.BigEndian.PutUint64(k[40:], seq)
	return k
}

// Less reports whether a comes before b in display order.
func Less(a, b *Entry) bool {
	ka, kb := a.Order(), b.Order()
	return bytes.Compare(ka[:], kb[:]) < 0
}
