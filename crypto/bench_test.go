package crypto

import (
	"bytes"
	"fmt"
	"testing"
)

// Benchmarks of the operations whose cost shapes the protocol: signing every
// entry, sealing to many members, distributing group keys, loading the
// identity at start-up. Results and the machine they ran on are in
// BENCHMARKS.md at the repository root.
//
//	go test ./crypto/ -run '^$' -bench . -benchmem -count 3 -benchtime 1s

const benchMsgSize = 1 << 10

var benchRecipientCounts = []int{1, 10, 30}

// benchPayload is 1 KiB of non-zero bytes.
func benchPayload() []byte { return bytes.Repeat([]byte("crisismesh bench"), benchMsgSize/16) }

// benchMembers makes n identities and their recipients.
func benchMembers(b *testing.B, n int) ([]*Identity, []Recipient) {
	b.Helper()
	ids := make([]*Identity, n)
	rs := make([]Recipient, n)
	for i := range ids {
		ids[i] = newTestIdentity(b, fmt.Sprintf("member-%02d", i))
		rs[i] = ids[i].Card().Recipient()
	}
	return ids, rs
}

// benchNetwork is a network ID; sealing binds it but does not look inside.
func benchNetwork() NetworkID {
	var n NetworkID
	copy(n[:], "bench network")
	return n
}

func BenchmarkNewIdentity(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewIdentity("bench", testTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	id := newTestIdentity(b, "signer")
	msg := benchPayload()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := id.Sign(ContextEntry, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	id := newTestIdentity(b, "signer")
	msg := benchPayload()
	sig, err := id.Sign(ContextEntry, msg)
	if err != nil {
		b.Fatal(err)
	}
	card := id.Card()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := Verify(card, ContextEntry, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal seals 1 KiB to N members and reports the encoded envelope's
// size.
func BenchmarkSeal(b *testing.B) {
	_, all := benchMembers(b, benchRecipientCounts[len(benchRecipientCounts)-1])
	network, msg, aad := benchNetwork(), benchPayload(), []byte("entry 42")
	for _, n := range benchRecipientCounts {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			rs := all[:n]
			var env *Envelope
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				var err error
				if env, err = Seal(network, "entry-body", rs, aad, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(env.Bytes())), "B/envelope")
		})
	}
}

// BenchmarkOpen opens, as one of N recipients, 1 KiB sealed to N members.
// The envelope is already parsed; see BenchmarkParseEnvelope for that.
func BenchmarkOpen(b *testing.B) {
	ids, all := benchMembers(b, benchRecipientCounts[len(benchRecipientCounts)-1])
	network, msg, aad := benchNetwork(), benchPayload(), []byte("entry 42")
	for _, n := range benchRecipientCounts {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			env, err := Seal(network, "entry-body", all[:n], aad, msg)
			if err != nil {
				b.Fatal(err)
			}
			me := ids[n/2]
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := me.Open(network, "entry-body", env, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseEnvelope is the strict decode a receiver does before Open.
func BenchmarkParseEnvelope(b *testing.B) {
	_, all := benchMembers(b, benchRecipientCounts[len(benchRecipientCounts)-1])
	network, msg := benchNetwork(), benchPayload()
	for _, n := range benchRecipientCounts {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			env, err := Seal(network, "entry-body", all[:n], nil, msg)
			if err != nil {
				b.Fatal(err)
			}
			enc := env.Bytes()
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := ParseEnvelope(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealWith seals 1 KiB under a group key and reports the bytes
// added to the plaintext.
func BenchmarkSealWith(b *testing.B) {
	g, err := NewGroupKey("all", 1)
	if err != nil {
		b.Fatal(err)
	}
	network, msg, aad := benchNetwork(), benchPayload(), []byte("entry 42")
	var sealed []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if sealed, err = SealWith(g, network, aad, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(sealed)-len(msg)), "B/overhead")
}

func BenchmarkOpenWith(b *testing.B) {
	g, err := NewGroupKey("all", 1)
	if err != nil {
		b.Fatal(err)
	}
	network, msg, aad := benchNetwork(), benchPayload(), []byte("entry 42")
	sealed, err := SealWith(g, network, aad, msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := OpenWith(g, network, aad, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewKeyEnvelope distributes one group key to 30 members: the
// per-epoch cost that SealWith's cheap per-message cost is bought with.
func BenchmarkNewKeyEnvelope(b *testing.B) {
	_, rs := benchMembers(b, 30)
	g, err := NewGroupKey("all", 1)
	if err != nil {
		b.Fatal(err)
	}
	network := benchNetwork()
	var ke *KeyEnvelope
	b.ReportAllocs()
	for b.Loop() {
		if ke, err = NewKeyEnvelope(network, g, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ke.Bytes())), "B/envelope")
}

// BenchmarkLoadIdentity is what start-up pays to read the key file:
// ParseKeyFile (which checks the card's self-signature) and Unlock, with and
// without an Argon2id passphrase (t=3, 64 MiB, p=4). No disk I/O.
func BenchmarkLoadIdentity(b *testing.B) {
	id := newTestIdentity(b, "loader")
	for _, tc := range []struct {
		name       string
		passphrase []byte
	}{
		{"passphrase=none", nil},
		{"passphrase=argon2id", []byte("correct horse battery staple")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			file, err := MarshalKeyFile(id, tc.passphrase)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				kf, err := ParseKeyFile(file)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := kf.Unlock(tc.passphrase); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
