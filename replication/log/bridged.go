package log

import (
	"errors"
	"fmt"
)

// ErrBridged reports a malformed bridged-message payload.
var ErrBridged = errors.New("log: bridged payload")

// Bridged is the payload of a message entry that a bridge wrote on behalf
// of someone outside the mesh (interop/matrix: a Matrix user in the team's
// room). The entry's author is the node that bridged it; Sender and Event
// say who wrote it where, so that a reader sees it came from outside and
// the bridge never carries it back, nor twice.
type Bridged struct {
	// Via names the outside system: "matrix".
	Via string `cbor:"1,keyasint" json:"via"`
	// Sender is the outside author (a Matrix user ID).
	Sender string `cbor:"2,keyasint" json:"sender"`
	// Event is the outside message's ID (a Matrix event ID).
	Event string `cbor:"3,keyasint" json:"event_id"`
	// Room is where it was written (a Matrix room ID).
	Room string `cbor:"4,keyasint,omitempty" json:"room,omitempty"`
}

// Validate checks that b names its system, sender and event.
func (b *Bridged) Validate() error {
	if b.Via == "" || b.Sender == "" || b.Event == "" {
		return fmt.Errorf("%w: via, sender and event are required", ErrBridged)
	}
	if len(b.Via)+len(b.Sender)+len(b.Event)+len(b.Room) > 2048 {
		return fmt.Errorf("%w: over 2048 bytes", ErrBridged)
	}
	return nil
}

// Encode returns the canonical encoding of b after validating it.
func (b *Bridged) Encode() ([]byte, error) { return encodeValid(b) }

// DecodeBridged parses and validates a bridged payload. A message entry's
// payload is not checked when entries are validated (the field predates
// bridges), so readers decode it with this and treat an error as "not
// bridged".
func DecodeBridged(raw []byte) (*Bridged, error) {
	return decodeValid[Bridged](raw, func(err error) error { return fmt.Errorf("%w: %w", ErrBridged, err) })
}
