package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newMatrixCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "matrix",
		Short: "The bridge to the team's Matrix room ([matrix] in config.toml)",
		Long: `The Matrix bridge runs inside crisismesh run when config.toml has a [matrix] section
(README: "Connecting a node to a Matrix room"). matrix status shows how it is doing: whether it
runs, the room, the entries still queued for the room, the last exchange that worked, errors,
and how many entries were kept from the room and why (TLP, kind, member).`,
	}
	var dir string
	var asJSON bool
	status := &cobra.Command{
		Use:     "status",
		Short:   "The bridge's state: queue, last success, errors, withheld entries",
		Example: `  crisismesh matrix status --dir ./cert-lu`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, func(cl *api.Client, ctx context.Context) (api.MatrixStatusView, error) { return cl.MatrixStatus(ctx) },
				printMatrixStatus)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(status, &dir)
	c.AddCommand(status)
	return c
}

func printMatrixStatus(w io.Writer, s api.MatrixStatusView) error {
	if !s.Enabled {
		_, err := fmt.Fprintln(w, "matrix: off (no [matrix] section in config.toml)")
		return err
	}
	state := "running"
	if !s.Running {
		state = "stopped"
	}
	enc := "plain room"
	if s.Encrypted {
		enc = "encrypted room"
	}
	fmt.Fprintf(w, "matrix: %s, %s %s on %s as %s\n", state, enc, s.Room, s.Homeserver, s.User)
	last := "never"
	if s.LastSuccess != nil {
		last = s.LastSuccess.Format(time.RFC3339) + fmt.Sprintf(" (%s ago)", time.Since(*s.LastSuccess).Round(time.Second))
	}
	fmt.Fprintf(w, "queue: %d entries   last success: %s   errors: %d\n", s.Queue, last, s.Errors)
	if s.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", s.LastError)
	}
	fmt.Fprintf(w, "sent to the room: %d   written from the room: %d   ignored (user not allowed): %d\n", s.Sent, s.Received, s.Ignored)
	for _, k := range slices.Sorted(maps.Keys(s.Withheld)) {
		fmt.Fprintf(w, "withheld (%s): %d\n", k, s.Withheld[k])
	}
	return nil
}
