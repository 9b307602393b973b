package crypto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SuiteCard names suite version 1 of a member card: composite signatures
// ([SuiteSignature]), X-Wing sealing ([SuiteKEM]) and an Ed25519 libp2p
// peer key.
const SuiteCard = "crisismesh-card-v1"

// nameRE is what a member name may look like: "cert-lu", "cyclone-fr",
// "presidency". Lowercase, so names cannot be confused by case.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)

// CheckName reports whether name is a valid member name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("crypto: member name %q: want 2 to 63 characters a-z, 0-9 and '-', starting with a letter (e.g. cert-lu)", name)
	}
	return nil
}

// signedWire is how every signed structure travels: the exact body bytes
// that were signed, who signed (absent when self-signed) and the signature.
type signedWire struct {
	Body   []byte `cbor:"1,keyasint"`
	Signer []byte `cbor:"2,keyasint,omitempty"`
	Sig    []byte `cbor:"3,keyasint"`
}

// signBy encodes body and signs it as signer under ctx: the bytes of a
// signed structure that names its signer.
func signBy(signer *Identity, ctx Context, body any) ([]byte, error) {
	b, err := marshal(body)
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(ctx, b)
	if err != nil {
		return nil, err
	}
	id := signer.ID()
	return marshal(&signedWire{Body: b, Signer: id[:], Sig: sig})
}

// parseSigned decodes a signed structure strictly, and its body into
// body; what names the structure in an error.
func parseSigned(b []byte, body any, what string) (signedWire, error) {
	var w signedWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return w, fmt.Errorf("crypto: %s: %w", what, err)
	}
	if err := unmarshalCanonical(w.Body, body); err != nil {
		return w, fmt.Errorf("crypto: %s body: %w", what, err)
	}
	return w, nil
}

type cardBody struct {
	Suite      string `cbor:"1,keyasint"`
	Name       string `cbor:"2,keyasint"`
	SigningKey []byte `cbor:"3,keyasint"`
	KEMKey     []byte `cbor:"4,keyasint"`
	PeerKey    []byte `cbor:"5,keyasint"` // libp2p-marshalled Ed25519 public key
	Created    int64  `cbor:"6,keyasint"` // Unix seconds
}

// A Card is the public half of an identity, self-signed: name, composite
// signing key, X-Wing KEM key and libp2p peer key. It is what members
// exchange and what the roster lists. It is immutable and safe for
// concurrent use.
type Card struct {
	raw     []byte
	name    string
	sig     *PublicKey
	kem     *KEMPublicKey
	peerKey libp2pcrypto.PubKey
	peerID  peer.ID
	created time.Time
}

// newCard builds and self-signs a card.
func newCard(name string, sk *signingKey, kk *kemKey, peerPub libp2pcrypto.PubKey, created time.Time) (*Card, error) {
	pk, err := libp2pcrypto.MarshalPublicKey(peerPub)
	if err != nil {
		return nil, fmt.Errorf("crypto: peer key: %w", err)
	}
	body, err := marshal(&cardBody{
		Suite: SuiteCard, Name: name, SigningKey: sk.pub.Bytes(), KEMKey: kk.pub.Bytes(),
		PeerKey: pk, Created: created.Unix(),
	})
	if err != nil {
		return nil, err
	}
	sig, err := sk.sign(ContextCard, body)
	if err != nil {
		return nil, err
	}
	raw, err := marshal(&signedWire{Body: body, Sig: sig})
	if err != nil {
		return nil, err
	}
	return ParseCard(raw)
}

// ParseCard decodes a card strictly and checks its self-signature.
func ParseCard(b []byte) (*Card, error) {
	var w signedWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("crypto: member card: %w", err)
	}
	if len(w.Signer) != 0 {
		return nil, fmt.Errorf("crypto: member card: %w: a card is self-signed and names no signer", ErrMalformed)
	}
	var body cardBody
	if err := unmarshalCanonical(w.Body, &body); err != nil {
		return nil, fmt.Errorf("crypto: member card body: %w", err)
	}
	if body.Suite != SuiteCard {
		return nil, fmt.Errorf("crypto: member card: %w: unknown suite %q (this version knows %q)", ErrMalformed, body.Suite, SuiteCard)
	}
	if err := CheckName(body.Name); err != nil {
		return nil, fmt.Errorf("crypto: member card: %w: %v", ErrMalformed, err)
	}
	c := &Card{raw: append([]byte(nil), b...), name: body.Name, created: time.Unix(body.Created, 0).UTC()}
	var err error
	if c.sig, err = ParsePublicKey(body.SigningKey); err != nil {
		return nil, fmt.Errorf("crypto: member card %s: %w", body.Name, err)
	}
	if c.kem, err = ParseKEMPublicKey(body.KEMKey); err != nil {
		return nil, fmt.Errorf("crypto: member card %s: %w", body.Name, err)
	}
	if c.peerKey, err = libp2pcrypto.UnmarshalPublicKey(body.PeerKey); err != nil {
		return nil, fmt.Errorf("crypto: member card %s: %w: peer key: %v", body.Name, ErrBadKey, err)
	}
	if c.peerKey.Type() != libp2pcrypto.Ed25519 {
		return nil, fmt.Errorf("crypto: member card %s: %w: peer key is %v, want Ed25519", body.Name, ErrBadKey, c.peerKey.Type())
	}
	if c.peerID, err = peer.IDFromPublicKey(c.peerKey); err != nil {
		return nil, fmt.Errorf("crypto: member card %s: %w: peer ID: %v", body.Name, ErrBadKey, err)
	}
	if err := c.sig.Verify(ContextCard, w.Body, w.Sig); err != nil {
		return nil, fmt.Errorf("crypto: member card %s: self-signature: %w", body.Name, err)
	}
	return c, nil
}

// Bytes returns the card's canonical encoding. The caller must not modify it.
func (c *Card) Bytes() []byte { return c.raw }

// Name returns the member's name.
func (c *Card) Name() string { return c.name }

// ID returns the member ID (SHA-256 of the composite public key).
func (c *Card) ID() MemberID { return c.sig.ID() }

// SigningKey returns the composite public key.
func (c *Card) SigningKey() *PublicKey { return c.sig }

// KEMKey returns the X-Wing public key.
func (c *Card) KEMKey() *KEMPublicKey { return c.kem }

// PeerID returns the libp2p peer ID of the member's node.
func (c *Card) PeerID() peer.ID { return c.peerID }

// PeerKey returns the libp2p public key of the member's node.
func (c *Card) PeerKey() libp2pcrypto.PubKey { return c.peerKey }

// Created returns when the card was made.
func (c *Card) Created() time.Time { return c.created }

// Recipient returns the card as a recipient for [Seal].
func (c *Card) Recipient() Recipient { return Recipient{ID: c.ID(), Key: c.kem} }

// Equal reports whether two cards are byte for byte the same.
func (c *Card) Equal(o *Card) bool { return o != nil && string(c.raw) == string(o.raw) }

// Verify checks a signature by this member; see [Verify].
func (c *Card) Verify(ctx Context, msg, sig []byte) error { return c.sig.Verify(ctx, msg, sig) }

// Verify checks that sig is card's member's composite signature over msg in
// context ctx. Both halves must verify.
func Verify(card *Card, ctx Context, msg, sig []byte) error {
	if card == nil {
		return errors.New("crypto: verify: no card")
	}
	return card.Verify(ctx, msg, sig)
}

// cardJSON is the file members exchange: readable fields for a person to
// check (by phone, say: "my member ID starts with 3fa2…") and the card
// itself, whose self-signature is what counts.
type cardJSON struct {
	Name     string    `json:"name"`
	MemberID MemberID  `json:"member_id"`
	PeerID   string    `json:"peer_id"`
	Suite    string    `json:"suite"`
	SigSuite string    `json:"signature_suite"`
	KEMSuite string    `json:"kem_suite"`
	Created  time.Time `json:"created"`
	Card     string    `json:"card"` // base64 of the canonical encoding
}

// MarshalJSON writes the card file format.
func (c *Card) MarshalJSON() ([]byte, error) {
	return json.Marshal(cardJSON{
		Name: c.name, MemberID: c.ID(), PeerID: c.peerID.String(), Suite: SuiteCard,
		SigSuite: SuiteSignature, KEMSuite: SuiteKEM, Created: c.created,
		Card: base64.StdEncoding.EncodeToString(c.raw),
	})
}

// UnmarshalJSON reads the card file format. The signed card decides; the
// readable fields, where present, must agree with it, so an edited file is
// caught rather than believed.
func (c *Card) UnmarshalJSON(b []byte) error {
	var j cardJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("crypto: card file is not valid JSON: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(j.Card)
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("crypto: card file: the \"card\" field is missing or not base64")
	}
	parsed, err := ParseCard(raw)
	if err != nil {
		return err
	}
	switch {
	case j.Name != "" && j.Name != parsed.name:
		return fmt.Errorf("crypto: card file says name %q but the signed card says %q: the file was edited; ask the member for their card again", j.Name, parsed.name)
	case !j.MemberID.IsZero() && j.MemberID != parsed.ID():
		return fmt.Errorf("crypto: card file says member_id %s but the signed card is %s: the file was edited; ask the member for their card again", j.MemberID, parsed.ID())
	case j.PeerID != "" && j.PeerID != parsed.peerID.String():
		return fmt.Errorf("crypto: card file says peer_id %s but the signed card says %s: the file was edited; ask the member for their card again", j.PeerID, parsed.peerID)
	}
	*c = *parsed
	return nil
}
