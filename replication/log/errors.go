package log

import (
	"errors"
	"fmt"

	"github.com/crisismesh/crisismesh/crypto"
)

// ErrInvalid is the class of every refused entry; errors.Is(err,
// ErrInvalid) holds for every [*InvalidError].
var ErrInvalid = errors.New("log: invalid entry")

// A Reason says why an entry was refused. Its string is stable: it appears
// in logs, metrics and the API.
type Reason string

// The reasons an entry is refused.
const (
	ReasonWrongNetwork  Reason = "wrong-network"
	ReasonUnknownAuthor Reason = "unknown-author"
	ReasonRevokedAuthor Reason = "revoked-author"
	ReasonGap           Reason = "gap"
	ReasonDuplicateSeq  Reason = "duplicate-seq"
	ReasonBadPrev       Reason = "bad-prev"
	ReasonLamport       Reason = "lamport"
	ReasonBadSignature  Reason = "bad-signature"
	ReasonUnsignedTail  Reason = "unsigned-tail"
	ReasonNonCanonical  Reason = "non-canonical"
	ReasonOversize      Reason = "oversize"
	ReasonTooManyRefs   Reason = "too-many-refs"
	ReasonMalformed     Reason = "malformed"
	ReasonForked        Reason = "forked"
	ReasonPlainKind     Reason = "plain-kind"
	// ReasonProvisionalSystem: an entry at control priority (kinds
	// roster, key, proposal, checkpoint) carries a provisional signature;
	// those are valid only with a composite signature.
	ReasonProvisionalSystem Reason = "provisional-system"
)

// An InvalidError is an entry refused for a [Reason].
type InvalidError struct {
	Reason Reason
	Author crypto.MemberID // zero if unknown
	Seq    uint64
	Detail string
}

func (e *InvalidError) Error() string {
	if e.Author.IsZero() {
		return fmt.Sprintf("log: entry refused (%s): %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("log: entry %s/%d refused (%s): %s", e.Author.Short(), e.Seq, e.Reason, e.Detail)
}

// Is makes errors.Is(err, ErrInvalid) true, and errors.Is(err, ErrForked)
// true for a forked author.
func (e *InvalidError) Is(target error) bool {
	return target == ErrInvalid || (target == ErrForked && e.Reason == ReasonForked)
}

// ReasonOf returns the reason of an invalid-entry error, or "".
func ReasonOf(err error) Reason {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

func invalid(r Reason, e *Entry, format string, args ...any) *InvalidError {
	ie := &InvalidError{Reason: r, Detail: fmt.Sprintf(format, args...)}
	if e != nil {
		ie.Author, ie.Seq = e.Header.Author, e.Header.Seq
	}
	return ie
}
