package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// [narrow] in config.toml: absent means on with the default window; each
// key overrides one number; off turns narrow links off; a bad window is
// refused naming the section; the file round-trips.
func TestNarrowConfig(t *testing.T) {
	if w, on := DefaultConfig().NarrowWindow(); !on || w != log.DefaultWindow() {
		t.Errorf("no [narrow]: window %+v on %v, want the default and on", w, on)
	}
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[narrow]\ninterval = \"15s\"\n")
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := log.DefaultWindow()
	want.Interval = 15 * time.Second
	if w, on := c.NarrowWindow(); !on || w != want {
		t.Errorf("interval = 15s: window %+v on %v, want %+v", w, on, want)
	}
	b, err := encodeConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	write(string(b))
	back, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := back.NarrowWindow(); w != want {
		t.Errorf("after a round trip: %+v, want %+v", w, want)
	}
	write("[narrow]\noff = true\n")
	if c, err = LoadConfig(dir); err != nil {
		t.Fatal(err)
	}
	if _, on := c.NarrowWindow(); on {
		t.Error("off = true: narrow links still on")
	}
	write("[narrow]\nentries = 100000\n")
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "narrow") {
		t.Errorf("entries = 100000: %v, want an error naming narrow", err)
	}
}
