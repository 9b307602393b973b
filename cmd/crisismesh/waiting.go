package main

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newWaitingCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "waiting [--dir D] [--json]",
		Short: "Entries waiting for their post-quantum signature (never acted on)",
		Long: `Over a narrow link (the satellite profile) a member's own entries arrive with the Ed25519
half of their signature only; this node holds them waiting, apart from the log, until the
composite (ML-DSA-65 + Ed25519) signature covers them, and never acts on them. waiting lists
them by header only (member, seq, status, how long they waited, whether another waiting entry
of the member has the same seq): their text is shown in the log once covered, as a forger with
an Ed25519 key alone can make waiting entries. An entry waiting longer than the window allows
(120 s and 30 s of grace) is overdue: the author's node must reconnect or send its cover.`,
		Example: `  crisismesh waiting --dir ./cert-lu
  crisismesh waiting --dir ./cert-lu --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, (*api.Client).Waiting, printWaiting)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

// printWaiting prints the waiting entries as a table, under the window
// they are judged by.
func printWaiting(w io.Writer, v api.WaitingView) error {
	fmt.Fprintf(w, "window: composite signature every %d entries or %g s; overdue after %g s more\n", v.Window.Entries, v.Window.IntervalS, v.Window.GraceS)
	if len(v.Entries) == 0 {
		_, err := fmt.Fprintln(w, "nothing waiting for its post-quantum signature")
		return err
	}
	tw := newTable(w, "MEMBER\tSEQ\tSTATUS\tWAITED\tCONFLICTING")
	for _, e := range v.Entries {
		waited := time.Duration(math.Round(e.WaitedS)) * time.Second
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.Member, e.Seq, e.Status, waited, yes(e.Conflicting))
	}
	return tw.Flush()
}
