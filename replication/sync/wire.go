package sync

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Protocol IDs.
const (
	ProtocolSync = "/crisismesh/sync/1"
	// ProtocolPush announces what a push carries before its entries, and
	// lets the receiver decline relayed entries it holds or is receiving.
	ProtocolPush = "/crisismesh/push/2"
	// ProtocolPushV1 is the older push (entries only), still served and
	// used with peers that do not speak push/2.
	ProtocolPushV1 = "/crisismesh/push/1"
	// ProtocolNarrow carries a node's own entries over a narrow link with
	// provisional signatures, and the covers that follow (see "Narrow
	// links" in the package doc). A peer that does not speak it gets
	// push/2 as before.
	ProtocolNarrow = "/crisismesh/narrow/1"
	// ProtocolNarrow2 is narrow/1 on one long-lived stream per peer: the
	// same messages one after another, each answered with msgEnd once
	// stored, so an isolated post costs no stream opening, negotiation
	// and closing on the link (BENCHMARKS.md, "Narrow links on the
	// wire"). A peer that does not speak it gets narrow/1.
	ProtocolNarrow2 = "/crisismesh/narrow/2"
)

// maxFrame bounds one message: an entry of the largest size plus framing.
const maxFrame = log.MaxEntrySize + 64<<10

// Message types.
const (
	msgHello    = 1
	msgEqual    = 2
	msgFrontier = 3
	msgEntries  = 4
	msgEnd      = 5
	msgError    = 6
	// push/2: the heads of the entries that follow at once (own entries),
	// or an offer of them that the receiver answers with its frontier
	// (relayed entries).
	msgHeads = 7
	msgOffer = 8
	// narrow/1: entries of the pusher's own feed, possibly with
	// provisional signatures, then covers of entries sent before.
	msgNarrow = 9
)

// ErrProtocol marks a peer that broke the protocol (malformed or oversized
// message, unexpected message type).
var ErrProtocol = errors.New("sync: protocol violation")

type frontierItem struct {
	Author  []byte `cbor:"1,keyasint"`
	Seq     uint64 `cbor:"2,keyasint"`
	Head    []byte `cbor:"3,keyasint"`
	Lamport uint64 `cbor:"4,keyasint"`
	Forked  bool   `cbor:"5,keyasint,omitempty"`
}

type message struct {
	Type     uint8          `cbor:"1,keyasint"`
	Network  []byte         `cbor:"2,keyasint,omitempty"` // hello: first 8 bytes of the network ID
	Digest   []byte         `cbor:"3,keyasint,omitempty"`
	Force    bool           `cbor:"4,keyasint,omitempty"`
	Frontier []frontierItem `cbor:"5,keyasint,omitempty"`
	Entries  [][]byte       `cbor:"6,keyasint,omitempty"`
	Error    string         `cbor:"7,keyasint,omitempty"`
	Covers   [][]byte       `cbor:"8,keyasint,omitempty"` // narrow/1: encoded log.Covers
}

func encodeFrontier(f log.Frontier) []frontierItem {
	out := make([]frontierItem, 0, len(f))
	for _, a := range f.Authors() {
		h := f[a]
		out = append(out, frontierItem{Author: a[:], Seq: h.Seq, Head: h.ID[:], Lamport: h.Lamport, Forked: h.Forked})
	}
	return out
}

func decodeFrontier(items []frontierItem) (log.Frontier, error) {
	f := make(log.Frontier, len(items))
	for i, it := range items {
		if len(it.Author) != 32 || len(it.Head) != 32 {
			return nil, fmt.Errorf("%w: frontier item of the wrong size", ErrProtocol)
		}
		a := crypto.MemberID(it.Author)
		if _, dup := f[a]; dup {
			return nil, fmt.Errorf("%w: author listed twice in frontier", ErrProtocol)
		}
		// encodeFrontier sorts by author: one frontier, one encoding.
		if i > 0 && bytes.Compare(items[i-1].Author, it.Author) >= 0 {
			return nil, fmt.Errorf("%w: frontier authors are not in ascending order", ErrProtocol)
		}
		f[a] = log.Head{Seq: it.Seq, ID: log.Hash(it.Head), Lamport: it.Lamport, Forked: it.Forked}
	}
	return f, nil
}

// conn frames messages on a stream: a uvarint length, then canonical CBOR.
// It counts bytes each way. A conn is used by one reader and one writer
// goroutine at a time.
type conn struct {
	r       *bufio.Reader
	w       io.Writer
	read    *counter
	written *counter
}

type counter struct {
	n        atomic.Int64
	progress func()
}

func (c *counter) add(n int) {
	c.n.Add(int64(n))
	if c.progress != nil && n > 0 {
		c.progress()
	}
}

type countingReader struct {
	r io.Reader
	c *counter
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.c.add(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	c *counter
}

func (cw countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.c.add(n)
	return n, err
}

// readBuffer is a conn's read buffer. Frames larger than it are read
// straight into their own slice (bufio.Reader passes large reads
// through), so it only needs to hold the small messages (heads, offers,
// frontiers, a narrow push's one entry): a push opens a stream of its
// own, and 64 KiB per stream was 3 % of a writer's CPU, zeroing buffers
// (BENCHMARKS.md, "CPU per post").
const readBuffer = 4 << 10

func newConn(rw io.ReadWriter, progress func()) *conn {
	rc, wc := &counter{progress: progress}, &counter{progress: progress}
	return &conn{
		r:       bufio.NewReaderSize(countingReader{rw, rc}, readBuffer),
		w:       countingWriter{rw, wc},
		read:    rc,
		written: wc,
	}
}

func (c *conn) send(m *message) error {
	b, err := crypto.MarshalCanonical(m)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("sync: message of %d bytes over the frame limit", len(b))
	}
	frame := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	frame = append(frame, b...)
	_, err = c.w.Write(frame)
	return err
}

func (c *conn) recv() (*message, error) {
	n, err := readLength(c.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrProtocol, n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, err
	}
	var m message
	if err := crypto.UnmarshalCanonical(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return &m, nil
}

// readLength reads a frame length: a uvarint in its shortest form. A
// length that overflows 64 bits or is written longer than needed is a
// protocol violation (ErrProtocol), so a frame has exactly one encoding.
func readLength(r io.ByteReader) (uint64, error) {
	cr := &byteCounter{r: r}
	n, err := binary.ReadUvarint(cr)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return 0, err
	case err != nil && cr.err != nil:
		// The stream failed (reset, closed by a partition, a deadline):
		// not the peer breaking the protocol.
		return 0, fmt.Errorf("sync: read frame length: %w", cr.err)
	case err != nil:
		return 0, fmt.Errorf("%w: frame length: %v", ErrProtocol, err)
	case cr.n != len(binary.AppendUvarint(nil, n)):
		return 0, fmt.Errorf("%w: frame length %d written in %d bytes, not its shortest form", ErrProtocol, n, cr.n)
	}
	return n, nil
}

// byteCounter counts the bytes read through it.
type byteCounter struct {
	r   io.ByteReader
	n   int
	err error // the reader's error, if any
}

func (c *byteCounter) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	} else {
		c.err = err
	}
	return b, err
}

func isProtocol(err error) bool { return errors.Is(err, ErrProtocol) }

func errUnexpected(t uint8) error { return fmt.Errorf("%w: unexpected message %d", ErrProtocol, t) }
