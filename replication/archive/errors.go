package archive

import (
	"errors"
	"fmt"
)

// ErrNotVerified is the class of every [Failure]: the archive does not
// verify.
var ErrNotVerified = errors.New("archive: does not verify")

// The rules a Failure names. They are stable: scripts may test for them.
const (
	RuleMagic     = "magic"     // not an archive
	RuleTruncated = "truncated" // the file ends early, or its trailer does not fit
	RuleTrailer   = "trailer"   // the trailer does not decode
	RuleFrame     = "frame"     // a record's framing, or bytes after the last
	RuleRecord    = "record"    // a record does not decode
	RuleChecksum  = "checksum"  // the records' SHA-256 is not the trailer's

	RuleNetwork  = "network"  // the archive is of another network than the genesis
	RuleExporter = "exporter" // the trailer's signature, or an exporter that is no member
	RuleOrder    = "order"    // entries not in display order
	RuleSegment  = "segment"  // the entries of a feed are not the runs the trailer lists
	// An entry that does not verify is named by the log's reason
	// (log.Reason: "bad-signature", "bad-prev", "gap", "revoked-author", …).
	RuleEvidence   = "evidence"   // evidence of a non-member, or with a bad signature
	RuleRosterGap  = "roster"     // the roster versions in force do not follow each other
	RuleCheckpoint = "checkpoint" // a checkpoint record does not decode, or names no entry held
	RuleVote       = "vote"       // a vote of a checkpoint is forged or no voter's
	RuleConflict   = "conflict"   // two certified states at one Raft index
	RuleDecision   = "decision"   // a decision does not decode, is out of order, or its signer or signature is bad
	RuleReplay     = "replay"     // the decisions replayed give another state than a certificate
)

// A Failure is the first thing of an archive that does not verify: what
// (file, entry, feed, evidence, roster, checkpoint, decision), where (the
// record, the entry and its author and seq, the Raft index), the rule it
// breaks, and the details. errors.Is(f, ErrNotVerified) holds, and
// errors.Is(f, ErrFormat) for a file Read refuses.
type Failure struct {
	What, Where, Rule, Detail string
	class                     error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s %s does not verify (rule %s): %s", f.What, f.Where, f.Rule, f.Detail)
}

// Is reports ErrNotVerified, and the class of the failure.
func (f *Failure) Is(target error) bool {
	return target == ErrNotVerified || (f.class != nil && target == f.class)
}

func fail(what, where, rule, format string, args ...any) *Failure {
	return &Failure{What: what, Where: where, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}
