package sync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// fuzzBundles exports real bundles from a store of the test world (signed
// by enisa): everything; what a node holding only the key entry lacks (a
// trailer with a base frontier); nothing (an empty payload).
func fuzzBundles(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	w := newWorld(tb)
	id := w.ids["enisa"]
	st, err := store.Open("", w.genesis, id, store.Options{InMemory: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Ingest(ctx, w.keyEnt); err != nil {
		tb.Fatal(err)
	}
	afterKey := st.Frontier()
	if _, err := st.Append(ctx,
		log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: "one"}, Key: w.key},
		log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: "two"}, Key: w.key, Priority: log.Flash}); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for i, base := range []log.Frontier{nil, afterKey, st.Frontier()} {
		p := filepath.Join(dir, fmt.Sprintf("seed-%d.bundle", i))
		if _, err := Export(st, id, base, p, t0); err != nil {
			tb.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// bundleParts splits a bundle file as checkBundle does: payload and
// trailer, or ok false.
func bundleParts(b []byte) (payload []byte, tr trailer, body trailerBody, ok bool) {
	if len(b) < len(bundleMagic)+4 || string(b[:len(bundleMagic)]) != bundleMagic {
		return nil, tr, body, false
	}
	trLen := int(binary.BigEndian.Uint32(b[len(b)-4:]))
	end := len(b) - 4 - trLen
	if trLen > maxTrailer || end < len(bundleMagic) {
		return nil, tr, body, false
	}
	if crypto.UnmarshalCanonical(b[end:len(b)-4], &tr) != nil || crypto.UnmarshalCanonical(tr.Body, &body) != nil {
		return nil, tr, body, false
	}
	return b[len(bundleMagic):end], tr, body, true
}

// resign rebuilds a bundle around payload with a trailer that checkBundle
// accepts (network, exporter, length, checksum, signature), keeping the
// count and base of body.
func resign(t *testing.T, id *crypto.Identity, net crypto.NetworkID, payload []byte, body trailerBody) []byte {
	t.Helper()
	sum := sha256.Sum256(payload)
	exporter := id.ID()
	body.Network, body.Exporter, body.Length, body.SHA256 = net[:], exporter[:], uint64(len(payload)), sum[:]
	tr := signedTrailer(t, id, &body)
	out := append([]byte(bundleMagic), payload...)
	out = append(out, tr...)
	return binary.BigEndian.AppendUint32(out, uint32(len(tr)))
}

// signedTrailer encodes body and returns the bundle trailer that carries
// it, signed by id.
func signedTrailer(t testing.TB, id *crypto.Identity, body *trailerBody) []byte {
	t.Helper()
	bb, err := crypto.MarshalCanonical(body)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := id.Sign(crypto.ContextBundle, bb)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := crypto.MarshalCanonical(&trailer{Body: bb, Sig: sig})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// FuzzBundle imports whatever it is given into a store (cert-lu's, in
// memory). Import never panics and refuses only with ErrBadBundle. The
// checksum and signature would stop the fuzzer at the trailer, so an input
// whose trailer decodes is tried a second time re-signed (as its exporter
// could): that fuzzes the entry frames behind it. A bundle Import accepts
// is exactly the magic line, Count frames (uvarint length, entry), the
// trailer and its length: decode→encode gives back the same bytes.
func FuzzBundle(f *testing.F) {
	dir := f.TempDir()
	for _, b := range fuzzBundles(f, dir) {
		addFuzzMutants(f, b)
	}
	f.Add([]byte(bundleMagic))
	w := newWorld(f)
	st, err := store.Open("", w.genesis, w.ids["cert-lu"], store.Options{InMemory: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	path := filepath.Join(dir, "input.bundle")
	f.Fuzz(func(t *testing.T, data []byte) {
		tryImport := func(b []byte) error {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Import(context.Background(), st, path)
			if err != nil && !errors.Is(err, ErrBadBundle) {
				t.Fatalf("Import: error %q is not ErrBadBundle", err)
			}
			if err == nil {
				checkBundleReencodes(t, b)
			}
			return err
		}
		if tryImport(data) == nil {
			return
		}
		payload, _, body, ok := bundleParts(data)
		if !ok || body.Count > 1<<16 {
			return
		}
		tryImport(resign(t, w.ids["enisa"], st.Network(), payload, body))
	})
}

// checkBundleReencodes fails unless b is exactly magic ‖ Count frames ‖
// trailer ‖ length, each frame a uvarint length in its shortest form and an
// entry that encodes back to itself.
func checkBundleReencodes(t *testing.T, b []byte) {
	t.Helper()
	payload, tr, body, ok := bundleParts(b)
	if !ok {
		t.Fatal("Import accepted a bundle whose trailer does not decode")
	}
	var again []byte
	r := bytes.NewReader(payload)
	for i := uint64(0); i < body.Count; i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			t.Fatalf("Import accepted a bundle whose frame %d does not read: %v", i, err)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(r, raw); err != nil {
			t.Fatal(err)
		}
		e, err := log.Decode(raw)
		if err != nil {
			t.Fatalf("Import accepted a bundle whose entry %d does not decode: %v", i, err)
		}
		again = binary.AppendUvarint(again, uint64(e.Size()))
		again = append(again, e.Bytes()...)
	}
	trRaw, err := crypto.MarshalCanonical(&tr)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(bundleMagic), again...)
	out = append(out, trRaw...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(trRaw)))
	if !bytes.Equal(out, b) {
		t.Fatalf("decode→encode changed an accepted bundle: %d bytes in, %d re-encoded (payload %d bytes, %d re-encoded from %d frames)",
			len(b), len(out), len(payload), len(again), body.Count)
	}
}

// TestBundleSeedsReencode keeps the seeds honest: each real bundle imports
// and re-encodes to itself.
func TestBundleSeedsReencode(t *testing.T) {
	w := newWorld(t)
	st, err := store.Open("", w.genesis, w.ids["cert-lu"], store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	for i, b := range fuzzBundles(t, dir) {
		p := filepath.Join(dir, "in.bundle")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Import(context.Background(), st, p); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		checkBundleReencodes(t, b)
	}
}
