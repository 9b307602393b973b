package crypto

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	for _, pass := range [][]byte{nil, []byte("correct horse battery staple")} {
		path := filepath.Join(t.TempDir(), "identity.key")
		if err := SaveIdentity(path, id, pass); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("got mode %04o, want 0600", st.Mode().Perm())
		}
		got, err := LoadIdentity(path, pass)
		if err != nil {
			t.Fatalf("LoadIdentity: %v", err)
		}
		if !got.Equal(id) || !got.Card().Equal(id.Card()) {
			t.Error("loaded identity differs from the saved one")
		}
		// It still signs as the same member.
		sig, err := got.Sign(ContextEntry, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(id.Card(), ContextEntry, []byte("m"), sig); err != nil {
			t.Errorf("signature after reload: %v", err)
		}
		if err := SaveIdentity(path, id, pass); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second save: got %v, want a refusal to overwrite", err)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("got %d files in the directory, want 1 (no temp files left)", len(entries))
		}
	}
}

func TestKeyFileRefusals(t *testing.T) {
	id := newTestIdentity(t, "cert-lu")
	pass := []byte("s3cret passphrase")
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc.key")
	plain := filepath.Join(dir, "plain.key")
	if err := SaveIdentity(enc, id, pass); err != nil {
		t.Fatal(err)
	}
	if err := SaveIdentity(plain, id, nil); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(enc)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 1

	tests := []struct {
		name string
		path string
		pass []byte
		want error
		hint string
	}{
		{"wrong passphrase", enc, []byte("wrong"), ErrWrongPassphrase, ""},
		{"missing passphrase", enc, nil, ErrPassphraseRequired, "--passphrase-file"},
		{"group-readable", write("g.key", good, 0o640), pass, ErrKeyFilePermissions, "chmod 600"},
		{"world-readable", write("w.key", good, 0o604), pass, ErrKeyFilePermissions, "chmod 600"},
		{"truncated", write("t.key", good[:len(good)-10], 0o600), pass, ErrCorruptKeyFile, ""},
		{"one byte flipped", write("f.key", flipped, 0o600), pass, ErrCorruptKeyFile, ""},
		{"empty", write("e.key", nil, 0o600), pass, ErrCorruptKeyFile, ""},
		{"a card file", write("c.key", []byte(`{"name":"cert-lu"}`), 0o600), pass, ErrCorruptKeyFile, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadIdentity(tc.path, tc.pass)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.hint != "" && !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("error %q does not tell the operator %q", err, tc.hint)
			}
		})
	}
	if _, err := LoadIdentity(plain, pass); err == nil {
		t.Error("passphrase given for an unencrypted file: got nil error")
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing.key"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	if _, err := MarshalKeyFile(id, []byte{}); err == nil {
		t.Error("empty passphrase: got nil error")
	}
}

// A key file whose card belongs to other keys (checksum recomputed, as an
// attacker or a bad tool could) is refused.
func TestKeyFileCardMismatch(t *testing.T) {
	a, b := newTestIdentity(t, "cert-lu"), newTestIdentity(t, "cert-lu")
	raw, err := MarshalKeyFile(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := ParseKeyFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := kf.w
	w.Card = b.Card().Bytes()
	w.Checksum = nil
	sum, _ := keyFileChecksum(w)
	w.Checksum = sum
	forged, _ := marshal(&w)
	kf2, err := ParseKeyFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kf2.Unlock(nil); !errors.Is(err, ErrCorruptKeyFile) {
		t.Errorf("got %v, want ErrCorruptKeyFile", err)
	}
}
