package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
)

// newTestnetUpCmd runs every node of a testnet in this process.
func newTestnetUpCmd() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "up --dir D",
		Short: "Run every node of a testnet in this process until Ctrl-C",
		Long: `up starts every node directory D/node0, D/node1, … that 'crisismesh testnet' prepared,
in this one process, prints each node's API and dashboard address, and runs until SIGINT
or SIGTERM, then stops them all cleanly. Each node logs to D/nodeI.log. The nodes are
ordinary nodes: use the other commands with --dir D/nodeI while they run.`,
		Example: "  crisismesh testnet --nodes 3 --dir ./tn\n  crisismesh testnet up --dir ./tn\n  crisismesh post --dir ./tn/node1 \"first sitrep\"   # in another terminal",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{errors.New("testnet up needs --dir D, the directory 'crisismesh testnet --dir D' prepared")}
			}
			dirs, err := testnetDirs(dir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runTestnet(ctx, c, dir, dirs)
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the testnet's directory (as given to 'testnet --dir')")
	return c
}

// testnetDirs lists the node directories of a testnet in node order.
func testnetDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("testnet up: %w (prepare one with `crisismesh testnet --nodes 3 --dir %s`)", err, dir)
	}
	var dirs []string
	for _, e := range entries {
		var i int
		if _, err := fmt.Sscanf(e.Name(), "node%d", &i); err != nil || !e.IsDir() || e.Name() != fmt.Sprintf("node%d", i) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), node.IdentityFile)); err == nil {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("testnet up: %s holds no node directories (node0, node1, …): prepare them with `crisismesh testnet --nodes 3 --dir %s`", dir, dir)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		var x, y int
		fmt.Sscanf(a, "node%d", &x)
		fmt.Sscanf(b, "node%d", &y)
		return x - y
	})
	return dirs, nil
}

// runTestnet opens the nodes, says where they are, and closes them all
// when ctx ends. A node that does not start stops the ones started.
func runTestnet(ctx context.Context, c *cobra.Command, dir string, names []string) (err error) {
	w := c.OutOrStdout()
	var nodes []*node.Node
	var logs []*os.File
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			err = errors.Join(err, nodes[i].Close())
		}
		for _, f := range logs {
			f.Close()
		}
	}()
	for _, name := range names {
		d := filepath.Join(dir, name)
		cfg, err := node.LoadConfig(d)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("testnet up: log of %s: %w", name, err)
		}
		logs = append(logs, f)
		var level slog.Level
		_ = level.UnmarshalText([]byte(cfg.LogLevel))
		n, err := node.Open(d, node.Options{Logger: slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))})
		if err != nil {
			return fmt.Errorf("testnet up: %s: %w", name, err)
		}
		nodes = append(nodes, n)
		fmt.Fprintf(w, "%-8s %-12s api %s  log %s\n", name, n.Identity().Name(), cfg.API, f.Name())
		if lc, err := n.LoginCode(); err == nil {
			fmt.Fprintf(w, "         dashboard %s  one-time code %s (10 min; crisismesh dashboard --dir %s prints another)\n", lc.URL, lc.Code, d)
		}
	}
	fmt.Fprintf(w, "%d nodes running. Use them with --dir %s; stop with Ctrl-C.\n", len(nodes), filepath.Join(dir, "nodeI"))
	<-ctx.Done()
	fmt.Fprintf(w, "stopping %s…\n", strings.Join(names, ", "))
	return nil
}
