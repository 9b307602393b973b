package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/sim"
)

func newDemoCmd() *cobra.Command {
	var keep bool
	var dir string
	c := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "Run a 5-node mesh in this process through a crisis, a partition and a heal",
		Long: `demo starts five real nodes in this process (libp2p on 127.0.0.1, Raft, badger in a
temporary directory), walks a short crisis (incident report, open, advise level 2,
escalate to 3, IPCR full, a Reserve request), cuts the network in two, keeps writing on
both sides, heals, and prints the timeline and the proof of convergence: the same log
digest and the same committed crisis state on every node. It takes well under a minute.
It is the scenario sim/scenarios/demo.toml, narrated, and checked as every scenario is.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return sim.Demo(ctx, sim.DemoOptions{Out: c.OutOrStdout(), Dir: dir, Keep: keep})
		},
	}
	c.Flags().BoolVar(&keep, "keep", false, "leave the nodes running (and their data) until Ctrl-C")
	c.Flags().StringVar(&dir, "dir", "", "where to put the five data directories (default: a temporary directory)")
	return c
}
