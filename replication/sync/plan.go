package sync

import (
	"fmt"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// numClasses is the number of priority classes: plain (roster, key), then
// log.Control, Flash, Immediate, Routine.
const numClasses = 5

// class returns an entry's priority class, 0 most urgent.
func class(e *log.Entry) int {
	if e.Header.Plain() {
		return 0
	}
	return 1 + int(e.Header.Priority)
}

// feedPlan is what to send of one author's feed: seqs (from, to], cut per
// class: cut[c] is the last seq to have sent once class c is done.
type feedPlan struct {
	author crypto.MemberID
	from   uint64
	to     uint64
	cut    [numClasses]uint64
}

// plan decides what the peer, whose frontier is theirs, lacks of ours.
// It reads the headers of the entries to send once (not kept in memory
// beyond one seq-indexed byte per entry) to place the priority cuts.
func plan(st *store.Store, theirs log.Frontier) ([]feedPlan, []*log.Entry, error) {
	mine := st.Frontier()
	var plans []feedPlan
	var evidence []*log.Entry
	for _, a := range mine.Authors() {
		h := mine[a]
		t, known := theirs[a]
		from := uint64(0)
		switch {
		case !known:
		case t.Seq < h.Seq:
			if t.Seq > 0 {
				id, err := idAt(st, a, t.Seq)
				if err != nil {
					return nil, nil, err
				}
				if id == t.ID {
					from = t.Seq
				} // else their history diverges: send the feed whole
			}
		case t.Seq == h.Seq && t.ID != h.ID:
			// Same length, other head: a fork they have not seen.
		default:
			from = h.Seq // nothing of the feed to send
		}
		if h.Forked && !(known && t.Forked) {
			ev, err := st.EvidenceOf(a)
			if err != nil {
				return nil, nil, err
			}
			evidence = append(evidence, ev...)
		}
		if from >= h.Seq {
			continue
		}
		p := feedPlan{author: a, from: from, to: h.Seq}
		if err := p.placeCuts(st); err != nil {
			return nil, nil, err
		}
		plans = append(plans, p)
	}
	return plans, evidence, nil
}

// placeCuts reads the feed range once and sets the cut of every class:
// the last entry of that class or more urgent, moved on to the next signed
// entry.
func (p *feedPlan) placeCuts(st *store.Store) error {
	var last [numClasses]uint64
	var signed []uint64
	after := p.from
	for after < p.to {
		es, err := st.Feed(p.author, after, 512)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if e.Header.Seq > p.to {
				break
			}
			c := class(e)
			for k := c; k < numClasses; k++ {
				last[k] = e.Header.Seq
			}
			if e.Signed() {
				signed = append(signed, e.Header.Seq)
			}
		}
		after = es[len(es)-1].Header.Seq
	}
	for c := range numClasses {
		cut := last[c]
		if cut == 0 {
			p.cut[c] = p.from
			continue
		}
		p.cut[c] = p.to // the head is always signed
		for _, s := range signed {
			if s >= cut {
				p.cut[c] = s
				break
			}
		}
	}
	p.cut[numClasses-1] = p.to
	return nil
}

func idAt(st *store.Store, author crypto.MemberID, seq uint64) (log.Hash, error) {
	es, err := st.Feed(author, seq-1, 1)
	if err != nil {
		return log.Hash{}, err
	}
	if len(es) == 0 || es[0].Header.Seq != seq {
		return log.Hash{}, fmt.Errorf("sync: own feed of %s lacks seq %d", author.Short(), seq)
	}
	return es[0].ID(), nil
}
