package main

import (
	"context"
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

	var in importFlags
	imp := &cobra.Command{
		Use:   "import FILE|DIR|- [--tlp LEVEL] [--skip-invalid]",
		Short: "Import a MISP event, list or feed",
		Example: `  crisismesh misp import event.json
  crisismesh misp import ./circl-feed --tlp green
  curl -s https://misp.example/events/view/42.json | crisismesh misp import - --tlp amber
  crisismesh misp import big.json --skip-invalid --json`,
		Args: exactArgs(1, "a MISP FILE, feed DIR or - for standard input"),
		RunE: runImport(&dir, &in, readMISPInput, (*api.Client).ImportMISP, func(r api.MISPImportResult) (string, api.ImportTally) {
			return fmt.Sprintf("%d events", r.Events), r.ImportTally
		}, "items"),
	}
	in.add(imp, "an event without a tlp tag (clear, green, amber, amber+strict, red)", "items")

	var since, event string
	var out exportFlags
	exp := &cobra.Command{
		Use:   "export --out DIR [--since ID] [--max-tlp LEVEL] [--event UUID] [--force]",
		Short: "Write the MISP events this node holds as a MISP feed (or one event file)",
		Example: `  crisismesh misp export --out ./feed
  crisismesh misp export --out ./feed --since 3f2a…  --max-tlp green
  crisismesh misp export --out event.json --event 5a3c2fcd-8328-42bb-a95e-4f4402de0b81
  crisismesh misp export --out ./feed --max-tlp amber+strict --amber-strict-org CIRCL --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out.path == "" {
				return usageError{fmt.Errorf("misp export needs --out DIR (or --out FILE with --event UUID)")}
			}
			v, err := ask(dir, func(cl *api.Client) (api.MISPExport, error) {
				return cl.ExportMISP(c.Context(), api.MISPExportRequest{Since: since, MaxTLP: out.maxTLP, AmberStrictOrg: out.strictOrg, Event: event})
			})
			if err != nil {
				return err
			}
			written, err := writeMISP(out.path, event != "", out.force, v.Events)
			if err != nil {
				return err
			}
			return out.report(c.OutOrStdout(), map[string]any{"out": out.path, "events": len(v.Events), "files": written, "withheld": v.Withheld},
				fmt.Sprintf("wrote %s: %d events (%d files)", out.path, len(v.Events), len(written)), v.Withheld)
		},
	}
	out.add(exp, "feed directory to write (a file with --event)", "with --event, replace the file if it exists (a feed directory is always updated in place)")
	exp.Flags().StringVar(&since, "since", "", "only events changed after this entry ID")
	exp.Flags().StringVar(&event, "event", "", "write only this event (UUID) as one {\"Event\": …} file at --out")
	m.AddCommand(imp, exp)
	return m
}

// readMISPInput reads a MISP file, standard input ("-"), or a MISP feed
// directory (as one {"response": […]} list).
func readMISPInput(stdin io.Reader, arg string) ([]byte, error) {
	if st, err := os.Stat(arg); arg == "-" || err != nil || !st.IsDir() {
		return readInput(stdin, arg)
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

// readInput reads a file, or standard input ("-"), to import.
func readInput(stdin io.Reader, arg string) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(io.LimitReader(stdin, misp.MaxFile+1))
	}
	return os.ReadFile(arg)
}

// writeMISP writes events as a feed into dir (updated in place), or (one)
// as a single new file (replaced only with replace).
func writeMISP(out string, single, replace bool, events []map[string]any) ([]string, error) {
	if single {
		if len(events) != 1 {
			return nil, fmt.Errorf("--event: the node returned %d events, want 1", len(events))
		}
		return []string{out}, writeJSONFile(out, replace, events[0])
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

func newSTIXCmd() *cobra.Command {
	var dir string
	s := &cobra.Command{
		Use:   "stix",
		Short: "Import STIX 2.1 bundles into the crisis log, export them as a bundle",
		Long: `stix import reads a STIX 2.1 bundle and writes each object as an entry of kind
intel, labelled with the TLP of its markings (the official TLP 2.0 marking
definitions; TLP 1.0 ones are read as TLP 2.0, white as clear). Objects of every
type are kept verbatim, so stix export gives them back. An import is atomic: one
refused object stores nothing (unless --skip-invalid); importing the same bundle
twice adds nothing.

stix export writes one bundle of the newest version of each object; every object
is validated against the official STIX 2.1 JSON Schemas first. It never widens:
TLP:RED is never exported, AMBER+STRICT only with --amber-strict-org, and
--max-tlp (default amber) caps the rest.`,
	}
	s.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")

	var in importFlags
	imp := &cobra.Command{
		Use:   "import FILE|- [--tlp LEVEL] [--skip-invalid]",
		Short: "Import a STIX 2.1 bundle",
		Example: `  crisismesh stix import bundle.json
  crisismesh stix import apt1.json --tlp green --skip-invalid --json`,
		Args: exactArgs(1, "a STIX bundle FILE or - for standard input"),
		RunE: runImport(&dir, &in, readInput, (*api.Client).ImportSTIX, func(r api.STIXImportResult) (string, api.ImportTally) {
			return fmt.Sprintf("%d objects", r.Objects), r.ImportTally
		}, "objects"),
	}
	in.add(imp, "an object without a TLP marking (clear, green, amber, amber+strict)", "objects")

	var out exportFlags
	exp := &cobra.Command{
		Use:   "export --out FILE [--max-tlp LEVEL] [--force]",
		Short: "Write the STIX objects this node holds as one STIX 2.1 bundle",
		Example: `  crisismesh stix export --out bundle.json
  crisismesh stix export --out bundle.json --force   # replace an older bundle.json
  crisismesh stix export --out bundle.json --max-tlp amber+strict --amber-strict-org CIRCL --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out.path == "" {
				return usageError{fmt.Errorf("stix export needs --out FILE")}
			}
			v, err := ask(dir, func(cl *api.Client) (api.STIXExport, error) {
				return cl.ExportSTIX(c.Context(), api.STIXExportRequest{MaxTLP: out.maxTLP, AmberStrictOrg: out.strictOrg})
			})
			if err != nil {
				return err
			}
			if err := writeJSONFile(out.path, out.force, v.Bundle); err != nil {
				return fmt.Errorf("stix export: %w", err)
			}
			objects, _ := v.Bundle["objects"].([]any)
			return out.report(c.OutOrStdout(), map[string]any{"out": out.path, "objects": len(objects), "withheld": v.Withheld},
				fmt.Sprintf("wrote %s: %d objects", out.path, len(objects)), v.Withheld)
		},
	}
	out.add(exp, "bundle file to write", "replace --out if it exists")
	s.AddCommand(imp, exp)
	return s
}

// importFlags are the flags misp import and stix import share.
type importFlags struct {
	tlp          string
	skip, asJSON bool
}

// add adds the flags to cmd; assume says for what --tlp is assumed, items
// what --skip-invalid skips.
func (f *importFlags) add(cmd *cobra.Command, assume, items string) {
	cmd.Flags().StringVar(&f.tlp, "tlp", "", "TLP to assume for "+assume)
	cmd.Flags().BoolVar(&f.skip, "skip-invalid", false, "store the valid "+items+" and list the refused ones")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
}

// runImport is the RunE of an import: it reads the input (FILE, DIR or
// -) with read, sends it to the node with imp and prints the result:
// JSON with --json, else summary's count of what was read and the tally.
func runImport[T any](dir *string, f *importFlags, read func(io.Reader, string) ([]byte, error), imp func(*api.Client, context.Context, []byte, string, bool) (T, error), summary func(T) (string, api.ImportTally), items string) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		data, err := read(c.InOrStdin(), args[0])
		if err != nil {
			return err
		}
		return askAndPrint(c, *dir, f.asJSON, func(cl *api.Client, ctx context.Context) (T, error) {
			return imp(cl, ctx, data, f.tlp, f.skip)
		}, func(w io.Writer, res T) error {
			read, t := summary(res)
			fmt.Fprintf(w, "%s: ", read)
			printTally(w, t, items)
			return nil
		})
	}
}

// printTally prints what an import wrote and the problems it noted or
// skipped.
func printTally(w io.Writer, t api.ImportTally, items string) {
	fmt.Fprintf(w, "%d entries written (%d bytes), %d %s already held\n", t.Written, t.Bytes, t.Unchanged, items)
	for _, p := range t.Notes {
		fmt.Fprintf(w, "note: %s\n", p)
	}
	for _, p := range t.Refused {
		fmt.Fprintf(w, "skipped: %s\n", p)
	}
}

// exportFlags are the flags misp export and stix export share.
type exportFlags struct {
	path, maxTLP, strictOrg string
	asJSON, force           bool
}

// add adds the flags to cmd, with the help of --out and --force.
func (f *exportFlags) add(cmd *cobra.Command, outHelp, forceHelp string) {
	cmd.Flags().StringVar(&f.path, "out", "", outHelp)
	cmd.Flags().StringVar(&f.maxTLP, "max-tlp", "amber", "the highest TLP exported: clear, green, amber, or amber+strict with --amber-strict-org (RED never)")
	cmd.Flags().StringVar(&f.strictOrg, "amber-strict-org", "", "the organisation an AMBER+STRICT export is for (required with --max-tlp amber+strict)")
	cmd.Flags().BoolVar(&f.force, "force", false, forceHelp)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
}

// report prints an export's outcome: v as JSON with --json, else the
// summary line and what was withheld.
func (f *exportFlags) report(w io.Writer, v any, summary string, withheld []api.Withheld) error {
	if f.asJSON {
		return printJSON(w, v)
	}
	fmt.Fprintln(w, summary)
	for _, h := range withheld {
		fmt.Fprintf(w, "withheld %s %s: %s\n", h.Type, h.ID, h.Reason)
	}
	return nil
}

// writeJSONFile writes v, indented, as a new file at out (see writeNew).
func writeJSONFile(out string, replace bool, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeBytes(out, replace, b)
}

// writeBytes writes b as a new file at out (see writeNew).
func writeBytes(out string, replace bool, b []byte) error {
	return writeNew(out, replace, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
