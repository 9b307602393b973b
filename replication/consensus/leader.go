package consensus

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/store"
)

// The engine's duties as one pure step.
//
// The engine's loop (loop.go) wakes on new log entries, after every
// apply of the state machine and on a tick. Each time it gathers what the
// duties depend on into a dutyInput (the monotonic clock, Raft's and the
// state machine's positions, the proposals and votes in hand), lets
// duties.step decide, and carries out the dutyActions it returns:
//
//   - every node: forget decided proposals; hand the newest certified
//     checkpoint to the state machine, which moves its snapshot base
//     there (once per checkpoint, once it has applied that index);
//   - a voter: vote for claimed states it may vote for (a majority's worth
//     at once by rank, the others after a hold-back of two checkpoint
//     intervals), never at or below an index it voted for;
//   - the leader: carry roster updates the log holds into Raft; make
//     Raft's configuration follow the roster (voters vote, other active
//     members are non-voters, revoked ones are removed); submit every
//     pending proposal once per term; write a checkpoint when the state
//     machine moved since the last one, coalesced to one per
//     Config.CheckpointEvery (a full disk is said once per episode and
//     retried at that pace).
//
// step reads no clock, takes no lock and does no I/O: its rules are
// tested by tables (leader_test.go) without Raft, badger or signatures.

// duties is what the duties remember between steps. It belongs to the
// engine's loop goroutine: not safe for concurrent use.
type duties struct {
	every     time.Duration        // Config.CheckpointEvery
	submitted map[crisis.ID]uint64 // proposal → the term it was submitted in
	written   uint64               // index of the last checkpoint written
	writtenAt time.Time            // when it was written, or last failed for a full disk
	diskFull  bool                 // the last checkpoint failed for a full disk (said once)
	baseTried uint64               // the newest certified checkpoint handed to the state machine
}

func newDuties(every time.Duration) *duties {
	return &duties{every: every, submitted: map[crisis.ID]uint64{}}
}

// dutyInput is what one step sees. The step owns none of it and changes
// none of it.
type dutyInput struct {
	now time.Time // the monotonic clock (time.Now), never Config.Now
	me  crypto.MemberID

	// Where the state machine and the certificates stand.
	applied   uint64 // the index the state machine applied
	base      uint64 // the index its snapshot base stands on (0: none)
	certified uint64 // the newest certified checkpoint known (0: none)

	pending   []pendingProposal // proposals seen in the log
	votes     []voteCandidate   // claimed states this voter noted to vote for
	lastVoted uint64            // the highest index this voter voted for

	// The leader's; the rest is read only when leader is set.
	leader     bool
	term       uint64
	rosterRaft uint64                                // the roster version the state machine applied
	rosterLog  uint64                                // the roster version the crisis log holds
	servers    map[raft.ServerID]raft.ServerSuffrage // Raft's configuration (nil: not known)
	members    []dutyMember                          // of the roster the state machine applied
}

// pendingProposal is a proposal seen in the log; decided if its outcome
// is known (from the state machine or a certified checkpoint).
type pendingProposal struct {
	id      crisis.ID
	decided bool
}

// dutyMember is a member of the roster as Raft's configuration needs it.
type dutyMember struct {
	server  raft.ServerID
	revoked bool
	voter   bool
}

// voteCandidate is a claimed state this voter noted to vote for.
type voteCandidate struct {
	key   ballotKey
	since time.Time // when it was noted (monotonic clock)
	// state: an entry carrying the claimed state was seen, with author's
	// vote in it; voted are the voters whose votes are in, voters those of
	// the roster version the claim names, in member-ID order (nil: this
	// node does not hold that version yet).
	state  bool
	author crypto.MemberID
	voted  []crypto.MemberID
	voters []crypto.MemberID
}

// dutyActions is what one step asks the loop to do, in this order.
type dutyActions struct {
	drop   []crisis.ID // decided proposals to forget
	forget []ballotKey // claims at or below the last vote: never voted for
	// vote: claims to vote for, in index order, each only if this node
	// applied the same state at that index (the loop checks that).
	vote []ballotKey
	// advanceBase: hand the certified checkpoint at this index to the
	// state machine (0: none).
	advanceBase uint64

	// The leader's.
	carryRoster bool // carry roster updates above rosterRaft into Raft
	// Raft's configuration follows the roster (membershipChanges), in
	// this order: removals, new voters, new non-voters, demotions.
	remove      []raft.ServerID
	addVoter    []raft.ServerID
	addNonvoter []raft.ServerID
	demote      []raft.ServerID
	submit      []crisis.ID // proposals to submit (once per term each)
	checkpoint  bool        // write a checkpoint of the current state
}

// step decides the duties of one moment.
func (d *duties) step(in dutyInput) dutyActions {
	var a dutyActions
	undecided := map[crisis.ID]bool{}
	for _, p := range in.pending {
		if p.decided {
			a.drop = append(a.drop, p.id)
		} else {
			undecided[p.id] = true
		}
	}

	holdBack := 2 * d.every
	for _, c := range in.votes {
		switch {
		case c.key.index <= in.lastVoted:
			a.forget = append(a.forget, c.key)
		case c.state && in.now.Sub(c.since) < holdBack && !voteNeeded(in.me, c):
			// Enough voters ahead of this one: wait.
		default:
			a.vote = append(a.vote, c.key)
		}
	}
	slices.SortFunc(a.vote, func(x, y ballotKey) int {
		return cmp.Or(cmp.Compare(x.index, y.index), cmp.Compare(x.term, y.term), cmp.Compare(x.roster, y.roster), bytes.Compare(x.digest[:], y.digest[:]))
	})

	if in.certified > d.baseTried && in.base < in.certified && in.applied >= in.certified {
		d.baseTried = in.certified
		a.advanceBase = in.certified
	}

	if !in.leader {
		return a
	}
	a.carryRoster = in.rosterLog > in.rosterRaft
	a.remove, a.addVoter, a.addNonvoter, a.demote = membershipChanges(in.servers, in.members)
	for id := range undecided {
		if d.submitted[id] != in.term {
			d.submitted[id] = in.term
			a.submit = append(a.submit, id)
		}
	}
	for id := range d.submitted {
		if !undecided[id] {
			delete(d.submitted, id) // decided: forget it
		}
	}
	slices.SortFunc(a.submit, func(x, y crisis.ID) int { return bytes.Compare(x[:], y[:]) })
	a.checkpoint = in.applied > d.written && in.now.Sub(d.writtenAt) >= d.every
	return a
}

// checkpointed records what became of the checkpoint a step asked for,
// finished at now: written at index, or err. A full disk moves the
// coalescing clock too (retried every CheckpointEvery). It reports
// whether err is to be said: a full disk once per episode, any other
// error every time.
func (d *duties) checkpointed(index uint64, now time.Time, err error) (say bool) {
	switch {
	case err == nil:
		d.written, d.writtenAt, d.diskFull = index, now, false
		return false
	case errors.Is(err, store.ErrDiskFull):
		say = !d.diskFull
		d.writtenAt, d.diskFull = now, true
		return say
	default:
		d.diskFull = false
		return true
	}
}

// membershipChanges lists the changes that make Raft's configuration
// (servers; nil: not known, no change) follow the roster's members:
// revoked members removed, active voters voting, every other active
// member a non-voter. Raft carries out the changes one server at a time
// (its leader takes the next only once the previous one is committed);
// new voters are added before old ones are demoted, so the cluster never
// has fewer voters than it needs on the way.
func membershipChanges(servers map[raft.ServerID]raft.ServerSuffrage, members []dutyMember) (remove, addVoter, addNonvoter, demote []raft.ServerID) {
	if servers == nil {
		return nil, nil, nil, nil
	}
	for _, m := range members {
		suffrage, present := servers[m.server]
		switch {
		case m.revoked && present:
			remove = append(remove, m.server)
		case m.revoked:
		case m.voter && (!present || suffrage != raft.Voter):
			addVoter = append(addVoter, m.server)
		case !m.voter && !present:
			addNonvoter = append(addNonvoter, m.server)
		case !m.voter && suffrage == raft.Voter:
			demote = append(demote, m.server)
		}
	}
	return remove, addVoter, addNonvoter, demote
}

// voteNeeded reports whether voter me is among the first voters (in
// member-ID order, those who voted and the claim's author left out) that
// a majority of the claim's voters still needs. Not knowing the voters,
// it says yes.
func voteNeeded(me crypto.MemberID, c voteCandidate) bool {
	if c.voters == nil {
		return true
	}
	need := len(c.voters)/2 + 1 - len(c.voted)
	rank := 0
	for _, v := range c.voters {
		if v == me {
			return rank < need
		}
		if !slices.Contains(c.voted, v) && v != c.author {
			rank++
		}
	}
	return true
}
