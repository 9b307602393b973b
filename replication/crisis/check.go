package crisis

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
)

// signers returns the roles of which a signer of c needs one in some
// state: a role outside them is refused whatever the state. (The state
// may narrow them: closing at level 4 needs the Presidency.)
func (c *Command) signers() (action string, roles []crypto.Role) {
	switch c.Kind {
	case KindOpen:
		return fmt.Sprintf("open a crisis at level %d", c.Level), raisers(c.Level)
	case KindAdviseLevel2:
		return "advise level 2", raisers(LevelPotential)
	case KindEscalateLevel3:
		return "escalate to level 3", raisers(LevelLargeScale)
	case KindSetMode:
		if c.Mode == ModeFull {
			return "set IPCR mode full (level 4, cyber crisis)", raisers(LevelCyber)
		}
		return "set IPCR mode " + c.Mode.String(), modeSetters
	case KindDeescalate:
		return fmt.Sprintf("de-escalate from level %d", c.Level+1), lowerers(c.Level + 1)
	case KindAffected, KindSectors, KindSeverity, KindOutlook, KindRootCause:
		return "assess the crisis (" + string(c.Kind) + ")", assessors
	case KindPhase:
		return "change the phase", phasers
	case KindReserveRequest:
		return "request EU Cybersecurity Reserve services", requesters
	case KindReserveDeployed, KindReserveWithdrawn:
		return "mark a Reserve request " + strings.TrimPrefix(string(c.Kind), "reserve-"), reserve
	case KindClose:
		return "close the crisis", closers
	}
	return "", nil
}

// Check applies the rules that do not depend on the crisis state: the
// network, the signer's membership, signature and revocation, the
// command's shape, and the signer's roles as far as no state can give
// them. A command Check refuses, [Apply] refuses in every state (given the
// same roster), so a node may refuse it at once instead of proposing it.
// The error is a [*Refusal], as Apply's.
func Check(cmd *SignedCommand, roster *crypto.Roster) error {
	if roster == nil {
		return fmt.Errorf("%w: no roster", ErrBadCall)
	}
	m, err := authenticate(cmd, roster)
	if err != nil {
		return err
	}
	c := cmd.dec.Command
	if err := c.check(); err != nil {
		return err
	}
	action, roles := c.signers()
	if !slices.ContainsFunc(roles, m.HasRole) {
		return refuse(RuleRole, "%s needs %s; %s has %s", action, needs(roles), m.Card.Name(), strings.Join(roleNames(m.Roles), ", "))
	}
	return nil
}

// ParseRefusal reads back a refusal from its text (Refusal.Error), as
// outcomes keep it; ok is false for any other text.
func ParseRefusal(text string) (r *Refusal, ok bool) {
	rest, ok := strings.CutPrefix(text, refusalPrefix)
	if !ok {
		return nil, false
	}
	rule, detail, ok := strings.Cut(rest, ": ")
	if !ok {
		return nil, false
	}
	return &Refusal{Rule: rule, Detail: detail}, true
}
