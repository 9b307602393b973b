package crisis

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
)

// ErrRefused is the class of every command [Apply] refuses; the [*Refusal]
// says which rule refused it. Test with errors.Is(err, crisis.ErrRefused).
var ErrRefused = errors.New("crisis: command refused")

// ErrBadCall reports that the host called [Apply] wrongly: no roster, or a
// Meta without a time or with a Raft index that does not follow the
// state's. It is a bug in the host, not a refusal of the command.
var ErrBadCall = errors.New("crisis: bad call to Apply")

// The rules a [Refusal] names. They are stable: the node shows them to
// operators and the API returns them, so they are never renamed.
const (
	RuleMalformed   = "malformed"    // no signed command, or one that does not decode
	RuleNetwork     = "network"      // signed for another network
	RuleMember      = "member"       // the signer is not in the roster
	RuleSignature   = "signature"    // the composite signature does not verify
	RuleRevoked     = "revoked"      // the signer was revoked
	RuleDuplicate   = "duplicate"    // this command ID was already applied
	RuleKind        = "kind"         // unknown command kind
	RuleShape       = "shape"        // a field is missing, superfluous, too long or not text
	RuleNoCrisis    = "no-crisis"    // the command needs an open crisis
	RuleAlreadyOpen = "already-open" // open while a crisis is open
	RuleCrisis      = "crisis"       // the command names another crisis than the open one
	RuleRole        = "role"         // the signer lacks the role the command needs
	RuleLevel       = "level"        // level out of range or not reachable from the current one
	RuleMode        = "mode"         // IPCR mode not allowed now
	RulePhase       = "phase"        // unknown phase
	RuleMemberState = "member-state" // not an EU member state code
	RuleTaxonomy    = "taxonomy"     // not a value of the nis2 taxonomy
	RuleRequest     = "request"      // unknown or already closed Reserve request
	RuleLimit       = "limit"        // a bound of the state would be exceeded
	RuleNoChange    = "no-change"    // the command would change nothing
)

// A Refusal is a command refused by a named rule. Every node refuses the
// same command with the same Refusal, so it can be shown to the member who
// asked as the network's answer.
type Refusal struct {
	Rule   string // one of the Rule constants
	Detail string // for a person: what was wrong and what to do
	cause  error  // e.g. crypto.ErrBadSignature, for errors.Is
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s%s: %s", refusalPrefix, r.Rule, r.Detail)
}

// Unwrap makes errors.Is(err, ErrRefused) true, and errors.Is true for the
// cause too when there is one (a bad signature's crypto.ErrBadSignature).
func (r *Refusal) Unwrap() []error {
	if r.cause != nil {
		return []error{ErrRefused, r.cause}
	}
	return []error{ErrRefused}
}

// refusalPrefix begins every Refusal's text (see ParseRefusal).
const refusalPrefix = "crisis: command refused by rule "

func refuse(rule, format string, args ...any) *Refusal {
	return &Refusal{Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// orList joins words for a person: "a", "a or b", "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// needs says which roles an action needs, for a refusal: "role cyclone",
// "role cyclone or presidency", "one of the roles csirt, cyclone or enisa".
func needs(roles []crypto.Role) string {
	names := roleNames(roles)
	if len(names) <= 2 {
		return "role " + orList(names)
	}
	return "one of the roles " + orList(names)
}

func roleNames(roles []crypto.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}
