package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

func newMISPCmd() *cobra.Command {
	var dir string
	m := &cobra.Command{
		Use:   "misp",
		Short: "Import MISP events and feeds into the crisis log, export them as a MISP feed",
		Long: `misp import reads MISP events (one event, a search result list, or a MISP feed
directory) and writes each event's own fields, each attribute and each object as an
entry of kind intel, with TLP, RSIT and NIS2 labels from the MISP tags and sealed no
wider than the MISP distribution. What crisismesh does not map is kept verbatim, so
misp export gives it back. An import is atomic: one refused item stores nothing
(unless --skip-invalid); importing the same event twice adds nothing.

misp export writes a MISP feed (manifest.json, one <uuid>.json per event, hashes.csv)
that a MISP instance can add as a feed; every event is validated against MISP's JSON
Schema first. It never widens: TLP:RED is never exported, AMBER+STRICT only with
--amber-strict-org, and --max-tlp (default amber) caps the rest.`,
	}
	m.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")

	var tlp string
	var skip, importJSON bool
	imp := &cobra.Command{
		Use:   "import FILE|DIR|- [--tlp LEVEL] [--skip-invalid]",
		Short: "Import a MISP event, list or feed",
		Example: `  crisismesh misp import event.json
  crisismesh misp import ./circl-feed --tlp green
  curl -s https://misp.example/events/view/42.json | crisismesh misp import - --tlp amber
  crisismesh misp import big.json --skip-invalid --json`,
		Args: exactArgs(1, "a MISP FILE, feed DIR or - for standard input"),
		RunE: func(c *cobra.Command, args []string) error {
			data, err := readMISPInput(c.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			res, err := cl.ImportMISP(c.Context(), data, tlp, skip)
			if err != nil {
				return err
			}
			if importJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%d events: %d entries written (%d bytes), %d items already held\n", res.Events, res.Written, res.Bytes, res.Unchanged)
			printProblems(w, res.Notes, res.Refused)
			return nil
		},
	}
	imp.Flags().StringVar(&tlp, "tlp", "", "TLP to assume for an event without a tlp tag (clear, green, amber, amber+strict, red)")
	imp.Flags().BoolVar(&skip, "skip-invalid", false, "store the valid items and list the refused ones")
	imp.Flags().BoolVar(&importJSON, "json", false, "print JSON")

	var out, since, maxTLP, strictOrg, event string
	var exportJSON bool
	exp := &cobra.Command{
		Use:   "export --out DIR [--since ID] [--max-tlp LEVEL] [--event UUID]",
		Short: "Write the MISP events this node holds as a MISP feed (or one event file)",
		Example: `  crisismesh misp export --out ./feed
  crisismesh misp export --out ./feed --since 3f2a…  --max-tlp green
  crisismesh misp export --out event.json --event 5a3c2fcd-8328-42bb-a95e-4f4402de0b81
  crisismesh misp export --out ./feed --max-tlp amber+strict --amber-strict-org CIRCL --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("misp export needs --out DIR (or --out FILE with --event UUID)")}
			}
			v, err := ask(dir, func(cl *api.Client) (api.MISPExport, error) {
				return cl.ExportMISP(c.Context(), api.MISPExportRequest{Since: since, MaxTLP: maxTLP, AmberStrictOrg: strictOrg, Event: event})
			})
			if err != nil {
				return err
			}
			written, err := writeMISP(out, event != "", v.Events)
			if err != nil {
				return err
			}
			if exportJSON {
				return printJSON(c.OutOrStdout(), map[string]any{"out": out, "events": len(v.Events), "files": written, "withheld": v.Withheld})
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "wrote %s: %d events (%d files)\n", out, len(v.Events), len(written))
			for _, h := range v.Withheld {
				fmt.Fprintf(w, "withheld %s %s: %s\n", h.Type, h.ID, h.Reason)
			}
			return nil
		},
	}
	exp.Flags().StringVar(&out, "out", "", "feed directory to write (a file with --event)")
	exp.Flags().StringVar(&since, "since", "", "only events changed after this entry ID")
	exp.Flags().StringVar(&maxTLP, "max-tlp", "amber", "the highest TLP exported: clear, green, amber, or amber+strict with --amber-strict-org (RED never)")
	exp.Flags().StringVar(&strictOrg, "amber-strict-org", "", "the organisation an AMBER+STRICT export is for (required with --max-tlp amber+strict)")
	exp.Flags().StringVar(&event, "event", "", "write only this event (UUID) as one {\"Event\": …} file at --out")
	exp.Flags().BoolVar(&exportJSON, "json", false, "print JSON")
	m.AddCommand(imp, exp)
	return m
}

// readMISPInput reads a MISP file, standard input ("-"), or a MISP feed
// directory (as one {"response": […]} list).
func readMISPInput(stdin io.Reader, arg string) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(io.LimitReader(stdin, misp.MaxFile+1))
	}
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return os.ReadFile(arg)
	}
	evs, err := misp.ReadFeed(os.DirFS(arg))
	if err != nil {
		return nil, err
	}
	list := make([]any, len(evs))
	for i, ev := range evs {
		list[i] = map[string]any{"Event": ev.Fields}
	}
	return json.Marshal(map[string]any{"response": list})
}

// writeMISP writes events as a feed into dir, or (one) as a single file.
func writeMISP(out string, single bool, events []map[string]any) ([]string, error) {
	if single {
		if len(events) != 1 {
			return nil, fmt.Errorf("--event: the node returned %d events, want 1", len(events))
		}
		b, err := json.MarshalIndent(events[0], "", "  ")
		if err != nil {
			return nil, err
		}
		return []string{out}, os.WriteFile(out, b, 0o644)
	}
	files, err := misp.Feed(events)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for name, b := range files {
		if strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("feed file name %q", name)
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
