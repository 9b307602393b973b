package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newPostCmd() *cobra.Command {
	var dir, kind, tlp, prio, to, group string
	var rsitClass, rsitType, impact, outlook string
	var sectors []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "post [--kind K] [--tlp L] [--priority P] [--to NAME,… | --group NAME] TEXT",
		Short: "Write an entry into the crisis log; exits 0 once it is durable locally",
		Long: `post writes a signed, sealed entry. Kinds: incident, sitrep, request, decision, message,
ack. TLP 2.0: clear, green, amber, amber+strict, red (red needs --to). Priorities: flash,
immediate, routine. It prints the entry ID once the entry is on disk.

--group NAME seals the entry to a named need-to-know group this member is in
('crisismesh group list'): only the group's members read it; everyone else holds and
relays it unread.

--rsit-class/--rsit-type (RSIT), --sector, --impact and --outlook (NIS2) classify the entry;
their values are checked against the embedded taxonomies and a wrong one is refused with
the allowed values listed. While an exercise crisis is open, every entry is marked
EXERCISE.`,
		Example: `  crisismesh post --kind sitrep --tlp amber --priority immediate "Energy: two TSOs report outages"
  crisismesh post --tlp red --to cyclone-fr,presidency "Attribution hint, do not share"
  crisismesh post --group energy-csirts "Indicators from the TSO intrusion attached"
  crisismesh post --kind incident --rsit-class intrusions --rsit-type system-compromise \
    --sector energy --impact red --outlook worsening "SCADA hosts of two TSOs compromised"`,
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
			req := api.PostRequest{Kind: kind, TLP: tlp, Priority: prio, Text: strings.Join(args, " ")}
			if to != "" {
				req.To = strings.Split(to, ",")
			}
			req.Group = group
			req.RSITClass, req.RSITType, req.Sectors, req.Impact, req.Outlook = rsitClass, rsitType, sectors, impact, outlook
			e, err := cl.Post(c.Context(), req)
			if err != nil {
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
	c.Flags().StringVar(&group, "group", "", "seal to a named need-to-know group this member is in")
	c.Flags().StringVar(&rsitClass, "rsit-class", "", "RSIT incident class, e.g. malicious-code, intrusions, availability")
	c.Flags().StringVar(&rsitType, "rsit-type", "", "RSIT incident type of the class, e.g. system-compromise (needs --rsit-class)")
	c.Flags().StringSliceVar(&sectors, "sector", nil, "NIS2 sector affected (repeat or comma-separate), e.g. energy,health")
	c.Flags().StringVar(&impact, "impact", "", "NIS2 impact severity: red, yellow, green or white")
	c.Flags().StringVar(&outlook, "outlook", "", "NIS2 outlook: improving, stable or worsening")
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
				es, next, err := cl.Entries(c.Context(), after, api.MaxLimit)
				if err != nil {
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
				if next != "" {
					after = next
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

func printEntry(c *cobra.Command, e api.EntryView) {
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
	if e.Exercise {
		text = "EXERCISE " + text
	}
	fmt.Fprintf(w, "%s  %-10s %-9s %-12s %-9s %s  %s\n", e.Time.Format("2006-01-02 15:04:05"), e.Author, kind, "TLP:"+strings.ToUpper(orDash(e.TLP)), e.Priority, e.ID[:12], text)
}
