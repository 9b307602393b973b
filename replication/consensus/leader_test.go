package consensus

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/store"
)

// The duties step is pure: these tables drive it with plain values (no
// Raft, no badger, no signatures) and compare the actions it returns.

// every is the checkpoint interval of the tables (t0, their clock's
// start, is the clusters').
const every = time.Second

func memberID(b byte) crypto.MemberID { return crypto.MemberID{b} }
func cmdID(b byte) crisis.ID          { return crisis.ID{b} }

var actionsOpts = cmp.Options{cmp.AllowUnexported(dutyActions{}, ballotKey{}), cmpopts.EquateEmpty()}

// stepCase is one step of a table: the input (now as an offset from t0),
// the actions wanted, and optionally the outcome of the checkpoint the
// step asked for.
type stepCase struct {
	at   time.Duration
	in   dutyInput
	want dutyActions
	// written: the checkpoint the step asked for was written at this
	// index (or failed with err), finished at the same time.
	written uint64
	err     error
}

func runSteps(t *testing.T, steps []stepCase) {
	t.Helper()
	d := newDuties(every)
	for i, s := range steps {
		in := s.in
		in.now = t0.Add(s.at)
		got := d.step(in)
		if diff := cmp.Diff(s.want, got, actionsOpts); diff != "" {
			t.Errorf("step %d (at %v): actions differ (-want +got):\n%s", i, s.at, diff)
		}
		if got.checkpoint {
			d.checkpointed(s.written, in.now, s.err)
		}
	}
}

func TestDutiesProposals(t *testing.T) {
	a, b := cmdID(1), cmdID(2)
	leader := func(term uint64, ps ...pendingProposal) dutyInput {
		return dutyInput{leader: true, term: term, pending: ps}
	}
	for _, tc := range []struct {
		name  string
		steps []stepCase
	}{
		{"a follower submits nothing, and drops what is decided", []stepCase{
			{in: dutyInput{pending: []pendingProposal{{id: a}, {id: b, decided: true}}}, want: dutyActions{drop: []crisis.ID{b}}},
		}},
		{"submitted once per term", []stepCase{
			{in: leader(3, pendingProposal{id: a}), want: dutyActions{submit: []crisis.ID{a}}},
			{in: leader(3, pendingProposal{id: a}, pendingProposal{id: b}), want: dutyActions{submit: []crisis.ID{b}}},
			{in: leader(3, pendingProposal{id: a}, pendingProposal{id: b})},
			{in: leader(4, pendingProposal{id: b}, pendingProposal{id: a}), want: dutyActions{submit: []crisis.ID{a, b}}},
		}},
		{"decided: dropped, and submitted again if seen again in the same term", []stepCase{
			{in: leader(3, pendingProposal{id: a}), want: dutyActions{submit: []crisis.ID{a}}},
			{in: leader(3, pendingProposal{id: a, decided: true}), want: dutyActions{drop: []crisis.ID{a}}},
			{in: leader(3, pendingProposal{id: a}), want: dutyActions{submit: []crisis.ID{a}}},
		}},
		{"leadership lost and won back in a later term: submitted again", []stepCase{
			{in: leader(3, pendingProposal{id: a}), want: dutyActions{submit: []crisis.ID{a}}},
			{in: dutyInput{term: 4, pending: []pendingProposal{{id: a}}}},
			{in: leader(5, pendingProposal{id: a}), want: dutyActions{submit: []crisis.ID{a}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.steps) })
	}
}

func TestDutiesCheckpointCadence(t *testing.T) {
	full := fmt.Errorf("append: %w", store.ErrDiskFull)
	other := errors.New("no group key to seal the checkpoint")
	leader := func(applied uint64) dutyInput { return dutyInput{leader: true, term: 2, applied: applied} }
	cp := dutyActions{checkpoint: true}
	for _, tc := range []struct {
		name  string
		steps []stepCase
	}{
		{"nothing applied: no checkpoint", []stepCase{
			{in: leader(0)},
		}},
		{"a follower writes none", []stepCase{
			{in: dutyInput{applied: 5}},
		}},
		{"the first at once, then at most one per interval, only when the state moved", []stepCase{
			{in: leader(5), want: cp, written: 5},
			{at: 300 * time.Millisecond, in: leader(6)},
			{at: 999 * time.Millisecond, in: leader(7)},
			{at: every, in: leader(7), want: cp, written: 7},
			{at: 5 * every, in: leader(7)},
			{at: 5 * every, in: leader(8), want: cp, written: 8},
		}},
		{"the index written counts, not the one seen", []stepCase{
			{in: leader(5), want: cp, written: 6}, // an apply came in between
			{at: 2 * every, in: leader(6)},
			{at: 2 * every, in: leader(7), want: cp, written: 7},
		}},
		{"a full disk: retried once per interval", []stepCase{
			{in: leader(5), want: cp, err: full},
			{at: 500 * time.Millisecond, in: leader(5)},
			{at: every, in: leader(5), want: cp, err: full},
			{at: 2 * every, in: leader(5), want: cp, written: 5},
		}},
		{"any other failure: retried at the next step", []stepCase{
			{in: leader(5), want: cp, err: other},
			{at: time.Millisecond, in: leader(5), want: cp, err: other},
			{at: 2 * time.Millisecond, in: leader(5), want: cp, written: 5},
			{at: 3 * time.Millisecond, in: leader(6)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.steps) })
	}
}

// A full disk is said once per episode; any other failure every time,
// and it ends an episode.
func TestDutiesCheckpointFailuresSaid(t *testing.T) {
	full := fmt.Errorf("append: %w", store.ErrDiskFull)
	other := errors.New("boom")
	d := newDuties(every)
	for i, tc := range []struct {
		err  error
		want bool
	}{
		{full, true}, {full, false}, {full, false}, {nil, false}, {full, true},
		{other, true}, {other, true}, {full, true}, {full, false},
	} {
		if got := d.checkpointed(9, t0.Add(time.Duration(i)*every), tc.err); got != tc.want {
			t.Errorf("failure %d (%v): said %v, want %v", i, tc.err, got, tc.want)
		}
	}
}

func TestDutiesRosterAndMembers(t *testing.T) {
	voter, nonVoter, revoked, newcomer, gone := raft.ServerID("voter"), raft.ServerID("non-voter"), raft.ServerID("revoked"), raft.ServerID("newcomer"), raft.ServerID("gone")
	promoted, demoted, newVoter := raft.ServerID("promoted"), raft.ServerID("demoted"), raft.ServerID("new-voter")
	members := []dutyMember{
		{server: voter, voter: true},
		{server: nonVoter},
		{server: revoked, revoked: true},
		{server: newcomer},
		{server: gone, revoked: true},
		{server: promoted, voter: true},
		{server: demoted},
		{server: newVoter, voter: true},
	}
	servers := map[raft.ServerID]raft.ServerSuffrage{voter: raft.Voter, nonVoter: raft.Nonvoter, revoked: raft.Nonvoter, promoted: raft.Nonvoter, demoted: raft.Voter}
	for _, tc := range []struct {
		name string
		in   dutyInput
		want dutyActions
	}{
		{"the log holds a newer roster: carried into Raft",
			dutyInput{leader: true, rosterRaft: 2, rosterLog: 3},
			dutyActions{carryRoster: true}},
		{"Raft holds the log's roster: nothing to carry",
			dutyInput{leader: true, rosterRaft: 3, rosterLog: 3},
			dutyActions{}},
		{"Raft ahead of this node's log: nothing to carry",
			dutyInput{leader: true, rosterRaft: 4, rosterLog: 3},
			dutyActions{}},
		{"Raft's configuration follows the roster",
			dutyInput{leader: true, servers: servers, members: members},
			dutyActions{remove: []raft.ServerID{revoked}, addVoter: []raft.ServerID{promoted, newVoter}, addNonvoter: []raft.ServerID{newcomer}, demote: []raft.ServerID{demoted}}},
		{"Raft's configuration follows the roster already: no change",
			dutyInput{leader: true, servers: map[raft.ServerID]raft.ServerSuffrage{voter: raft.Voter, nonVoter: raft.Nonvoter}, members: members[:2]},
			dutyActions{}},
		{"Raft's configuration not known: no change",
			dutyInput{leader: true, members: members},
			dutyActions{}},
		{"a follower changes nothing",
			dutyInput{rosterRaft: 2, rosterLog: 3, servers: servers, members: members},
			dutyActions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newDuties(every).step(tc.in)
			if diff := cmp.Diff(tc.want, got, actionsOpts); diff != "" {
				t.Errorf("actions differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDutiesVotes(t *testing.T) {
	a, b, c, d, e := memberID(1), memberID(2), memberID(3), memberID(4), memberID(5)
	five := []crypto.MemberID{a, b, c, d, e}
	key := func(index uint64) ballotKey { return ballotKey{index: index, term: 2, digest: [32]byte{byte(index)}} }
	holdBack := 2 * every
	for _, tc := range []struct {
		name string
		in   dutyInput
		want dutyActions
	}{
		{"at or below the last vote: forgotten",
			dutyInput{me: c, lastVoted: 7, votes: []voteCandidate{{key: key(7)}, {key: key(6), state: true, author: a, voters: five}}},
			dutyActions{forget: []ballotKey{key(7), key(6)}}},
		{"no state seen (a vote alone): vote at once",
			dutyInput{me: e, votes: []voteCandidate{{key: key(8), since: t0}}},
			dutyActions{vote: []ballotKey{key(8)}}},
		{"among the first a majority needs: vote at once",
			// Author a voted; b and c are the two more a majority needs.
			dutyInput{me: c, votes: []voteCandidate{{key: key(8), since: t0, state: true, author: a, voted: []crypto.MemberID{a}, voters: five}}},
			dutyActions{vote: []ballotKey{key(8)}}},
		{"behind them: hold back",
			dutyInput{me: d, votes: []voteCandidate{{key: key(8), since: t0, state: true, author: a, voted: []crypto.MemberID{a}, voters: five}}},
			dutyActions{}},
		{"behind them, after the hold-back: vote",
			dutyInput{me: d, now: t0.Add(holdBack), votes: []voteCandidate{{key: key(8), since: t0, state: true, author: a, voted: []crypto.MemberID{a}, voters: five}}},
			dutyActions{vote: []ballotKey{key(8)}}},
		{"one ahead voted already: the other ahead still votes",
			dutyInput{me: c, votes: []voteCandidate{{key: key(8), since: t0, state: true, author: a, voted: []crypto.MemberID{a, b}, voters: five}}},
			dutyActions{vote: []ballotKey{key(8)}}},
		{"one ahead voted already: those behind still hold back",
			dutyInput{me: d, votes: []voteCandidate{{key: key(8), since: t0, state: true, author: a, voted: []crypto.MemberID{a, b}, voters: five}}},
			dutyActions{}},
		{"the roster version not held here: vote at once",
			dutyInput{me: e, votes: []voteCandidate{{key: key(8), since: t0, state: true, author: a, voted: []crypto.MemberID{a}}}},
			dutyActions{vote: []ballotKey{key(8)}}},
		{"in index order",
			dutyInput{me: e, lastVoted: 3, votes: []voteCandidate{{key: key(9)}, {key: key(4)}, {key: key(12)}, {key: key(2)}}},
			dutyActions{forget: []ballotKey{key(2)}, vote: []ballotKey{key(4), key(9), key(12)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.now.IsZero() {
				in.now = t0
			}
			got := newDuties(every).step(in)
			if diff := cmp.Diff(tc.want, got, actionsOpts); diff != "" {
				t.Errorf("actions differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVoteNeeded(t *testing.T) {
	a, b, c, d, e := memberID(1), memberID(2), memberID(3), memberID(4), memberID(5)
	three, five := []crypto.MemberID{a, b, c}, []crypto.MemberID{a, b, c, d, e}
	for _, tc := range []struct {
		name   string
		me     crypto.MemberID
		voters []crypto.MemberID
		voted  []crypto.MemberID
		author crypto.MemberID
		want   bool
	}{
		{"3 voters, the author's vote in: the first other is needed", b, three, []crypto.MemberID{a}, a, true},
		{"3 voters, the author's vote in: the second other is not", c, three, []crypto.MemberID{a}, a, false},
		{"3 voters, the author last in order", a, three, []crypto.MemberID{c}, c, true},
		{"3 voters, a majority in: none needed", c, three, []crypto.MemberID{a, b}, a, false},
		{"5 voters: the first two others needed", c, five, []crypto.MemberID{a}, a, true},
		{"5 voters: the third other not", d, five, []crypto.MemberID{a}, a, false},
		{"5 voters, the author in the middle: the second is needed", b, five, []crypto.MemberID{c}, c, true},
		{"5 voters, the author in the middle: the one after it not", d, five, []crypto.MemberID{c}, c, false},
		{"5 voters, two votes in out of order: the one missing ahead is needed", b, five, []crypto.MemberID{a, c}, a, true},
		{"5 voters, two votes in out of order: the one behind it not", d, five, []crypto.MemberID{a, c}, a, false},
		{"not among the voters", memberID(9), three, []crypto.MemberID{a}, a, true},
		{"voters not known", c, nil, []crypto.MemberID{a}, a, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := voteNeeded(tc.me, voteCandidate{state: true, author: tc.author, voted: tc.voted, voters: tc.voters})
			if got != tc.want {
				t.Errorf("voteNeeded = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDutiesBase(t *testing.T) {
	in := func(applied, base, certified uint64) dutyInput {
		return dutyInput{applied: applied, base: base, certified: certified}
	}
	for _, tc := range []struct {
		name  string
		steps []stepCase
	}{
		{"no certificate: nothing", []stepCase{{in: in(5, 0, 0)}}},
		{"handed over once the state machine applied its index, and once only", []stepCase{
			{in: in(4, 0, 5)},
			{in: in(5, 0, 5), want: dutyActions{advanceBase: 5}},
			{in: in(6, 0, 5)}, // the base did not move (a contradiction): not again
			{in: in(9, 0, 8), want: dutyActions{advanceBase: 8}},
		}},
		{"the base stands there already (a restored snapshot)", []stepCase{
			{in: in(9, 8, 8)},
			{in: in(9, 9, 8)},
		}},
		{"a leader hands it over too", []stepCase{
			{in: dutyInput{leader: true, term: 2, applied: 5, certified: 5}, want: dutyActions{advanceBase: 5, checkpoint: true}, written: 5},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.steps) })
	}
}
