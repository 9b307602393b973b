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

// waitingError marks a roster change still waiting (for approvals or for
// Raft) when --wait ran out: exit code 3.
type waitingError struct{ error }

func newMemberCmd() *cobra.Command {
	var dir string
	root := &cobra.Command{
		Use:   "member",
		Short: "List the network's members and change them on a running network (add, revoke, rotate, voters, approve)",
		Long: `member shows the roster and changes it while the network runs. A change is a roster
update signed by this node's member (an admin) and written into the crisis log; every node
applies it once it holds it, and the leader carries it into Raft. With an admin threshold
in the genesis, a change takes effect only once that many admins have signed it: the
others run 'crisismesh member approve UPDATE_ID'.

Exit codes: 0 in force, 1 refused (the rule is named), 2 usage, 3 still waiting (for
approvals or for Raft) when --wait ran out.`,
	}
	root.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List members (roles, voter, admin, status) and the updates waiting for approvals",
		Example: `  crisismesh member list
  crisismesh member list --json | jq '.members[] | select(.status != "active")'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, (*api.Client).Members, func(_ io.Writer, v api.MembersView) error { printMembers(c, v); return nil })
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(list)

	change := func(c *cobra.Command, req api.UpdateRequest) error {
		return sendRosterChange(c, dir, func(cl *api.Client, ctx context.Context) (api.UpdateResult, error) { return cl.ChangeRoster(ctx, req) })
	}
	flags := rosterChangeFlags

	var roles, addrs []string
	var voter bool
	add := flags(&cobra.Command{
		Use:   "add CARD --role ROLE[,ROLE] [--addr MULTIADDR]... [--voter]",
		Short: "Admit a new member (run on an admin's node)",
		Long: `add admits the member whose card.json (or init directory) is CARD. The new member's node
joins with the unchanged genesis ('crisismesh join --genesis FILE' accepts a genesis that does
not list it) and is admitted by every node once it holds this update.

Roles: csirt, cyclone, presidency, commission, enisa, cert-eu, observer, admin (an admin-role
member becomes an admin). --voter makes it a Raft voter too, which is refused when the number
of voters would become even: add it without --voter, then change the voters with
'crisismesh member voter'.`,
		Example: `  crisismesh member add ./cert-de/card.json --role csirt --addr /ip4/192.0.2.20/udp/4001/quic-v1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(roles) == 0 {
				return usageError{fmt.Errorf("member add needs --role (e.g. --role csirt)")}
			}
			card, err := node.ReadCard(args[0])
			if err != nil {
				return usageError{err}
			}
			return change(c, api.UpdateRequest{Op: "add", Card: card, Roles: roles, Addrs: addrs, Voter: voter})
		},
	})
	add.Flags().StringSliceVar(&roles, "role", nil, "the member's roles, comma-separated or repeated")
	add.Flags().StringArrayVar(&addrs, "addr", nil, "a multiaddr where its node can be reached; repeat for each")
	add.Flags().BoolVar(&voter, "voter", false, "make it a Raft voter as well")
	root.AddCommand(add)

	var reason string
	revoke := flags(&cobra.Command{
		Use:   "revoke NAME [--reason TEXT]",
		Short: "Revoke a member: nothing it signs after its current feed head is accepted anywhere",
		Long: `revoke ends a member: nothing it signs after the last entry this node holds of it is
accepted anywhere, its node is cut off, and the network key gets a new epoch it does not
receive. Run it on an admin's node; a member may also revoke its own key from its own node
(break glass, e.g. a stolen laptop), without any admin.`,
		Example: `  crisismesh member revoke cert-lu --reason "laptop stolen"
  crisismesh member revoke cert-lu --reason "laptop stolen" --dir ./cert-lu   # break glass, on cert-lu's own node`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return change(c, api.UpdateRequest{Op: "revoke", Member: args[0], Reason: reason})
		},
	})
	revoke.Flags().StringVar(&reason, "reason", "", "why (kept in the roster)")
	root.AddCommand(revoke)

	var newCard string
	rotate := flags(&cobra.Command{
		Use:     "rotate NAME --card NEWCARD",
		Short:   "Replace a member's keys with a new card of the same name",
		Example: `  crisismesh member rotate cert-lu --card ./cert-lu-new/card.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if newCard == "" {
				return usageError{fmt.Errorf("member rotate needs --card NEWCARD")}
			}
			card, err := node.ReadCard(newCard)
			if err != nil {
				return usageError{err}
			}
			return change(c, api.UpdateRequest{Op: "rotate", Member: args[0], Card: card})
		},
	})
	rotate.Flags().StringVar(&newCard, "card", "", "the member's new card.json (or init directory)")
	root.AddCommand(rotate)

	var on, off []string
	voters := flags(&cobra.Command{
		Use:   "voter --on NAME... --off NAME...",
		Short: "Change the Raft voters in one roster update (the result must be odd and not empty)",
		Example: `  crisismesh member voter --on cert-de --on cert-fr      # 3 voters become 5
  crisismesh member voter --on cert-de --off cert-lu     # swap one voter`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if len(on) == 0 && len(off) == 0 {
				return usageError{fmt.Errorf("member voter needs --on NAME or --off NAME")}
			}
			return change(c, api.UpdateRequest{Op: "voters", On: on, Off: off})
		},
	})
	voters.Flags().StringArrayVar(&on, "on", nil, "a member to make a voter; repeat")
	voters.Flags().StringArrayVar(&off, "off", nil, "a voter to make a non-voter; repeat")
	root.AddCommand(voters)

	approve := flags(&cobra.Command{
		Use:   "approve UPDATE_ID",
		Short: "Sign another admin's pending roster change (with an admin threshold above 1)",
		Example: `  crisismesh member list          # shows pending updates and their IDs
  crisismesh member approve 5d0c1e2f   # the update ID, or a prefix of at least 8 hex digits naming one`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return sendRosterChange(c, dir, func(cl *api.Client, ctx context.Context) (api.UpdateResult, error) { return cl.Approve(ctx, args[0]) })
		},
	})
	root.AddCommand(approve)
	return root
}

// sendRosterChange sends a roster change (or an approval) to the node's
// API and waits for it as --wait says: exit 0 in force, 1 refused, 3 still
// waiting.
func sendRosterChange(c *cobra.Command, dir string, send func(*api.Client, context.Context) (api.UpdateResult, error)) error {
	cl, err := newClient(dir)
	if err != nil {
		return err
	}
	wait, _ := c.Flags().GetDuration("wait")
	asJSON, _ := c.Flags().GetBool("json")
	res, err := send(cl, c.Context())
	if err != nil {
		return err
	}
	err = waitWhile(c.Context(), wait, func() bool { return res.Status == api.UpdatePending }, func(ctx context.Context) (err error) {
		res, err = cl.UpdateStatus(ctx, res.UpdateID)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(c.OutOrStdout(), res); err != nil {
			return err
		}
	} else {
		printUpdate(c, res)
	}
	switch res.Status {
	case api.UpdateRefused:
		return fmt.Errorf("refused (%s)", res.Rule)
	case api.UpdatePending:
		return waitingError{fmt.Errorf("update %s is still waiting for %s", res.UpdateID, res.WaitingFor)}
	}
	return nil
}

// waitWhile asks poll again every 200 ms while pending holds, for at
// most wait (--wait): the wait of the commands that exit 3 when what they
// asked for is still pending after it (member …, crisis …).
func waitWhile(ctx context.Context, wait time.Duration, pending func() bool, poll func(context.Context) error) error {
	deadline := time.Now().Add(wait)
	for pending() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := poll(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// rosterChangeFlags adds --wait and --json to a command that changes the
// roster.
func rosterChangeFlags(c *cobra.Command) *cobra.Command {
	c.Flags().Duration("wait", 30*time.Second, "how long to wait for the change to be in force (0: do not wait)")
	c.Flags().Bool("json", false, "print the result as JSON")
	return c
}

func printMembers(c *cobra.Command, v api.MembersView) {
	w := c.OutOrStdout()
	fmt.Fprintf(w, "roster version %d (Raft holds %d); changes need %d admin(s)\n\n", v.RosterVersion, v.RaftRosterVersion, v.AdminThreshold)
	fmt.Fprintf(w, "%-20s %-16s %-24s %-5s %-5s %s\n", "NAME", "MEMBER ID", "ROLES", "VOTER", "ADMIN", "STATUS")
	for _, m := range v.Members {
		status := m.Status
		switch {
		case m.Status == api.MemberRevoked:
			status = fmt.Sprintf("revoked (%s; entries kept up to seq %d)", m.Reason, m.LastValidSeq)
		case m.Status == api.MemberRotated:
			status = fmt.Sprintf("rotated (entries kept up to seq %d)", m.LastValidSeq)
		}
		fmt.Fprintf(w, "%-20s %-16s %-24s %-5s %-5s %s\n", m.Name, m.MemberID[:16], strings.Join(m.Roles, ","), yes(m.Voter), yes(m.Admin), status)
	}
	if len(v.Pending) > 0 {
		fmt.Fprintf(w, "\nwaiting for approvals:\n")
		for _, p := range v.Pending {
			exp := "expires " + p.Expires.Format(time.RFC3339)
			if p.Expired {
				exp = "EXPIRED " + p.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "  %s %s %s: %d of %d admins (%s); %s\n", p.UpdateID, p.Op, p.Target, p.Approvals, p.Needed, strings.Join(p.Approvers, ", "), exp)
		}
		fmt.Fprintf(w, "approve one with: crisismesh member approve UPDATE_ID\n")
	}
}

func printUpdate(c *cobra.Command, res api.UpdateResult) {
	w := c.OutOrStdout()
	what := strings.TrimSpace(res.Op + " " + res.Target)
	switch res.Status {
	case api.UpdateInForce:
		fmt.Fprintf(w, "%s: in force at roster version %d (update %s)\n", what, res.RosterVersion, res.UpdateID)
	case api.UpdatePending:
		if res.WaitingFor == "approvals" {
			fmt.Fprintf(w, "%s: waiting for approvals, %d of %d admins (update %s)\n  another admin runs: crisismesh member approve %s\n", what, res.Approvals, res.Needed, res.UpdateID, res.UpdateID)
		} else {
			fmt.Fprintf(w, "%s: in the crisis log, waiting for Raft to carry it (update %s; crisismesh member list)\n", what, res.UpdateID)
		}
	default:
		fmt.Fprintf(w, "%s: refused by rule %s: %s\n", what, res.Rule, res.Detail)
	}
	if res.Note != "" {
		fmt.Fprintf(w, "note: %s\n", res.Note)
	}
}
