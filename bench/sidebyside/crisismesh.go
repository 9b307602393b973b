package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// crisismesh is a three-node testnet, each node its own `crisismesh run`
// process. The harness speaks to it only through the HTTP API, with its
// own few JSON shapes (so this module imports nothing of crisismesh's).
type crisismesh struct {
	procs  []*proc
	apis   []string // http://127.0.0.1:port of node0…node2
	tokens []string
	leader int
	hc     *http.Client
	text   string
}

// The few fields of the API's JSON the harness reads.
type (
	cmStatus struct {
		Peers []struct {
			Connected bool `json:"connected"`
		} `json:"peers"`
		Raft struct {
			Role string `json:"role"`
		} `json:"raft"`
	}
	cmEntry struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	cmResult struct {
		Status string `json:"status"`
		Rule   string `json:"rule"`
		Detail string `json:"detail"`
	}
)

func startCrisismesh(ctx context.Context, bin, dir string, base int, pprofAt, logLevel string) (_ *crisismesh, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	// Every node may assess the crisis, so whichever becomes leader can
	// take the command row.
	roles := "node0=presidency+cyclone+csirt,node1=presidency+cyclone+csirt,node2=presidency+cyclone+csirt"
	prep := exec.CommandContext(ctx, bin, "testnet", "--nodes", "3", "--dir", dir, "--base-port", fmt.Sprint(base), "--roles", roles)
	if out, err := prep.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("crisismesh testnet: %w\n%s", err, out)
	}
	if logLevel != "" {
		for i := range 3 {
			cfg := filepath.Join(dir, fmt.Sprintf("node%d", i), "config.toml")
			b, err := os.ReadFile(cfg)
			if err != nil {
				return nil, err
			}
			b = regexp.MustCompile(`(?m)^log_level = .*$`).ReplaceAll(b, []byte(fmt.Sprintf("log_level = %q", logLevel)))
			if err := os.WriteFile(cfg, b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	c := &crisismesh{
		hc:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second},
		text:   strings.Repeat("x", 1024),
		leader: -1,
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.close())
		}
	}()
	for i := range 3 {
		d := filepath.Join(dir, fmt.Sprintf("node%d", i))
		args := []string{"run", "--dir", d}
		if pprofAt != "" {
			host, port, err := net.SplitHostPort(pprofAt)
			if err != nil {
				return nil, fmt.Errorf("-pprof %q: %w", pprofAt, err)
			}
			p, _ := strconv.Atoi(port)
			args = append(args, "--pprof", net.JoinHostPort(host, strconv.Itoa(p+i)))
		}
		p, err := startProc(bin, filepath.Join(dir, fmt.Sprintf("node%d.log", i)), args...)
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
		c.apis = append(c.apis, fmt.Sprintf("http://127.0.0.1:%d", base+500+i))
	}
	// Ready: every API answers with a token, every node sees its two
	// peers, there is a Raft leader, and node0 can post (it holds the
	// network key).
	deadline := time.Now().Add(90 * time.Second)
	for i := range 3 {
		for {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("crisismesh: node%d not ready within 90 s (logs in %s)", i, dir)
			}
			if len(c.tokens) == i {
				if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "api.token")); err == nil {
					c.tokens = append(c.tokens, strings.TrimSpace(string(b)))
				}
			}
			var st cmStatus
			if len(c.tokens) > i && c.call(ctx, i, "GET", "/api/v1/status", nil, &st) == nil {
				up := 0
				for _, p := range st.Peers {
					if p.Connected {
						up++
					}
				}
				if st.Raft.Role == "leader" {
					c.leader = i
				}
				if up == 2 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for c.leader < 0 {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("crisismesh: no Raft leader within 90 s (logs in %s)", dir)
		}
		for i := range 3 {
			var st cmStatus
			if c.call(ctx, i, "GET", "/api/v1/status", nil, &st) == nil && st.Raft.Role == "leader" {
				c.leader = i
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		if _, err := c.put(ctx, -1); err == nil {
			break
		} else if time.Now().After(deadline) {
			return nil, fmt.Errorf("crisismesh: node0 cannot post within 90 s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("crisismesh leader node%d\n", c.leader)
	// The command row changes the impact severity of one open crisis.
	var res cmResult
	if err := c.call(ctx, c.leader, "POST", "/api/v1/crisis", map[string]any{"kind": "open", "title": "side by side", "level": 1}, &res); err != nil {
		return nil, err
	}
	if res.Status != "committed" {
		return nil, fmt.Errorf("crisismesh: open: %s %s %s", res.Status, res.Rule, res.Detail)
	}
	return c, nil
}

// call does one API request on node i and decodes a 2xx answer into out.
func (c *crisismesh) call(ctx context.Context, i int, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.apis[i]+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[i])
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s on node%d: %s: %s", method, path, i, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *crisismesh) put(ctx context.Context, _ int) (token, error) {
	var e cmEntry
	err := c.call(ctx, 0, "POST", "/api/v1/entries", map[string]any{"kind": "sitrep", "tlp": "amber", "text": c.text}, &e)
	return token{id: e.ID, seq: e.Seq}, err
}

// settle waits until node1 and node2 hold the entry of highest seq among
// toks: an author's feed is a hash chain taken in order, so holding it
// means holding every earlier one.
func (c *crisismesh) settle(ctx context.Context, toks []token) error {
	var last token
	for _, t := range toks {
		if t.seq > last.seq {
			last = t
		}
	}
	if last.id == "" {
		return nil
	}
	for i := 1; i < 3; i++ {
		for c.call(ctx, i, "GET", "/api/v1/entries?limit=1&after="+url.QueryEscape(last.id), nil, nil) != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("node%d never held %s: %w", i, last.id, ctx.Err())
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

var severities = []string{"red", "yellow", "green", "white"}

// command commits one impact-severity assessment on the leader; each
// differs from the one before it.
func (c *crisismesh) command(ctx context.Context, i int) error {
	var res cmResult
	if err := c.call(ctx, c.leader, "POST", "/api/v1/crisis", map[string]any{"kind": "impact-severity", "value": severities[i%len(severities)]}, &res); err != nil {
		return err
	}
	if res.Status != "committed" {
		return fmt.Errorf("%s %s %s", res.Status, res.Rule, res.Detail)
	}
	return nil
}

// syncCounters prints each node's sync counters (entries and bytes sent
// and received per peer, sessions): how many times an entry crossed a
// link, against the writes posted.
func (c *crisismesh) syncCounters(ctx context.Context, w io.Writer) {
	for i := range c.apis {
		req, err := http.NewRequestWithContext(ctx, "GET", c.apis[i]+"/metrics", nil)
		if err != nil {
			continue
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			fmt.Fprintf(w, "node%d metrics: %v\n", i, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "crisismesh_sync_") || strings.HasPrefix(line, "crisismesh_log_entries ") {
				fmt.Fprintf(w, "node%d %s\n", i, line)
			}
		}
	}
}

func (c *crisismesh) cpu() time.Duration { return cpuTime(c.procs) }

func (c *crisismesh) close() error {
	var err error
	for _, p := range c.procs {
		err = errors.Join(err, p.stop())
	}
	return err
}
