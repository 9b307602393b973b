package log

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Intel formats: the tool an intel entry's item comes from.
const (
	IntelMISP = "misp" // a part of a MISP event (package interop/misp)
	IntelSTIX = "stix" // a STIX 2.1 object (package interop/stix)
)

// IntelFormats lists every intel format.
var IntelFormats = []string{IntelMISP, IntelSTIX}

// Limits of an intel payload.
const (
	// MaxIntelID bounds an item's ID and its parent's: a MISP UUID has 36
	// characters, a STIX ID about 80.
	MaxIntelID = 256
)

// ErrIntel is the class of every error about an intel payload.
var ErrIntel = errors.New("log: intel payload")

// Intel is the payload of an entry of kind intel: one item of threat
// intelligence from another tool (a MISP event's own fields, one of its
// attributes or objects; a STIX object), kept verbatim so that an export gives it back.
// The tool's own identifier and version let a second import of the same
// item add nothing and a newer version add only itself. What an item means
// is for the package of its format to say; log only checks its shape.
//
// Its encoding is canonical CBOR, like a Body's: [DecodeIntel] accepts
// exactly the bytes [Intel.Encode] writes.
type Intel struct {
	// Format is one of IntelFormats.
	Format string `cbor:"1,keyasint" json:"format"`
	// Type is the item's type in its format (misp: event, attribute,
	// object; stix: the STIX type).
	Type string `cbor:"2,keyasint" json:"type"`
	// ID is the item's own identifier in its format (a MISP UUID, a STIX
	// id).
	ID string `cbor:"3,keyasint" json:"id"`
	// Parent is the ID of the item this one belongs to (a MISP
	// attribute's event; a STIX relationship's source), if any.
	Parent string `cbor:"4,keyasint,omitempty" json:"parent,omitempty"`
	// Version orders versions of one item: MISP's timestamp (Unix
	// seconds), STIX's modified (Unix nanoseconds). A higher version
	// supersedes a lower one.
	Version int64 `cbor:"5,keyasint,omitempty" json:"version,omitempty"`
	// Data is the item as a JSON object, as its format's package wrote
	// it.
	Data []byte `cbor:"6,keyasint" json:"data"`
}

// Validate checks an intel payload's shape.
func (in *Intel) Validate() error {
	switch {
	case !slices.Contains(IntelFormats, in.Format):
		return fmt.Errorf("%w: unknown format %q (formats: %v)", ErrIntel, in.Format, IntelFormats)
	case in.Type == "" || len(in.Type) > MaxIntelID:
		return fmt.Errorf("%w: type must have 1 to %d bytes", ErrIntel, MaxIntelID)
	case in.ID == "" || len(in.ID) > MaxIntelID || len(in.Parent) > MaxIntelID:
		return fmt.Errorf("%w: ID must have 1 to %d bytes, parent at most %d", ErrIntel, MaxIntelID, MaxIntelID)
	case in.Version < 0:
		return fmt.Errorf("%w: negative version %d", ErrIntel, in.Version)
	case len(in.Data) == 0 || in.Data[0] != '{' || !json.Valid(in.Data):
		return fmt.Errorf("%w: data is not a JSON object", ErrIntel)
	}
	return nil
}

// Encode returns the canonical encoding of in after validating it.
func (in *Intel) Encode() ([]byte, error) { return encodeValid(in) }

// DecodeIntel parses and validates an intel payload.
func DecodeIntel(raw []byte) (*Intel, error) {
	return decodeValid[Intel](raw, func(err error) error { return fmt.Errorf("%w: %w", ErrIntel, err) })
}
