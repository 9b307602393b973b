package main

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

func TestPprofOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", "10.1.2.3:6060", ":6060", "example.org:6060", "127.0.0.1"} {
		if srv, _, err := startPprof(addr); err == nil {
			srv.Close()
			t.Errorf("startPprof(%q) = nil error, want a refusal", addr)
		}
	}
}

func TestPprofServesProfiles(t *testing.T) {
	defer runtime.SetBlockProfileRate(0)
	defer runtime.SetMutexProfileFraction(0)
	srv, at, err := startPprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + at.String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "block") {
		t.Errorf("GET /debug/pprof/: %d, want 200 and a list naming the block profile", resp.StatusCode)
	}
}
