package sim

import (
	"github.com/fxamacker/cbor/v2"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// claimAuthor re-encodes e with another author in its header, keeping the
// original signature: a forgery every node must refuse.
func claimAuthor(e *log.Entry, author crypto.MemberID) (*log.Entry, error) {
	var hdr map[uint64]any
	if err := cbor.Unmarshal(e.HeaderBytes(), &hdr); err != nil {
		return nil, err
	}
	hdr[4] = author[:]
	header, err := crypto.MarshalCanonical(hdr)
	if err != nil {
		return nil, err
	}
	raw, err := crypto.MarshalCanonical(map[uint64][]byte{1: header, 2: e.BodyBytes(), 3: e.Signature()})
	if err != nil {
		return nil, err
	}
	return log.Decode(raw)
}
