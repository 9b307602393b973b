package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// SuiteGroup names a payload sealed under a [GroupKey]: per message, a
// random 32-byte salt and HKDF-SHA256 derive a one-time AES-256-GCM key and
// nonce from the group key. A (key, nonce) pair therefore never repeats
// unless a 256-bit salt does, however many messages a group key seals.
const SuiteGroup = "group-aes-256-gcm-hkdf-sha256"

const (
	groupSecretSize = 32
	groupSaltSize   = 32
	maxGroupName    = 64
)

// groupNameRE is what a group name may look like: "all", "need-to-know/x",
// "tlp-red/5". Group names appear in info strings; keep them plain.
var groupNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/+-]*$`)

// ErrWrongKey reports a group ciphertext presented to a key it was not sealed
// under (another key ID or epoch).
var ErrWrongKey = errors.New("crypto: sealed under another group key")

// A GroupKey is a symmetric key shared by the members of a group for one
// epoch. It is immutable and safe for concurrent use. Compare with Equal,
// never ==.
type GroupKey struct {
	_      incomparable
	group  string
	epoch  uint64
	id     KeyID
	secret [groupSecretSize]byte
}

// NewGroupKey draws a fresh key for group at epoch. Each new epoch (e.g.
// after a member is revoked) gets a new key that the revoked member never
// receives.
func NewGroupKey(group string, epoch uint64) (*GroupKey, error) {
	if err := checkGroupName(group); err != nil {
		return nil, err
	}
	g := &GroupKey{group: group, epoch: epoch}
	if _, err := rand.Read(g.id[:]); err != nil {
		return nil, fmt.Errorf("crypto: read randomness: %w", err)
	}
	if _, err := rand.Read(g.secret[:]); err != nil {
		return nil, fmt.Errorf("crypto: read randomness: %w", err)
	}
	return g, nil
}

func checkGroupName(group string) error {
	if len(group) == 0 || len(group) > maxGroupName || !groupNameRE.MatchString(group) {
		return fmt.Errorf("crypto: group name %q: want 1 to %d characters of a-z 0-9 . _ / + -", group, maxGroupName)
	}
	return nil
}

// Group returns the group's name.
func (g *GroupKey) Group() string { return g.group }

// Epoch returns the key's epoch.
func (g *GroupKey) Epoch() uint64 { return g.epoch }

// ID returns the key's ID, which every ciphertext sealed with it carries.
func (g *GroupKey) ID() KeyID { return g.id }

// Equal reports, in constant time for the secret, whether two group keys are
// the same.
func (g *GroupKey) Equal(o *GroupKey) bool {
	if o == nil {
		return false
	}
	same := equalSecret(g.secret[:], o.secret[:])
	return same && g.id == o.id && g.group == o.group && g.epoch == o.epoch
}

type groupWire struct {
	Suite      string `cbor:"1,keyasint"`
	KeyID      []byte `cbor:"2,keyasint"`
	Epoch      uint64 `cbor:"3,keyasint"`
	Salt       []byte `cbor:"4,keyasint"`
	Ciphertext []byte `cbor:"5,keyasint"`
}

// SealWith encrypts plaintext under the group key, with aad as associated
// data, and returns the encoded ciphertext. It never reuses a nonce: each
// call draws a fresh salt from which key and nonce are derived.
func SealWith(g *GroupKey, network NetworkID, aad, plaintext []byte) ([]byte, error) {
	w := groupWire{Suite: SuiteGroup, KeyID: g.id[:], Epoch: g.epoch, Salt: make([]byte, groupSaltSize)}
	if _, err := rand.Read(w.Salt); err != nil {
		return nil, fmt.Errorf("crypto: read randomness: %w", err)
	}
	aead, nonce, err := g.derive(network, w.Salt)
	if err != nil {
		return nil, err
	}
	w.Ciphertext = aead.Seal(nil, nonce, plaintext, aad)
	return marshal(&w)
}

// OpenWith decrypts a ciphertext made by SealWith under the same key,
// network and aad.
func OpenWith(g *GroupKey, network NetworkID, aad, sealed []byte) ([]byte, error) {
	w, err := parseGroupCiphertext(sealed)
	if err != nil {
		return nil, err
	}
	if KeyID(w.KeyID) != g.id || w.Epoch != g.epoch {
		return nil, fmt.Errorf("%w: ciphertext names key %x epoch %d, this key is %s epoch %d",
			ErrWrongKey, w.KeyID, w.Epoch, g.id, g.epoch)
	}
	aead, nonce, err := g.derive(network, w.Salt)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, w.Ciphertext, aad)
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

// SealedKey returns the key ID and epoch a group ciphertext names, so the
// caller can find the key to open it with.
func SealedKey(sealed []byte) (KeyID, uint64, error) {
	w, err := parseGroupCiphertext(sealed)
	if err != nil {
		return KeyID{}, 0, err
	}
	return KeyID(w.KeyID), w.Epoch, nil
}

func parseGroupCiphertext(b []byte) (*groupWire, error) {
	var w groupWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("crypto: group ciphertext: %w", err)
	}
	switch {
	case w.Suite != SuiteGroup:
		return nil, fmt.Errorf("crypto: group ciphertext: %w: unknown suite %q", ErrMalformed, w.Suite)
	case len(w.KeyID) != keyIDSize:
		return nil, fmt.Errorf("crypto: group ciphertext: %w: key ID is %d bytes", ErrMalformed, len(w.KeyID))
	case len(w.Salt) != groupSaltSize:
		return nil, fmt.Errorf("crypto: group ciphertext: %w: salt is %d bytes", ErrMalformed, len(w.Salt))
	case len(w.Ciphertext) < gcmTagSize:
		return nil, ErrTampered // the same text as every other failure to open: no oracle
	}
	return &w, nil
}

// derive returns the one-time AEAD and nonce for one salt.
func (g *GroupKey) derive(network NetworkID, salt []byte) (cipher.AEAD, []byte, error) {
	info := []byte("crisismesh/group/v1\x00")
	info = append(info, network[:]...)
	info = append(info, g.id[:]...)
	info = binary.BigEndian.AppendUint64(info, g.epoch)
	info = append(info, g.group...)
	okm, err := hkdf.Key(sha256.New, g.secret[:], salt, string(info), contentKeySize+gcmNonceSize)
	if err != nil {
		return nil, nil, fmt.Errorf("crypto: HKDF: %w", err)
	}
	defer clear(okm[:contentKeySize])
	aead, err := newGCM(okm[:contentKeySize])
	if err != nil {
		return nil, nil, err
	}
	return aead, okm[contentKeySize:], nil
}

// keyPurpose is the seal purpose of a key envelope: it binds group and epoch,
// so an envelope replayed under another group or epoch does not open.
func keyPurpose(group string, epoch uint64) string {
	return "group-key\x00" + group + "\x00" + strconv.FormatUint(epoch, 10)
}

type keyEnvelopeWire struct {
	Group    string `cbor:"1,keyasint"`
	Epoch    uint64 `cbor:"2,keyasint"`
	Envelope []byte `cbor:"3,keyasint"`
	KeyID    []byte `cbor:"4,keyasint"`
}

// A KeyEnvelope distributes one group key to the members of its group. Its
// group, epoch and key ID are in clear so that nodes can index it; all three
// are bound into the seal, so changing any of them makes it fail to open.
type KeyEnvelope struct {
	group string
	epoch uint64
	keyID KeyID
	env   *Envelope
}

// NewKeyEnvelope seals g to recipients.
func NewKeyEnvelope(network NetworkID, g *GroupKey, recipients []Recipient) (*KeyEnvelope, error) {
	payload := make([]byte, 0, keyIDSize+groupSecretSize)
	payload = append(payload, g.id[:]...)
	payload = append(payload, g.secret[:]...)
	defer clear(payload)
	env, err := Seal(network, keyPurpose(g.group, g.epoch), recipients, nil, payload)
	if err != nil {
		return nil, fmt.Errorf("crypto: key envelope for %s epoch %d: %w", g.group, g.epoch, err)
	}
	return &KeyEnvelope{group: g.group, epoch: g.epoch, keyID: g.id, env: env}, nil
}

// KeyID returns the ID of the group key the envelope claims to carry; it is
// checked against the sealed key when opened.
func (k *KeyEnvelope) KeyID() KeyID { return k.keyID }

// Group returns the group the envelope claims to carry a key for.
func (k *KeyEnvelope) Group() string { return k.group }

// Epoch returns the epoch the envelope claims.
func (k *KeyEnvelope) Epoch() uint64 { return k.epoch }

// Recipients returns the members the key is sealed to.
func (k *KeyEnvelope) Recipients() []MemberID { return k.env.Recipients() }

// Bytes returns the canonical encoding.
func (k *KeyEnvelope) Bytes() []byte {
	b, err := marshal(&keyEnvelopeWire{Group: k.group, Epoch: k.epoch, Envelope: k.env.Bytes(), KeyID: k.keyID[:]})
	if err != nil {
		panic(err) // only reachable with a value this package did not build
	}
	return b
}

// ParseKeyEnvelope decodes a key envelope strictly.
func ParseKeyEnvelope(b []byte) (*KeyEnvelope, error) {
	var w keyEnvelopeWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("crypto: key envelope: %w", err)
	}
	if err := checkGroupName(w.Group); err != nil {
		return nil, fmt.Errorf("crypto: key envelope: %w: %v", ErrMalformed, err)
	}
	if len(w.KeyID) != keyIDSize {
		return nil, fmt.Errorf("crypto: key envelope: %w: key ID is %d bytes", ErrMalformed, len(w.KeyID))
	}
	env, err := ParseEnvelope(w.Envelope)
	if err != nil {
		return nil, fmt.Errorf("crypto: key envelope: %w", err)
	}
	return &KeyEnvelope{group: w.Group, epoch: w.Epoch, keyID: KeyID(w.KeyID), env: env}, nil
}

// openKeyEnvelope recovers the group key with the member's KEM key.
func (k *KeyEnvelope) open(kk *kemKey, me MemberID, network NetworkID) (*GroupKey, error) {
	payload, err := k.env.open(kk, me, network, keyPurpose(k.group, k.epoch), nil)
	if err != nil {
		return nil, fmt.Errorf("crypto: key envelope for %s epoch %d: %w", k.group, k.epoch, err)
	}
	defer clear(payload)
	// A payload of the wrong size, or another key than the clear key ID
	// names, fails with the same text as a failure to decrypt: no oracle.
	if len(payload) != keyIDSize+groupSecretSize || KeyID(payload[:keyIDSize]) != k.keyID {
		return nil, fmt.Errorf("crypto: key envelope for %s epoch %d: %w", k.group, k.epoch, ErrTampered)
	}
	g := &GroupKey{group: k.group, epoch: k.epoch}
	copy(g.id[:], payload[:keyIDSize])
	copy(g.secret[:], payload[keyIDSize:])
	return g, nil
}
