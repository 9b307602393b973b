package crisis

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/fxamacker/cbor/v2"
)

// Encoding follows crypto's rules (see the crypto package doc): RFC 8949
// core deterministic CBOR with integer map keys; strict decoding that
// refuses unknown fields, duplicate keys, indefinite lengths and tags; and
// any input that does not re-encode to the same bytes is refused with
// crypto.ErrNonCanonical. Decode errors wrap crypto.ErrMalformed, so one
// errors.Is test covers every package.

// Size bounds. A signed command is one composite signature (3373 bytes)
// plus at most a few kilobytes of text; a state snapshot holds bounded
// lists (see the max constants in state.go).
const (
	maxCommandSize = 64 << 10
	maxStateSize   = 16 << 20
)

// The modes are immutable values built from constant options, like a
// regexp.MustCompile: an error here is a programming error that every test
// catches, never an input error.
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
		MaxNestedLevels:   8,
		MaxArrayElements:  maxSeen, // the longest list a state holds
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
		return nil, fmt.Errorf("crisis: encode %T: %w", v, err)
	}
	return b, nil
}

// unmarshalCanonical decodes data into v and refuses it unless it is at
// most limit bytes and encoding v again gives exactly data.
func unmarshalCanonical(data []byte, v any, limit int) error {
	name := reflect.TypeOf(v).Elem().Name()
	if len(data) > limit {
		return fmt.Errorf("%w: %s of %d bytes is over the %d-byte limit", crypto.ErrMalformed, name, len(data), limit)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", crypto.ErrMalformed, name, err)
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", crypto.ErrMalformed, name, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: %s", crypto.ErrNonCanonical, name)
	}
	return nil
}
