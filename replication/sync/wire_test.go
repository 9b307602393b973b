package sync

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// failingReader returns its bytes, then err.
type failingReader struct {
	b   []byte
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.err
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// A stream that fails while a frame length is read (a partition resets
// it) is not the peer breaking the protocol: an honest peer must not be
// scored for it. A length that overflows or is not in its shortest form is.
func TestReadLengthTellsFailuresFromViolations(t *testing.T) {
	reset := errors.New("stream reset")
	for _, tc := range []struct {
		name     string
		in       []byte
		err      error
		protocol bool
	}{
		{"reset before the length", nil, reset, false},
		{"reset inside the length", []byte{0x80}, reset, false},
		{"eof inside the length", []byte{0x80}, io.EOF, false},
		{"overflow", bytes.Repeat([]byte{0xff}, 11), io.EOF, true},
		{"not shortest", []byte{0x81, 0x00}, io.EOF, true},
	} {
		_, err := readLength(bufio.NewReader(&failingReader{b: tc.in, err: tc.err}))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if got := errors.Is(err, ErrProtocol); got != tc.protocol {
			t.Errorf("%s: %v: protocol violation %v, want %v", tc.name, err, got, tc.protocol)
		}
	}
}
