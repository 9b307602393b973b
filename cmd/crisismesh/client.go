package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/crisismesh/crisismesh/node"
)

// client talks to a running node's local API.
type client struct {
	dir   string
	base  string
	token string
	http  *http.Client
}

func noNode(dir string) error {
	return fmt.Errorf("no node running in %s: start it with `crisismesh run --dir %s`", dir, dir)
}

func newClient(dir string) (*client, error) {
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
	return &client{dir: dir, base: "http://" + cfg.API, token: token, http: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// apiError mirrors the node's error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return noNode(c.dir)
		}
		return fmt.Errorf("node API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var ae apiError
		if json.NewDecoder(resp.Body).Decode(&ae) == nil && ae.Message != "" {
			return fmt.Errorf("%s (%s)", ae.Message, ae.Code)
		}
		return fmt.Errorf("node API: %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// get reads path from the API of the node running in dir into out.
func get(ctx context.Context, dir, path string, out any) error {
	cl, err := newClient(dir)
	if err != nil {
		return err
	}
	return cl.do(ctx, "GET", path, nil, out)
}
