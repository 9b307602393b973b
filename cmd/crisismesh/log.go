package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
)

func newStatusCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [--dir D]",
		Short: "Show the node: member, entries, digest, peers, Raft and the crisis",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var s node.StatusView
			if err := cl.do(c.Context(), "GET", "/api/v1/status", nil, &s); err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), s)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%s  peer %s\n  entries %d  digest %s…  forks %d\n", s.Member, s.PeerID, s.Entries, s.Digest[:16], s.Forks)
			fmt.Fprintf(w, "  raft %s, leader %s, term %d, applied %d\n", s.Raft.Role, orDash(s.Raft.Leader), s.Raft.Term, s.Raft.AppliedIndex)
			fmt.Fprintf(w, "  crisis: %s (source %s, index %d)\n", s.Crisis.Summary, s.Crisis.Source, s.Crisis.AppliedIndex)
			if s.DiskFull {
				fmt.Fprintf(w, "  DISK FULL: %s\n", s.Disk.Message)
			}
			fmt.Fprintln(w)
			return printPeers(w, s.Peers)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newPostCmd() *cobra.Command {
	var dir, kind, tlp, prio, to string
	var asJSON bool
	c := &cobra.Command{
		Use:   "post [--kind K] [--tlp L] [--priority P] [--to NAME,…] TEXT",
		Short: "Write an entry into the crisis log; exits 0 once it is durable locally",
		Long: `post writes a signed, sealed entry. Kinds: incident, sitrep, request, decision, message,
ack. TLP 2.0: clear, green, amber, amber+strict, red (red needs --to). Priorities: flash,
immediate, routine. It prints the entry ID once the entry is on disk.`,
		Example: `  crisismesh post --kind sitrep --tlp amber --priority immediate "Energy: two TSOs report outages"
  crisismesh post --tlp red --to cyclone-fr,presidency "Attribution hint, do not share"`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("post needs TEXT; run 'crisismesh post --help'")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			req := node.PostRequest{Kind: kind, TLP: tlp, Priority: prio, Text: strings.Join(args, " ")}
			if to != "" {
				req.To = strings.Split(to, ",")
			}
			var e node.EntryView
			if err := cl.do(c.Context(), "POST", "/api/v1/entries", req, &e); err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), e)
			}
			fmt.Fprintln(c.OutOrStdout(), e.ID)
			return nil
		},
	}
	c.Flags().StringVar(&kind, "kind", "message", "incident, sitrep, request, decision, message or ack")
	c.Flags().StringVar(&tlp, "tlp", "amber", "TLP 2.0 label: clear, green, amber, amber+strict, red")
	c.Flags().StringVar(&prio, "priority", "routine", "flash, immediate or routine")
	c.Flags().StringVar(&to, "to", "", "seal to these members only (names, comma-separated)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the entry as JSON")
	dirFlag(c, &dir)
	return c
}

func newLogCmd() *cobra.Command {
	var dir string
	var asJSON, follow bool
	c := &cobra.Command{
		Use:   "log [--json] [--follow]",
		Short: "Print the crisis log in display order (--json: one object per line)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			after := ""
			for {
				var es []node.EntryView
				q := "/api/v1/entries?limit=1000"
				if after != "" {
					q += "&after=" + url.QueryEscape(after)
				}
				if err := cl.do(c.Context(), "GET", q, nil, &es); err != nil {
					return err
				}
				for _, e := range es {
					if asJSON {
						if err := printJSONLine(c, e); err != nil {
							return err
						}
					} else {
						printEntry(c, e)
					}
					after = e.ID
				}
				if len(es) == 1000 {
					continue
				}
				if !follow {
					return nil
				}
				select {
				case <-c.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	c.Flags().BoolVar(&follow, "follow", false, "keep printing new entries")
	dirFlag(c, &dir)
	return c
}

func printJSONLine(c *cobra.Command, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.OutOrStdout(), string(b))
	return err
}

func printEntry(c *cobra.Command, e node.EntryView) {
	w := c.OutOrStdout()
	text := e.Text
	switch {
	case e.NotBelieved != "":
		text = "[not believed, rule " + e.NotBelieved + ": " + e.Sealed + "]"
	case !e.Readable:
		text = "[sealed: " + e.Sealed + "]"
	}
	kind := e.Kind
	if kind == "" {
		kind = "?"
	}
	fmt.Fprintf(w, "%s  %-10s %-9s %-12s %-9s %s  %s\n", e.Time.Format("2006-01-02 15:04:05"), e.Author, kind, "TLP:"+strings.ToUpper(orDash(e.TLP)), e.Priority, e.ID[:12], text)
}

// printPeers writes the members' links as a table.
func printPeers(w io.Writer, peers []node.PeerView) error {
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
