package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

func newReportCmd() *cobra.Command {
	var dir, out, maxTLP string
	var force, asJSON bool
	c := &cobra.Command{
		Use:   "report --out FILE.md|FILE.html [--max-tlp LEVEL] [--force]",
		Short: "Write a situation report of the crisis, in Markdown or HTML",
		Long: `report writes a situation report for the crisis as this node sees it: the state and
its level history, the affected member states and NIS2 sectors with impact and outlook,
the timeline of incidents and situation reports, the indicators from MISP and STIX
linked to their incidents, the Reserve requests with their deadlines, the decisions with
their signers, and the lessons learned.

The file's extension chooses the format: .md (Markdown) or .html (one page that opens
in a browser with no network: no scripts, no links, styles inline). Only entries and
indicators no wider than --max-tlp are in it (default amber; clear, green or amber:
AMBER+STRICT and RED never go into a report). It never replaces an existing file unless
--force says so.`,
		Example: `  crisismesh report --out sitrep.md
  crisismesh report --out sitrep.html --max-tlp green
  crisismesh report --out sitrep.html --force --json   # replace yesterday's`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var format string
			switch strings.ToLower(filepath.Ext(out)) {
			case ".md", ".markdown":
				format = "md"
			case ".html", ".htm":
				format = "html"
			default:
				return usageError{fmt.Errorf("report needs --out FILE.md or --out FILE.html (the extension chooses the format)")}
			}
			b, err := ask(dir, func(cl *api.Client) ([]byte, error) {
				return cl.Report(c.Context(), api.ReportRequest{Format: format, MaxTLP: maxTLP})
			})
			if err != nil {
				return err
			}
			if err := writeBytes(out, force, b); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), map[string]any{"out": out, "format": format, "bytes": len(b), "max_tlp": strings.ToUpper(maxTLP)})
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s: situation report (%s, %d bytes), TLP:%s at the most\n", out, format, len(b), strings.ToUpper(maxTLP))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")
	c.Flags().StringVar(&out, "out", "", "the report file: FILE.md or FILE.html")
	c.Flags().StringVar(&maxTLP, "max-tlp", "amber", "the highest TLP in the report: clear, green or amber")
	c.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
