package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/sim"
)

func newSimCmd() *cobra.Command {
	root := &cobra.Command{Use: "sim", Short: "Run partition simulations: many real nodes, scheduled faults, invariant checks"}
	var seed uint64
	var asJSON bool
	run := &cobra.Command{
		Use:   "run FILE [--seed N]",
		Short: "Run a scenario file and check the invariants",
		Long: `sim run starts the scenario's nodes in this process (real libp2p on 127.0.0.1, Raft,
badger, crypto), plays its schedule of workloads and faults, heals, and checks: identical
logs, no acknowledged entry lost, every author's chain intact, one leader per term, the
same committed crisis state. It prints the command that replays the run and exits 1 when
an invariant is broken. Scenarios ship in sim/scenarios/.`,
		Example: "  crisismesh sim run sim/scenarios/halves.toml\n  crisismesh sim run sim/scenarios/halves.toml --seed 42 --json",
		Args:    exactArgs(1, "a scenario FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			sc, err := sim.Load(args[0])
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o := sim.Options{Seed: seed}
			if !asJSON {
				o.Out = c.OutOrStdout()
			}
			rep, err := sim.Execute(ctx, sc, args[0], o)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(c.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(c.OutOrStdout(), "%s: %d acknowledged entries, %s\n", rep.Scenario, rep.Acked, rep.Duration.Round(1e6))
			}
			if !rep.OK {
				return fmt.Errorf("invariant broken; replay with: %s", rep.Replay)
			}
			return nil
		},
	}
	run.Flags().Uint64Var(&seed, "seed", 0, "seed for every random choice (default: the scenario's, else drawn and printed)")
	run.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	root.AddCommand(run)
	return root
}
