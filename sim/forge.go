package sim

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/log"
)

// forge offers every node entries that must never be accepted: one that
// claims to be node a's but is signed by another member's key (forged),
// two that node a's own key signs but that are malformed for no honest
// reason (one that does not chain onto a's feed, one for another
// network), and one an Ed25519-only forger makes in a's name (a
// provisional signature, no composite: held waiting at most, never in a
// feed, and no fork proof).
func (r *netLayer) forge(ctx context.Context, a int) error {
	na := r.node(a)
	if na == nil {
		return fmt.Errorf("forge needs node %d running", a)
	}
	var signer *node.Node
	for i, n := range r.snapshot() {
		if n != nil && i != a {
			signer = n
			break
		}
	}
	if signer == nil {
		return fmt.Errorf("forge needs a second running node")
	}
	body := func(text string) []log.Draft {
		key, _ := signer.Store().CurrentKey("all")
		return []log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPGreen, Text: text}, Key: key}}
	}
	// Built as the signer, then claiming node a as author: the signature
	// no longer matches the author's key.
	es, err := log.Build(signer.Identity(), na.Store().Network(), log.Tip{}, 0, time.Now(), body("forged"))
	if err != nil {
		return err
	}
	forged, err := claimAuthor(es[0], na.Identity().ID())
	if err != nil {
		return err
	}
	// Signed by a itself, on top of a head that is not its own.
	head, _ := na.Store().Head(na.Identity().ID())
	badChain, err := log.Build(na.Identity(), na.Store().Network(), log.Tip{Seq: head.Seq, ID: sha256.Sum256([]byte("no such entry")), Lamport: head.Lamport},
		na.Store().MaxLamport(), time.Now(), body("does not chain"))
	if err != nil {
		return err
	}
	// Signed by a itself, for a network that is not this one.
	otherNet, err := log.Build(na.Identity(), crypto.NetworkID(sha256.Sum256([]byte("another network"))), log.Tip{}, 0, time.Now(), body("wrong network"))
	if err != nil {
		return err
	}
	// An Ed25519-only forger (a quantum adversary, or a thief of a's
	// Ed25519 seed alone): an entry in a's name at a's next seq, with a
	// valid provisional signature and no composite. Nodes may hold it
	// waiting, apart from the feed; none may take it into a feed, and it
	// must not freeze a's feed when a writes its own entry at that seq.
	edOnly, err := log.Build(na.Identity(), na.Store().Network(), log.Tip{Seq: head.Seq, ID: head.ID, Lamport: head.Lamport},
		na.Store().MaxLamport(), time.Now(), body("Ed25519 alone"))
	if err != nil {
		return err
	}
	provisional, err := edOnly[0].WithProvisional()
	if err != nil {
		return err
	}
	bad := []*log.Entry{forged, badChain[0], otherNet[0], provisional}
	r.mu.Lock()
	for _, e := range bad {
		r.forged = append(r.forged, e.ID())
	}
	r.edForged = append(r.edForged, na.Identity().ID())
	r.mu.Unlock()
	for _, n := range r.snapshot() {
		if n == nil {
			continue
		}
		for _, e := range bad {
			if _, err := n.Store().Ingest(ctx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimAuthor re-encodes e with another author in its header, keeping the
// original signature: a forgery every node must refuse.
func claimAuthor(e *log.Entry, author crypto.MemberID) (*log.Entry, error) {
	var hdr map[uint64]any
	if err := cbor.Unmarshal(e.HeaderBytes(), &hdr); err != nil {
		return nil, err
	}
	hdr[4] = author[:]
	header, err := crypto.MarshalCanonical(hdr)
	if err != nil {
		return nil, err
	}
	raw, err := crypto.MarshalCanonical(map[uint64][]byte{1: header, 2: e.BodyBytes(), 3: e.Signature()})
	if err != nil {
		return nil, err
	}
	return log.Decode(raw)
}
