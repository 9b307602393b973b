package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"slices"

	"github.com/crisismesh/crisismesh/crypto"
)

// A Frontier maps every author to the head of its feed that a replica
// holds. It is a plain map: the caller owns it and synchronises access.
type Frontier map[crypto.MemberID]Head

// Digest is one hash of a whole frontier: equal digests mean equal logs
// (up to SHA-256 collisions). It is the sum modulo 2^256 of ItemHash over
// all authors, so it can be updated in O(1) when one author's head moves.
type Digest [32]byte

// String returns lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ItemHash is the contribution of one author's head to a digest.
func ItemHash(author crypto.MemberID, h Head) [32]byte {
	var b [32 + 8 + 32 + 8 + 1]byte
	copy(b[:32], author[:])
	binary.BigEndian.PutUint64(b[32:40], h.Seq)
	copy(b[40:72], h.ID[:])
	binary.BigEndian.PutUint64(b[72:80], h.Lamport)
	if h.Forked {
		b[80] = 1
	}
	s := sha256.New()
	s.Write([]byte("crisismesh/frontier-item/v1\x00"))
	s.Write(b[:])
	return [32]byte(s.Sum(nil))
}

// Add adds item to d (mod 2^256).
func (d *Digest) Add(item [32]byte) { d.apply(item, bits.Add64) }

// Sub subtracts item from d (mod 2^256).
func (d *Digest) Sub(item [32]byte) { d.apply(item, bits.Sub64) }

// apply runs op (bits.Add64 or bits.Sub64) over d and item as 256-bit
// big-endian numbers, word by word from the lowest, carrying (or
// borrowing) into the next; the last carry is dropped (mod 2^256).
func (d *Digest) apply(item [32]byte, op func(x, y, carry uint64) (sum, carryOut uint64)) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		a := binary.BigEndian.Uint64(d[i*8:])
		b := binary.BigEndian.Uint64(item[i*8:])
		s, c := op(a, b, carry)
		binary.BigEndian.PutUint64(d[i*8:], s)
		carry = c
	}
}

// Move updates d for an author whose head moves from old (ok=false: the
// author was not in the frontier) to next.
func (d *Digest) Move(author crypto.MemberID, old Head, hadOld bool, next Head) {
	if hadOld {
		d.Sub(ItemHash(author, old))
	}
	d.Add(ItemHash(author, next))
}

// Digest computes the digest of the whole frontier (O(authors)). Stores
// keep it incrementally with [Digest.Move] instead.
func (f Frontier) Digest() Digest {
	var d Digest
	for a, h := range f {
		d.Add(ItemHash(a, h))
	}
	return d
}

// Authors returns the frontier's authors in byte order.
func (f Frontier) Authors() []crypto.MemberID {
	out := make([]crypto.MemberID, 0, len(f))
	for a := range f {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b crypto.MemberID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Clone returns a copy.
func (f Frontier) Clone() Frontier {
	c := make(Frontier, len(f))
	for a, h := range f {
		c[a] = h
	}
	return c
}

// Missing returns, for each author whose feed in f is ahead of other, the
// seq after which other lacks entries (0: all of them). Forks seen only in
// f are reported too, so the evidence travels.
func (f Frontier) Missing(other Frontier) map[crypto.MemberID]uint64 {
	out := map[crypto.MemberID]uint64{}
	for a, h := range f {
		o, ok := other[a]
		switch {
		case !ok:
			out[a] = 0
		case h.Seq > o.Seq:
			out[a] = o.Seq
		case h.Forked && !o.Forked:
			out[a] = min(h.Seq, o.Seq)
		}
	}
	return out
}
