package node

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// DefaultGenesisPath is where CreateNetwork writes when no path is given.
const DefaultGenesisPath = "genesis"

// NetworkOptions says how to found a network.
type NetworkOptions struct {
	Name        string              // network name, e.g. "eu-cyclone"
	Admin       *crypto.Identity    // signs the genesis; becomes a member with role admin
	Members     []*crypto.Card      // the other members (the admin may be listed too)
	Voters      []string            // member names that are Raft voters (an odd number)
	Roles       map[string][]string // member name → roles; the admin gets "admin" added
	Addrs       map[string][]string // member name → multiaddr hints
	Out         string              // genesis file to write; "" means DefaultGenesisPath
	Now         time.Time
	ExtraAdmins []string // further member names to make admins (they must have the admin role)
	// AdminThreshold is how many distinct admins must sign a roster or
	// group change (0 or 1: one); ApprovalTTL how long a change may wait
	// for them (0: crypto.DefaultApprovalTTL).
	AdminThreshold int
	ApprovalTTL    time.Duration
}

// CreateNetwork builds, signs and writes the genesis document. Every problem
// with the options is reported at once, so the operator fixes them in one go.
func CreateNetwork(opts NetworkOptions) (*crypto.Genesis, error) {
	if opts.Admin == nil {
		return nil, errors.New("network create: no admin identity (use --admin DIR)")
	}
	var problems []string
	cards := map[string]*crypto.Card{opts.Admin.Name(): opts.Admin.Card()}
	for _, c := range opts.Members {
		if prev, ok := cards[c.Name()]; ok {
			if !prev.Equal(c) {
				problems = append(problems, fmt.Sprintf("two different cards are called %q", c.Name()))
			}
			continue
		}
		cards[c.Name()] = c
	}
	known := func(name, flag string) bool {
		if _, ok := cards[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s names %q, which is not a member (members: %s)", flag, name, strings.Join(sortedKeys(cards), ", ")))
			return false
		}
		return true
	}
	for name := range opts.Roles {
		known(name, "--role")
	}
	for name := range opts.Addrs {
		known(name, "--addr")
	}

	spec := crypto.GenesisSpec{Network: opts.Name, Created: opts.Now}
	for _, name := range sortedKeys(cards) {
		m := crypto.Member{Card: cards[name], Addrs: opts.Addrs[name]}
		roleNames := slices.Clone(opts.Roles[name])
		if name == opts.Admin.Name() || slices.Contains(opts.ExtraAdmins, name) {
			roleNames = append(roleNames, string(crypto.RoleAdmin))
		}
		if len(roleNames) == 0 {
			problems = append(problems, fmt.Sprintf("member %s has no role: add --role %s=ROLE (roles: %s)", name, name, roleList()))
		}
		for _, rn := range roleNames {
			r, err := crypto.ParseRole(rn)
			if err != nil {
				problems = append(problems, fmt.Sprintf("member %s: %v", name, err))
				continue
			}
			m.Roles = append(m.Roles, r)
		}
		spec.Members = append(spec.Members, m)
	}
	if len(opts.Voters) == 0 {
		problems = append(problems, "no voters: name an odd number of members with --voter (e.g. 3 members that are well connected; 1 for a test network)")
	}
	seen := map[string]bool{}
	for _, v := range opts.Voters {
		if seen[v] {
			problems = append(problems, fmt.Sprintf("--voter %s is given twice", v))
			continue
		}
		seen[v] = true
		if known(v, "--voter") {
			spec.Voters = append(spec.Voters, cards[v].ID())
		}
	}
	if len(opts.Voters) > 0 && len(seen)%2 == 0 {
		problems = append(problems, fmt.Sprintf("%d voters: the crisis state needs an odd number of voters (1, 3, 5, …) so that a majority always exists", len(seen)))
	}
	spec.Admins = append(spec.Admins, opts.Admin.ID())
	for _, a := range opts.ExtraAdmins {
		if known(a, "--extra-admin") {
			spec.Admins = append(spec.Admins, cards[a].ID())
		}
	}
	if admins := len(opts.ExtraAdmins) + 1; opts.AdminThreshold > admins || opts.AdminThreshold < 0 {
		problems = append(problems, fmt.Sprintf("--admin-threshold %d: the network has %d admins (--admin and each --extra-admin); the threshold must be between 1 and %d", opts.AdminThreshold, admins, admins))
	}
	if opts.ApprovalTTL < 0 || opts.ApprovalTTL > 0 && opts.ApprovalTTL < time.Second {
		problems = append(problems, fmt.Sprintf("--approval-time %s: want at least a second", opts.ApprovalTTL))
	}
	spec.AdminThreshold, spec.ApprovalTTL = opts.AdminThreshold, opts.ApprovalTTL
	out := opts.Out
	if out == "" {
		out = DefaultGenesisPath
	}
	if _, err := os.Stat(out); err == nil {
		problems = append(problems, fmt.Sprintf("%s already exists: a genesis founds a new network and is never overwritten; choose --out or move it away", out))
	}
	if len(problems) > 0 {
		return nil, &ProblemsError{What: "network create", Problems: problems}
	}
	g, err := crypto.NewGenesis(spec, opts.Admin)
	if err != nil {
		return nil, fmt.Errorf("network create: %w", err)
	}
	if err := writeFileAtomic(out, g.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("network create: %w", err)
	}
	return g, nil
}

// ReadGenesis reads and fully verifies a genesis file.
func ReadGenesis(path string) (*crypto.Genesis, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	g, err := crypto.ParseGenesis(b)
	if err != nil {
		return nil, fmt.Errorf("read genesis %s: %w", path, err)
	}
	return g, nil
}

// ProblemsError lists every problem found in one request.
type ProblemsError struct {
	What     string
	Problems []string
}

func (e *ProblemsError) Error() string {
	if len(e.Problems) == 1 {
		return e.What + ": " + e.Problems[0]
	}
	return fmt.Sprintf("%s: %d problems:\n  - %s", e.What, len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func roleList() string {
	var names []string
	for _, r := range crypto.Roles {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}
