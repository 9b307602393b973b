package crisis

import "github.com/fxamacker/cbor/v2"

// Test-only codecs for building non-canonical or altered encodings by hand.
var (
	encMode, _ = cbor.CoreDetEncOptions().EncMode()
	decMode, _ = cbor.DecOptions{}.DecMode()
)
