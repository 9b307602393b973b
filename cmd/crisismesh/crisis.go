package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

func newCrisisCmd() *cobra.Command {
	var dir string
	root := &cobra.Command{
		Use:   "crisis",
		Short: "Show the crisis state and change it (signed commands, Raft-committed)",
		Long: `crisis shows the Raft-consistent crisis state and sends signed commands to change it.
A command is committed at once when this node leads, or proposed through the crisis log
otherwise; the command then waits (--wait, default 10s) for the leader to commit or refuse
it. What no state could allow (the signer's role, malformed input) is refused at once;
what the state forbids, the leader refuses. Refusals name the rule and say why.

An ID (a Reserve request, a command) may be given by any prefix of at least 8 hex digits
that names one; the text output prints 12 digits, --json full IDs.

Exit codes: 0 committed, 1 refused (or an error), 2 usage, 3 still pending when --wait
ran out (crisismesh crisis history shows the outcome later).`,
	}
	root.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")

	var asJSON, lin bool
	show := &cobra.Command{
		Use:   "show [--linearizable] [--json]",
		Short: "Show the crisis: level, IPCR mode, phase, source and age, pending decisions",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, func(cl *api.Client, ctx context.Context) (api.CrisisView, error) { return cl.Crisis(ctx, lin) },
				func(_ io.Writer, v api.CrisisView) error { printCrisis(c, v); return nil })
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var histJSON bool
	history := &cobra.Command{
		Use:   "history [--json]",
		Short: "List every decision: what, who signed it, when it was committed (term, index), and the refusals",
		Long: `history lists the crisis decisions this node knows, in Raft order: each committed
command with what it did, the member who signed it and its committed time, term and index,
and each refused command with the rule that refused it. The crisis state keeps the newest
256 decisions (the total counts them all); refusals are the ones this node remembers.`,
		Example: `  crisismesh crisis history
  crisismesh crisis history --json | jq '.decisions[] | select(.outcome == "refused")'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, histJSON, (*api.Client).History, func(_ io.Writer, h api.HistoryView) error { printHistory(c, h); return nil })
		},
	}
	history.Flags().BoolVar(&histJSON, "json", false, "print JSON (full IDs)")
	root.AddCommand(history)
	show.Flags().BoolVar(&lin, "linearizable", false, "confirm with the Raft quorum first (on the leader)")
	root.AddCommand(show)

	send := func(c *cobra.Command, reqs ...node.CommandRequest) error {
		cl, err := newClient(dir)
		if err != nil {
			return err
		}
		asJSON, _ := c.Flags().GetBool("json")
		wait, _ := c.Flags().GetDuration("wait")
		deadline := time.Now().Add(wait)
		var refused, pending []string
		for _, r := range reqs {
			res, err := cl.Command(c.Context(), r)
			if err != nil {
				return err
			}
			err = waitWhile(c.Context(), time.Until(deadline), func() bool { return res.Status == api.StatusPending }, func(ctx context.Context) (err error) {
				res, err = cl.CommandStatus(ctx, res.ID)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSONLine(c, res); err != nil {
					return err
				}
			} else {
				printCommandResult(c, r.Kind, wait, res)
			}
			switch res.Status {
			case node.StatusRefused:
				refused = append(refused, res.Rule)
			case node.StatusPending:
				pending = append(pending, res.ID)
			}
		}
		switch {
		case len(refused) > 0:
			return fmt.Errorf("refused (%s)", strings.Join(refused, ", "))
		case len(pending) > 0:
			return waitingError{fmt.Errorf("still pending after %s: %s (crisismesh crisis history shows the outcome once the leader decides)", wait, strings.Join(pending, ", "))}
		}
		return nil
	}
	add := func(use, short string, build func(c *cobra.Command, args []string) ([]node.CommandRequest, error), flags func(c *cobra.Command), args cobra.PositionalArgs) {
		c := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(c *cobra.Command, a []string) error {
			reqs, err := build(c, a)
			if err != nil {
				return err
			}
			return send(c, reqs...)
		}}
		commandFlags(c)
		if flags != nil {
			flags(c)
		}
		root.AddCommand(c)
	}

	var title, mode, phase, reason, lessons, impact, outlook, rootCause string
	var level int
	var exercise bool
	var states, sectors []string
	add("open --title T [--level N] [--exercise]", "Open a crisis at level 1–3 (level 1: csirt, cyclone, commission, enisa, cert-eu; 2: csirt; 3: cyclone)",
		func(c *cobra.Command, _ []string) ([]node.CommandRequest, error) {
			if title == "" {
				return nil, usageError{fmt.Errorf("crisis open needs --title")}
			}
			return []node.CommandRequest{{Kind: "open", Title: title, Level: level, Exercise: exercise}}, nil
		}, func(c *cobra.Command) {
			c.Flags().StringVar(&title, "title", "", "what the crisis is")
			c.Flags().IntVar(&level, "level", 1, "1 incident under watch, 2 potential large-scale, 3 large-scale")
			c.Flags().BoolVar(&exercise, "exercise", false, "this is an exercise: everything it produces says EXERCISE")
		}, noArgs)
	add("advise", "Advise level 2 (potential large-scale incident; role csirt)", func(*cobra.Command, []string) ([]node.CommandRequest, error) {
		return []node.CommandRequest{{Kind: "advise-level-2"}}, nil
	}, nil, noArgs)
	var escLevel int
	add("escalate --level N", "Escalate: --level 2 (CSIRT advice; role csirt) or 3 (large-scale incident; role cyclone)", func(*cobra.Command, []string) ([]node.CommandRequest, error) {
		switch escLevel {
		case 2:
			return []node.CommandRequest{{Kind: "advise-level-2"}}, nil
		case 3:
			return []node.CommandRequest{{Kind: "escalate-level-3"}}, nil
		case 4:
			return nil, usageError{fmt.Errorf("level 4 (cyber crisis) is reached by the Presidency activating IPCR in full mode: crisismesh crisis ipcr --mode full")}
		}
		return nil, usageError{fmt.Errorf("escalate --level: want 2 or 3")}
	}, func(c *cobra.Command) { c.Flags().IntVar(&escLevel, "level", 3, "the level to raise to: 2 or 3") }, noArgs)
	add("ipcr --mode M", "Set the IPCR mode: none, monitoring, information-sharing (presidency, commission), full (→ level 4; presidency)", func(*cobra.Command, []string) ([]node.CommandRequest, error) {
		if mode == "" {
			return nil, usageError{fmt.Errorf("crisis ipcr needs --mode")}
		}
		return []node.CommandRequest{{Kind: "set-ipcr-mode", Mode: mode}}, nil
	}, func(c *cobra.Command) {
		c.Flags().StringVar(&mode, "mode", "", "none, monitoring, information-sharing or full")
	}, noArgs)
	add("deescalate", "De-escalate one level (whoever may raise to the current level, or presidency)", func(c *cobra.Command, _ []string) ([]node.CommandRequest, error) {
		v, err := ask(dir, func(cl *api.Client) (api.CrisisView, error) { return cl.Crisis(c.Context(), false) })
		if err != nil {
			return nil, err
		}
		if v.Level == 0 {
			return nil, fmt.Errorf("the crisis is at level 0: nothing to de-escalate")
		}
		return []node.CommandRequest{{Kind: "de-escalate", Level: v.Level - 1}}, nil
	}, nil, noArgs)
	add("affected [--state CC]… [--sector S]… [--impact I] [--outlook O] [--root-cause R]", "Record affected member states, sectors, impact, outlook, root cause (NIS2 taxonomy; csirt, cyclone)",
		func(*cobra.Command, []string) ([]node.CommandRequest, error) {
			var reqs []node.CommandRequest
			if len(states) > 0 {
				reqs = append(reqs, node.CommandRequest{Kind: "affected-states", Add: states})
			}
			if len(sectors) > 0 {
				reqs = append(reqs, node.CommandRequest{Kind: "sectors", Add: sectors})
			}
			if impact != "" {
				reqs = append(reqs, node.CommandRequest{Kind: "impact-severity", Value: impact})
			}
			if outlook != "" {
				reqs = append(reqs, node.CommandRequest{Kind: "outlook", Value: outlook})
			}
			if rootCause != "" {
				reqs = append(reqs, node.CommandRequest{Kind: "root-cause", Value: rootCause})
			}
			if len(reqs) == 0 {
				return nil, usageError{fmt.Errorf("crisis affected needs at least one of --state, --sector, --impact, --outlook, --root-cause")}
			}
			return reqs, nil
		}, func(c *cobra.Command) {
			c.Flags().StringSliceVar(&states, "state", nil, "affected member state (ISO code, e.g. LU); repeatable")
			c.Flags().StringSliceVar(&sectors, "sector", nil, "NIS2 sector impacted (e.g. energy); repeatable")
			c.Flags().StringVar(&impact, "impact", "", "NIS2 impact severity: red, yellow, green, white")
			c.Flags().StringVar(&outlook, "outlook", "", "improving, stable or worsening")
			c.Flags().StringVar(&rootCause, "root-cause", "", "NIS2 root cause, e.g. malicious-actions")
		}, noArgs)
	add("phase --phase P", "Set the lifecycle phase: preparedness, detection, response, recovery (cyclone, presidency)", func(*cobra.Command, []string) ([]node.CommandRequest, error) {
		if phase == "" {
			return nil, usageError{fmt.Errorf("crisis phase needs --phase")}
		}
		return []node.CommandRequest{{Kind: "phase", Phase: phase}}, nil
	}, func(c *cobra.Command) {
		c.Flags().StringVar(&phase, "phase", "", "preparedness, detection, response or recovery")
	}, noArgs)
	add("close --reason TEXT [--lessons TEXT]", "Close the crisis (cyclone, presidency; at level 4 presidency)", func(*cobra.Command, []string) ([]node.CommandRequest, error) {
		if reason == "" {
			return nil, usageError{fmt.Errorf("crisis close needs --reason")}
		}
		return []node.CommandRequest{{Kind: "close", Reason: reason, Lessons: lessons}}, nil
	}, func(c *cobra.Command) {
		c.Flags().StringVar(&reason, "reason", "", "why the crisis is over")
		c.Flags().StringVar(&lessons, "lessons", "", "lessons learned")
	}, noArgs)

	// reserve request | deployed ID | withdrawn ID
	reserve := &cobra.Command{Use: "reserve", Short: "Requests for the EU Cybersecurity Reserve (24-hour deadline)"}
	root.AddCommand(reserve)
	var rsector, services, note string
	req := &cobra.Command{Use: "request --sector S --services TEXT", Short: "Request Reserve services (csirt, cyclone)", Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if rsector == "" || services == "" {
				return usageError{fmt.Errorf("reserve request needs --sector and --services")}
			}
			return send(c, node.CommandRequest{Kind: "reserve-request", Sector: rsector, Services: strings.Split(services, ","), Note: note})
		}}
	req.Flags().StringVar(&rsector, "sector", "", "NIS2 sector, e.g. health")
	req.Flags().StringVar(&services, "services", "", "services asked for, comma-separated")
	req.Flags().StringVar(&note, "note", "", "note")
	commandFlags(req)
	for _, k := range []string{"deployed", "withdrawn"} {
		c := &cobra.Command{Use: k + " ID", Short: "Mark a Reserve request " + k + " (commission, enisa)", Args: exactArgs(1, "the request ID (at least 8 hex digits, as crisis show prints it)"),
			Example: "  crisismesh crisis reserve " + k + " 5d0c1e2f3a4b",
			RunE: func(c *cobra.Command, args []string) error {
				return send(c, node.CommandRequest{Kind: "reserve-" + k, Request: args[0]})
			}}
		commandFlags(c)
		reserve.AddCommand(c)
	}
	reserve.AddCommand(req)
	return root
}

// commandFlags adds --wait and --json to a command that sends crisis
// commands.
func commandFlags(c *cobra.Command) {
	c.Flags().Duration("wait", 10*time.Second, "how long to wait for the leader to commit or refuse (0: do not wait; exit 3 if still pending)")
	c.Flags().Bool("json", false, "print each result as JSON (full IDs)")
}

// printCommandResult prints what became of one crisis command.
func printCommandResult(c *cobra.Command, kind string, wait time.Duration, res node.CommandResult) {
	w := c.OutOrStdout()
	switch res.Status {
	case node.StatusCommitted:
		fmt.Fprintf(w, "%s: committed at term %d index %d (command %s) — %s\n", kind, res.Term, res.Index, shortID(res.ID), res.Crisis.Summary)
	case node.StatusPending:
		fmt.Fprintf(w, "%s: still pending after %s (command %s): proposed through the crisis log; the leader commits or refuses it when it sees it (crisismesh crisis history)\n", kind, wait, shortID(res.ID))
	default:
		fmt.Fprintf(w, "%s: refused by rule %s: %s\n", kind, res.Rule, res.Detail)
	}
}

func printCrisis(c *cobra.Command, v node.CrisisView) {
	w := c.OutOrStdout()
	fmt.Fprintf(w, "%s\n", v.Summary)
	fmt.Fprintf(w, "  level %d  IPCR %s  phase %s  exercise %v\n", v.Level, v.IPCRMode, v.Phase, v.Exercise)
	age := "never in contact with a leader"
	if v.AgeMS >= 0 {
		age = fmt.Sprintf("last leader contact %d ms ago", v.AgeMS)
	}
	from := v.Source
	if len(v.Signers) > 0 {
		from = fmt.Sprintf("%s certified by %s", v.Source, strings.Join(v.Signers, ", "))
	}
	fmt.Fprintf(w, "  committed at index %d (term %d), from %s; %s\n", v.AppliedIndex, v.Term, from, age)
	if v.Diverged != 0 {
		fmt.Fprintf(w, "  WARNING: a majority of the voters certified another state at index %d than this node's Raft log gave it (a faulty or hostile leader): showing the certified state; restore this node from an honest voter\n", v.Diverged)
	} else if v.Source == "raft" && v.AppliedIndex > v.Certified {
		if v.Certified == 0 {
			fmt.Fprintf(w, "  not yet certified by a majority of the voters (their votes follow each change within seconds)\n")
		} else {
			fmt.Fprintf(w, "  certified by a majority of the voters up to index %d\n", v.Certified)
		}
	}
	if len(v.Affected) > 0 || len(v.Sectors) > 0 {
		fmt.Fprintf(w, "  affected %s  sectors %s  impact %s  outlook %s\n", strings.Join(v.Affected, ","), strings.Join(v.Sectors, ","), orDash(v.Impact), orDash(v.Outlook))
	}
	for _, r := range v.Requests {
		fmt.Fprintf(w, "  reserve %s %s (%s): %s\n", shortID(r.ID), r.Sector, strings.Join(r.Services, ","), requestState(r))
	}
	for _, p := range v.Pending {
		fmt.Fprintf(w, "  PROVISIONAL %s by %s (seen %s)\n", p.Kind, p.Signer, p.Seen.Format("15:04:05"))
	}
	if v.Closed != nil {
		fmt.Fprintf(w, "  closed %s: %s\n", v.Closed.Format(time.RFC3339), v.CloseReason)
		if v.Lessons != "" {
			fmt.Fprintf(w, "  lessons learned: %s\n", v.Lessons)
		}
	}
}

func printHistory(c *cobra.Command, h node.HistoryView) {
	w := c.OutOrStdout()
	committed := 0
	for _, d := range h.Decisions {
		at := "-"
		if !d.At.IsZero() {
			at = d.At.UTC().Format("2006-01-02 15:04:05")
		}
		what := d.What
		if d.Outcome == string(node.StatusRefused) {
			what = fmt.Sprintf("REFUSED by rule %s: %s", d.Rule, d.Detail)
		} else {
			committed++
		}
		fmt.Fprintf(w, "%s  term %-3d index %-5d %-12s %-18s %-14s %s\n", at, d.Term, d.Index, shortID(d.Command), orDash(d.Kind), orDash(d.By), what)
	}
	if dropped := h.Total - uint64(committed); h.Total > uint64(committed) {
		fmt.Fprintf(w, "(%d older decisions are no longer kept)\n", dropped)
	}
	if len(h.Decisions) == 0 {
		fmt.Fprintf(w, "no decisions yet\n")
	}
}

// requestState says where a Reserve request stands: the time left (or
// overdue) while open, who closed it and when once deployed or withdrawn.
func requestState(r node.RequestView) string {
	left := time.Duration(r.LeftMS) * time.Millisecond
	switch {
	case r.ClosedAt != nil:
		return fmt.Sprintf("%s by %s at %s", r.Status, orDash(r.ClosedBy), r.ClosedAt.UTC().Format("2006-01-02 15:04 MST"))
	case r.Overdue:
		return fmt.Sprintf("open, OVERDUE by %s", (-left).Round(time.Minute))
	case left < node.ReserveAlertBefore:
		return fmt.Sprintf("open, %s left (deadline %s)", left.Round(time.Minute), r.Deadline.UTC().Format("15:04 MST"))
	default:
		return fmt.Sprintf("open, %s left", left.Round(time.Minute))
	}
}
