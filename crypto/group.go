package crypto

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
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

// Key envelope formats. Format 1 named its group and its recipients' member
// IDs in clear, so every relay learned who talks to whom; it is still read
// (stores hold such entries) but no longer written. Format 2 shows only what
// a node needs to file and find it: the key ID, the epoch and the number of
// recipient slots.
const (
	keyEnvelopeV1 = 1
	keyEnvelopeV2 = 2
)

// keyPurpose is the seal purpose of a format-1 key envelope: it binds group
// and epoch, so an envelope replayed under another group or epoch does not
// open.
func keyPurpose(group string, epoch uint64) string {
	return "group-key\x00" + group + "\x00" + strconv.FormatUint(epoch, 10)
}

// keyEnvelopeWire is format 1.
type keyEnvelopeWire struct {
	Group    string `cbor:"1,keyasint"`
	Epoch    uint64 `cbor:"2,keyasint"`
	Envelope []byte `cbor:"3,keyasint"`
	KeyID    []byte `cbor:"4,keyasint"`
}

// keyEnvelopeV2Wire is format 2. Its keys do not overlap format 1's
// group (1) and envelope (3), and it names its version (5), so the strict
// decoder tells the two apart.
type keyEnvelopeV2Wire struct {
	Epoch      uint64    `cbor:"2,keyasint"`
	KeyID      []byte    `cbor:"4,keyasint"`
	Version    uint      `cbor:"5,keyasint"`
	Slots      []keySlot `cbor:"6,keyasint"`
	Nonce      []byte    `cbor:"7,keyasint"`
	Ciphertext []byte    `cbor:"8,keyasint"`
}

// A keySlot is one recipient's wrapped copy of the content key. It does not
// say whose it is: a recipient finds its slot by trying to open each.
type keySlot struct {
	Enc     []byte `cbor:"1,keyasint"` // X-Wing encapsulation
	Wrapped []byte `cbor:"2,keyasint"` // AES-256-GCM(content key)
}

// keyGrantWire is the sealed payload of a format-2 envelope.
type keyGrantWire struct {
	Group   string   `cbor:"1,keyasint"`
	Members [][]byte `cbor:"2,keyasint"` // sorted, unique
	Secret  []byte   `cbor:"3,keyasint"`
}

// A KeyEnvelope distributes one group key to the members of its group.
//
// In format 2 (the one [NewKeyEnvelope] writes) only the key ID, the epoch
// and the number of recipient slots are in clear: the group name and the
// recipients' member IDs are sealed, and a slot does not say whose it is, so
// a node that is not a recipient learns neither who the recipients are nor
// what the group is called. What still shows: that a key was distributed,
// by whom (the entry's author), its key ID and epoch, how many recipients
// it has, and the sizes and times of entries. Format-1 envelopes, which
// named group and recipients in clear, are still parsed and opened.
//
// Everything in clear is bound into the seal, so changing any of it makes
// the envelope fail to open. It is immutable and safe for concurrent use.
type KeyEnvelope struct {
	version int
	epoch   uint64
	keyID   KeyID
	// format 1
	group string
	env   *Envelope
	// format 2
	w2 *keyEnvelopeV2Wire
}

// A Grant is what a recipient learns by opening a key envelope: the group
// key, and the members the envelope's author says it is sealed to (the
// group name and this list are sealed in format 2, clear in format 1). A
// recipient can check its own slot only; whether the key is to be trusted
// is a policy of the caller (replication/log's keyring), which compares
// Members with the author and with [KeyEnvelope.Slots].
type Grant struct {
	Key     *GroupKey
	Members []MemberID // sorted, unique; the caller's
}

// NewKeyEnvelope seals g to recipients in format 2. The group name and the
// recipients' member IDs travel inside the seal.
func NewKeyEnvelope(network NetworkID, g *GroupKey, recipients []Recipient) (*KeyEnvelope, error) {
	fail := func(err error) (*KeyEnvelope, error) {
		return nil, fmt.Errorf("crypto: key envelope for %s epoch %d: %w", g.group, g.epoch, err)
	}
	if len(recipients) == 0 {
		return fail(errors.New("no recipients"))
	}
	if len(recipients) > maxRecipients {
		return fail(fmt.Errorf("%d recipients is over the limit of %d", len(recipients), maxRecipients))
	}
	members := make([][]byte, 0, len(recipients))
	for _, r := range recipients {
		if r.Key == nil || r.ID.IsZero() {
			return fail(errors.New("recipient without member ID or KEM key"))
		}
		members = append(members, bytes.Clone(r.ID[:]))
	}
	slices.SortFunc(members, bytes.Compare)
	for i := 1; i < len(members); i++ {
		if bytes.Equal(members[i-1], members[i]) {
			return fail(fmt.Errorf("recipient %s listed twice", MemberID(members[i]).Short()))
		}
	}
	payload, err := marshal(&keyGrantWire{Group: g.group, Members: members, Secret: g.secret[:]})
	if err != nil {
		return fail(err)
	}
	defer clear(payload)

	var contentKey [contentKeySize]byte
	defer clear(contentKey[:])
	w := &keyEnvelopeV2Wire{Version: keyEnvelopeV2, Epoch: g.epoch, KeyID: g.id[:], Nonce: make([]byte, gcmNonceSize)}
	for _, b := range [][]byte{contentKey[:], w.Nonce} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("crypto: read randomness: %w", err)
		}
	}
	_, kdf, hpkeAEAD := hpkeSuite()
	for _, r := range recipients {
		enc, sender, err := hpke.NewSender(r.Key.pk, kdf, hpkeAEAD, slotInfo(network, g.id, g.epoch, r.ID))
		if err != nil {
			return fail(err)
		}
		wrapped, err := sender.Seal(nil, contentKey[:])
		if err != nil {
			return fail(err)
		}
		w.Slots = append(w.Slots, keySlot{Enc: enc, Wrapped: wrapped})
	}
	// Sorted by the random encapsulations: the order says nothing of who.
	slices.SortFunc(w.Slots, func(a, b keySlot) int { return bytes.Compare(a.Enc, b.Enc) })
	aead, err := newGCM(contentKey[:])
	if err != nil {
		return nil, err
	}
	w.Ciphertext = aead.Seal(nil, w.Nonce, payload, grantAAD(network, w))
	return &KeyEnvelope{version: keyEnvelopeV2, epoch: g.epoch, keyID: g.id, w2: w}, nil
}

// slotInfo is the HPKE info string of one format-2 slot. It binds the
// recipient's member ID, which the recipient knows and nobody else reads.
func slotInfo(network NetworkID, keyID KeyID, epoch uint64, member MemberID) []byte {
	b := []byte("crisismesh/key-envelope/v2/slot\x00")
	b = append(b, network[:]...)
	b = append(b, keyID[:]...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	return append(b, member[:]...)
}

// grantAAD binds the sealed payload of a format-2 envelope to its network,
// key ID, epoch and every slot, so no slot can be added, dropped or changed
// without the payload failing to open.
func grantAAD(network NetworkID, w *keyEnvelopeV2Wire) []byte {
	h := sha256.New()
	for _, s := range w.Slots {
		h.Write(s.Enc)
		h.Write(s.Wrapped)
	}
	b := []byte("crisismesh/key-envelope/v2/grant\x00")
	b = append(b, network[:]...)
	b = append(b, w.KeyID...)
	b = binary.BigEndian.AppendUint64(b, w.Epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(w.Slots)))
	return h.Sum(b)
}

// KeyID returns the ID of the group key the envelope claims to carry; it is
// checked against the sealed key when opened.
func (k *KeyEnvelope) KeyID() KeyID { return k.keyID }

// Epoch returns the epoch the envelope claims.
func (k *KeyEnvelope) Epoch() uint64 { return k.epoch }

// Version returns the envelope's format: 2, or 1 for envelopes written
// before recipients were hidden.
func (k *KeyEnvelope) Version() int { return k.version }

// Slots returns how many recipients the envelope is sealed to: the one
// thing about its recipients that is in clear.
func (k *KeyEnvelope) Slots() int {
	if k.version == keyEnvelopeV1 {
		return len(k.env.w.Recipients)
	}
	return len(k.w2.Slots)
}

// Bytes returns the canonical encoding.
func (k *KeyEnvelope) Bytes() []byte {
	var v any = k.w2
	if k.version == keyEnvelopeV1 {
		v = &keyEnvelopeWire{Group: k.group, Epoch: k.epoch, Envelope: k.env.Bytes(), KeyID: k.keyID[:]}
	}
	b, err := marshal(v)
	if err != nil {
		panic(err) // only reachable with a value this package did not build
	}
	return b
}

// ParseKeyEnvelope decodes a key envelope of either format strictly.
func ParseKeyEnvelope(b []byte) (*KeyEnvelope, error) {
	var w2 keyEnvelopeV2Wire
	err2 := unmarshalCanonical(b, &w2)
	if err2 == nil {
		if err := w2.check(); err != nil {
			return nil, fmt.Errorf("crypto: key envelope: %w: %v", ErrMalformed, err)
		}
		return &KeyEnvelope{version: keyEnvelopeV2, epoch: w2.Epoch, keyID: KeyID(w2.KeyID), w2: &w2}, nil
	}
	var w keyEnvelopeWire
	if err := unmarshalCanonical(b, &w); err != nil {
		if errors.Is(err2, ErrNonCanonical) {
			err = err2
		}
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
	return &KeyEnvelope{version: keyEnvelopeV1, group: w.Group, epoch: w.Epoch, keyID: KeyID(w.KeyID), env: env}, nil
}

func (w *keyEnvelopeV2Wire) check() error {
	if w.Version != keyEnvelopeV2 {
		return fmt.Errorf("format %d (this version knows 1 and 2)", w.Version)
	}
	if err := checkWrapped(w.KeyID, w.Nonce, w.Ciphertext, len(w.Slots), "recipient slots"); err != nil {
		return err
	}
	for i, s := range w.Slots {
		if err := checkSlot(s.Enc, s.Wrapped, "slot", i); err != nil {
			return err
		}
		if i > 0 && bytes.Compare(w.Slots[i-1].Enc, s.Enc) >= 0 {
			return fmt.Errorf("slots are not sorted and unique at %d", i)
		}
	}
	return nil
}

// open recovers the grant with the member's KEM key.
func (k *KeyEnvelope) open(kk *kemKey, me MemberID, network NetworkID) (*Grant, error) {
	if k.version == keyEnvelopeV1 {
		return k.openV1(kk, me, network)
	}
	w := k.w2
	_, kdf, hpkeAEAD := hpkeSuite()
	info := slotInfo(network, k.keyID, k.epoch, me)
	var contentKey []byte
	for _, s := range w.Slots {
		// X-Wing decapsulation never fails on a slot that is not ours; it
		// yields another key, under which the wrapped key fails to open.
		r, err := hpke.NewRecipient(s.Enc, kk.sk, kdf, hpkeAEAD, info)
		if err != nil {
			continue
		}
		if ck, err := r.Open(nil, s.Wrapped); err == nil {
			contentKey = ck
			break
		}
	}
	if contentKey == nil {
		// A slot of ours that was damaged looks the same as none: the
		// envelope travels in a signed entry, so damage in transit is
		// caught before this.
		return nil, fmt.Errorf("%w (member %s; no slot of %d opens: also the case for another network, key ID or epoch)", ErrNotRecipient, me.Short(), len(w.Slots))
	}
	defer clear(contentKey)
	aead, err := newGCM(contentKey)
	if err != nil {
		return nil, err
	}
	payload, err := aead.Open(nil, w.Nonce, w.Ciphertext, grantAAD(network, w))
	if err != nil {
		return nil, fmt.Errorf("crypto: key envelope epoch %d: %w", k.epoch, ErrTampered)
	}
	defer clear(payload)
	var p keyGrantWire
	if err := unmarshalCanonical(payload, &p); err != nil {
		return nil, fmt.Errorf("crypto: key envelope epoch %d: sealed payload: %w", k.epoch, err)
	}
	defer clear(p.Secret)
	if err := checkGroupName(p.Group); err != nil {
		return nil, fmt.Errorf("crypto: key envelope epoch %d: %w: %v", k.epoch, ErrMalformed, err)
	}
	if len(p.Secret) != groupSecretSize {
		return nil, fmt.Errorf("crypto: key envelope epoch %d: %w: secret is %d bytes", k.epoch, ErrMalformed, len(p.Secret))
	}
	if len(p.Members) == 0 || len(p.Members) > maxRecipients {
		return nil, fmt.Errorf("crypto: key envelope epoch %d: %w: %d members", k.epoch, ErrMalformed, len(p.Members))
	}
	g := &Grant{Key: &GroupKey{group: p.Group, epoch: k.epoch, id: k.keyID}, Members: make([]MemberID, len(p.Members))}
	for i, m := range p.Members {
		if len(m) != len(MemberID{}) || (i > 0 && bytes.Compare(p.Members[i-1], m) >= 0) {
			return nil, fmt.Errorf("crypto: key envelope epoch %d: %w: member list is not sorted, unique 32-byte IDs", k.epoch, ErrMalformed)
		}
		g.Members[i] = MemberID(m)
	}
	if _, found := slices.BinarySearchFunc(g.Members, me, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) }); !found {
		return nil, fmt.Errorf("crypto: key envelope epoch %d: %w: a slot opens for %s, but the sealed member list leaves it out", k.epoch, ErrTampered, me.Short())
	}
	copy(g.Key.secret[:], p.Secret)
	return g, nil
}

// openV1 opens a format-1 envelope.
func (k *KeyEnvelope) openV1(kk *kemKey, me MemberID, network NetworkID) (*Grant, error) {
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
	return &Grant{Key: g, Members: k.env.Recipients()}, nil
}
