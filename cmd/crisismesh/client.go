package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

func noNode(dir string) error {
	return fmt.Errorf("no node running in %s: start it with `crisismesh run --dir %s`", dir, dir)
}

// newClient returns the typed API client of the node running in dir (its
// address from config.toml, its token from the data directory).
func newClient(dir string) (*api.Client, error) {
	if _, err := os.Stat(filepath.Join(dir, node.IdentityFile)); err != nil {
		return nil, fmt.Errorf("%s is not a crisismesh data directory (no %s): make one with `crisismesh init --name NAME --dir %s`; %w", dir, node.IdentityFile, dir, noNode(dir))
	}
	cfg, err := node.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	token, err := node.ReadToken(dir)
	if err != nil {
		return nil, noNode(dir)
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: nodeTransport{dir: dir, next: http.DefaultTransport}}
	return api.NewClient("http://"+cfg.API, token, hc), nil
}

// nodeTransport says how to start the node when nothing listens on its
// API address.
type nodeTransport struct {
	dir  string
	next http.RoundTripper
}

func (t nodeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, noNode(t.dir)
	}
	return resp, err
}

// askAndPrint makes one call to the API of the node running in dir and
// prints the answer: as JSON when asJSON, else with human. call takes the
// client first, so a method expression such as (*api.Client).Members fits.
func askAndPrint[T any](c *cobra.Command, dir string, asJSON bool, call func(*api.Client, context.Context) (T, error), human func(w io.Writer, v T) error) error {
	v, err := ask(dir, func(cl *api.Client) (T, error) { return call(cl, c.Context()) })
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.OutOrStdout(), v)
	}
	return human(c.OutOrStdout(), v)
}

// ask makes one call to the API of the node running in dir.
func ask[T any](dir string, call func(*api.Client) (T, error)) (T, error) {
	cl, err := newClient(dir)
	if err != nil {
		var zero T
		return zero, err
	}
	return call(cl)
}
