package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/sim"
)

func newSimCmd() *cobra.Command {
	root := &cobra.Command{Use: "sim", Short: "Run partition simulations: many real nodes, scheduled faults, invariant checks"}
	var seed uint64
	var seeds int
	var asJSON bool
	var report string
	run := &cobra.Command{
		Use:   "run FILE... [--seed N] [--seeds N] [--report DIR]",
		Short: "Run scenario files and check the invariants",
		Long: `sim run starts each scenario's nodes in this process (real libp2p on 127.0.0.1, Raft,
badger, crypto; or Raft alone for scenarios with layer = "raft"), plays its schedule of
workloads and faults, heals, and checks: identical logs, no acknowledged entry lost, every
author's chain intact, forks detected, nothing forged or revoked accepted, every member
reads exactly what its keys allow, one leader per term, counters never going backwards,
the Raft configuration following the roster, the same committed crisis state, and the
crisis history linearizable (porcupine).

It prints the command that replays each run and exits 1 when an invariant is broken. A
failing run keeps its evidence (node logs, porcupine's HTML) in --report DIR, or in a
temporary directory it names. With --report, every run also leaves plots (entries per
node over time with the faults shaded, leader and term over time, bytes per link), its
timeline and its report there.

--seeds N runs every scenario N times with different seeds (a campaign): from --seed
upwards when given, else drawn at random (and printed). Scenarios ship in sim/scenarios/.`,
		Example: `  crisismesh sim run sim/scenarios/halves.toml
  crisismesh sim run sim/scenarios/halves.toml --seed 42 --json
  crisismesh sim run sim/scenarios/*.toml --seeds 20 --report ./sim-report`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("sim run needs a scenario FILE (see sim/scenarios/)")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if seeds < 1 {
				return usageError{fmt.Errorf("--seeds %d: want 1 or more", seeds)}
			}
			var scs []*sim.Scenario
			for _, f := range args {
				sc, err := sim.Load(f)
				if err != nil {
					return err
				}
				scs = append(scs, sc)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := c.OutOrStdout()
			campaign := len(args) > 1 || seeds > 1
			var failed []string
			for k, sc := range scs {
				for i := 0; i < seeds; i++ {
					o := sim.Options{}
					switch {
					case seed != 0:
						o.Seed = seed + uint64(i)
					case seeds > 1:
						o.Seed = drawSeed()
					}
					if !asJSON {
						o.Out = out
					}
					if report != "" {
						o.Report = report
						if campaign {
							o.Report = filepath.Join(report, fmt.Sprintf("%s-%d", sc.Name, o.Seed))
						}
					}
					rep, err := sim.Execute(ctx, sc, args[k], o)
					if err != nil {
						return err
					}
					if asJSON && campaign {
						if err := json.NewEncoder(out).Encode(rep); err != nil {
							return err
						}
					} else if asJSON {
						if err := printJSON(out, rep); err != nil {
							return err
						}
					} else {
						verdict := "ok"
						if !rep.OK {
							verdict = "FAILED: " + rep.Failed
						}
						fmt.Fprintf(out, "%s (seed %d): %d acknowledged entries, %s: %s\n", rep.Scenario, rep.Seed, rep.Acked, rep.Duration.Round(time.Millisecond), verdict)
						for _, f := range rep.Files {
							fmt.Fprintf(out, "  %s\n", f)
						}
					}
					if !rep.OK {
						failed = append(failed, rep.Replay)
					}
				}
			}
			if campaign && !asJSON {
				fmt.Fprintf(out, "%d runs, %d failed\n", len(scs)*seeds, len(failed))
			}
			if len(failed) > 0 {
				return fmt.Errorf("invariant broken; replay with: %s", strings.Join(failed, " ; "))
			}
			return nil
		},
	}
	run.Flags().Uint64Var(&seed, "seed", 0, "seed for every random choice (default: the scenario's, else drawn and printed)")
	run.Flags().IntVar(&seeds, "seeds", 1, "run each scenario this many times with different seeds")
	run.Flags().StringVar(&report, "report", "", "write plots, timeline and report here (and keep a failing run's evidence)")
	run.Flags().BoolVar(&asJSON, "json", false, "print each report as JSON (one object per line for several runs)")
	root.AddCommand(run)
	return root
}

// drawSeed draws a campaign seed (printed with each run).
func drawSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 1
}
