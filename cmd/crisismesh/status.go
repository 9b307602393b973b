package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newStatusCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [--dir D]",
		Short: "Show the node: member, entries, digest, peers, Raft and the crisis",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, (*api.Client).Status, printStatus)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

// printStatus prints the node's status for a person.
func printStatus(w io.Writer, s api.StatusView) error {
	fmt.Fprintf(w, "%s  peer %s\n  entries %d  digest %s…  forks %d\n", s.Member, s.PeerID, s.Entries, s.Digest[:16], s.Forks)
	fmt.Fprintf(w, "  raft %s, leader %s, term %d, applied %d\n", s.Raft.Role, orDash(s.Raft.Leader), s.Raft.Term, s.Raft.AppliedIndex)
	fmt.Fprintf(w, "  crisis: %s (source %s, index %d)\n", s.Crisis.Summary, s.Crisis.Source, s.Crisis.AppliedIndex)
	if s.Waiting > 0 {
		fmt.Fprintf(w, "  waiting for post-quantum signature: %d (%d overdue)\n", s.Waiting, s.WaitingOverdue)
	}
	for _, a := range s.Alerts {
		fmt.Fprintf(w, "  ALERT: %s\n", a.Message)
	}
	if s.DiskFull {
		fmt.Fprintf(w, "  DISK FULL: %s\n", s.Disk.Message)
	}
	fmt.Fprintln(w)
	return printPeers(w, s.Peers)
}
