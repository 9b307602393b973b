package consensus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// loop watches the crisis log for proposals and checkpoints and does the
// leader's duties.
func (e *Engine) loop() {
	defer e.wg.Done()
	e.scanLog()
	tick := time.NewTicker(max(e.cfg.CheckpointEvery/4, 50*time.Millisecond))
	defer tick.Stop()
	var lastCheckpoint uint64
	var lastCheckpointAt time.Time
	var checkpointErr error             // the last checkpoint's error, to say a full disk once
	submitted := map[crisis.ID]uint64{} // command → term we submitted it in
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
		e.prunePending()
		e.voteDue()
		e.advanceBase()
		if !e.IsLeader() {
			continue
		}
		term := e.raft.CurrentTerm()
		e.syncRoster()
		e.syncMembers()
		e.mu.Lock()
		var toSubmit []*Pending
		for id, p := range e.pending {
			if submitted[id] != term {
				submitted[id] = term
				toSubmit = append(toSubmit, p)
			}
		}
		for id := range submitted {
			if _, still := e.pending[id]; !still {
				delete(submitted, id) // decided: forget it
			}
		}
		e.mu.Unlock()
		for _, p := range toSubmit {
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
		e.fsm.mu.RLock()
		applied := e.fsm.applied
		e.fsm.mu.RUnlock()
		if applied > lastCheckpoint && time.Since(lastCheckpointAt) >= e.cfg.CheckpointEvery {
			err := e.writeCheckpoint()
			switch {
			case err == nil:
				lastCheckpoint, lastCheckpointAt, checkpointErr = applied, time.Now(), nil
			case errors.Is(err, store.ErrDiskFull):
				// Said once per episode, retried every CheckpointEvery.
				lastCheckpointAt = time.Now()
				if !errors.Is(checkpointErr, store.ErrDiskFull) {
					e.logger.Warn("checkpoint not written until disk space is freed", "err", err)
				}
				checkpointErr = err
			default:
				e.logger.Warn("checkpoint not written", "err", err)
				checkpointErr = err
			}
		}
	}
}

func isRefusal(err error) bool { return errors.Is(err, crisis.ErrRefused) }

// scanLog reads proposals and checkpoints already in the log at start.
func (e *Engine) scanLog() {
	var after *log.OrderKey
	for {
		es, err := e.cfg.Store.Entries(after, 1024)
		if err != nil {
			e.logger.Warn("cannot scan the log for proposals", "err", err)
			return
		}
		if len(es) == 0 {
			return
		}
		for _, en := range es {
			e.observe(en)
		}
		k := es[len(es)-1].Order()
		after = &k
	}
}

// observe takes note of a proposal or checkpoint entry.
func (e *Engine) observe(en *log.Entry) {
	if en.Header.Plain() || en.Header.Priority != log.Control {
		return
	}
	body, err := e.cfg.Store.Read(en)
	if err != nil {
		return // sealed to a group we are not in, or not yet keyed
	}
	switch body.Kind {
	case log.KindProposal:
		sc, err := crisis.ParseSigned(body.Payload)
		if err != nil {
			e.logger.Warn("proposal entry holds no signed command", "entry", en.ID().Short(), "err", err)
			return
		}
		e.notePending(sc, en.ID())
	case log.KindCheckpoint:
		err := e.observeCheckpoint(en, body.Payload)
		switch {
		case errors.Is(err, errCheckpointForged), errors.Is(err, errCheckpointDigest), errors.Is(err, errCheckpointMalformed):
			e.cfg.Store.NoteOffence(en, OffenceCheckpoint, err.Error())
		case err != nil && !errors.Is(err, errCheckpointStale):
			e.logger.Debug("checkpoint not believed yet", "entry", en.ID().Short(), "author", en.Header.Author.Short(), "err", err)
		}
	}
}

// prunePending drops proposals whose outcome is known.
func (e *Engine) prunePending() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.pending {
		if _, ok := e.fsm.outcome(id); ok {
			delete(e.pending, id)
			continue
		}
		if cp := e.checkpoint; cp != nil {
			for _, o := range cp.Outcomes {
				if o.ID == id {
					delete(e.pending, id)
				}
			}
		}
	}
}

// syncRoster carries roster updates the log holds but Raft has not applied.
func (e *Engine) syncRoster() {
	e.fsm.mu.RLock()
	have := e.fsm.roster.Version()
	e.fsm.mu.RUnlock()
	if e.cfg.Store.Roster().Version() <= have {
		return
	}
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

// syncMembers makes the Raft configuration follow the roster: active
// voters vote, every other active member is a non-voter, revoked members
// are removed. Raft carries out the changes one server at a time (its
// leader takes the next only once the previous one is committed); a new
// voter is added before an old one is demoted, so the cluster never has
// fewer voters than it needs on the way.
func (e *Engine) syncMembers() {
	f := e.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	in := map[raft.ServerID]raft.ServerSuffrage{}
	for _, s := range f.Configuration().Servers {
		in[s.ID] = s.Suffrage
	}
	e.fsm.mu.RLock()
	r := e.fsm.roster
	e.fsm.mu.RUnlock()
	var demote []raft.ServerID
	for _, m := range r.Members() {
		id := ServerID(m.Card)
		suffrage, present := in[id]
		voter := r.IsVoter(m.Card.ID())
		switch {
		case m.Revoked && present:
			e.raft.RemoveServer(id, 0, 0)
		case m.Revoked:
		case voter && (!present || suffrage != raft.Voter):
			e.raft.AddVoter(id, raft.ServerAddress(id), 0, 0)
		case !voter && !present:
			e.raft.AddNonvoter(id, raft.ServerAddress(id), 0, 0)
		case !voter && suffrage == raft.Voter:
			demote = append(demote, id)
		}
	}
	for _, id := range demote {
		e.raft.DemoteVoter(id, 0, 0)
	}
}

// writeCheckpoint appends the committed state to the crisis log, with
// this voter's vote for it; the other voters add theirs (voteDue).
func (e *Engine) writeCheckpoint() error {
	e.fsm.mu.RLock()
	w, err := e.fsm.certWireLocked()
	e.fsm.mu.RUnlock()
	if err != nil {
		return err
	}
	if e.voterID() != (crypto.MemberID{}) {
		v, err := e.signStatement(w.Term, w.Index, w.Roster, [32]byte(w.Digest))
		if err != nil {
			return err
		}
		w.Votes = []voteWire{v}
	}
	if err := e.appendCheckpoint(&w); err != nil {
		return err
	}
	if len(w.Votes) > 0 {
		e.mu.Lock()
		e.lastVoted = max(e.lastVoted, w.Index)
		e.mu.Unlock()
	}
	return nil
}

// appendCheckpoint writes a checkpoint entry (a checkpoint or a vote).
func (e *Engine) appendCheckpoint(w *checkpointWire) error {
	key, ok := e.sealKey()
	if !ok {
		return errors.New("no group key to seal the checkpoint")
	}
	payload, err := crypto.MarshalCanonical(w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = e.cfg.Store.Append(ctx, log.Draft{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: key})
	return err
}

// newHCLogger sends hashicorp/raft's logs (warnings and up) to slog.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{l}, DisableTime: true})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)), "component", "raft")
	return len(p), nil
}
