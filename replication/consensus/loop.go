package consensus

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/store"
)

// loop watches the crisis log for proposals and checkpoints and does the
// duties: each time something may have changed, it gathers the input of
// the duties step (leader.go), lets it decide, and carries out what it
// decided.
func (e *Engine) loop() {
	defer e.wg.Done()
	e.scanLog()
	tick := time.NewTicker(max(e.cfg.CheckpointEvery/4, 50*time.Millisecond))
	defer tick.Stop()
	d := newDuties(e.cfg.CheckpointEvery)
	for {
		select {
		case <-e.stop:
			return
		case batch, ok := <-e.sub.C:
			if !ok {
				return
			}
			for _, en := range batch {
				e.observe(en)
			}
		case <-e.fsm.notify:
		case <-tick.C:
		}
		in, cp := e.dutyInput(time.Now())
		e.carryOut(d, in, d.step(in), cp)
	}
}

// dutyInput gathers what the duties step needs at now (the monotonic
// clock), and the certified checkpoint whose index it names.
func (e *Engine) dutyInput(now time.Time) (dutyInput, *Checkpoint) {
	in := dutyInput{now: now, me: e.cfg.Identity.ID()}
	st := e.fsm.status()
	in.applied, in.base = st.applied, st.base
	in.votes, in.lastVoted = e.voteCandidates()
	e.mu.Lock()
	cp := e.checkpoint
	if cp != nil {
		in.certified = cp.Index
	}
	for id := range e.pending {
		decided := false
		if _, ok := e.fsm.outcome(id); ok {
			decided = true
		} else if cp != nil {
			for _, o := range cp.Outcomes {
				decided = decided || o.ID == id
			}
		}
		in.pending = append(in.pending, pendingProposal{id: id, decided: decided})
	}
	e.mu.Unlock()
	if in.leader = e.IsLeader(); !in.leader {
		return in, cp
	}
	in.term = e.raft.CurrentTerm()
	in.rosterRaft, in.rosterLog = st.roster.Version(), e.cfg.Store.Roster().Version()
	if f := e.raft.GetConfiguration(); f.Error() == nil {
		in.servers = map[raft.ServerID]raft.ServerSuffrage{}
		for _, s := range f.Configuration().Servers {
			in.servers[s.ID] = s.Suffrage
		}
	}
	for _, m := range st.roster.Members() {
		in.members = append(in.members, dutyMember{server: ServerID(m.Card), revoked: m.Revoked, voter: st.roster.IsVoter(m.Card.ID())})
	}
	return in, cp
}

// carryOut does what the duties step decided on in; cp is the certified
// checkpoint in names.
func (e *Engine) carryOut(d *duties, in dutyInput, a dutyActions, cp *Checkpoint) {
	if len(a.drop) > 0 {
		e.mu.Lock()
		for _, id := range a.drop {
			delete(e.pending, id)
		}
		e.mu.Unlock()
	}
	e.forgetVotes(a.forget)
	e.castVotes(a.vote)
	if a.advanceBase != 0 && cp != nil && cp.Index == a.advanceBase {
		e.advanceBase(cp)
	}
	if a.carryRoster {
		e.carryRoster(in.rosterRaft)
	}
	for _, id := range a.remove {
		e.raft.RemoveServer(id, 0, 0)
	}
	for _, id := range a.addVoter {
		e.raft.AddVoter(id, raft.ServerAddress(id), 0, 0)
	}
	for _, id := range a.addNonvoter {
		e.raft.AddNonvoter(id, raft.ServerAddress(id), 0, 0)
	}
	for _, id := range a.demote {
		e.raft.DemoteVoter(id, 0, 0)
	}
	e.submit(a.submit)
	if a.checkpoint {
		index, err := e.writeCheckpoint()
		if d.checkpointed(index, time.Now(), err) {
			if errors.Is(err, store.ErrDiskFull) {
				e.logger.Warn("checkpoint not written until disk space is freed", "err", err)
			} else {
				e.logger.Warn("checkpoint not written", "err", err)
			}
		}
	}
}

// submit submits pending proposals to Raft, each on a goroutine of its
// own (the engine waits for them on Close).
func (e *Engine) submit(ids []crisis.ID) {
	e.mu.Lock()
	var ps []*Pending
	for _, id := range ids {
		if p := e.pending[id]; p != nil {
			ps = append(ps, p)
		}
	}
	e.mu.Unlock()
	for _, p := range ps {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*e.cfg.Timing.Election)
			defer cancel()
			if _, err := e.apply(ctx, entryCommand, p.signed.Bytes()); err != nil && !isRefusal(err) {
				e.logger.Debug("proposal not committed", "command", p.signed.ID(), "err", err)
			}
		}()
	}
}

func isRefusal(err error) bool { return errors.Is(err, crisis.ErrRefused) }

// carryRoster carries into Raft the roster updates the log holds above
// version have, the one the state machine applied.
func (e *Engine) carryRoster(have uint64) {
	updates, err := e.cfg.Store.RosterUpdates()
	if err != nil {
		return
	}
	for _, u := range updates {
		if u.Update.Version() <= have {
			continue
		}
		raw, err := u.Bytes()
		if err != nil {
			e.logger.Error("roster update not encoded", "version", u.Update.Version(), "err", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*e.cfg.Timing.Election)
		_, err = e.apply(ctx, entryRoster, raw)
		cancel()
		if err != nil {
			e.logger.Warn("roster update not carried into Raft", "version", u.Update.Version(), "err", err)
			return
		}
	}
}
