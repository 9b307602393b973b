package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcd is a three-member etcd cluster on 127.0.0.1 and a client bound to
// its leader.
type etcd struct {
	procs  []*proc
	cli    *clientv3.Client
	leader string
	value  string
}

func startEtcd(ctx context.Context, bin, dir string, port int) (_ *etcd, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &etcd{value: strings.Repeat("x", 1024)}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close())
		}
	}()
	var cluster, endpoints []string
	for i := range 3 {
		cluster = append(cluster, fmt.Sprintf("e%d=http://127.0.0.1:%d", i, port+10+i))
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", port+i))
	}
	for i := range 3 {
		data := filepath.Join(dir, fmt.Sprintf("e%d", i))
		client := fmt.Sprintf("http://127.0.0.1:%d", port+i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", port+10+i)
		p, err := startProc(bin, filepath.Join(dir, fmt.Sprintf("e%d.log", i)),
			"--name", fmt.Sprintf("e%d", i), "--data-dir", data,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "sidebyside", "--log-level", "warn")
		if err != nil {
			return nil, err
		}
		e.procs = append(e.procs, p)
	}
	// Find the leader: the member whose Status names itself.
	deadline := time.Now().Add(60 * time.Second)
	for e.leader == "" {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("etcd: no leader within 60 s (logs in %s)", dir)
		}
		for _, ep := range endpoints {
			c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := c.Status(sctx, ep)
			cancel()
			c.Close()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				e.leader = ep
				break
			}
		}
		if e.leader == "" {
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Printf("etcd       leader %s\n", e.leader)
	e.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{e.leader}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return e, nil
}

func (e *etcd) put(ctx context.Context, i int) (token, error) {
	_, err := e.cli.Put(ctx, fmt.Sprintf("k%08d", i), e.value)
	return token{}, err
}

// settle: an acknowledged etcd Put is held by a quorum already.
func (e *etcd) settle(context.Context, []token) error { return nil }

func (e *etcd) command(context.Context, int) error { return nil }

func (e *etcd) cpu() time.Duration { return cpuTime(e.procs) }

func (e *etcd) close() error {
	var err error
	if e.cli != nil {
		err = e.cli.Close()
	}
	for _, p := range e.procs {
		err = errors.Join(err, p.stop())
	}
	return err
}
