package sim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// The attacks of one hostile member (issue 11's threat model). Each step
// does what a member node taken over by an attacker can do with its own
// key, and records what the checkers must then find: nothing shown that a
// quorum did not commit (forge-checkpoint), honest clocks not dragged
// (lamport-bomb), nothing shown that must not be believed (red-to-all),
// and — through the readers checker — no group key taken that lets the
// attacker read what it was not sent (substitute-key).

// A bomb is an entry at the top of the Lamport clock.
type bomb struct {
	author  crypto.MemberID
	lamport uint64
}

// forgedCheckpointIndex is where a hostile voter claims the crisis is.
const forgedCheckpointIndex = 1 << 62

// forgeCheckpoint has voter a write a checkpoint saying the crisis is
// closed at index 2^62, with its own vote.
func (r *netLayer) forgeCheckpoint(ctx context.Context, a int) error {
	na := r.node(a)
	if na == nil {
		return fmt.Errorf("forge-checkpoint needs node %d running", a)
	}
	if !na.Store().Roster().IsVoter(na.Identity().ID()) {
		return fmt.Errorf("forge-checkpoint: node%d is no voter (only a voter's vote could count)", a)
	}
	v := na.Consensus().Local()
	st := v.State.Clone()
	st.Status, st.Level = crisis.StatusClosed, 0
	payload, err := consensus.CheckpointPayload(na.Identity(), na.Store().Network(), st, v.Term, forgedCheckpointIndex, na.Store().Roster().Version())
	if err != nil {
		return err
	}
	key, ok := na.Store().CurrentKey("all")
	if !ok {
		return errors.New("forge-checkpoint: the attacker holds no network key yet")
	}
	_, err = na.Store().Append(ctx, log.Draft{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: key})
	r.e.logf("  node%d (voter) wrote a checkpoint claiming the crisis closed at index %d", a, uint64(forgedCheckpointIndex))
	return err
}

// lamportBomb has node a write an entry at the top of the Lamport clock.
func (r *netLayer) lamportBomb(ctx context.Context, a int) error {
	na := r.node(a)
	if na == nil {
		return fmt.Errorf("lamport-bomb needs node %d running", a)
	}
	id := na.Identity()
	key, ok := na.Store().CurrentKey("all")
	if !ok {
		return errors.New("lamport-bomb: the attacker holds no network key yet")
	}
	head, _ := na.Store().Head(id.ID())
	es, err := log.Build(id, na.Store().Network(), log.Tip{Seq: head.Seq, ID: head.ID, Lamport: head.Lamport}, log.MaxLamport-2, time.Now(),
		[]log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPGreen, Text: "clock bomb"}, Key: key}})
	if err != nil {
		return err
	}
	res, err := na.Store().Ingest(ctx, es...)
	if err != nil {
		return err
	}
	if len(res.Added) != 1 {
		return fmt.Errorf("lamport-bomb: the attacker's own store did not take the entry: %v", res.Rejected)
	}
	r.mu.Lock()
	r.bombs = append(r.bombs, bomb{author: id.ID(), lamport: es[0].Header.Lamport})
	r.mu.Unlock()
	r.e.logf("  node%d wrote an entry at Lamport clock %d", a, es[0].Header.Lamport)
	return nil
}

// redToAll has node a write, as its next entry, what log.Build refuses to
// write: a TLP:RED message sealed under the whole network's key.
func (r *netLayer) redToAll(ctx context.Context, a int) error {
	na := r.node(a)
	if na == nil {
		return fmt.Errorf("red-to-all needs node %d running", a)
	}
	id, network := na.Identity(), na.Store().Network()
	key, ok := na.Store().CurrentKey("all")
	if !ok {
		return errors.New("red-to-all: the attacker holds no network key yet")
	}
	head, _ := na.Store().Head(id.ID())
	es, err := log.Build(id, network, log.Tip{Seq: head.Seq, ID: head.ID, Lamport: head.Lamport}, na.Store().MaxLamport(), time.Now(),
		[]log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: "placeholder"}, Key: key}})
	if err != nil {
		return err
	}
	plain, err := (&log.Body{Kind: log.KindMessage, TLP: log.TLPRed, Text: "RED, sealed to everyone"}).Encode()
	if err != nil {
		return err
	}
	body, err := crypto.SealWith(key, network, es[0].HeaderBytes(), plain)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write([]byte("crisismesh/entry-id/v1\x00")) // log's entry ID domain
	h.Write(es[0].HeaderBytes())
	h.Write(body)
	sig, err := id.Sign(crypto.ContextEntry, h.Sum(nil))
	if err != nil {
		return err
	}
	raw, err := crypto.MarshalCanonical(map[uint64][]byte{1: es[0].HeaderBytes(), 2: body, 3: sig})
	if err != nil {
		return err
	}
	e, err := log.Decode(raw)
	if err != nil {
		return err
	}
	res, err := na.Store().Ingest(ctx, e)
	if err != nil {
		return err
	}
	if len(res.Added) != 1 {
		return fmt.Errorf("red-to-all: the entry is valid and must be stored: %v", res.Rejected)
	}
	r.mu.Lock()
	r.disbelieved = append(r.disbelieved, e.ID())
	r.mu.Unlock()
	r.e.logf("  node%d wrote a TLP:RED entry sealed to the whole network", a)
	return nil
}

// substituteKey has node a issue a key for the recipient group of targets
// at a far epoch, sealed to them and to a.
func (r *netLayer) substituteKey(ctx context.Context, a int, targets []int) error {
	na := r.node(a)
	if na == nil {
		return fmt.Errorf("substitute-key needs node %d running", a)
	}
	var ids []crypto.MemberID
	var recips []crypto.Recipient
	roster := na.Store().Roster()
	for _, t := range targets {
		m, ok := roster.ByName(r.specs[t].Name)
		if !ok {
			return fmt.Errorf("substitute-key: node%d is not in the roster", t)
		}
		ids = append(ids, m.Card.ID())
		recips = append(recips, m.Card.Recipient())
	}
	k, err := crypto.NewGroupKey(log.RecipientGroup(ids), 1000)
	if err != nil {
		return err
	}
	if _, err := na.Store().AppendKey(ctx, k, recips); err != nil {
		return err
	}
	r.e.logf("  node%d issued a key for the group of %v sealed to itself too", a, targets)
	return nil
}

// checkNotShown: every node that holds an entry it must not believe
// refuses to show it.
func checkNotShown(ns []running, ids []log.Hash) error {
	for _, rn := range ns {
		for _, id := range ids {
			e, err := rn.node.Store().Get(id)
			if err != nil {
				continue // not here yet
			}
			if _, err := rn.node.Store().Read(e); !errors.Is(err, log.ErrNotBelieved) {
				return fmt.Errorf("node%d reads entry %s (err %v), which it must not believe", rn.index, id.Short(), err)
			}
		}
	}
	return nil
}

// checkClocks: no honest member builds on a bomb's clock.
func checkClocks(ns []running, bombs []bomb) error {
	for _, rn := range ns {
		me := rn.node.Identity().ID()
		h, ok := rn.node.Store().Head(me)
		if !ok {
			continue
		}
		for _, b := range bombs {
			if b.author != me && h.Lamport+log.MaxJump >= b.lamport {
				return fmt.Errorf("node%d's own clock is at %d: dragged by the bomb at %d", rn.index, h.Lamport, b.lamport)
			}
		}
	}
	return nil
}

// checkShownCommitted: no node shows a crisis state beyond the newest
// index any node's Raft applied (a checkpoint no quorum committed).
func checkShownCommitted(ns []running) error {
	var applied uint64
	var shown []shownView
	for _, rn := range ns {
		applied = max(applied, rn.node.Consensus().Raft().AppliedIndex())
	}
	for _, rn := range ns {
		v := rn.node.Consensus().Local()
		shown = append(shown, shownView{rn.index, v.Index, v.Source, fmt.Sprint(v.State.Status)})
	}
	return shownWithin(applied, shown)
}

// A shownView is what one node shows of the crisis.
type shownView struct {
	node   int
	index  uint64
	source string
	status string
}

func shownWithin(applied uint64, shown []shownView) error {
	for _, v := range shown {
		if v.index > applied {
			return fmt.Errorf("node%d shows the crisis %s at index %d (from %s), beyond anything Raft applied (%d)",
				v.node, v.status, v.index, v.source, applied)
		}
	}
	return nil
}
