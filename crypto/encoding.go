package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// ErrNonCanonical reports an encoding that decodes but is not the one
// canonical encoding of its value. Such bytes are refused because signatures
// cover exact bytes: accepting a second encoding would make entries
// malleable.
var ErrNonCanonical = errors.New("crypto: non-canonical encoding")

// ErrMalformed reports bytes that do not decode as the expected structure.
var ErrMalformed = errors.New("crypto: malformed encoding")

// maxDecodeSize bounds any single structure this package decodes. A roster
// of a few hundred members fits well inside it.
const maxDecodeSize = 4 << 20

// The modes are immutable values built from constant options, like a
// regexp.MustCompile: an error here is a programming error that every test
// would catch, never an input error.
var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// marshal encodes v canonically.
func marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("crypto: encode %T: %w", v, err)
	}
	return b, nil
}

// unmarshalCanonical decodes data into v and refuses it unless encoding v
// again gives exactly data.
func unmarshalCanonical(data []byte, v any) error {
	if len(data) > maxDecodeSize {
		return fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrMalformed, len(data), maxDecodeSize)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, reflect.TypeOf(v).Elem().Name(), err)
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: %s", ErrNonCanonical, reflect.TypeOf(v).Elem().Name())
	}
	return nil
}

// MarshalCanonical encodes v as deterministic CBOR, the one encoding every
// signed or stored crisismesh structure uses. Other packages use it so that
// the whole project shares one canonical form.
func MarshalCanonical(v any) ([]byte, error) { return marshal(v) }

// UnmarshalCanonical decodes data into v strictly (no unknown fields,
// duplicate keys, indefinite lengths or tags) and refuses it with
// [ErrNonCanonical] unless encoding v again gives exactly data.
func UnmarshalCanonical(data []byte, v any) error { return unmarshalCanonical(data, v) }
