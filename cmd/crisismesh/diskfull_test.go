package main

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node"
)

// On a full disk `crisismesh post` fails with the node's message (how much
// is free, the reserve, what to do) and `crisismesh status` says DISK
// FULL; once space is back, post works again.
func TestPostOnFullDisk(t *testing.T) {
	base, err := node.FreeBasePort(1)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := node.Testnet(node.TestnetOptions{Dir: t.TempDir(), Nodes: 1, BasePort: base, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var free atomic.Uint64
	free.Store(1 << 40)
	n, err := node.Open(specs[0].Dir, node.Options{FreeSpace: func() (uint64, error) { return free.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := specs[0].Dir
	deadline := time.Now().Add(20 * time.Second)
	for _, ok := n.Store().CurrentKey("all"); !ok; _, ok = n.Store().CurrentKey("all") {
		if time.Now().After(deadline) {
			t.Fatal("no network key after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	free.Store(0)
	code, _, errOut := cli(t, "post", "--dir", dir, "a report that does not fit")
	if code != 1 {
		t.Fatalf("post on a full disk: exit %d, want 1 (%s)", code, errOut)
	}
	for _, want := range []string{"disk full", "reserve", "Free space on", "resumes writing by itself", "(disk-full)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("post on a full disk: %q lacks %q", errOut, want)
		}
	}
	t.Logf("crisismesh post: %s", errOut)
	code, out, errOut := cli(t, "status", "--dir", dir)
	t.Logf("crisismesh status:\n%s", out)
	if code != 0 || !strings.Contains(out, "DISK FULL: ") || !strings.Contains(out, "resumes writing by itself") {
		t.Errorf("status on a full disk: exit %d: %s%s", code, out, errOut)
	}

	free.Store(1 << 40)
	if code, out, errOut := cli(t, "post", "--dir", dir, "space is back"); code != 0 {
		t.Errorf("post after space came back: exit %d: %s%s", code, out, errOut)
	}
	if _, out, _ := cli(t, "status", "--dir", dir); strings.Contains(out, "DISK FULL") {
		t.Errorf("status after space came back: %s", out)
	}
}
