package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

const peerSeedSize = ed25519.SeedSize

// An Identity is one member's secret keys and their card. It is immutable
// and safe for concurrent use. It cannot be compared with ==.
type Identity struct {
	_        incomparable
	sig      *signingKey
	kem      *kemKey
	peerSeed [peerSeedSize]byte
	peer     libp2pcrypto.PrivKey
	card     *Card
}

// NewIdentity draws fresh keys for a member called name; created is the
// time written on the card.
func NewIdentity(name string, created time.Time) (*Identity, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	sk, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	kk, err := newKEMKey()
	if err != nil {
		return nil, err
	}
	var peerSeed [peerSeedSize]byte
	if _, err := rand.Read(peerSeed[:]); err != nil {
		return nil, fmt.Errorf("crypto: read randomness: %w", err)
	}
	id, err := identityFromKeys(sk, kk, peerSeed[:])
	if err != nil {
		return nil, err
	}
	if id.card, err = newCard(name, sk, kk, id.peer.GetPublic(), created); err != nil {
		return nil, err
	}
	return id, nil
}

// identityFromKeys assembles an identity without its card.
func identityFromKeys(sk *signingKey, kk *kemKey, peerSeed []byte) (*Identity, error) {
	if len(peerSeed) != peerSeedSize {
		return nil, fmt.Errorf("%w: peer key seed is %d bytes, want %d", ErrBadKey, len(peerSeed), peerSeedSize)
	}
	id := &Identity{sig: sk, kem: kk}
	copy(id.peerSeed[:], peerSeed)
	pk, err := libp2pcrypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(peerSeed))
	if err != nil {
		return nil, fmt.Errorf("%w: peer key: %v", ErrBadKey, err)
	}
	id.peer = pk
	return id, nil
}

// Name returns the member's name.
func (id *Identity) Name() string { return id.card.name }

// ID returns the member ID.
func (id *Identity) ID() MemberID { return id.sig.pub.ID() }

// Card returns the public half.
func (id *Identity) Card() *Card { return id.card }

// PeerKey returns the libp2p private key of this member's node.
func (id *Identity) PeerKey() libp2pcrypto.PrivKey { return id.peer }

// PeerID returns the libp2p peer ID of this member's node.
func (id *Identity) PeerID() peer.ID { return id.card.peerID }

// Sign signs msg in context ctx with the composite key. Signing is hedged:
// two signatures of the same message differ.
func (id *Identity) Sign(ctx Context, msg []byte) ([]byte, error) { return id.sig.sign(ctx, msg) }

// Open decrypts an envelope sealed to this member with [Seal]; network,
// purpose and aad must be those it was sealed with. It returns
// [ErrNotRecipient] when the envelope has no copy of the key for this
// member and [ErrTampered] when anything fails authentication.
func (id *Identity) Open(network NetworkID, purpose string, env *Envelope, aad []byte) ([]byte, error) {
	return env.open(id.kem, id.ID(), network, purpose, aad)
}

// OpenKeyEnvelope recovers the group key that env distributes.
func (id *Identity) OpenKeyEnvelope(network NetworkID, env *KeyEnvelope) (*GroupKey, error) {
	g, err := env.open(id.kem, id.ID(), network)
	if err != nil {
		return nil, err
	}
	return g.Key, nil
}

// OpenGrant recovers the group key that env distributes together with the
// members env says it is sealed to. It fails with [ErrNotRecipient] when no
// slot of env is this member's (in format 2 also the answer for an envelope
// of another network, key ID or epoch: a slot does not say whose it is).
func (id *Identity) OpenGrant(network NetworkID, env *KeyEnvelope) (*Grant, error) {
	return env.open(id.kem, id.ID(), network)
}

// Equal reports whether two identities hold the same secret keys, comparing
// in constant time.
func (id *Identity) Equal(o *Identity) bool {
	if o == nil {
		return false
	}
	a := equalSecret(id.sig.seed[:], o.sig.seed[:])
	b := equalSecret(id.kem.seed[:], o.kem.seed[:])
	c := equalSecret(id.peerSeed[:], o.peerSeed[:])
	return a && b && c
}
