package crypto

import (
	"bytes"
	"compress/gzip"
	"crypto/hpke"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/cloudflare/circl/kem/xwing"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasSuffix([]byte(path), []byte(".gz")) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewDecoder(zr).Decode(v); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompositeVectors checks our composite verify, key expansion and sign
// against draft-ietf-lamps-pq-composite-sigs' published vector for
// id-MLDSA65-Ed25519-SHA512.
func TestCompositeVectors(t *testing.T) {
	msg, ctx, vectors := compositeVectors(t)
	for _, tc := range vectors {
		pkBytes, skBytes, s, sCtx := tc.pk, tc.sk, tc.s, tc.sCtx
		pk, err := ParsePublicKey(pkBytes)
		if err != nil {
			t.Fatalf("ParsePublicKey: %v", err)
		}
		if err := pk.verify("", msg, s); err != nil {
			t.Errorf("vector s (empty context): %v", err)
		}
		if err := pk.Verify(ctx, msg, sCtx); err != nil {
			t.Errorf("vector sWithContext: %v", err)
		}
		// Each signature is bound to its context.
		if err := pk.Verify(ctx, msg, s); err == nil {
			t.Error("s verified under the vector's context, want failure")
		}
		if err := pk.verify("", msg, sCtx); err == nil {
			t.Error("sWithContext verified under the empty context, want failure")
		}
		// The draft's private key encoding expands to the same public key.
		sk, err := signingKeyFromSeed(skBytes)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sk.pub.Bytes(), pkBytes) {
			t.Fatal("public key expanded from the vector's sk differs from the vector's pk")
		}
		sig, err := sk.sign(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := pk.Verify(ctx, msg, sig); err != nil {
			t.Errorf("round trip with the vector key: %v", err)
		}
	}
}

// compositeVector is one of the draft's vectors: public and private key,
// a signature with the empty context and one with the file's context.
type compositeVector struct{ pk, sk, s, sCtx []byte }

// compositeVectors reads draft-ietf-lamps-pq-composite-sigs' published
// vectors and returns the message, the context and the vectors of
// id-MLDSA65-Ed25519-SHA512, failing unless there is exactly one.
func compositeVectors(t *testing.T) (msg []byte, ctx Context, vectors []compositeVector) {
	t.Helper()
	var file struct {
		M     string `json:"m"`
		Ctx   string `json:"ctx"`
		Tests []struct {
			TcID         string `json:"tcId"`
			PK           string `json:"pk"`
			SK           string `json:"sk"`
			S            string `json:"s"`
			SWithContext string `json:"sWithContext"`
		} `json:"tests"`
	}
	readJSON(t, "testdata/composite-mldsa/testvectors.json", &file)
	for _, tc := range file.Tests {
		if tc.TcID == SuiteSignature {
			vectors = append(vectors, compositeVector{unb64(t, tc.PK), unb64(t, tc.SK), unb64(t, tc.S), unb64(t, tc.SWithContext)})
		}
	}
	if len(vectors) != 1 {
		t.Fatalf("found %d vectors for %s, want 1", len(vectors), SuiteSignature)
	}
	return unb64(t, file.M), Context(unb64(t, file.Ctx)), vectors
}

// TestWycheproofMLDSA65Verify runs all 83 Wycheproof ML-DSA-65 verify cases
// through the ML-DSA half of our verify path.
func TestWycheproofMLDSA65Verify(t *testing.T) {
	var file struct {
		NumberOfTests int `json:"numberOfTests"`
		TestGroups    []struct {
			PublicKey string `json:"publicKey"`
			Tests     []struct {
				TcID    int      `json:"tcId"`
				Comment string   `json:"comment"`
				Msg     string   `json:"msg"`
				Ctx     *string  `json:"ctx"`
				Sig     string   `json:"sig"`
				Result  string   `json:"result"`
				Flags   []string `json:"flags"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	readJSON(t, "testdata/wycheproof-mldsa/mldsa_65_verify_test.json.gz", &file)
	ran, valid, invalid := 0, 0, 0
	for _, g := range file.TestGroups {
		pk, pkErr := parseMLDSAPublicKey(unhex(t, g.PublicKey))
		for _, tc := range g.Tests {
			ran++
			want := tc.Result == "valid"
			if want {
				valid++
			} else {
				invalid++
			}
			var ctx []byte
			if tc.Ctx != nil {
				ctx = unhex(t, *tc.Ctx)
			}
			got := pkErr == nil && verifyMLDSA(pk, unhex(t, tc.Msg), ctx, unhex(t, tc.Sig))
			if got != want {
				t.Errorf("tcId %d (%s, %v): got valid=%v, want %v (key error: %v)", tc.TcID, tc.Comment, tc.Flags, got, want, pkErr)
			}
		}
	}
	if ran != 83 || ran != file.NumberOfTests {
		t.Fatalf("ran %d cases, want 83 (file says %d)", ran, file.NumberOfTests)
	}
	t.Logf("%d cases: %d valid accepted, %d invalid rejected", ran, valid, invalid)
}

// xwingDecapsulate wraps circl's X-Wing once: its Decapsulate takes
// (ct, sk), the reverse of its generic KEM API.
func xwingDecapsulate(sk, ct []byte) []byte { return xwing.Decapsulate(ct, sk) }

// TestXWingVectors checks the X-Wing draft's 3 vectors: our key derivation
// (Go's crypto/hpke) gives the published public key, and circl's X-Wing
// interoperates with it (same ciphertext from the same eseed, same shared
// secret on decapsulation).
func TestXWingVectors(t *testing.T) {
	var vs []struct {
		Seed, Eseed, SS, SK, PK, CT string
	}
	readJSON(t, "testdata/xwing/test-vectors.json", &vs)
	if len(vs) != 3 {
		t.Fatalf("got %d vectors, want 3", len(vs))
	}
	for i, v := range vs {
		seed, pk, ct, ss := unhex(t, v.Seed), unhex(t, v.PK), unhex(t, v.CT), unhex(t, v.SS)
		k, err := kemKeyFromSeed(seed)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if !bytes.Equal(k.pub.Bytes(), pk) {
			t.Errorf("vector %d: public key from seed differs", i)
		}
		if sk, err := k.sk.Bytes(); err != nil || !bytes.Equal(sk, unhex(t, v.SK)) {
			t.Errorf("vector %d: private key encoding differs (%v)", i, err)
		}
		gotSS, gotCT, err := xwing.Encapsulate(pk, unhex(t, v.Eseed))
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if !bytes.Equal(gotCT, ct) || !bytes.Equal(gotSS, ss) {
			t.Errorf("vector %d: deterministic encapsulation differs", i)
		}
		if got := xwingDecapsulate(seed, ct); !bytes.Equal(got, ss) {
			t.Errorf("vector %d: decapsulation differs", i)
		}
	}
}

// TestHPKEXWingVectors runs the HPKE vectors for KEM 0x647A (X-Wing)
// through Go's crypto/hpke, which our sealing uses: key derivation,
// decapsulation and key schedule, every encryption and export.
func TestHPKEXWingVectors(t *testing.T) {
	var vs []struct {
		Mode        int    `json:"mode"`
		KEM         uint16 `json:"kem_id"`
		KDF         uint16 `json:"kdf_id"`
		AEAD        uint16 `json:"aead_id"`
		Info        string `json:"info"`
		IkmR        string `json:"ikmR"`
		SkRm        string `json:"skRm"`
		PkRm        string `json:"pkRm"`
		Enc         string `json:"enc"`
		Encryptions []struct {
			AAD string `json:"aad"`
			CT  string `json:"ct"`
			PT  string `json:"pt"`
		} `json:"encryptions"`
		Exports []struct {
			Context string `json:"exporter_context"`
			L       int    `json:"L"`
			Value   string `json:"exported_value"`
		} `json:"exports"`
	}
	readJSON(t, "testdata/hpke-pq/hpke-pq.json", &vs)
	kem, _, _ := hpkeSuite()
	ran := 0
	for i, v := range vs {
		if v.KEM != kem.ID() {
			continue
		}
		ran++
		if v.Mode != 0 {
			t.Fatalf("vector %d: mode %d, want base mode", i, v.Mode)
		}
		sk, err := kem.DeriveKeyPair(unhex(t, v.IkmR))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := sk.Bytes(); !bytes.Equal(b, unhex(t, v.SkRm)) {
			t.Errorf("vector %d: derived private key differs", i)
		}
		if !bytes.Equal(sk.PublicKey().Bytes(), unhex(t, v.PkRm)) {
			t.Errorf("vector %d: derived public key differs", i)
		}
		kdf, err := hpke.NewKDF(v.KDF)
		if err != nil {
			t.Fatal(err)
		}
		aead, err := hpke.NewAEAD(v.AEAD)
		if err != nil {
			t.Fatal(err)
		}
		r, err := hpke.NewRecipient(unhex(t, v.Enc), sk, kdf, aead, unhex(t, v.Info))
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		for j, e := range v.Encryptions {
			pt, err := r.Open(unhex(t, e.AAD), unhex(t, e.CT))
			if err != nil || !bytes.Equal(pt, unhex(t, e.PT)) {
				t.Errorf("vector %d encryption %d: open: %v", i, j, err)
			}
		}
		for j, x := range v.Exports {
			got, err := r.Export(string(unhex(t, x.Context)), x.L)
			if err != nil || !bytes.Equal(got, unhex(t, x.Value)) {
				t.Errorf("vector %d export %d: %v", i, j, err)
			}
		}
	}
	if ran == 0 {
		t.Fatal("no vector for KEM 0x647A")
	}
	t.Logf("%d HPKE vectors for X-Wing", ran)
}
