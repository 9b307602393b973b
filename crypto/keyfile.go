package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
)

// Key file errors. Each tells the operator what to do.
var (
	// ErrKeyFilePermissions: the file is readable or writable by group or others.
	ErrKeyFilePermissions = errors.New("crypto: key file is accessible by group or others")
	// ErrWrongPassphrase: the file is intact but the passphrase does not open it.
	ErrWrongPassphrase = errors.New("crypto: wrong passphrase for key file")
	// ErrPassphraseRequired: the file is protected and no passphrase was given.
	ErrPassphraseRequired = errors.New("crypto: key file is protected by a passphrase; give it with --passphrase-file")
	// ErrCorruptKeyFile: the file is truncated, modified or not a key file.
	ErrCorruptKeyFile = errors.New("crypto: key file is corrupt or not a crisismesh identity file")
	// ErrKeyFileVersion: the file was written by another version of crisismesh.
	ErrKeyFileVersion = errors.New("crypto: key file version not supported by this build")
)

const (
	keyFileKind    = "crisismesh-identity"
	keyFileVersion = 1
	maxKeyFileSize = 64 << 10
	kdfArgon2id    = "argon2id"
	kdfSaltSize    = 16
)

// Argon2id parameters for new key files: RFC 9106's second recommended
// option (t=3, m=64 MiB, p=4), which opens in well under a second here.
const (
	argonTime      = 3
	argonMemoryKiB = 64 << 10
	argonThreads   = 4
)

// Upper bounds on what a key file may ask of Argon2id, so a crafted file
// cannot make loading take minutes or gigabytes.
const (
	maxArgonTime      = 16
	maxArgonMemoryKiB = 1 << 20
	maxArgonThreads   = 16
)

type kdfWire struct {
	Alg       string `cbor:"1,keyasint"`
	Time      uint32 `cbor:"2,keyasint"`
	MemoryKiB uint32 `cbor:"3,keyasint"`
	Threads   uint8  `cbor:"4,keyasint"`
	Salt      []byte `cbor:"5,keyasint"`
}

type keyFileWire struct {
	Kind     string   `cbor:"1,keyasint"`
	Version  int      `cbor:"2,keyasint"`
	Card     []byte   `cbor:"3,keyasint"`           // public, in clear
	KDF      *kdfWire `cbor:"4,keyasint,omitempty"` // absent: not encrypted
	Nonce    []byte   `cbor:"5,keyasint,omitempty"`
	Secrets  []byte   `cbor:"6,keyasint,omitempty"` // secretsWire, sealed if KDF is set
	Checksum []byte   `cbor:"7,keyasint,omitempty"` // SHA-256 of the file without this field
}

type secretsWire struct {
	SigningSeed []byte `cbor:"1,keyasint"`
	KEMSeed     []byte `cbor:"2,keyasint"`
	PeerSeed    []byte `cbor:"3,keyasint"`
}

// A KeyFile is the decoded, still locked, content of an identity file.
type KeyFile struct {
	w    keyFileWire
	card *Card
}

// Card returns the public card stored in the file.
func (k *KeyFile) Card() *Card { return k.card }

// Encrypted reports whether the file is protected by a passphrase.
func (k *KeyFile) Encrypted() bool { return k.w.KDF != nil }

// Bytes returns the canonical encoding of the file.
func (k *KeyFile) Bytes() []byte {
	b, err := marshal(&k.w)
	if err != nil {
		panic(err) // only reachable with a value this package did not build
	}
	return b
}

// MarshalKeyFile encodes id as a key file; with a non-empty passphrase the
// secrets are sealed with AES-256-GCM under an Argon2id-derived key.
func MarshalKeyFile(id *Identity, passphrase []byte) ([]byte, error) {
	secrets, err := marshal(&secretsWire{SigningSeed: id.sig.seed[:], KEMSeed: id.kem.seed[:], PeerSeed: id.peerSeed[:]})
	if err != nil {
		return nil, err
	}
	defer clear(secrets)
	w := keyFileWire{Kind: keyFileKind, Version: keyFileVersion, Card: id.card.Bytes()}
	if passphrase != nil {
		if len(passphrase) == 0 {
			return nil, errors.New("crypto: empty passphrase: give a real one, or none to store the key unencrypted")
		}
		w.KDF = &kdfWire{Alg: kdfArgon2id, Time: argonTime, MemoryKiB: argonMemoryKiB, Threads: argonThreads, Salt: make([]byte, kdfSaltSize)}
		w.Nonce = make([]byte, gcmNonceSize)
		if _, err := io.ReadFull(rand.Reader, w.KDF.Salt); err != nil {
			return nil, fmt.Errorf("crypto: read randomness: %w", err)
		}
		if _, err := io.ReadFull(rand.Reader, w.Nonce); err != nil {
			return nil, fmt.Errorf("crypto: read randomness: %w", err)
		}
		aad, err := keyFileAAD(w)
		if err != nil {
			return nil, err
		}
		key := passphraseKey(passphrase, w.KDF)
		defer clear(key)
		aead, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		w.Secrets = aead.Seal(nil, w.Nonce, secrets, aad)
	} else {
		w.Secrets = append([]byte(nil), secrets...)
	}
	sum, err := keyFileChecksum(w)
	if err != nil {
		return nil, err
	}
	w.Checksum = sum
	return marshal(&w)
}

// ParseKeyFile decodes a key file and checks its checksum and card, without
// unlocking it.
func ParseKeyFile(b []byte) (*KeyFile, error) {
	if len(b) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %d bytes is far larger than a key file", ErrCorruptKeyFile, len(b))
	}
	var w keyFileWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyFile, err)
	}
	if w.Kind != keyFileKind {
		return nil, fmt.Errorf("%w: kind %q", ErrCorruptKeyFile, w.Kind)
	}
	if w.Version != keyFileVersion {
		return nil, fmt.Errorf("%w: the file is version %d, this build reads version %d: upgrade crisismesh", ErrKeyFileVersion, w.Version, keyFileVersion)
	}
	sum, err := keyFileChecksum(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyFile, err)
	}
	if !bytes.Equal(sum, w.Checksum) {
		return nil, fmt.Errorf("%w: checksum mismatch (the file was truncated or modified); restore it from your backup", ErrCorruptKeyFile)
	}
	if w.KDF != nil {
		k := w.KDF
		switch {
		case k.Alg != kdfArgon2id:
			return nil, fmt.Errorf("%w: unknown KDF %q", ErrCorruptKeyFile, k.Alg)
		case len(k.Salt) != kdfSaltSize, len(w.Nonce) != gcmNonceSize:
			return nil, fmt.Errorf("%w: bad salt or nonce size", ErrCorruptKeyFile)
		case k.Time == 0 || k.Time > maxArgonTime, k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > maxArgonMemoryKiB,
			k.Threads == 0 || k.Threads > maxArgonThreads:
			return nil, fmt.Errorf("%w: Argon2id parameters t=%d m=%dKiB p=%d are out of range", ErrCorruptKeyFile, k.Time, k.MemoryKiB, k.Threads)
		}
	} else if len(w.Nonce) != 0 {
		return nil, fmt.Errorf("%w: nonce without KDF", ErrCorruptKeyFile)
	}
	card, err := ParseCard(w.Card)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyFile, err)
	}
	return &KeyFile{w: w, card: card}, nil
}

// Unlock opens the file's secrets. passphrase must be nil for a file that
// has none.
func (k *KeyFile) Unlock(passphrase []byte) (*Identity, error) {
	secrets := k.w.Secrets
	switch {
	case k.w.KDF == nil && passphrase != nil:
		return nil, errors.New("crypto: this key file has no passphrase; do not give one")
	case k.w.KDF != nil && passphrase == nil:
		return nil, ErrPassphraseRequired
	case k.w.KDF != nil:
		aad, err := keyFileAAD(k.w)
		if err != nil {
			return nil, err
		}
		key := passphraseKey(passphrase, k.w.KDF)
		defer clear(key)
		aead, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		if secrets, err = aead.Open(nil, k.w.Nonce, k.w.Secrets, aad); err != nil {
			// The checksum matched, so the file is intact: the passphrase is wrong.
			return nil, ErrWrongPassphrase
		}
		defer clear(secrets)
	}
	var s secretsWire
	if err := unmarshalCanonical(secrets, &s); err != nil {
		return nil, fmt.Errorf("%w: secrets: %v", ErrCorruptKeyFile, err)
	}
	sk, err := signingKeyFromSeed(s.SigningSeed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyFile, err)
	}
	kk, err := kemKeyFromSeed(s.KEMSeed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyFile, err)
	}
	id, err := identityFromKeys(sk, kk, s.PeerSeed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyFile, err)
	}
	c := k.card
	if !c.sig.Equal(sk.pub) || !bytes.Equal(c.kem.raw, kk.pub.raw) || !c.peerKey.Equals(id.peer.GetPublic()) {
		return nil, fmt.Errorf("%w: the card in the file does not match its keys", ErrCorruptKeyFile)
	}
	id.card = c
	return id, nil
}

func passphraseKey(passphrase []byte, k *kdfWire) []byte {
	return argon2.IDKey(passphrase, k.Salt, k.Time, k.MemoryKiB, k.Threads, contentKeySize)
}

// keyFileAAD binds the sealed secrets to everything else in the file.
func keyFileAAD(w keyFileWire) ([]byte, error) {
	w.Secrets, w.Checksum = nil, nil
	return marshal(&w)
}

func keyFileChecksum(w keyFileWire) ([]byte, error) {
	w.Checksum = nil
	b, err := marshal(&w)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// SaveIdentity writes id to path with mode 0600, durably (fsync of file and
// directory), and never over an existing file. A nil passphrase stores the
// keys unencrypted, protected only by the file mode.
func SaveIdentity(path string, id *Identity, passphrase []byte) error {
	b, err := MarshalKeyFile(id, passphrase)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("crypto: save identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("crypto: save identity: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("crypto: save identity: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("crypto: save identity: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("crypto: save identity: %w", err)
	}
	// Link, unlike rename, fails if path exists: an identity is never
	// replaced by accident.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("crypto: save identity: %s already exists; move it away first if you really mean to replace this member's keys", path)
		}
		return fmt.Errorf("crypto: save identity: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("crypto: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("crypto: sync %s: %w", dir, err)
	}
	return nil
}

// LoadIdentity reads an identity file. It refuses a file that group or
// others may access, and tells a wrong passphrase ([ErrWrongPassphrase])
// from a damaged file ([ErrCorruptKeyFile]).
func LoadIdentity(path string, passphrase []byte) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: load identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("crypto: load identity: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrKeyFilePermissions, path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("crypto: load identity: %w", err)
	}
	kf, err := ParseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	id, err := kf.Unlock(passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}
