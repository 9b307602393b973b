package crypto

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// ProvisionalSize is the size of a provisional signature: the 64-byte
// Ed25519 half of a composite signature.
const ProvisionalSize = ed25519.SignatureSize

// A provisional signature is the Ed25519 half of a composite signature,
// sent alone, ahead of the composite, where bytes are scarce (see
// replication/log, "Narrow links"). The composite's Ed25519 half is itself
// an RFC 8032 Ed25519 signature over the draft's message representative
// M' = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M), so one composite
// signing gives both: the author sends these 64 bytes now and the full
// composite later, for the same message.
//
// A provisional signature proves only what Ed25519 proves: nothing against
// an adversary that can forge Ed25519 (a quantum computer, a leaked Ed25519
// seed). It is verified over M' with the composite label, never over M, so
// it cannot be mistaken for, or made from, a plain Ed25519 signature of
// the same key over anything else; and it is never accepted where a
// composite signature is required ([Verify] refuses 64 bytes). The names
// say "provisional" so that no caller mistakes it for a composite check.
//
// There is deliberately no way to make a provisional signature without the
// composite: an author always signs with [Identity.Sign] and splits the
// half off with [ProvisionalOf], so whoever sends a provisional signature
// holds the composite that will replace it.

// ProvisionalOf returns a copy of the Ed25519 half of composite signature
// sig: the provisional signature made by the same signing. It checks only
// the size; verify with [VerifyProvisional].
func ProvisionalOf(sig []byte) ([]byte, error) {
	if len(sig) != SignatureSize {
		return nil, fmt.Errorf("%w: composite signature is %d bytes, want %d", ErrBadSignature, len(sig), SignatureSize)
	}
	return bytes.Clone(sig[mldsa65.SignatureSize:]), nil
}

// VerifyProvisional checks that sig is the provisional signature (the
// Ed25519 half of a composite signature, see [ProvisionalOf]) of card's
// member over msg in context ctx, with the same strict checks as the
// Ed25519 half of [Verify]: S < L, R canonical and not of small order, the
// key canonical and not of small order. A valid provisional signature is
// not a valid composite signature: it proves nothing against an adversary
// that can forge Ed25519.
func VerifyProvisional(card *Card, ctx Context, msg, sig []byte) error {
	if card == nil {
		return errors.New("crypto: verify provisional: no card")
	}
	return card.sig.VerifyProvisional(ctx, msg, sig)
}

// VerifyProvisional checks a provisional signature under pk; see the
// function [VerifyProvisional].
func (pk *PublicKey) VerifyProvisional(ctx Context, msg, sig []byte) error {
	if err := ctx.check(); err != nil {
		return err
	}
	return pk.verifyProvisional(ctx, msg, sig)
}

// verifyProvisional is VerifyProvisional without the check that ctx is a
// real context, so the draft's vectors with an empty context run through
// it.
func (pk *PublicKey) verifyProvisional(ctx Context, msg, sig []byte) error {
	if len(sig) != ProvisionalSize {
		return fmt.Errorf("%w: provisional signature of %d bytes, want %d", ErrBadSignature, len(sig), ProvisionalSize)
	}
	if !verifyEd25519(pk.ed, messageRepresentative(ctx, msg), sig) {
		return fmt.Errorf("%w: provisional (Ed25519) signature does not verify", ErrBadSignature)
	}
	return nil
}
