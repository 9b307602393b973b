package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// Files in an identity directory.
const (
	IdentityFile = "identity.key" // secret keys, mode 0600
	CardFile     = "card.json"    // public member card, to give to the admin
)

// KeygenOptions says what identity to make and where.
type KeygenOptions struct {
	Name       string    // member name, e.g. "cert-lu"
	Dir        string    // directory to write; created 0700 if missing
	Passphrase []byte    // nil: the key file is protected by its mode only
	Now        time.Time // written on the card
}

// Keygen makes a new identity, writes identity.key (0600) and card.json into
// opts.Dir, and returns the card. It never overwrites an existing identity.
func Keygen(opts KeygenOptions) (*crypto.Card, error) {
	if err := crypto.CheckName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("keygen: no output directory (use --out DIR)")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	keyPath := filepath.Join(opts.Dir, IdentityFile)
	if _, err := os.Stat(keyPath); err == nil {
		return nil, fmt.Errorf("keygen: %s already holds an identity (%s); choose another --out directory", opts.Dir, keyPath)
	}
	id, err := crypto.NewIdentity(opts.Name, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	if err := crypto.SaveIdentity(keyPath, id, opts.Passphrase); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	cardJSON, err := json.MarshalIndent(id.Card(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(opts.Dir, CardFile), append(cardJSON, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	return id.Card(), nil
}

// LoadIdentity loads the identity in dir (or dir itself if it is a key
// file). passphrase is nil for an unprotected key file.
func LoadIdentity(dir string, passphrase []byte) (*crypto.Identity, error) {
	path := dir
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		path = filepath.Join(dir, IdentityFile)
	}
	id, err := crypto.LoadIdentity(path, passphrase)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// ReadCard reads a member card from a card.json file, or from the card.json
// in a directory made by Keygen. The card's self-signature is checked.
func ReadCard(path string) (*crypto.Card, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, CardFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read card: %w", err)
	}
	var c crypto.Card
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read card %s: %w", path, err)
	}
	return &c, nil
}

// maxPassphraseFile bounds what ReadPassphraseFile reads.
const maxPassphraseFile = 4096

// ReadPassphraseFile reads a passphrase from the first line of a file (the
// trailing newline is not part of it). An empty passphrase is refused.
func ReadPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile+1))
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	if len(b) > maxPassphraseFile {
		return nil, fmt.Errorf("passphrase file %s is over %d bytes: is it the right file?", path, maxPassphraseFile)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty: write the passphrase on its first line", path)
	}
	return b, nil
}

// writeFileAtomic writes b to path through a temporary file, fsyncs it and
// the directory, and refuses to replace an existing file.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; remove it or choose another path", path)
		}
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
