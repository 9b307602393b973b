package crisis

import (
	"fmt"
	"reflect"

	"github.com/crisismesh/crisismesh/crypto"
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
	maxStateSize   = 4 << 20 // crypto's codec decodes at most 4 MiB
)

// marshal encodes v canonically, with crypto's codec.
func marshal(v any) ([]byte, error) {
	b, err := crypto.MarshalCanonical(v)
	if err != nil {
		return nil, fmt.Errorf("crisis: encode %T: %w", v, err)
	}
	return b, nil
}

// unmarshalCanonical decodes data into v with crypto's strict codec and
// refuses it if it is over limit bytes.
func unmarshalCanonical(data []byte, v any, limit int) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %s of %d bytes is over the %d-byte limit", crypto.ErrMalformed, reflect.TypeOf(v).Elem().Name(), len(data), limit)
	}
	return crypto.UnmarshalCanonical(data, v)
}
