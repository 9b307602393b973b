package consensus

import (
	"errors"

	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// What the engine reads of the crisis log: proposals (pending until
// decided) and checkpoint entries (states and votes, see certify.go).

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
