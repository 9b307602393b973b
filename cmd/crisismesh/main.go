// Command crisismesh is the node that every participant in a cyber-crisis
// network runs. It is a thin command layer over package node and, for
// 'sim run', package sim: it parses flags, calls them, and prints results
// (as JSON with --json), and nothing else. It may import only node, node/api
// and sim (importrules_test.go keeps the import rules of DESIGN.md as a
// test).
//
// Commands that prepare or start a node call package node directly:
// keygen and card show (identity.go), network create and network show
// (network.go), init, join, run and testnet (node.go), testnet up, which
// runs a testnet's nodes in one process (testnet.go), demo (demo.go).
// Commands that use a running node talk to its local HTTP API with the
// data directory's token through the typed client of node/api (client.go
// makes one): status (status.go), post and log (log.go), crisis …
// (crisis.go), peers, who-has and sync --force (peers.go), bundle
// export|import (bundle.go; the bundle travels as the request or response
// body, so the CLI reads and writes the file), dashboard (dashboard.go), matrix status
// (matrix.go), waiting (waiting.go: entries waiting for their post-quantum
// signature, by header only). sim run (sim.go) runs
// scenario files. main.go holds the root command and version; output.go
// the printing helpers.
//
// Exit codes: 0 on success, 1 on failure (the error goes to stderr), 2 on a
// usage error, 3 when a change (member …, crisis …) is still pending after
// --wait.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 on success, 1
// on failure (the error is printed to stderr), 2 on a usage error, 3 when
// a change is still waiting (for approvals or for Raft) after --wait.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "crisismesh: %v\n", err)
		var ue usageError
		var we waitingError
		if errors.As(err, &we) {
			return 3
		}
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "crisismesh",
		Short: "The node of a cyber-crisis network: signed, post-quantum-encrypted crisis log and Raft-consistent crisis state",
		Long: `crisismesh is the node that every participant in a cyber-crisis network runs:
national CSIRTs, crisis liaisons, Union bodies, the Council Presidency. Nodes replicate
a signed, post-quantum-encrypted crisis log and keep a Raft-consistent crisis state,
over whatever links are left during an outage.

Getting started:
  1. Every member makes a data directory and sends its card.json to the network admin:
       crisismesh init --name cert-lu --dir ./cert-lu
  2. The admin founds the network from the cards it received:
       crisismesh network create --name eu-cyclone --admin ./admin \
         --member cert-lu/card.json --role cert-lu=csirt --voter admin
  3. Every member checks the genesis it was given, installs it and runs the node:
       crisismesh network show genesis
       crisismesh join --genesis genesis --dir ./cert-lu
       crisismesh run --dir ./cert-lu
  4. Beside the running node: crisismesh status, post, log, crisis, peers (--dir ./cert-lu).
  5. Change the running network: crisismesh member list|add|revoke|rotate|voter|approve,
     crisismesh group list|create|add|remove|delete, crisismesh key rotate.

To try it on one machine: crisismesh demo, or crisismesh testnet --nodes 3 --dir ./net.`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w; run '%s --help' for usage", err, c.CommandPath())}
	})
	root.AddCommand(newVersionCmd(), newKeygenCmd(), newCardCmd(), newNetworkCmd(),
		newInitCmd(), newJoinCmd(), newRunCmd(), newTestnetCmd(),
		newStatusCmd(), newPostCmd(), newLogCmd(), newCrisisCmd(), newDemoCmd(),
		newPeersCmd(), newWhoHasCmd(), newSyncCmd(), newBundleCmd(), newArchiveCmd(), newVerifyCmd(), newMISPCmd(), newSTIXCmd(), newReportCmd(), newSimCmd(), newMemberCmd(), newGroupCmd(), newKeyCmd(), newDashboardCmd(), newMatrixCmd(), newWaitingCmd())
	return root
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version and the cryptographic suites this build speaks",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			v := versionInfo()
			if asJSON {
				return printJSON(c.OutOrStdout(), v)
			}
			fmt.Fprintf(c.OutOrStdout(), "crisismesh %s (%s)\n", v.Version, v.Go)
			fmt.Fprintf(c.OutOrStdout(), "  signatures: %s\n  sealing:    %s\n", v.SignatureSuite, v.KEMSuite)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// noArgs refuses positional arguments with a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q; run '%s --help'", c.CommandPath(), args, c.CommandPath())}
	}
	return nil
}
