package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Magic starts every archive file.
const Magic = "CRISISMESH-ARCHIVE-1\n"

// Limits of the reader: a record is at most maxRecord bytes (an entry is
// at most log.MaxEntrySize; a checkpoint payload or a Raft entry is
// smaller), the trailer at most maxTrailer.
const (
	maxRecord  = log.MaxEntrySize + 64<<10
	maxTrailer = 64 << 20
)

// A Kind is what a record of an archive holds.
type Kind uint8

// The record kinds.
const (
	// KindEntry: an entry of a feed, its exact bytes.
	KindEntry Kind = 1
	// KindEvidence: an entry the exporting node set aside as evidence (one
	// branch of a fork, or an entry a revocation refused), its exact bytes.
	KindEvidence Kind = 2
	// KindCheckpoint: the opened payload of a checkpoint entry (a claimed
	// state with its author's vote, or a vote), with the entry's ID.
	KindCheckpoint Kind = 3
	// KindDecision: a committed Raft entry (a signed crisis command or a
	// roster update) with its index, term and times.
	KindDecision Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindEntry:
		return "entry"
	case KindEvidence:
		return "evidence"
	case KindCheckpoint:
		return "checkpoint"
	case KindDecision:
		return "decision"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

type checkpointWire struct {
	Entry   []byte `cbor:"1,keyasint"`
	Payload []byte `cbor:"2,keyasint"`
}

type decisionWire struct {
	Index      uint64 `cbor:"1,keyasint"`
	Term       uint64 `cbor:"2,keyasint"`
	Data       []byte `cbor:"3,keyasint"`
	AppendedAt int64  `cbor:"4,keyasint,omitempty"` // Unix nanoseconds
}

type segmentWire struct {
	Author []byte `cbor:"1,keyasint"`
	First  uint64 `cbor:"2,keyasint"`
	Last   uint64 `cbor:"3,keyasint"`
}

type trailerBody struct {
	Network  []byte        `cbor:"1,keyasint"`
	Exporter []byte        `cbor:"2,keyasint"`
	Created  int64         `cbor:"3,keyasint"`           // Unix milliseconds
	From     int64         `cbor:"4,keyasint,omitempty"` // Unix milliseconds; 0: unbounded
	To       int64         `cbor:"5,keyasint,omitempty"`
	Count    uint64        `cbor:"6,keyasint"`
	Length   uint64        `cbor:"7,keyasint"` // record bytes
	SHA256   []byte        `cbor:"8,keyasint"`
	Segments []segmentWire `cbor:"9,keyasint,omitempty"`
	// RaftFirst is the first index the exporter's Raft log held: decisions
	// before it were compacted away.
	RaftFirst uint64 `cbor:"10,keyasint,omitempty"`
}

type trailerWire struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

// A Segment is a run of one author's feed the archive holds: seqs First
// to Last, every one of them.
type Segment struct {
	Author      crypto.MemberID
	First, Last uint64
}

// Meta is what the exporter says about an archive, signed with it.
type Meta struct {
	Created  time.Time
	From, To time.Time // the window of author times; zero: unbounded
	// RaftFirst is the first index the exporter's Raft log held.
	RaftFirst uint64
}

// Info describes an archive: its meta, who exported it, and what it
// holds.
type Info struct {
	Meta
	Network  crypto.NetworkID
	Exporter crypto.MemberID
	Records  uint64
	Bytes    uint64 // the file's size
	Segments []Segment
}

// A Checkpoint record: a checkpoint entry's opened payload.
type Checkpoint struct {
	Entry   log.Hash
	Payload []byte
}

// Writer writes an archive. Records are written as they come; Close
// writes the signed trailer. It is not safe for concurrent use.
type Writer struct {
	w        *bufio.Writer
	h        hash.Hash
	count    uint64
	length   uint64
	segments []Segment
	last     map[crypto.MemberID]int // author → index of its open segment
	frame    []byte
}

// NewWriter starts an archive on w.
func NewWriter(w io.Writer) (*Writer, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(Magic); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return &Writer{w: bw, h: sha256.New(), last: map[crypto.MemberID]int{}}, nil
}

func (w *Writer) record(k Kind, data []byte) error {
	if len(data) > maxRecord {
		return fmt.Errorf("archive: a %s record of %d bytes is over the limit of %d", k, len(data), maxRecord)
	}
	w.frame = binary.AppendUvarint(append(w.frame[:0], byte(k)), uint64(len(data)))
	w.h.Write(w.frame)
	w.h.Write(data)
	w.count++
	w.length += uint64(len(w.frame) + len(data))
	if _, err := w.w.Write(w.frame); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// Entry writes an entry of a feed. Entries must come in display order
// (log.Less); an author's entries that follow each other by seq form one
// segment.
func (w *Writer) Entry(e *log.Entry) error {
	a := e.Header.Author
	if i, ok := w.last[a]; ok && w.segments[i].Last+1 == e.Header.Seq {
		w.segments[i].Last = e.Header.Seq
	} else {
		w.last[a] = len(w.segments)
		w.segments = append(w.segments, Segment{Author: a, First: e.Header.Seq, Last: e.Header.Seq})
	}
	return w.record(KindEntry, e.Bytes())
}

// Evidence writes an entry held as evidence.
func (w *Writer) Evidence(e *log.Entry) error { return w.record(KindEvidence, e.Bytes()) }

// Checkpoint writes the opened payload of the checkpoint entry id.
func (w *Writer) Checkpoint(id log.Hash, payload []byte) error {
	b, err := crypto.MarshalCanonical(&checkpointWire{Entry: id[:], Payload: payload})
	if err != nil {
		return err
	}
	return w.record(KindCheckpoint, b)
}

// Decision writes a committed Raft entry.
func (w *Writer) Decision(c consensus.Committed) error {
	d := decisionWire{Index: c.Index, Term: c.Term, Data: c.Data}
	if !c.AppendedAt.IsZero() {
		d.AppendedAt = c.AppendedAt.UnixNano()
	}
	b, err := crypto.MarshalCanonical(&d)
	if err != nil {
		return err
	}
	return w.record(KindDecision, b)
}

// Close writes the trailer, signed by id for network, and flushes. It
// does not close the underlying writer.
func (w *Writer) Close(id *crypto.Identity, network crypto.NetworkID, m Meta) (Info, error) {
	exporter := id.ID()
	body := trailerBody{Network: network[:], Exporter: exporter[:], Created: m.Created.UnixMilli(),
		Count: w.count, Length: w.length, SHA256: w.h.Sum(nil), RaftFirst: m.RaftFirst}
	if !m.From.IsZero() {
		body.From = m.From.UnixMilli()
	}
	if !m.To.IsZero() {
		body.To = m.To.UnixMilli()
	}
	for _, s := range w.segments {
		body.Segments = append(body.Segments, segmentWire{Author: bytes.Clone(s.Author[:]), First: s.First, Last: s.Last})
	}
	b, err := crypto.MarshalCanonical(&body)
	if err != nil {
		return Info{}, err
	}
	sig, err := id.Sign(crypto.ContextArchive, b)
	if err != nil {
		return Info{}, err
	}
	tr, err := crypto.MarshalCanonical(&trailerWire{Body: b, Sig: sig})
	if err != nil {
		return Info{}, err
	}
	if len(tr) > maxTrailer {
		return Info{}, fmt.Errorf("archive: trailer of %d bytes is over the limit of %d", len(tr), maxTrailer)
	}
	if _, err := w.w.Write(tr); err != nil {
		return Info{}, fmt.Errorf("archive: %w", err)
	}
	if err := binary.Write(w.w, binary.BigEndian, uint32(len(tr))); err != nil {
		return Info{}, fmt.Errorf("archive: %w", err)
	}
	if err := w.w.Flush(); err != nil {
		return Info{}, fmt.Errorf("archive: %w", err)
	}
	return Info{Meta: m, Network: network, Exporter: exporter, Records: w.count,
		Bytes: uint64(len(Magic)) + w.length + uint64(len(tr)) + 4, Segments: w.segments}, nil
}

// An Archive is an archive file read into memory: its records by kind,
// each in file order, and what the trailer says. The exporter's signature
// is checked by [Verify], which knows the roster.
type Archive struct {
	Info        Info
	Entries     []Record[*log.Entry]
	Evidence    []Record[*log.Entry]
	Checkpoints []Record[Checkpoint]
	Decisions   []Record[consensus.Committed]
	// damage is the checksum failure Read found; Verify reports it, after
	// looking for the record the damage made invalid (see Read).
	damage  *Failure
	trailer []byte // the signed trailer body
	sig     []byte
	length  uint64 // record bytes
}

// RecordBytes returns the length of the records, between the magic line
// and the trailer.
func (a *Archive) RecordBytes() uint64 { return a.length }

// WriteRecords writes a's records to w in their order in a's file.
func (a *Archive) WriteRecords(w *Writer) error {
	i, j, k, l := 0, 0, 0, 0
	for n := 0; uint64(n) < a.Info.Records; n++ {
		var err error
		switch {
		case i < len(a.Entries) && a.Entries[i].N == n:
			err = w.Entry(a.Entries[i].Value)
			i++
		case j < len(a.Evidence) && a.Evidence[j].N == n:
			err = w.Evidence(a.Evidence[j].Value)
			j++
		case k < len(a.Checkpoints) && a.Checkpoints[k].N == n:
			err = w.Checkpoint(a.Checkpoints[k].Value.Entry, a.Checkpoints[k].Value.Payload)
			k++
		case l < len(a.Decisions) && a.Decisions[l].N == n:
			err = w.Decision(a.Decisions[l].Value)
			l++
		default:
			err = fmt.Errorf("archive: record %d is missing", n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// A Record is a decoded record with its place in the file (0-based).
type Record[T any] struct {
	N     int
	Value T
}

// ErrFormat is the class of archives Read refuses: no archive, truncated,
// damaged, or records that do not decode. Read's errors are *Failure
// values of class ErrFormat.
var ErrFormat = errors.New("archive: bad format")

func formatFailure(where, rule, format string, args ...any) *Failure {
	return &Failure{What: "file", Where: where, Rule: rule, Detail: fmt.Sprintf(format, args...), class: ErrFormat}
}

// Read reads and decodes an archive of size bytes from r. It checks the
// structure: magic, trailer, length, each record's framing and encoding;
// what the records mean is checked by [Verify]. The SHA-256 of the
// records is checked too, but a mismatch (a modified or damaged byte in a
// record that still decodes) is left for Verify to report: it first
// checks the records, so that its failure names the entry the damage made
// invalid (its signature, its chain), and reports the checksum only when
// every record still verifies.
func Read(r io.ReaderAt, size int64) (*Archive, error) {
	magic := make([]byte, len(Magic))
	if n, _ := r.ReadAt(magic, 0); n != len(Magic) || string(magic) != Magic {
		return nil, formatFailure("start", RuleMagic, "not a crisismesh archive (no magic line %q)", Magic[:len(Magic)-1])
	}
	if size < int64(len(Magic))+4 {
		return nil, formatFailure("end", RuleTruncated, "the file ends before its trailer")
	}
	var lenBuf [4]byte
	if _, err := r.ReadAt(lenBuf[:], size-4); err != nil {
		return nil, formatFailure("end", RuleTruncated, "%v", err)
	}
	trLen := int64(binary.BigEndian.Uint32(lenBuf[:]))
	recLen := size - 4 - trLen - int64(len(Magic))
	if trLen > maxTrailer || recLen < 0 {
		return nil, formatFailure("trailer", RuleTruncated, "the trailer length %d does not fit the file: truncated or damaged", trLen)
	}
	trRaw := make([]byte, trLen)
	if _, err := r.ReadAt(trRaw, size-4-trLen); err != nil {
		return nil, formatFailure("trailer", RuleTruncated, "%v", err)
	}
	var tr trailerWire
	var body trailerBody
	if err := crypto.UnmarshalCanonical(trRaw, &tr); err != nil {
		return nil, formatFailure("trailer", RuleTruncated, "the trailer does not decode (truncated or damaged): %v", err)
	}
	if err := crypto.UnmarshalCanonical(tr.Body, &body); err != nil || len(body.Network) != 32 || len(body.Exporter) != 32 {
		return nil, formatFailure("trailer", RuleTrailer, "the trailer's body does not decode: %v", err)
	}
	if uint64(recLen) != body.Length {
		return nil, formatFailure("trailer", RuleTruncated, "the records are %d bytes, the trailer says %d: truncated or extended", recLen, body.Length)
	}
	a := &Archive{trailer: tr.Body, sig: tr.Sig, length: body.Length}
	a.Info = Info{Network: crypto.NetworkID(body.Network), Exporter: crypto.MemberID(body.Exporter), Records: body.Count, Bytes: uint64(size)}
	a.Info.Created = time.UnixMilli(body.Created).UTC()
	if body.From != 0 {
		a.Info.From = time.UnixMilli(body.From).UTC()
	}
	if body.To != 0 {
		a.Info.To = time.UnixMilli(body.To).UTC()
	}
	a.Info.RaftFirst = body.RaftFirst
	for _, s := range body.Segments {
		if len(s.Author) != 32 || s.First == 0 || s.Last < s.First {
			return nil, formatFailure("trailer", RuleTrailer, "a feed segment of the trailer is malformed")
		}
		a.Info.Segments = append(a.Info.Segments, Segment{Author: crypto.MemberID(s.Author), First: s.First, Last: s.Last})
	}
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(io.NewSectionReader(r, int64(len(Magic)), recLen), h), 1<<20)
	var buf []byte
	for i := 0; uint64(i) < body.Count; i++ {
		where := fmt.Sprintf("record %d", i)
		k, err := br.ReadByte()
		if err != nil {
			return nil, formatFailure(where, RuleTruncated, "the file ends at record %d of the %d the trailer counts", i, body.Count)
		}
		n, err := readLength(br)
		if err != nil || n > maxRecord {
			return nil, formatFailure(where, RuleFrame, "bad record length")
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, formatFailure(where, RuleTruncated, "the file ends inside record %d of the %d the trailer counts", i, body.Count)
		}
		if err := a.add(i, Kind(k), buf); err != nil {
			return nil, formatFailure(where, RuleRecord, "%s record: %v", Kind(k), err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, formatFailure("end", RuleFrame, "bytes after the %d records the trailer counts", body.Count)
	}
	if !bytes.Equal(h.Sum(nil), body.SHA256) {
		a.damage = formatFailure("records", RuleChecksum, "the SHA-256 of the records is not the trailer's: the file was modified or damaged")
	}
	return a, nil
}

// add decodes one record; raw is reused by the caller.
func (a *Archive) add(n int, k Kind, raw []byte) error {
	switch k {
	case KindEntry, KindEvidence:
		e, err := log.Decode(bytes.Clone(raw))
		if err != nil {
			return err
		}
		if k == KindEntry {
			a.Entries = append(a.Entries, Record[*log.Entry]{n, e})
		} else {
			a.Evidence = append(a.Evidence, Record[*log.Entry]{n, e})
		}
	case KindCheckpoint:
		var w checkpointWire
		if err := crypto.UnmarshalCanonical(raw, &w); err != nil {
			return err
		}
		if len(w.Entry) != 32 {
			return errors.New("malformed entry ID")
		}
		a.Checkpoints = append(a.Checkpoints, Record[Checkpoint]{n, Checkpoint{Entry: log.Hash(w.Entry), Payload: w.Payload}})
	case KindDecision:
		var w decisionWire
		if err := crypto.UnmarshalCanonical(raw, &w); err != nil {
			return err
		}
		c := consensus.Committed{Index: w.Index, Term: w.Term, Data: w.Data}
		if w.AppendedAt != 0 {
			c.AppendedAt = time.Unix(0, w.AppendedAt).UTC()
		}
		a.Decisions = append(a.Decisions, Record[consensus.Committed]{n, c})
	default:
		return errors.New("unknown record kind")
	}
	return nil
}

// readLength reads a uvarint in its shortest form, so a record has one
// encoding.
func readLength(r io.ByteReader) (uint64, error) {
	var b [binary.MaxVarintLen64]byte
	var n int
	for n < len(b) {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		b[n] = c
		n++
		if c < 0x80 {
			break
		}
	}
	v, m := binary.Uvarint(b[:n])
	if m <= 0 || m != n || len(binary.AppendUvarint(nil, v)) != n {
		return 0, errors.New("non-canonical length")
	}
	return v, nil
}
