package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// ViewEntry reads an entry for display, opening it if this node can.
func (n *Node) ViewEntry(e *log.Entry) EntryView {
	v := EntryView{
		ID: e.ID().String(), AuthorID: e.Header.Author.String(), Author: e.Header.Author.Short(),
		Seq: e.Header.Seq, Lamport: e.Header.Lamport, Time: time.UnixMilli(e.Header.Time).UTC(),
		Priority: e.Header.Priority.String(),
	}
	if m, ok := n.store.Roster().Member(e.Header.Author); ok {
		v.Author = m.Card.Name()
	}
	for _, r := range e.Header.Refs {
		v.Refs = append(v.Refs, r.String())
	}
	body, err := n.store.Read(e)
	var nb *log.NotBelievedError
	if errors.As(err, &nb) {
		// Valid, but breaks a rule no honest author breaks: show none of
		// it, only why.
		v.NotBelieved = nb.Rule
	}
	if err != nil {
		v.Sealed = err.Error()
		return v
	}
	v.Readable, v.Kind, v.TLP, v.Text, v.Exercise = true, string(body.Kind), string(body.TLP), body.Text, body.Exercise
	v.RSITClass, v.RSITType, v.Sectors, v.Impact, v.Outlook = body.RSITClass, body.RSITType, body.Sectors, body.Impact, body.Outlook
	if v.Text == "" {
		v.Text = n.describePayload(body)
	}
	v.Bridged = bridgedView(body)
	return v
}

// describePayload says in words what a system entry carries.
func (n *Node) describePayload(b *log.Body) string {
	switch b.Kind {
	case log.KindProposal:
		if sc, err := crisis.ParseSigned(b.Payload); err == nil {
			who := sc.Signer().Short()
			if m, ok := n.store.Roster().Member(sc.Signer()); ok {
				who = m.Card.Name()
			}
			return fmt.Sprintf("proposes %s (signed by %s, command %s)", sc.Command().Kind, who, sc.ID().String()[:8])
		}
	case log.KindCheckpoint:
		return consensus.DescribeCheckpoint(b.Payload)
	case log.KindKey:
		if ke, err := crypto.ParseKeyEnvelope(b.Payload); err == nil {
			// Group and members are sealed (format 2): say only what is
			// in clear.
			return fmt.Sprintf("group key %s epoch %d for %d members", ke.KeyID(), ke.Epoch(), ke.Slots())
		}
	case log.KindRoster:
		if u, err := crypto.ParseUpdate(b.Payload); err == nil {
			return fmt.Sprintf("roster update %d: %s", u.Version(), u.Op())
		}
	}
	return ""
}

// Post writes an entry and returns once it is durable locally.
func (n *Node) Post(ctx context.Context, req PostRequest) (*log.Entry, error) {
	return n.post(ctx, req, nil)
}

// post writes an entry with a payload (a bridged message's origin).
func (n *Node) post(ctx context.Context, req PostRequest, payload []byte) (*log.Entry, error) {
	if req.Kind == "" {
		req.Kind = string(log.KindMessage)
	}
	if req.TLP == "" {
		req.TLP = string(log.TLPAmber)
	}
	if req.Priority == "" {
		req.Priority = "routine"
	}
	prio, err := log.ParsePriority(req.Priority)
	if err != nil || prio == log.Control {
		return nil, fmt.Errorf("priority %q: want flash, immediate or routine", req.Priority)
	}
	kind := log.Kind(req.Kind)
	switch kind {
	case log.KindIncident, log.KindSitrep, log.KindRequest, log.KindDecision, log.KindMessage, log.KindAck:
	default:
		return nil, fmt.Errorf("kind %q: want incident, sitrep, request, decision, message or ack", req.Kind)
	}
	d := log.Draft{Body: log.Body{Kind: kind, TLP: log.TLP(req.TLP), Text: req.Text,
		RSITClass: req.RSITClass, RSITType: req.RSITType, Sectors: req.Sectors, Impact: req.Impact, Outlook: req.Outlook,
		Payload: payload}, Priority: prio}
	// Written while an exercise is open (as this node knows the crisis
	// state), the entry is marked as exercise, so that no reader, export
	// or bridge mistakes it for the real thing.
	d.Body.Exercise = n.exerciseOpen()
	if err := d.Body.Validate(); err != nil {
		return nil, err
	}
	for _, r := range req.Refs {
		h, err := n.resolveEntry(r)
		if err != nil {
			return nil, err
		}
		d.Refs = append(d.Refs, h)
	}
	switch {
	case len(req.To) > 0 && req.Group != "":
		return nil, errors.New("--to and --group exclude each other: seal to named members or to a group")
	case len(req.To) > 0:
		if d.Key, err = n.recipientKey(ctx, req.To); err != nil {
			return nil, err
		}
	case req.Group != "":
		if d.Key, err = n.groupWriteKey(ctx, req.Group, log.TLP(req.TLP)); err != nil {
			return nil, err
		}
	default:
		if log.TLP(req.TLP) == log.TLPRed {
			return nil, errors.New("TLP:RED goes to named recipients only: add --to NAME,…")
		}
		key, ok := n.store.NetworkKey()
		if !ok {
			return nil, errors.New("this node holds no network key yet: it arrives from an admin node once connected; check 'crisismesh status'")
		}
		d.Key = key
	}
	es, err := n.store.Append(ctx, d)
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// groupWriteKey returns the key to seal a post to the named group under,
// issuing a new epoch if the group changed since its last key.
func (n *Node) groupWriteKey(ctx context.Context, group string, tlp log.TLP) (*crypto.GroupKey, error) {
	if tlp == log.TLPRed {
		return nil, errors.New("TLP:RED goes to named recipients only (--to NAME,…), not to a group: a group changes, a recipient set does not")
	}
	ids, ok := n.store.Roster().Group(group)
	switch {
	case !ok:
		return nil, fmt.Errorf("--group %s: no such group (crisismesh group list)", group)
	case !slices.Contains(ids, n.id.ID()):
		return nil, fmt.Errorf("--group %s: %s is not a member of it; only its members post to it", group, n.id.Name())
	}
	if k, _, ok := n.store.GroupKey(group); ok {
		return k, nil
	}
	return n.newGroupEpoch(ctx, group)
}

// recipientKey returns a group key for exactly these members (and this
// node), creating and distributing it on first use. Only a key the store's
// keyring trusts for exactly this set is reused (log.DeriveKeyring): a key
// someone else slipped in under the group's name is not.
func (n *Node) recipientKey(ctx context.Context, names []string) (*crypto.GroupKey, error) {
	r := n.store.Roster()
	ids := []crypto.MemberID{n.id.ID()}
	recips := []crypto.Recipient{n.id.Card().Recipient()}
	for _, name := range names {
		m, ok := r.ByName(strings.TrimSpace(name))
		if !ok || m.Revoked {
			return nil, fmt.Errorf("--to %s: no active member of that name", name)
		}
		if !slices.Contains(ids, m.Card.ID()) {
			ids = append(ids, m.Card.ID())
			recips = append(recips, m.Card.Recipient())
		}
	}
	if k, ok := n.store.KeyFor(ids); ok {
		return k, nil
	}
	k, err := crypto.NewGroupKey(log.RecipientGroup(ids), 1)
	if err != nil {
		return nil, err
	}
	if _, err := n.store.AppendKey(ctx, k, recips); err != nil {
		return nil, err
	}
	return k, nil
}

// Entries returns up to limit entries in display order after the entry
// with ID after ("" from the start).
func (n *Node) Entries(after string, limit int) ([]EntryView, error) {
	var from *log.OrderKey
	if after != "" {
		h, err := n.resolveEntry(after)
		if err != nil {
			return nil, err
		}
		e, err := n.store.Get(h)
		if err != nil {
			return nil, err
		}
		k := e.Order()
		from = &k
	}
	es, err := n.store.Entries(from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]EntryView, 0, len(es))
	for _, e := range es {
		out = append(out, n.ViewEntry(e))
	}
	return out, nil
}

// exerciseOpen reports whether an exercise is open, as this node knows
// the crisis state: what is written now is marked as exercise.
func (n *Node) exerciseOpen() bool {
	st := n.engine.Local().State
	return st.Exercise && st.Status == crisis.StatusOpen
}
