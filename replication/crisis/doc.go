// Package crisis is the crisis domain of crisismesh: the crisis state,
// the signed commands that change it, and who may issue which. It answers
// "what is the crisis and at which level is it right now" identically on
// every node, because every node applies the same Raft log through the same
// pure function:
//
//	next, err := crisis.Apply(state, cmd, roster, crisis.Meta{Time: t, Term: term, Index: index})
//
// replication/consensus hosts [Apply] as its Raft FSM and snapshots the
// state with [State.MarshalBinary]; the node shows [State.Summary] and
// [State.OpenRequests]. Members make commands with [Sign]; the bytes travel
// in Raft entries and in offline proposals and come back with [ParseSigned].
//
// # What this package must not do
//
// It reads no clock, no randomness, no disk and no network, like
// go.etcd.io/raft's core. Time comes in with the Raft entry ([Meta]), command
// IDs are drawn by the signer and passed in, and the roster in force at the
// entry's place in the log is an argument. It imports nothing of ours but
// crypto. It trusts no one: [Apply] checks the signature, the signer's
// membership and roles itself, so a leader cannot forge a decision, and a
// revoked member's commands are refused even if a leader commits them.
//
// # Who may do what
//
//	command                                       roles
//	open (title, level 1–3, exercise?)            csirt, cyclone, commission, enisa, cert-eu (level 1);
//	                                              csirt (level 2); cyclone (level 3)
//	advise level 2 (potential large-scale)        csirt
//	escalate to level 3 (large-scale incident)    cyclone
//	set IPCR mode none/monitoring/info-sharing    presidency, commission
//	set IPCR mode full (→ level 4, cyber crisis)  presidency
//	de-escalate one level                         whoever may raise to the current level, or presidency
//	affected states, sectors, impact severity,
//	  outlook, root cause                         csirt, cyclone
//	phase change                                  cyclone, presidency
//	Reserve request (sector, services, note)      csirt, cyclone
//	Reserve request deployed / withdrawn          commission, enisa
//	close (reason, lessons learned)               cyclone, presidency (presidency only at level 4)
//
// [Check] applies the rules that need no state (signature, membership,
// shape, and the roles no state could allow), so a node refuses such a
// command at once instead of proposing it.
//
// Every refusal is a [*Refusal] that names its rule and says what was
// wrong, e.g. "escalate to level 3 needs role cyclone; cert-lu has csirt".
//
// # Decisions
//
// One crisis at a time. Open is refused while a crisis is open, with one
// exception: a real crisis is never blocked by an exercise, so opening a
// real crisis ends an open exercise (the decision says so). An exercise
// cannot end a real crisis.
//
// Opening at level L is opening at level 1 and raising to L in one step, so
// it needs the role that may raise to L: any opener for 1, csirt for 2,
// cyclone for 3. Level 4 is reached only by the Presidency's full IPCR
// activation. A new crisis starts in phase detection, IPCR mode none, with
// the opener as lead member and nothing assessed; its ID is the open
// command's ID.
//
// Commands state the result they want, never a bare step: every command but
// open names the crisis it acts on (refused on another crisis), advise and
// escalate name their level, and de-escalate names the level it goes down
// to (refused unless that is one below the current level). So a command
// carried in late as an offline proposal either still means what its signer
// meant or is refused; it never lands on another crisis or takes the level
// down twice.
//
// Raising never lowers: advising 2 at level 3 is refused ("de-escalate
// instead"). De-escalating from 1 reaches level 0 with the crisis still
// open (recovery can go on at level 0), and from there advise or escalate
// raise it again. De-escalating from 4 ends IPCR full mode but leaves it in
// information-sharing, so the political level keeps its picture until the
// Presidency or the Commission sets another mode. At level 4 no other mode
// may be set: leaving full mode is de-escalating, the Presidency's call. The
// table's "set IPCR mode" row also allows mode none, to end an IPCR
// activation below level 4.
//
// Affected member states and sectors change by adding and removing values,
// not by replacing the list, so two CSIRTs who each add their own country
// at the same time both count. Severity, outlook and root cause are set to
// one value. Any phase may follow any other (a crisis that flares up again
// goes back from recovery to response). A command that would change nothing
// is refused (rule no-change), so the history holds only changes.
//
// A Reserve request's ID is its command's ID; its deadline is exactly
// [ReserveDeadline] (24 hours) after its Raft entry's time. The Commission or
// ENISA closes it as deployed or withdrawn (withdrawn: closed without
// deployment); each only from open. Closing the crisis withdraws the
// requests still open ("crisis closed").
//
// Close needs a reason; lessons learned are recorded when given. Closing at
// level 4 needs the Presidency, as de-escalating from 4 does. A closed
// crisis keeps its title, assessment, requests and closing for display,
// with level 0, mode none and phase preparedness, until the next open
// starts a clean slate (the history and the dedupe memory span crises).
//
// Duplicates: each command carries an ID of 16 random bytes chosen by its
// signer, and Apply refuses an ID it has applied, because an offline
// proposal may be submitted by two nodes. The state remembers the IDs of
// the newest 4096 applied commands and of the newest 1024 crises opened;
// a replay older than that could only act on the crisis it names, which is
// then closed. A refused command is not remembered: it changed nothing, and
// if it is submitted again once the state allows it, it applies then —
// safe because commands state their result.
//
// The history keeps the newest 256 decisions (who, what, when, Raft term and
// index), oldest dropped, and counts them all.
//
// Exercises are first-class: every decision an exercise produces begins
// "EXERCISE: " and is flagged, its Reserve requests are flagged, and the
// summary begins "EXERCISE: ".
//
// Time: the Raft entry's time, which the leader's clock set, is kept in UTC
// to the millisecond, so a log store that keeps milliseconds replays to the
// same state. Meta.Index must grow from one applied command to the next;
// Apply returns [ErrBadCall] otherwise, as for a missing time or roster.
//
// # Encoding
//
// Signed commands and state snapshots are canonical CBOR under the rules of
// the crypto package: RFC 8949 core deterministic encoding, strict decoding
// (no unknown fields, duplicate keys, indefinite lengths or tags), and bytes
// that do not re-encode identically are refused with crypto.ErrNonCanonical.
// A command's signature (context crypto.ContextCommand) covers its network
// ID, its signer, and every field.
//
// # Taxonomy
//
// Sectors, impact severity, outlook and root cause take the values of the
// MISP nis2 taxonomy (predicates impact-sectors-impacted, impact-severity,
// impact-outlook, nature-root-cause), embedded from nis2.json. That file
// comes from the MISP taxonomies project, dual-licensed CC0 1.0 or
// BSD-2-Clause; see LICENSE.taxonomies.md. Member states are the 27 EU
// member states' ISO 3166-1 alpha-2 codes (Greece is GR).
//
// # Concurrency
//
// Everything here is safe for concurrent use except modifying a [State]:
// a State is a value owned by whoever holds it (see [State.Clone]).
package crisis
