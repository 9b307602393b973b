package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Sampling of the block and mutex profiles while --pprof is on: one
// blocking event per 10 µs spent blocked, one mutex contention in 100.
// Both cost nothing while --pprof is off (the default).
const (
	pprofBlockRate     = 10_000
	pprofMutexFraction = 100
)

// startPprof serves Go's profiles (/debug/pprof/: CPU, heap, goroutine,
// block, mutex, trace) on addr, which must be a loopback address: they
// show the node's memory and so its secrets' whereabouts. The caller
// closes the returned server.
func startPprof(addr string) (*http.Server, net.Addr, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--pprof %q: %w (want e.g. 127.0.0.1:6060)", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, fmt.Errorf("--pprof %q: only a loopback address (127.0.0.1 or ::1) may serve profiles", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--pprof: %w", err)
	}
	runtime.SetBlockProfileRate(pprofBlockRate)
	runtime.SetMutexProfileFraction(pprofMutexFraction)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("pprof: %v\n", err)
		}
	}()
	return srv, ln.Addr(), nil
}
