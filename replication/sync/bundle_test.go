package sync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Two nodes that never connect converge by bundle; bad bundles store
// nothing.
func TestBundleRoundTrip(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	b := w.node(t, "cert-lu", nodeOpt{noStart: true})
	acked := a.post(t, w, 50, log.Routine)
	acked = append(acked, a.post(t, w, 1, log.Flash)...)
	b.post(t, w, 3, log.Routine)
	dir := t.TempDir()
	path := filepath.Join(dir, "a-to-b.bundle")
	info, err := Export(a.store, a.id, b.store.Frontier(), path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Entries != 51 {
		t.Errorf("bundle for B's frontier holds %d entries, want 51 (B already has the key entry)", info.Entries)
	}
	before := b.store.Digest()
	bad := map[string][]byte{}
	raw, _ := os.ReadFile(path)
	bad["truncated"] = raw[:len(raw)-100]
	bad["cut in the payload"] = append(append([]byte{}, raw[:len(raw)/2]...), raw[len(raw)-200:]...)
	flipped := append([]byte{}, raw...)
	flipped[len(bundleMagic)+500] ^= 1
	bad["tampered payload"] = flipped
	bad["not a bundle"] = []byte("hello")
	bad["empty"] = nil
	for name, content := range bad {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Import(context.Background(), b.store, p); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%s: got %v, want ErrBadBundle", name, err)
		}
		if b.store.Digest() != before {
			t.Fatalf("%s: a bad bundle changed the store", name)
		}
	}
	// A bundle of another network.
	other, _ := crypto.NewGenesis(crypto.GenesisSpec{Network: "other", Created: t0,
		Members: []crypto.Member{{Card: w.ids["enisa"].Card(), Roles: []crypto.Role{crypto.RoleAdmin}}},
		Voters:  []crypto.MemberID{w.ids["enisa"].ID()}, Admins: []crypto.MemberID{w.ids["enisa"].ID()}}, w.ids["enisa"])
	ost, err := store.Open("", other, w.ids["enisa"], store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ost.Close()
	if _, err := ost.Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPClear, Text: "x"}, Key: w.key}); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.bundle")
	if _, err := Export(ost, w.ids["enisa"], nil, foreign, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(context.Background(), b.store, foreign); !errors.Is(err, ErrBadBundle) {
		t.Errorf("foreign network: got %v, want ErrBadBundle", err)
	}
	if b.store.Digest() != before {
		t.Fatal("a foreign bundle changed the store")
	}
	res, err := Import(context.Background(), b.store, path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 51 || len(res.Rejected) != 0 {
		t.Errorf("import: added %d, rejected %v", res.Added, res.Rejected)
	}
	holdsAll(t, b, acked)
	res, err = Import(context.Background(), b.store, path)
	if err != nil || res.Added != 0 {
		t.Errorf("second import: added %d, %v", res.Added, err)
	}
	// And back: a full export from B makes A equal to B.
	back := filepath.Join(dir, "b-all.bundle")
	if _, err := Export(b.store, b.id, nil, back, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(context.Background(), a.store, back); err != nil {
		t.Fatal(err)
	}
	if a.store.Digest() != b.store.Digest() {
		t.Error("digests differ after bundles both ways")
	}
}
