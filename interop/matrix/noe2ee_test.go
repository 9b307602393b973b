//go:build !goolm

package matrix

import (
	"strings"
	"testing"
	"time"
)

// Built without the goolm tag, the bridge refuses an encrypted room and
// says how to build one that can join it.
func TestBridgeRefusesEncryptedRoomWithoutGoolm(t *testing.T) {
	e := newEnv(t, true)
	n := newFakeNode()
	b := e.start(e.config(), n)
	waitFor(t, 30*time.Second, "the refusal", func() bool { return b.Status().LastError != "" })
	if s := b.Status(); !strings.Contains(s.LastError, "-tags goolm") {
		t.Errorf("last error %q does not say to build with -tags goolm", s.LastError)
	}
	n.post("cert-fr", "clear", "must not reach an encrypted room unencrypted")
	if m := e.entriesInRoom(); len(m) != 0 {
		t.Errorf("entries in the encrypted room: %v", m)
	}
}
