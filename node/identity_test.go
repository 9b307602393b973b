package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

func TestKeygenAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cert-lu")
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	card, err := Keygen(KeygenOptions{Name: "cert-lu", Dir: dir, Passphrase: []byte("pw"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, mode %v; want 0700", err, st.Mode().Perm())
	}
	got, err := ReadCard(dir)
	if err != nil || !got.Equal(card) {
		t.Fatalf("ReadCard: %v", err)
	}
	id, err := LoadIdentity(dir, []byte("pw"))
	if err != nil || id.ID() != card.ID() {
		t.Fatalf("LoadIdentity: %v", err)
	}
	if _, err := LoadIdentity(dir, []byte("wrong")); !errors.Is(err, crypto.ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: got %v", err)
	}
	if _, err := Keygen(KeygenOptions{Name: "cert-lu", Dir: dir, Now: now}); err == nil || !strings.Contains(err.Error(), "already holds an identity") {
		t.Errorf("second keygen: got %v", err)
	}
	if _, err := Keygen(KeygenOptions{Name: "Bad", Dir: t.TempDir(), Now: now}); err == nil {
		t.Error("bad name: got nil error")
	}
}

func TestReadPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{
		"secret\n":          "secret",
		"secret":            "secret",
		"secret\r\n":        "secret",
		"two words\nmore\n": "two words",
	} {
		got, err := ReadPassphraseFile(write("p", content))
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q, %v; want %q", content, got, err, want)
		}
	}
	for _, bad := range []string{"", "\n", strings.Repeat("x", 5000)} {
		if _, err := ReadPassphraseFile(write("p", bad)); err == nil {
			t.Errorf("%q: got nil error", bad[:min(len(bad), 10)])
		}
	}
	if _, err := ReadPassphraseFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: got nil error")
	}
}

func TestReadCardErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "card.json")
	_ = os.WriteFile(p, []byte(`{"name":"x","card":"AAAA"}`), 0o644)
	if _, err := ReadCard(p); err == nil {
		t.Error("garbage card: got nil error")
	}
	if _, err := ReadCard(filepath.Join(dir, "none.json")); err == nil {
		t.Error("missing card: got nil error")
	}
}
