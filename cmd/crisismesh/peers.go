package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newPeersCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "peers",
		Short: "List the members' nodes: connected, round trip, profile, last sync, how far behind",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			peers := func(cl *api.Client, ctx context.Context) ([]api.PeerView, error) {
				s, err := cl.Status(ctx)
				return s.Peers, err
			}
			return askAndPrint(c, dir, asJSON, peers, printPeers)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newWhoHasCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "who-has ENTRY_ID",
		Short: "Which members hold an entry, and why a member has not got it",
		Long: `who-has says which members hold an entry, as far as this node knows from the
frontiers it last saw from each peer, and why a member has not got it. ENTRY_ID is the full
ID or any prefix of at least 8 hex digits that names one entry (crisismesh log prints 12).`,
		Example: `  crisismesh who-has 3f9c2a71d0be`,
		Args:    exactArgs(1, "an ENTRY_ID (from crisismesh log; at least 8 hex digits)"),
		RunE: func(c *cobra.Command, args []string) error {
			return askAndPrint(c, dir, asJSON, func(cl *api.Client, ctx context.Context) ([]api.HolderView, error) { return cl.WhoHas(ctx, args[0]) },
				func(w io.Writer, hs []api.HolderView) error {
					tw := newTable(w, "MEMBER\tHAS IT\tCAN READ\tWHY / AS OF")
					for _, h := range hs {
						why := h.Why
						if h.Has && h.AsOf != nil {
							why = "as of " + h.AsOf.Format(time.RFC3339)
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Member, yes(h.Has), yes(h.CanRead), why)
					}
					return tw.Flush()
				})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newSyncCmd() *cobra.Command {
	var dir, force string
	var asJSON bool
	c := &cobra.Command{
		Use:   "sync --force PEER",
		Short: "Force a full resync with one member now (name or peer ID)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if force == "" {
				return usageError{fmt.Errorf("sync needs --force PEER (a member name or peer ID)")}
			}
			return askAndPrint(c, dir, asJSON, func(cl *api.Client, ctx context.Context) (api.SyncReport, error) { return cl.Sync(ctx, force) },
				func(w io.Writer, rep api.SyncReport) error {
					_, err := fmt.Fprintf(w, "synced with %s in %d ms: sent %d entries, received %d new\n", rep.Member, rep.DurationMS, rep.EntriesSent, rep.EntriesRecv)
					return err
				})
		},
	}
	c.Flags().StringVar(&force, "force", "", "member name or peer ID to resync with")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

// printPeers writes the members' links as a table.
func printPeers(w io.Writer, peers []api.PeerView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tCONNECTED\tRTT\tPROFILE\tLAST SYNC\tBEHIND\tPEER ID")
	for _, p := range peers {
		last := "never"
		if p.LastSync != nil {
			last = time.Since(*p.LastSync).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f ms\t%s\t%s\t%d\t%s\n", p.Member, yes(p.Connected), p.RTTMS, p.Profile, last, p.Behind, p.PeerID)
	}
	return tw.Flush()
}
