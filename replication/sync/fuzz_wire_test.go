package sync

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
	"github.com/google/go-cmp/cmp"
)

// Fuzz targets for the decoders of this package (STYLE.md §12): the sync
// wire frames here, bundle files and their trailers in fuzz_bundle_test.go.
// They never panic, refuse only with the package's error classes, and what
// they accept encodes back to exactly the input. Seeds are real encodings.
// Run one target at a time:
//
//	go test ./replication/sync/ -run '^$' -fuzz '^FuzzWireFrames$' -fuzztime 60s -parallel 2
//	go test ./replication/sync/ -run '^$' -fuzz '^FuzzBundle$' -fuzztime 60s -parallel 2

// fuzzFrames returns real messages of every type, each framed as conn.send
// writes it: a hello, equal, a frontier, entries, end, an error, heads and an
// offer, with entries and frontiers taken from a store.
func fuzzFrames(tb testing.TB) [][]byte {
	tb.Helper()
	w := newWorld(tb)
	st, err := store.Open("", w.genesis, w.ids["cert-lu"], store.Options{InMemory: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Ingest(context.Background(), w.keyEnt); err != nil {
		tb.Fatal(err)
	}
	es, err := st.Append(context.Background(),
		log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: "one"}, Key: w.key},
		log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: "two"}, Key: w.key, Priority: log.Flash})
	if err != nil {
		tb.Fatal(err)
	}
	net, digest := st.Network(), st.Digest()
	front := encodeFrontier(st.Frontier())
	front = append(front, frontierItem{Author: bytes.Repeat([]byte{0xff}, 32), Seq: 7, Head: make([]byte, 32), Lamport: 9, Forked: true})
	var raws [][]byte
	for _, e := range append([]*log.Entry{w.keyEnt}, es...) {
		raws = append(raws, e.Bytes())
	}
	msgs := []*message{
		{Type: msgHello, Network: net[:8], Digest: digest[:]},
		{Type: msgHello, Network: net[:8], Digest: digest[:], Force: true},
		{Type: msgEqual},
		{Type: msgFrontier, Frontier: front},
		{Type: msgEntries, Entries: raws},
		{Type: msgEntries, Entries: [][]byte{es[0].Unsigned().Bytes(), es[1].Bytes()}},
		{Type: msgEnd},
		{Type: msgError, Error: "sync: busy"},
		{Type: msgHeads, Frontier: front[:1]},
		{Type: msgOffer, Frontier: front},
	}
	var frames [][]byte
	for _, m := range msgs {
		var buf bytes.Buffer
		if err := newConn(&rwPair{w: &buf}, nil).send(m); err != nil {
			tb.Fatal(err)
		}
		frames = append(frames, buf.Bytes())
	}
	return frames
}

// rwPair is an io.ReadWriter over a separate reader and writer.
type rwPair struct {
	r io.Reader
	w io.Writer
}

func (p *rwPair) Read(b []byte) (int, error) {
	if p.r == nil {
		return 0, io.EOF
	}
	return p.r.Read(b)
}

func (p *rwPair) Write(b []byte) (int, error) { return p.w.Write(b) }

// addFuzzMutants adds b, two truncations and three copies with one bit
// flipped (first, middle and last byte).
func addFuzzMutants(f *testing.F, b []byte) {
	f.Add(bytes.Clone(b))
	f.Add(bytes.Clone(b[:len(b)/2]))
	f.Add(bytes.Clone(b[:len(b)-1]))
	for _, i := range []int{0, len(b) / 2, len(b) - 1} {
		m := bytes.Clone(b)
		m[i] ^= 0x01
		f.Add(m)
	}
}

// FuzzWireFrames reads a stream of frames as a session does. Every message
// it accepts, sent again, gives back exactly the bytes it was read from (the
// frames read so far are a prefix of the input); a frontier it accepts
// encodes back to the same items; an entry it carries that decodes encodes
// back to itself. A refusal is ErrProtocol or a short read.
func FuzzWireFrames(f *testing.F) {
	frames := fuzzFrames(f)
	f.Add([]byte{})
	for _, fr := range frames {
		addFuzzMutants(f, fr)
	}
	f.Add(bytes.Join(frames, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var again bytes.Buffer
		c := newConn(&rwPair{r: bytes.NewReader(data)}, nil)
		out := newConn(&rwPair{w: &again}, nil)
		for range 64 {
			m, err := c.recv()
			if err != nil {
				if !isProtocol(err) && err != io.ErrUnexpectedEOF && err != io.EOF {
					t.Fatalf("recv: error %q is neither ErrProtocol nor a short read", err)
				}
				break
			}
			if err := out.send(m); err != nil {
				t.Fatalf("send of a message recv accepted: %v", err)
			}
			if !bytes.HasPrefix(data, again.Bytes()) {
				t.Fatalf("decode→encode changed the bytes: %d bytes re-encoded are not a prefix of the input", again.Len())
			}
			if len(m.Frontier) > 0 {
				if fr, err := decodeFrontier(m.Frontier); err == nil {
					if diff := cmp.Diff(m.Frontier, encodeFrontier(fr)); diff != "" {
						t.Fatalf("frontier: decode→encode differs (-read +encoded):\n%s", diff)
					}
				} else if !isProtocol(err) {
					t.Fatalf("decodeFrontier: %v is not ErrProtocol", err)
				}
			}
			for i, raw := range m.Entries {
				if e, err := log.Decode(raw); err == nil && !bytes.Equal(e.Bytes(), raw) {
					t.Fatalf("entry %d: decode→encode changed the bytes", i)
				}
			}
		}
	})
}

// TestWireFrameSeeds keeps the seeds honest: each is one message that reads
// back as itself.
func TestWireFrameSeeds(t *testing.T) {
	for i, fr := range fuzzFrames(t) {
		c := newConn(&rwPair{r: bytes.NewReader(fr)}, nil)
		m, err := c.recv()
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		var again bytes.Buffer
		if err := newConn(&rwPair{w: &again}, nil).send(m); err != nil || !bytes.Equal(again.Bytes(), fr) {
			t.Fatalf("seed %d: re-encoded differs (%v)", i, err)
		}
	}
}
