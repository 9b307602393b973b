package matrixtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Version is the version tools/dendrite/go.mod pins.
func TestVersionIsPinned(t *testing.T) {
	dir, err := moduleDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/matrix-org/dendrite " + Version; !strings.Contains(string(b), want) {
		t.Errorf("tools/dendrite/go.mod does not require %s", want)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b)+string(sum), "github.com/element-hq/") {
		t.Errorf("tools/dendrite pulls in the element-hq fork (AGPL)")
	}
}

// The binaries build (or are cached), and a server starts, registers a
// user and restarts. .ci/run runs this first with
// CRISISMESH_REQUIRE_DENDRITE=1 to warm the cache: then a failed build
// fails instead of skipping.
func TestDendriteBuilds(t *testing.T) {
	if _, err := Build(); err != nil {
		if os.Getenv("CRISISMESH_REQUIRE_DENDRITE") == "1" {
			t.Fatal(err)
		}
		t.Skip(skipMessage(err))
	}
	s := Start(t)
	u, err := s.Register("warm")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token == "" || u.ID != "@warm:"+ServerName {
		t.Errorf("registered %+v", u)
	}
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
}
