package sync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// bundleMagic starts every bundle file.
const bundleMagic = "CRISISMESH-BUNDLE-1\n"

// maxTrailer bounds the signed trailer of a bundle.
const maxTrailer = 64 << 10

// ErrBadBundle is the class of bundle refusals: truncated, tampered,
// foreign network, unknown exporter. Nothing of such a bundle is stored.
var ErrBadBundle = errors.New("sync: bad bundle")

type trailerBody struct {
	Network  []byte         `cbor:"1,keyasint"`
	Exporter []byte         `cbor:"2,keyasint"`
	Created  int64          `cbor:"3,keyasint"` // Unix milliseconds
	Count    uint64         `cbor:"4,keyasint"`
	Length   uint64         `cbor:"5,keyasint"` // payload bytes
	SHA256   []byte         `cbor:"6,keyasint"`
	Base     []frontierItem `cbor:"7,keyasint,omitempty"` // what the recipient was known to hold
}

type trailer struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

// BundleInfo describes a bundle.
type BundleInfo struct {
	Network  crypto.NetworkID
	Exporter crypto.MemberID
	Created  time.Time
	Entries  uint64
	Bytes    uint64
}

// Export writes to path a bundle of the entries a node with frontier base
// lacks (base nil: every entry), signed by id. The file is written to a
// temporary name, fsynced and renamed, so a crash leaves no half bundle.
func Export(st *store.Store, id *crypto.Identity, base log.Frontier, path string, now time.Time) (BundleInfo, error) {
	if base == nil {
		base = log.Frontier{}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".bundle-*.tmp")
	if err != nil {
		return BundleInfo{}, fmt.Errorf("sync: export: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if _, err := w.WriteString(bundleMagic); err != nil {
		return BundleInfo{}, err
	}
	h := sha256.New()
	var count, length uint64
	write := func(e *log.Entry) error {
		frame := binary.AppendUvarint(nil, uint64(e.Size()))
		frame = append(frame, e.Bytes()...)
		h.Write(frame)
		count++
		length += uint64(len(frame))
		_, err := w.Write(frame)
		return err
	}
	plans, evidence, err := plan(st, base)
	if err != nil {
		return BundleInfo{}, err
	}
	for _, e := range evidence {
		if err := write(e); err != nil {
			return BundleInfo{}, err
		}
	}
	for _, p := range plans {
		after := p.from
		for after < p.to {
			es, err := st.Feed(p.author, after, 512)
			if err != nil {
				return BundleInfo{}, err
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				if e.Header.Seq > p.to {
					break
				}
				if err := write(e); err != nil {
					return BundleInfo{}, err
				}
				after = e.Header.Seq
			}
		}
	}
	net := st.Network()
	exporter := id.ID()
	body, err := crypto.MarshalCanonical(&trailerBody{
		Network: net[:], Exporter: exporter[:], Created: now.UnixMilli(), Count: count, Length: length,
		SHA256: h.Sum(nil), Base: encodeFrontier(base),
	})
	if err != nil {
		return BundleInfo{}, err
	}
	sig, err := id.Sign(crypto.ContextBundle, body)
	if err != nil {
		return BundleInfo{}, err
	}
	tr, err := crypto.MarshalCanonical(&trailer{Body: body, Sig: sig})
	if err != nil {
		return BundleInfo{}, err
	}
	if _, err := w.Write(tr); err != nil {
		return BundleInfo{}, err
	}
	if err := binary.Write(w, binary.BigEndian, uint32(len(tr))); err != nil {
		return BundleInfo{}, err
	}
	if err := w.Flush(); err != nil {
		return BundleInfo{}, fmt.Errorf("sync: export: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return BundleInfo{}, fmt.Errorf("sync: export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return BundleInfo{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return BundleInfo{}, fmt.Errorf("sync: export: %w", err)
	}
	return BundleInfo{Network: net, Exporter: exporter, Created: now, Entries: count, Bytes: length}, nil
}

// ImportResult says what an import did.
type ImportResult struct {
	Info       BundleInfo
	Added      int
	Duplicates int
	Rejected   []store.Rejection
}

// Import checks a bundle completely (magic, signed trailer by a roster
// member, network, length and SHA-256 of the payload) and only then
// ingests its entries. Importing the same bundle twice adds nothing the
// second time.
func Import(ctx context.Context, st *store.Store, path string) (ImportResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("sync: import: %w", err)
	}
	defer f.Close()
	info, payloadLen, err := checkBundle(f, st)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Info: info}
	r := bufio.NewReaderSize(io.NewSectionReader(f, int64(len(bundleMagic)), int64(payloadLen)), 1<<20)
	var batch []*log.Entry
	var carry []*log.Entry
	batchSize := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		all := make([]*log.Entry, 0, len(carry)+len(batch))
		all = append(append(all, carry...), batch...)
		ir, err := st.Ingest(ctx, all...)
		if err != nil {
			return err
		}
		carry = nil
		byID := make(map[log.Hash]*log.Entry, len(all))
		for _, e := range all {
			byID[e.ID()] = e
		}
		res.Added += len(ir.Added)
		res.Duplicates += ir.Duplicates
		var held int64
		for _, rj := range ir.Rejected {
			if log.ReasonOf(rj.Err) == log.ReasonUnsignedTail && byID[rj.ID] != nil {
				carry = append(carry, byID[rj.ID])
				held += heldCost(byID[rj.ID])
				continue
			}
			res.Rejected = append(res.Rejected, rj)
		}
		batch, batchSize = nil, 0
		if held > maxCarryBytes || len(carry) > maxCarry {
			return carryError(carry, held)
		}
		return nil
	}
	for i := uint64(0); i < info.Entries; i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > log.MaxEntrySize {
			return res, fmt.Errorf("%w: entry %d: bad frame", ErrBadBundle, i)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(r, raw); err != nil {
			return res, fmt.Errorf("%w: entry %d: %v", ErrBadBundle, i, err)
		}
		e, err := log.Decode(raw)
		if err != nil {
			return res, fmt.Errorf("%w: entry %d: %v", ErrBadBundle, i, err)
		}
		batch = append(batch, e)
		batchSize += e.Size()
		if len(batch) >= batchEntries || batchSize >= batchBytes {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	for _, e := range carry {
		res.Rejected = append(res.Rejected, store.Rejection{Author: e.Header.Author, Seq: e.Header.Seq, ID: e.ID(),
			Err: fmt.Errorf("%w (unsigned entry at the end of the bundle)", log.ErrInvalid)})
	}
	return res, nil
}

// checkFrames walks the payload before anything of it is stored: exactly
// count frames, each a length in its shortest uvarint form (at most
// log.MaxEntrySize) and that many bytes, and nothing after the last. So a
// bundle has one encoding: no bytes hide under the signature unread.
func checkFrames(r io.Reader, count uint64) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for i := uint64(0); i < count; i++ {
		n, err := readLength(br)
		if err != nil || n > log.MaxEntrySize {
			return fmt.Errorf("%w: entry %d: bad frame", ErrBadBundle, i)
		}
		if d, err := br.Discard(int(n)); err != nil || d != int(n) {
			return fmt.Errorf("%w: entry %d: truncated (the trailer counts %d entries)", ErrBadBundle, i, count)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: bytes after the %d entries the trailer counts", ErrBadBundle, count)
	}
	return nil
}

// carryError refuses a bundle whose unsigned entries, held back for the
// signed entry that would vouch for them, pass the carry budget.
func carryError(carry []*log.Entry, held int64) error {
	first, last := carry[0], carry[len(carry)-1]
	return fmt.Errorf("%w: %w: %d unsigned entries (%d bytes in memory; from %s seq %d to %s seq %d) are not followed by a signed entry within the import's budget of %d bytes or %d entries. "+
		"An honest export ends every feed on a signed entry a few entries later; this bundle was built to exhaust memory, or by a faulty node. "+
		"The valid entries before them are stored; nothing after is read. Ask the exporter for a new bundle and report the file to its operator",
		ErrBadBundle, ErrOverBudget, len(carry), held, first.Header.Author.Short(), first.Header.Seq, last.Header.Author.Short(), last.Header.Seq, int64(maxCarryBytes), maxCarry)
}

// checkBundle verifies everything but the entries' own validity, which
// Ingest checks. It returns the payload length.
func checkBundle(f *os.File, st *store.Store) (BundleInfo, uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return BundleInfo{}, 0, err
	}
	size := fi.Size()
	magic := make([]byte, len(bundleMagic))
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != bundleMagic {
		return BundleInfo{}, 0, fmt.Errorf("%w: not a crisismesh bundle (no magic line)", ErrBadBundle)
	}
	if size < int64(len(bundleMagic))+4 {
		return BundleInfo{}, 0, fmt.Errorf("%w: truncated", ErrBadBundle)
	}
	var lenBuf [4]byte
	if _, err := f.ReadAt(lenBuf[:], size-4); err != nil {
		return BundleInfo{}, 0, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	trLen := int64(binary.BigEndian.Uint32(lenBuf[:]))
	payloadLen := size - 4 - trLen - int64(len(bundleMagic))
	if trLen > maxTrailer || payloadLen < 0 {
		return BundleInfo{}, 0, fmt.Errorf("%w: truncated or damaged (trailer length %d)", ErrBadBundle, trLen)
	}
	trRaw := make([]byte, trLen)
	if _, err := f.ReadAt(trRaw, size-4-trLen); err != nil {
		return BundleInfo{}, 0, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	var tr trailer
	var body trailerBody
	if err := crypto.UnmarshalCanonical(trRaw, &tr); err != nil {
		return BundleInfo{}, 0, fmt.Errorf("%w: truncated or damaged trailer: %v", ErrBadBundle, err)
	}
	if err := crypto.UnmarshalCanonical(tr.Body, &body); err != nil {
		return BundleInfo{}, 0, fmt.Errorf("%w: damaged trailer: %v", ErrBadBundle, err)
	}
	net := st.Network()
	if !bytes.Equal(body.Network, net[:]) {
		return BundleInfo{}, 0, fmt.Errorf("%w: the bundle is for network %x…, this node is on %s…", ErrBadBundle, body.Network[:min(8, len(body.Network))], net.String()[:16])
	}
	if len(body.Exporter) != 32 {
		return BundleInfo{}, 0, fmt.Errorf("%w: damaged trailer", ErrBadBundle)
	}
	exporter := crypto.MemberID(body.Exporter)
	m, ok := st.Roster().Member(exporter)
	if !ok {
		return BundleInfo{}, 0, fmt.Errorf("%w: exported by %s, who is not in this node's roster", ErrBadBundle, exporter.Short())
	}
	if err := m.Card.Verify(crypto.ContextBundle, tr.Body, tr.Sig); err != nil {
		return BundleInfo{}, 0, fmt.Errorf("%w: signature by %s does not verify: %v", ErrBadBundle, m.Card.Name(), err)
	}
	if uint64(payloadLen) != body.Length {
		return BundleInfo{}, 0, fmt.Errorf("%w: payload is %d bytes, the trailer says %d (truncated?)", ErrBadBundle, payloadLen, body.Length)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, int64(len(bundleMagic)), payloadLen)); err != nil {
		return BundleInfo{}, 0, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	if !bytes.Equal(h.Sum(nil), body.SHA256) {
		return BundleInfo{}, 0, fmt.Errorf("%w: checksum mismatch: the file was modified or damaged in transit", ErrBadBundle)
	}
	if err := checkFrames(io.NewSectionReader(f, int64(len(bundleMagic)), payloadLen), body.Count); err != nil {
		return BundleInfo{}, 0, err
	}
	return BundleInfo{Network: net, Exporter: exporter, Created: time.UnixMilli(body.Created).UTC(), Entries: body.Count, Bytes: body.Length}, uint64(payloadLen), nil
}
