package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the command line in-process and returns exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeygenCardNetwork(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("a passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := cli(t, "keygen", "--name", "enisa", "--out", "enisa", "--json")
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	var kg struct {
		Name, MemberID, PeerID, IdentityFile, CardFile string
		Protected                                      bool `json:"passphrase_protected"`
	}
	if err := json.Unmarshal([]byte(out), &kg); err != nil {
		t.Fatalf("keygen --json: %v: %s", err, out)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(out), &raw)
	for _, f := range []string{"name", "member_id", "peer_id", "identity_file", "card_file", "passphrase_protected"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("keygen --json lacks field %q: %s", f, out)
		}
	}
	if kg.Name != "enisa" || kg.Protected {
		t.Errorf("keygen --json: got %+v", kg)
	}
	if st, err := os.Stat("enisa/identity.key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("identity.key: %v, mode %v", err, st.Mode())
	}

	if code, _, errOut := cli(t, "keygen", "--name", "cert-lu", "--out", "cert-lu", "--passphrase-file", pass); code != 0 {
		t.Fatalf("keygen with passphrase: exit %d: %s", code, errOut)
	}
	if code, _, _ := cli(t, "keygen", "--name", "cyclone-fr", "--out", "cyclone-fr"); code != 0 {
		t.Fatal("keygen cyclone-fr failed")
	}
	code, out, _ = cli(t, "card", "show", "cert-lu")
	if code != 0 || !strings.Contains(out, "self-signature valid") {
		t.Errorf("card show: exit %d: %s", code, out)
	}

	// Problems are all reported at once.
	code, _, errOut = cli(t, "network", "create", "--name", "eu-cyclone", "--admin", "enisa",
		"--member", "cert-lu/card.json", "--member", "cyclone-fr", "--voter", "enisa", "--voter", "cert-lu", "--role", "nobody=csirt")
	if code != 1 {
		t.Errorf("bad network create: got exit %d, want 1", code)
	}
	for _, want := range []string{"cert-lu has no role", "cyclone-fr has no role", "odd number", `"nobody"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("network create errors lack %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat("genesis"); err == nil {
		t.Error("a refused network create wrote a genesis")
	}

	code, out, errOut = cli(t, "network", "create", "--name", "eu-cyclone", "--admin", "enisa",
		"--member", "cert-lu/card.json,cyclone-fr", "--role", "cert-lu=csirt", "--role", "cyclone-fr=cyclone,csirt",
		"--voter", "enisa", "--voter", "cert-lu", "--voter", "cyclone-fr", "--json")
	if code != 0 {
		t.Fatalf("network create: exit %d: %s", code, errOut)
	}
	var created struct {
		NetworkID   string `json:"network_id"`
		GenesisFile string `json:"genesis_file"`
		Members     []struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
			Voter bool     `json:"voter"`
			Admin bool     `json:"admin"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	if len(created.Members) != 3 || created.GenesisFile != "genesis" || len(created.NetworkID) != 64 {
		t.Fatalf("network create --json: %s", out)
	}
	if m := created.Members[2]; m.Name != "enisa" || !m.Admin || !m.Voter {
		t.Errorf("admin member: got %+v", m)
	}

	code, out, _ = cli(t, "network", "show", "--json")
	if code != 0 || !strings.Contains(out, created.NetworkID) {
		t.Errorf("network show: exit %d: %s", code, out)
	}
	// The genesis is never overwritten.
	code, _, errOut = cli(t, "network", "create", "--name", "x", "--admin", "enisa", "--voter", "enisa")
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second create: exit %d: %s", code, errOut)
	}
	// A tampered genesis is refused.
	g, _ := os.ReadFile("genesis")
	g[len(g)-5] ^= 1
	_ = os.WriteFile("tampered", g, 0o644)
	if code, _, errOut := cli(t, "network", "show", "tampered"); code != 1 || !strings.Contains(errOut, "signature") {
		t.Errorf("tampered genesis: exit %d: %s", code, errOut)
	}
	// The admin key with a wrong passphrase.
	_ = os.WriteFile("wrong", []byte("nope\n"), 0o600)
	code, _, errOut = cli(t, "network", "create", "--name", "y", "--admin", "cert-lu", "--passphrase-file", "wrong", "--voter", "cert-lu", "--out", "g2")
	if code != 1 || !strings.Contains(errOut, "wrong passphrase") {
		t.Errorf("wrong passphrase: exit %d: %s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"keygen"},
		{"keygen", "--name", "x", "--out", "y", "extra"},
		{"keygen", "--bogus"},
		{"card", "show"},
	} {
		if code, _, errOut := cli(t, args...); code != 2 || !strings.Contains(errOut, "--help") {
			t.Errorf("%q: got exit %d (%s), want 2 and a pointer to --help", args, code, errOut)
		}
	}
	code, out, _ := cli(t, "version", "--json")
	if code != 0 || !strings.Contains(out, `"signature_suite": "id-MLDSA65-Ed25519-SHA512"`) {
		t.Errorf("version --json: %d %s", code, out)
	}
}
