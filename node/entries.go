package node

import (
	"context"
	cryptorand "crypto/rand"
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

// PostRequest is an entry a person writes. JSON field names are part of the
// API contract.
type PostRequest struct {
	Kind     string   `json:"kind"`     // default "message"
	TLP      string   `json:"tlp"`      // default "amber"
	Priority string   `json:"priority"` // default "routine"
	Text     string   `json:"text"`
	To       []string `json:"to,omitempty"` // member names: seal to them only
	Refs     []string `json:"refs,omitempty"`
}

// EntryView is an entry as people and scripts read it.
type EntryView struct {
	ID       string    `json:"id"`
	Author   string    `json:"author"` // member name (or ID if unknown)
	AuthorID string    `json:"author_id"`
	Seq      uint64    `json:"seq"`
	Lamport  uint64    `json:"lamport"`
	Time     time.Time `json:"time"`
	Priority string    `json:"priority"`
	Readable bool      `json:"readable"`
	Kind     string    `json:"kind"` // "" when sealed to a group this node is not in
	TLP      string    `json:"tlp"`
	Text     string    `json:"text"`
	Exercise bool      `json:"exercise,omitempty"`
	Sealed   string    `json:"sealed,omitempty"` // why it cannot be read
	// NotBelieved names the rule an entry this node does not believe
	// breaks (e.g. red-not-to-recipients); its body is never shown.
	NotBelieved string   `json:"not_believed,omitempty"`
	Refs        []string `json:"refs,omitempty"`
}

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
	if v.Text == "" {
		v.Text = n.describePayload(body)
	}
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
	d := log.Draft{Body: log.Body{Kind: kind, TLP: log.TLP(req.TLP), Text: req.Text}, Priority: prio}
	for _, r := range req.Refs {
		h, err := log.ParseHash(r)
		if err != nil {
			return nil, err
		}
		d.Refs = append(d.Refs, h)
	}
	if len(req.To) > 0 {
		if d.Key, err = n.recipientKey(ctx, req.To); err != nil {
			return nil, err
		}
	} else {
		if log.TLP(req.TLP) == log.TLPRed {
			return nil, errors.New("TLP:RED goes to named recipients only: add --to NAME,…")
		}
		key, ok := n.store.CurrentKey(networkGroup)
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

// CrisisView is the crisis state as people and scripts read it.
type CrisisView struct {
	Status       string            `json:"status"`
	Crisis       string            `json:"crisis_id,omitempty"`
	Title        string            `json:"title,omitempty"`
	Level        int               `json:"level"`
	IPCRMode     string            `json:"ipcr_mode"`
	Phase        string            `json:"phase"`
	Exercise     bool              `json:"exercise"`
	Affected     []string          `json:"affected_states"`
	Sectors      []string          `json:"sectors"`
	Impact       string            `json:"impact,omitempty"`
	Outlook      string            `json:"outlook,omitempty"`
	RootCause    string            `json:"root_cause,omitempty"`
	Lead         string            `json:"lead,omitempty"`
	Source       string            `json:"source"`                // "raft" (this node's own Raft state machine) or "checkpoint" (certified)
	Signers      []string          `json:"signers"`               // the voters whose votes certify a checkpoint's state (names); empty for raft
	Certified    uint64            `json:"certified_index"`       // newest index a majority of the voters certified (0: none yet)
	Diverged     uint64            `json:"diverged_at,omitempty"` // a certificate contradicts this node's own Raft state at this index
	AppliedIndex uint64            `json:"applied_index"`
	Term         uint64            `json:"term"`
	AgeMS        int64             `json:"age_ms"` // since the last contact with a leader; -1: never
	Leader       bool              `json:"leader"`
	Pending      []PendingView     `json:"pending"`
	Requests     []RequestView     `json:"reserve_requests"`
	Recent       []OutcomeView     `json:"recent"`
	Summary      string            `json:"summary"`
	Decisions    []crisis.Decision `json:"-"`
}

// PendingView is a provisional decision.
type PendingView struct {
	Command string    `json:"command"`
	Kind    string    `json:"kind"`
	Signer  string    `json:"signer"`
	Seen    time.Time `json:"seen"`
}

// RequestView is a Reserve request.
type RequestView struct {
	ID       string    `json:"id"`
	Sector   string    `json:"sector"`
	Services []string  `json:"services"`
	Status   string    `json:"status"`
	Deadline time.Time `json:"deadline"`
	LeftMS   int64     `json:"left_ms"`
}

// OutcomeView is what became of a command.
type OutcomeView struct {
	Command string `json:"command"`
	Term    uint64 `json:"term"`
	Index   uint64 `json:"index"`
	Refused string `json:"refused,omitempty"`
}

// Crisis returns the crisis state: local (newest known, with its age) or,
// with linearizable, confirmed by the leader's quorum (leader only).
func (n *Node) Crisis(ctx context.Context, linearizable bool) (CrisisView, error) {
	var v consensus.View
	if linearizable {
		var err error
		if v, err = n.engine.Linearizable(ctx); err != nil {
			return CrisisView{}, err
		}
	} else {
		v = n.engine.Local()
	}
	s := v.State
	cv := CrisisView{
		Status: fmt.Sprint(s.Status), Title: s.Title, Level: int(s.Level), IPCRMode: fmt.Sprint(s.Mode), Phase: fmt.Sprint(s.Phase),
		Exercise: s.Exercise, Affected: orEmpty(s.Affected), Sectors: orEmpty(s.Sectors), Impact: s.Severity, Outlook: s.Outlook,
		RootCause: s.RootCause, Lead: s.LeadName, Source: v.Source, AppliedIndex: v.Index, Term: v.Term, Leader: v.Leader,
		AgeMS: -1, Pending: []PendingView{}, Requests: []RequestView{}, Recent: []OutcomeView{}, Summary: s.Summary(),
		Signers: []string{}, Certified: v.Certified, Diverged: v.Diverged,
	}
	r := n.store.Roster()
	for _, id := range v.Signers {
		name := id.Short()
		if m, ok := r.Member(id); ok {
			name = m.Card.Name()
		}
		cv.Signers = append(cv.Signers, name)
	}
	if s.Crisis != (crisis.ID{}) {
		cv.Crisis = s.Crisis.String()
	}
	if !v.LeaderContact.IsZero() {
		cv.AgeMS = v.Age.Milliseconds()
	}
	for _, p := range v.Provisional {
		cv.Pending = append(cv.Pending, PendingView{Command: p.Command.ID.String(), Kind: string(p.Command.Kind), Signer: p.Signer.Short(), Seen: p.Seen})
	}
	now := n.now()
	for _, r := range s.Requests {
		cv.Requests = append(cv.Requests, RequestView{ID: r.ID.String(), Sector: r.Sector, Services: r.Services,
			Status: fmt.Sprint(r.Status), Deadline: r.Deadline, LeftMS: r.Deadline.Sub(now).Milliseconds()})
	}
	for _, o := range v.Recent {
		cv.Recent = append(cv.Recent, OutcomeView{Command: o.ID.String(), Term: o.Term, Index: o.Index, Refused: o.Refused})
	}
	return cv, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CommandResult says what became of a crisis command.
type CommandResult struct {
	Status string     `json:"status"` // committed, pending or refused
	Rule   string     `json:"rule,omitempty"`
	Detail string     `json:"detail,omitempty"`
	ID     string     `json:"command"`
	Term   uint64     `json:"term,omitempty"`
	Index  uint64     `json:"index,omitempty"`
	Crisis CrisisView `json:"crisis"`
}

// Command signs cmd as this node's member and submits it: committed at
// once on the leader, or proposed through the log elsewhere (pending).
func (n *Node) Command(ctx context.Context, cmd crisis.Command) (CommandResult, error) {
	if cmd.ID == (crisis.ID{}) {
		if _, err := randRead(cmd.ID[:]); err != nil {
			return CommandResult{}, err
		}
	}
	if cmd.Kind != crisis.KindOpen && cmd.Crisis == (crisis.ID{}) {
		cmd.Crisis = n.engine.Local().State.Crisis
	}
	sc, err := crisis.Sign(n.id, n.store.Network(), cmd)
	if err != nil {
		return CommandResult{Status: "refused", Rule: "malformed", Detail: err.Error(), ID: cmd.ID.String()}, nil
	}
	res := CommandResult{ID: sc.ID().String()}
	r, err := n.engine.Propose(ctx, sc)
	var ref *crisis.Refusal
	switch {
	case err == nil:
		res.Status, res.Term, res.Index = "committed", r.Term, r.Index
	case errors.Is(err, consensus.ErrProposed):
		res.Status = "pending"
	case errors.As(err, &ref):
		res.Status, res.Rule, res.Detail = "refused", ref.Rule, ref.Detail
	default:
		return res, err
	}
	res.Crisis, _ = n.Crisis(ctx, false)
	return res, nil
}

// StatusView is the node's status. Field names are a contract.
type StatusView struct {
	Member      string     `json:"member"`
	MemberID    string     `json:"member_id"`
	PeerID      string     `json:"peer_id"`
	Network     string     `json:"network_id"`
	ListenAddrs []string   `json:"listen_addrs"`
	Entries     uint64     `json:"entries"`
	Digest      string     `json:"digest"`
	Forks       int        `json:"forks"`
	Peers       []PeerView `json:"peers"`
	Raft        RaftView   `json:"raft"`
	Crisis      CrisisView `json:"crisis"`
	// DiskFull is true while the store refuses writes for lack of disk
	// space; Disk says how much is free against the reserve.
	DiskFull bool     `json:"disk_full"`
	Disk     DiskView `json:"disk"`
	// Offences: per member and rule, how many of its entries this node
	// refused to trust (key entries) or believe (valid entries that break
	// a rule, e.g. TLP:RED sealed to everyone). Empty when none.
	Offences []OffenceView `json:"offences"`
}

// OffenceView counts one member's entries refused for one rule. Field
// names are a contract.
type OffenceView struct {
	Member   string `json:"member"`
	MemberID string `json:"member_id"`
	Rule     string `json:"rule"`
	Entries  int    `json:"entries"`
}

// DiskView is the store's disk space. Field names are a contract.
type DiskView struct {
	Dir          string `json:"dir"`
	FreeBytes    uint64 `json:"free_bytes"`
	ReserveBytes uint64 `json:"reserve_bytes"`
	Full         bool   `json:"full"`
	// Message says what to do when Full, or why free space is unknown.
	Message string `json:"message,omitempty"`
}

// PeerView is one member's link as this node sees it.
type PeerView struct {
	Member    string     `json:"member"`
	PeerID    string     `json:"peer_id"`
	Connected bool       `json:"connected"`
	RTTMS     float64    `json:"rtt_ms"`
	Profile   string     `json:"profile"`
	LastSync  *time.Time `json:"last_sync"`
	Behind    int64      `json:"behind"` // entries we hold that it lacks, as last seen
}

// RaftView is this node's Raft member.
type RaftView struct {
	Role          string `json:"role"`
	Leader        string `json:"leader"`
	Term          uint64 `json:"term"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastContactMS int64  `json:"last_contact_ms"`
}

// Status returns the node's status.
func (n *Node) Status(ctx context.Context) StatusView {
	st := n.store
	f := st.Frontier()
	var count uint64
	for _, h := range f {
		count += h.Seq
	}
	sv := StatusView{
		Member: n.id.Name(), MemberID: n.id.ID().String(), PeerID: n.host.ID().String(), Network: st.Network().String(),
		Entries: count, Digest: st.Digest().String(), Forks: len(st.Forks()), Peers: []PeerView{},
		Disk: n.diskView(),
	}
	sv.DiskFull = sv.Disk.Full
	sv.Offences = []OffenceView{}
	for _, o := range st.Offences() {
		name := o.Author.Short()
		if m, ok := st.Roster().Member(o.Author); ok {
			name = m.Card.Name()
		}
		sv.Offences = append(sv.Offences, OffenceView{Member: name, MemberID: o.Author.String(), Rule: o.Rule, Entries: o.Entries})
	}
	for _, a := range n.host.Addrs() {
		sv.ListenAddrs = append(sv.ListenAddrs, a.String())
	}
	stats := map[string]syncStats{}
	for _, ps := range n.sync.Peers() {
		stats[ps.Peer.String()] = syncStats{lastSync: ps.LastSync, frontier: ps.LastFrontier}
	}
	for _, m := range st.Roster().Members() {
		if m.Revoked || m.Card.ID() == n.id.ID() {
			continue
		}
		pid := m.Card.PeerID()
		pv := PeerView{Member: m.Card.Name(), PeerID: pid.String(), Profile: n.host.ProfileFor(pid).Name}
		pv.Connected = len(n.host.Host().Network().ConnsToPeer(pid)) > 0
		pv.RTTMS = float64(n.host.Host().Peerstore().LatencyEWMA(pid).Microseconds()) / 1000
		if s, ok := stats[pid.String()]; ok {
			if !s.lastSync.IsZero() {
				t := s.lastSync.UTC()
				pv.LastSync = &t
			}
			if s.frontier != nil {
				for a, h := range f {
					if o := s.frontier[a]; h.Seq > o.Seq {
						pv.Behind += int64(h.Seq - o.Seq)
					}
				}
			}
		}
		sv.Peers = append(sv.Peers, pv)
	}
	r := n.engine.Raft()
	leaderAddr, leaderID := r.LeaderWithID()
	_ = leaderAddr
	sv.Raft = RaftView{Role: strings.ToLower(r.State().String()), Leader: n.peerName(string(leaderID)), Term: r.CurrentTerm(), AppliedIndex: r.AppliedIndex(), LastContactMS: -1}
	if r.State().String() == "Leader" {
		sv.Raft.LastContactMS = 0
	} else if lc := r.LastContact(); !lc.IsZero() {
		sv.Raft.LastContactMS = time.Since(lc).Milliseconds()
	}
	sv.Crisis, _ = n.Crisis(ctx, false)
	return sv
}

// diskView measures the store's free space now.
func (n *Node) diskView() DiskView {
	d := n.store.Disk()
	v := DiskView{Dir: d.Dir, FreeBytes: d.Free, ReserveBytes: d.Reserve, Full: d.Full}
	switch {
	case d.Full:
		if err := n.store.CheckDisk(); err != nil {
			v.Message = err.Error()
		}
	case d.Err != nil:
		v.Message = "free space unknown, writing without the disk-full guard: " + d.Err.Error()
	}
	return v
}

type syncStats struct {
	lastSync time.Time
	frontier log.Frontier
}

// peerName names the member whose peer ID is pid ("" if none).
func (n *Node) peerName(pid string) string {
	if pid == "" {
		return ""
	}
	for _, m := range n.store.Roster().Members() {
		if m.Card.PeerID().String() == pid {
			return m.Card.Name()
		}
	}
	return pid
}

// Entries returns up to limit entries in display order after the entry
// with ID after ("" from the start).
func (n *Node) Entries(after string, limit int) ([]EntryView, error) {
	var from *log.OrderKey
	if after != "" {
		h, err := log.ParseHash(after)
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

func randRead(b []byte) (int, error) { return cryptorand.Read(b) }

// CommandRequest is a crisis command as the API and CLI take it; the JSON
// names are a contract. Mode and Phase are names ("full", "response"), IDs
// hex.
type CommandRequest struct {
	Kind     string   `json:"kind"`
	Title    string   `json:"title,omitempty"`
	Level    int      `json:"level,omitempty"`
	Exercise bool     `json:"exercise,omitempty"`
	Mode     string   `json:"mode,omitempty"`
	Phase    string   `json:"phase,omitempty"`
	Add      []string `json:"add,omitempty"`
	Remove   []string `json:"remove,omitempty"`
	Value    string   `json:"value,omitempty"`
	Sector   string   `json:"sector,omitempty"`
	Services []string `json:"services,omitempty"`
	Note     string   `json:"note,omitempty"`
	Request  string   `json:"request,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Lessons  string   `json:"lessons,omitempty"`
}

// ToCommand converts a request into a crisis command (without ID or crisis,
// which Command fills in).
func (r CommandRequest) ToCommand() (crisis.Command, error) {
	c := crisis.Command{Kind: crisis.Kind(r.Kind), Title: r.Title, Level: crisis.Level(r.Level), Exercise: r.Exercise,
		Add: r.Add, Remove: r.Remove, Value: r.Value, Sector: r.Sector, Services: r.Services, Note: r.Note,
		Reason: r.Reason, Lessons: r.Lessons}
	var err error
	if r.Mode != "" {
		if c.Mode, err = crisis.ParseMode(r.Mode); err != nil {
			return c, err
		}
	}
	if r.Phase != "" {
		if c.Phase, err = crisis.ParsePhase(r.Phase); err != nil {
			return c, err
		}
	}
	if r.Request != "" {
		if c.Request, err = crisis.ParseID(r.Request); err != nil {
			return c, err
		}
	}
	return c, nil
}
