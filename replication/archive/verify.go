package archive

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Options are what Verify takes besides the archive and the genesis.
type Options struct {
	// Identities are keys of a member (its current and earlier keys) to
	// open sealed bodies with; none: bodies stay sealed.
	Identities []*crypto.Identity
	// MaxTLP caps the bodies shown (default amber); red is shown only
	// when it is asked for.
	MaxTLP log.TLP
}

// A Report is what an archive that verifies holds.
type Report struct {
	Network     string           `json:"network"`
	NetworkName string           `json:"network_name"`
	Exporter    string           `json:"exporter"`
	Created     time.Time        `json:"created"`
	From        *time.Time       `json:"from,omitempty"`
	To          *time.Time       `json:"to,omitempty"`
	Records     uint64           `json:"records"`
	Bytes       uint64           `json:"bytes"`
	Entries     int              `json:"entries"`
	Members     []MemberReport   `json:"members"`
	Roster      []RosterReport   `json:"roster"`
	Forks       []ForkReport     `json:"forks"`
	SetAside    int              `json:"set_aside"` // evidence that is no fork: entries a revocation refused
	Checkpoints []CertReport     `json:"checkpoints"`
	Decisions   []DecisionReport `json:"decisions"`
	// Replayed is the last Raft index the decisions were replayed to
	// from the genesis (0: none), and ReplayChecked how many certified
	// checkpoints the replay matched.
	Replayed      uint64 `json:"replayed"`
	ReplayChecked int    `json:"replay_checked"`
	// ReplayStopped is the first certified index the replay could not
	// reach because the archive holds no record of the commands before
	// it (0: none): an archive of a network whose checkpoints carried no
	// commands yet, or one stripped of them.
	ReplayStopped uint64       `json:"replay_stopped,omitempty"`
	RaftFirst     uint64       `json:"raft_first,omitempty"`
	Bodies        []BodyReport `json:"bodies,omitempty"`
	Sealed        int          `json:"sealed"`   // bodies not opened (no key, or no --dir)
	Withheld      int          `json:"withheld"` // bodies opened but above MaxTLP, or not believed
}

// MemberReport sums up one author's entries (author times).
type MemberReport struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Entries int       `json:"entries"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Revoked bool      `json:"revoked,omitempty"`
}

// RosterReport is one roster version in force: who made it, how.
type RosterReport struct {
	Version   uint64   `json:"version"`
	Op        string   `json:"op"`
	Signer    string   `json:"signer"`
	Approvers []string `json:"approvers,omitempty"`
	Entry     string   `json:"entry"`
}

// ForkReport is a fork: two or more entries of one author at one seq.
type ForkReport struct {
	Author  string   `json:"author"`
	Seq     uint64   `json:"seq"`
	Entries []string `json:"entries"`
	// Proven: at least two of them are signed or vouched for by a signed
	// successor, so the author equivocated.
	Proven bool `json:"proven"`
}

// CertReport is a claimed crisis state and the votes behind it.
type CertReport struct {
	Index     uint64   `json:"index"`
	Term      uint64   `json:"term"`
	Roster    uint64   `json:"roster"`
	Digest    string   `json:"digest"`
	Signers   []string `json:"signers"`
	Certified bool     `json:"certified"`
	Replayed  bool     `json:"replayed"` // the replayed decisions give this state
}

// DecisionReport is one committed Raft entry: a signed crisis command,
// or a roster update carried into Raft.
type DecisionReport struct {
	Index   uint64    `json:"index"`
	Term    uint64    `json:"term"`
	Kind    string    `json:"kind"` // a crisis command kind, or "roster"
	ID      string    `json:"id,omitempty"`
	Signer  string    `json:"signer,omitempty"`
	Time    time.Time `json:"time"`
	Refused string    `json:"refused,omitempty"`
}

// BodyReport is a body opened with Options.Identities.
type BodyReport struct {
	Entry  string    `json:"entry"`
	Author string    `json:"author"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   log.Kind  `json:"kind"`
	TLP    log.TLP   `json:"tlp"`
	Text   string    `json:"text,omitempty"`
}

// Verify checks a with nothing but the genesis (and, for bodies, the keys
// in opts): no node, no membership, no network. It returns the report, or
// the first [*Failure]. The order of checks, and so which failure comes
// first: the network; the display order of the entries; the roster
// derived from the genesis and the roster entries; the exporter's
// signature; every feed (its runs as the trailer lists them, chain,
// clocks, signatures, revocations: log.CheckRun); evidence and forks;
// checkpoints and their votes; decisions, replayed from the genesis when
// the archive holds all of them.
func Verify(g *crypto.Genesis, a *Archive, opts Options) (*Report, error) {
	v := &verifier{g: g, a: a, opts: opts, network: g.NetworkID()}
	for _, step := range []func() error{v.checkNetwork, v.checkOrder, v.deriveRoster, v.checkExporter, v.checkFeeds, v.checkEvidence, v.checkCheckpoints, v.checkDecisions, v.openBodies} {
		if err := step(); err != nil {
			var f *Failure
			if a.damage != nil && errors.As(err, &f) {
				// The damage Read found is most likely what broke this
				// record: name both.
				c := *f
				c.Detail += "; and " + a.damage.Detail
				return nil, &c
			}
			return nil, err
		}
	}
	if a.damage != nil {
		return nil, a.damage
	}
	return v.report(), nil
}

type verifier struct {
	g       *crypto.Genesis
	a       *Archive
	opts    Options
	network crypto.NetworkID

	roster   *crypto.Roster   // in force at the end
	versions []*crypto.Roster // versions[v]: the roster of version v
	rs       log.RosterState
	held     map[log.Hash]*log.Entry
	forks    []ForkReport
	setAside int
	certs    map[claimKey]*cert
	order    []claimKey
	rep      Report
}

func (v *verifier) name(id crypto.MemberID) string {
	if m, ok := v.roster.Member(id); ok {
		return m.Card.Name()
	}
	if m, ok := v.g.Roster().Member(id); ok {
		return m.Card.Name()
	}
	return id.Short()
}

func (v *verifier) where(n int, e *log.Entry) string {
	return fmt.Sprintf("%s (%s seq %d, record %d)", e.ID().Short(), v.name(e.Header.Author), e.Header.Seq, n)
}

func (v *verifier) checkNetwork() error {
	if v.a.Info.Network != v.network {
		return fail("file", "trailer", RuleNetwork, "the archive is of network %s…, the genesis founds %s (%s…)",
			v.a.Info.Network.String()[:16], v.g.Roster().Name(), v.network.String()[:16])
	}
	return nil
}

func (v *verifier) checkOrder() error {
	for i := 1; i < len(v.a.Entries); i++ {
		p, e := v.a.Entries[i-1], v.a.Entries[i]
		if !log.Less(p.Value, e.Value) {
			v.roster = v.g.Roster()
			return fail("entry", v.where(e.N, e.Value), RuleOrder, "not after record %d in display order (lamport, author, seq): the records were reordered", p.N)
		}
	}
	return nil
}

func (v *verifier) deriveRoster() error {
	feed := make([]*log.Entry, len(v.a.Entries))
	v.held = make(map[log.Hash]*log.Entry, len(v.a.Entries)+len(v.a.Evidence))
	for i, r := range v.a.Entries {
		feed[i] = r.Value
		v.held[r.Value.ID()] = r.Value
	}
	for _, r := range v.a.Evidence {
		v.held[r.Value.ID()] = r.Value
	}
	v.rs = log.DeriveRosterState(v.g.Roster(), feed)
	v.roster = v.rs.Roster
	r := v.g.Roster()
	v.versions = []*crypto.Roster{r}
	for i, u := range v.rs.Applied {
		next, err := r.ApplyApprovedUpdate(crypto.ApprovedUpdate{Update: u.Update, Approvals: u.Approvals}, 0)
		if err != nil || next.Version() != uint64(i)+1 {
			return fail("roster", fmt.Sprintf("version %d (entry %s)", u.Update.Version(), u.Entry.ID().Short()), RuleRosterGap,
				"does not follow version %d: %v", r.Version(), err)
		}
		r = next
		v.versions = append(v.versions, r)
	}
	return nil
}

func (v *verifier) checkExporter() error {
	m, ok := v.roster.Member(v.a.Info.Exporter)
	if !ok {
		return fail("file", "trailer", RuleExporter, "exported by %s, who is no member of %s", v.a.Info.Exporter.Short(), v.roster.Name())
	}
	if err := m.Card.Verify(crypto.ContextArchive, v.a.trailer, v.a.sig); err != nil {
		return fail("file", "trailer", RuleExporter, "the signature of the exporter %s does not verify: %v", m.Card.Name(), err)
	}
	return nil
}

func (v *verifier) checkFeeds() error {
	byAuthor := map[crypto.MemberID][]Record[*log.Entry]{}
	var authors []crypto.MemberID
	for _, r := range v.a.Entries {
		a := r.Value.Header.Author
		if byAuthor[a] == nil {
			authors = append(authors, a)
		}
		byAuthor[a] = append(byAuthor[a], r)
	}
	// First the shape: the runs the trailer lists, each entry present.
	covered := map[crypto.MemberID]int{}
	whole := v.a.Info.From.IsZero() && v.a.Info.To.IsZero()
	seen := map[crypto.MemberID]uint64{} // the last seq of the author's previous segment
	runs := make([][]Record[*log.Entry], len(v.a.Info.Segments))
	for k, s := range v.a.Info.Segments {
		if last, ok := seen[s.Author]; whole && (s.First != 1 || ok) {
			return fail("feed", fmt.Sprintf("%s seq %d", v.name(s.Author), last+1), RuleSegment,
				"entries missing: the archive has no window, so every feed runs from seq 1 without a gap, but seqs %d..%d follow seq %d (entries were removed)", s.First, s.Last, last)
		}
		seen[s.Author] = s.Last
		rs := byAuthor[s.Author]
		// The author's entries in the segment's range, in seq order.
		i, _ := slices.BinarySearchFunc(rs, s.First, func(r Record[*log.Entry], seq uint64) int { return cmp.Compare(r.Value.Header.Seq, seq) })
		for seq := s.First; seq <= s.Last; seq++ {
			if i >= len(rs) || rs[i].Value.Header.Seq != seq {
				return fail("feed", fmt.Sprintf("%s seq %d", v.name(s.Author), seq), RuleSegment,
					"entry missing: the trailer lists seqs %d..%d of this feed, the archive lacks seq %d (an entry was removed)", s.First, s.Last, seq)
			}
			runs[k] = append(runs[k], rs[i])
			i++
		}
		covered[s.Author] += len(runs[k])
	}
	for _, a := range authors {
		if covered[a] != len(byAuthor[a]) {
			return fail("feed", v.name(a), RuleSegment, "the archive holds %d entries of this feed, the trailer's runs list %d", len(byAuthor[a]), covered[a])
		}
	}
	// Then every run: chain, clocks, signatures, revocations.
	for k, s := range v.a.Info.Segments {
		run := make([]*log.Entry, len(runs[k]))
		for i, r := range runs[k] {
			run[i] = r.Value
		}
		head := log.Head{Seq: s.First - 1}
		if s.First > 1 {
			head.ID = run[0].Header.Prev // a window: the chain is checked from here
		}
		n, err := log.CheckRun(v.network, v.roster, head, run)
		if err != nil {
			r := runs[k][min(n, len(run)-1)]
			var ie *log.InvalidError
			if errors.As(err, &ie) && ie.Seq >= s.First && ie.Seq <= s.Last {
				r = runs[k][ie.Seq-s.First]
			}
			rule := string(log.ReasonOf(err))
			if rule == "" {
				rule = "entry"
			}
			return fail("entry", v.where(r.N, r.Value), rule, "%v", err)
		}
	}
	return nil
}

func (v *verifier) checkEvidence() error {
	for _, r := range v.a.Evidence {
		e := r.Value
		m, ok := v.roster.Member(e.Header.Author)
		if !ok {
			return fail("evidence", v.where(r.N, e), RuleEvidence, "its author %s is no member", e.Header.Author.Short())
		}
		if e.Header.Network != v.network {
			return fail("evidence", v.where(r.N, e), RuleNetwork, "the entry is of another network")
		}
		if e.Signed() {
			if err := e.VerifySignature(m.Card); err != nil {
				return fail("evidence", v.where(r.N, e), RuleEvidence, "%v", err)
			}
		}
	}
	// Which entries are vouched for: signed, or the prev of one vouched.
	all := make([]*log.Entry, 0, len(v.held))
	for _, e := range v.held {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *log.Entry) int {
		if c := bytes.Compare(a.Header.Author[:], b.Header.Author[:]); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Header.Seq, a.Header.Seq); c != 0 {
			return c
		}
		ai, bi := a.ID(), b.ID()
		return bytes.Compare(ai[:], bi[:])
	})
	vouched := map[log.Hash]bool{}
	for _, e := range all {
		if e.Signed() || vouched[e.ID()] {
			vouched[e.ID()] = true
			vouched[e.Header.Prev] = true
		}
	}
	type place struct {
		a   crypto.MemberID
		seq uint64
	}
	at := map[place][]*log.Entry{}
	var places []place
	for _, e := range all {
		p := place{e.Header.Author, e.Header.Seq}
		if at[p] == nil {
			places = append(places, p)
		}
		at[p] = append(at[p], e)
	}
	inFork := 0
	for _, p := range places {
		es := at[p]
		if len(es) < 2 {
			continue
		}
		f := ForkReport{Author: v.name(p.a), Seq: p.seq}
		n := 0
		for _, e := range es {
			f.Entries = append(f.Entries, e.ID().String())
			if vouched[e.ID()] {
				n++
			}
		}
		slices.Sort(f.Entries)
		f.Proven = n >= 2
		v.forks = append(v.forks, f)
		inFork += len(es) - 1
	}
	v.setAside = max(0, len(v.a.Evidence)-inFork)
	return nil
}

type claimKey struct {
	index, term, roster uint64
	digest              [32]byte
}

type cert struct {
	claim   consensus.Claim // with the state, once seen
	signers []crypto.MemberID
	seen    map[crypto.MemberID]bool
	tails   [][]consensus.Committed // what the entries carrying it had applied
}

func (v *verifier) checkCheckpoints() error {
	v.certs = map[claimKey]*cert{}
	for _, r := range v.a.Checkpoints {
		where := fmt.Sprintf("record %d (entry %s)", r.N, r.Value.Entry.Short())
		e := v.held[r.Value.Entry]
		if e == nil {
			return fail("checkpoint", where, RuleCheckpoint, "names an entry the archive does not hold")
		}
		where = fmt.Sprintf("record %d (entry %s of %s seq %d)", r.N, e.ID().Short(), v.name(e.Header.Author), e.Header.Seq)
		c, err := consensus.ParseClaim(r.Value.Payload)
		if err != nil {
			return fail("checkpoint", where, RuleCheckpoint, "%v", err)
		}
		if c.Roster >= uint64(len(v.versions)) {
			return fail("checkpoint", where, RuleCheckpoint, "names roster version %d, the archive's roster ends at version %d", c.Roster, len(v.versions)-1)
		}
		at := v.versions[c.Roster]
		k := claimKey{c.Index, c.Term, c.Roster, c.Digest}
		ct := v.certs[k]
		if ct == nil {
			ct = &cert{claim: consensus.Claim{Term: c.Term, Index: c.Index, Roster: c.Roster, Digest: c.Digest}, seen: map[crypto.MemberID]bool{}}
			v.certs[k] = ct
			v.order = append(v.order, k)
		}
		if c.State != nil {
			ct.claim.State = c.State
		}
		if len(c.Tail) > 0 {
			ct.tails = append(ct.tails, c.Tail)
		}
		for _, vote := range c.Votes {
			if err := c.VerifyVote(v.network, vote, at); err != nil {
				return fail("checkpoint", where, RuleVote, "the vote of %s for the state at index %d: %v", v.name(vote.Voter), c.Index, err)
			}
			if !ct.seen[vote.Voter] {
				ct.seen[vote.Voter] = true
				ct.signers = append(ct.signers, vote.Voter)
			}
		}
	}
	certified := map[uint64]claimKey{}
	for _, k := range v.order {
		ct := v.certs[k]
		if ct.claim.State == nil || !consensus.Certifies(ct.signers, v.versions[k.roster]) {
			continue
		}
		if o, ok := certified[k.index]; ok && o != k {
			return fail("checkpoint", fmt.Sprintf("Raft index %d", k.index), RuleConflict,
				"two states at this index are certified by a majority of the voters (terms %d and %d): a quorum signed two histories", o.term, k.term)
		}
		certified[k.index] = k
	}
	return nil
}

// certified returns the certified claims in index order.
func (v *verifier) certified() []claimKey {
	var out []claimKey
	for _, k := range v.order {
		ct := v.certs[k]
		if ct.claim.State != nil && consensus.Certifies(ct.signers, v.versions[k.roster]) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b claimKey) int { return cmp.Compare(a.index, b.index) })
	return out
}

// between returns the entries of cs with an index in (from, to].
func between(cs []consensus.Committed, from, to uint64) []consensus.Committed {
	var out []consensus.Committed
	for _, c := range cs {
		if c.Index > from && c.Index <= to {
			out = append(out, c)
		}
	}
	return out
}

// checkDecisions replays the crisis decisions from the genesis,
// certificate by certificate. The commands up to a certified index come
// from the archive's decision records (the exporter's Raft log) or from
// the tails that the checkpoint and the votes of that certificate carry
// (what each writer's state machine applied since its base); the first
// that replays to the certified state is the history. So one writer's
// tail, or the exporter's Raft log, that lies or leaves a command out
// changes nothing as long as one other source holds the history, and a
// majority of the voters wrote such a source with its vote. A decision
// record inside the certified history must be the certified one; after
// it, each record's command must carry a valid signature.
func (v *verifier) checkDecisions() error {
	v.rep.RaftFirst = v.a.Info.RaftFirst
	var recs []consensus.Committed
	var last uint64
	for _, r := range v.a.Decisions {
		d := r.Value
		where := fmt.Sprintf("Raft index %d (record %d)", d.Index, r.N)
		if d.Index <= last {
			return fail("decision", where, RuleDecision, "does not follow index %d: the decisions were reordered or repeated", last)
		}
		last = d.Index
		if _, err := d.Command(); err != nil {
			return fail("decision", where, RuleDecision, "%v", err)
		}
		recs = append(recs, d)
	}
	rp := consensus.NewReplayer(v.g)
	history := map[uint64]consensus.Committed{}
	var outcomes []decided
	for _, k := range v.certified() {
		from := rp.Applied()
		if k.index <= from {
			continue
		}
		ct := v.certs[k]
		cands := append([][]consensus.Committed{between(recs, from, k.index)}, ct.tails...)
		tried, matched := 0, false
		for _, cand := range cands {
			cand = between(cand, from, k.index)
			if len(cand) == 0 || cand[len(cand)-1].Index != k.index {
				continue // does not reach the certified index
			}
			tried++
			next := rp.Clone()
			done, ok := replay(next, cand)
			if !ok {
				continue
			}
			if got, err := next.Claim(); err != nil || !consensus.SameStatement(got, ct.claim) {
				continue
			}
			rp, matched = next, true
			outcomes = append(outcomes, done...)
			for _, c := range cand {
				history[c.Index] = c
			}
			break
		}
		if !matched {
			if tried > 0 {
				return fail("decision", fmt.Sprintf("Raft index %d", k.index), RuleReplay,
					"none of the %d records of the commands after index %d (the archive's decisions, the tails of this certificate's checkpoint and votes) replays from the genesis to the state a majority of the voters certified at index %d: a decision was altered, removed or added", tried, from, k.index)
			}
			// The archive holds no record of the commands up to here: the
			// replay stops, and the report says where.
			v.rep.ReplayStopped = k.index
			break
		}
		v.rep.ReplayChecked++
	}
	v.rep.Replayed = rp.Applied()
	// The records inside the certified history must be it.
	for _, r := range v.a.Decisions {
		d := r.Value
		if d.Index > v.rep.Replayed {
			break
		}
		if h, ok := history[d.Index]; !ok || h.Term != d.Term || !bytes.Equal(h.Data, d.Data) {
			detail := "no command is certified at this index"
			if ok {
				detail = "the certified history holds another entry here"
			}
			if sc, err := d.Command(); err == nil && sc != nil {
				if _, err := crisis.Authenticate(sc, v.roster); err != nil {
					detail += "; its signature: " + err.Error()
				}
			}
			return fail("decision", fmt.Sprintf("Raft index %d (record %d)", d.Index, r.N), RuleDecision,
				"the archive's decision is not the one a majority of the voters certified: %s", detail)
		}
	}
	// After it: each record signed by a member, replayed while it follows.
	var after []consensus.Committed
	for _, r := range v.a.Decisions {
		d := r.Value
		if d.Index <= v.rep.Replayed {
			continue
		}
		sc, _ := d.Command()
		if sc != nil {
			if _, err := crisis.Authenticate(sc, v.roster); err != nil {
				var ref *crisis.Refusal
				if !errors.As(err, &ref) || ref.Rule != crisis.RuleRevoked {
					return fail("decision", fmt.Sprintf("Raft index %d (record %d)", d.Index, r.N), RuleDecision, "not certified yet, and %v", err)
				}
			}
		}
		after = append(after, d)
	}
	if v.rep.Replayed == 0 && v.a.Info.RaftFirst > 1 {
		// Nothing certified replayed, and the Raft log lacks the start.
		for _, d := range after {
			outcomes = append(outcomes, decided{c: d})
		}
	} else {
		done, _ := replay(rp, after)
		outcomes = append(outcomes, done...)
	}
	for _, o := range outcomes {
		v.rep.Decisions = append(v.rep.Decisions, v.decisionReport(o))
	}
	return nil
}

// decided is a replayed Raft entry and what became of it.
type decided struct {
	c       consensus.Committed
	refusal error
}

// replay applies cs to rp; false if an entry is out of order.
func replay(rp *consensus.Replayer, cs []consensus.Committed) ([]decided, bool) {
	var out []decided
	for _, c := range cs {
		refusal, err := rp.Apply(c)
		if err != nil {
			return out, false
		}
		out = append(out, decided{c: c, refusal: refusal})
	}
	return out, true
}

func (v *verifier) decisionReport(o decided) DecisionReport {
	d := DecisionReport{Index: o.c.Index, Term: o.c.Term, Kind: "roster", Time: o.c.Stamped()}
	if sc, err := o.c.Command(); err == nil && sc != nil {
		cmd := sc.Command()
		d.Kind, d.ID, d.Signer = string(cmd.Kind), cmd.ID.String(), v.name(sc.Signer())
	}
	if o.refusal != nil {
		d.Refused = o.refusal.Error()
	}
	return d
}

func (v *verifier) openBodies() error {
	if len(v.opts.Identities) == 0 {
		return nil
	}
	maxTLP := v.opts.MaxTLP
	if maxTLP == "" {
		maxTLP = log.TLPAmber
	}
	all := make([]*log.Entry, len(v.a.Entries))
	for i, r := range v.a.Entries {
		all[i] = r.Value
	}
	kr := log.DeriveKeyringHeld(v.network, v.roster, v.opts.Identities, all)
	for _, e := range all {
		if e.Header.Plain() {
			continue
		}
		var body *log.Body
		var key *crypto.GroupKey
		for _, k := range kr.Keys(e.Header.KeyID) {
			if b, err := e.Open(k); err == nil {
				body, key = b, k
				break
			}
		}
		switch {
		case body == nil:
			v.rep.Sealed++
		case log.Believe(e, key, body) != nil || body.TLP.Rank() > maxTLP.Rank():
			v.rep.Withheld++
		default:
			v.rep.Bodies = append(v.rep.Bodies, BodyReport{Entry: e.ID().String(), Author: v.name(e.Header.Author), Seq: e.Header.Seq,
				Time: time.UnixMilli(e.Header.Time).UTC(), Kind: body.Kind, TLP: body.TLP, Text: body.Text})
		}
	}
	return nil
}

func (v *verifier) report() *Report {
	r := &v.rep
	r.Network, r.NetworkName = v.network.String(), v.roster.Name()
	r.Exporter = v.name(v.a.Info.Exporter)
	r.Created, r.Records, r.Bytes, r.Entries = v.a.Info.Created, v.a.Info.Records, v.a.Info.Bytes, len(v.a.Entries)
	if !v.a.Info.From.IsZero() {
		t := v.a.Info.From
		r.From = &t
	}
	if !v.a.Info.To.IsZero() {
		t := v.a.Info.To
		r.To = &t
	}
	if len(v.opts.Identities) == 0 {
		for _, e := range v.a.Entries {
			if !e.Value.Header.Plain() {
				r.Sealed++
			}
		}
	}
	members := map[crypto.MemberID]*MemberReport{}
	var ids []crypto.MemberID
	for _, rec := range v.a.Entries {
		e := rec.Value
		m := members[e.Header.Author]
		t := time.UnixMilli(e.Header.Time).UTC()
		if m == nil {
			m = &MemberReport{Name: v.name(e.Header.Author), ID: e.Header.Author.String(), First: t, Last: t}
			if mm, ok := v.roster.Member(e.Header.Author); ok {
				m.Revoked = mm.Revoked
			}
			members[e.Header.Author] = m
			ids = append(ids, e.Header.Author)
		}
		m.Entries++
		if t.Before(m.First) {
			m.First = t
		}
		if t.After(m.Last) {
			m.Last = t
		}
	}
	for _, id := range ids {
		r.Members = append(r.Members, *members[id])
	}
	slices.SortFunc(r.Members, func(a, b MemberReport) int { return cmp.Compare(a.Name, b.Name) })
	r.Roster = []RosterReport{{Version: 0, Op: "genesis", Signer: "genesis"}}
	for _, u := range v.rs.Applied {
		rr := RosterReport{Version: u.Update.Version(), Op: string(u.Update.Op()), Signer: v.name(u.Update.Signer()), Entry: u.Entry.ID().String()}
		for _, a := range u.Approvals {
			rr.Approvers = append(rr.Approvers, v.name(a.Signer()))
		}
		r.Roster = append(r.Roster, rr)
	}
	r.Forks, r.SetAside = v.forks, v.setAside
	replayed := map[uint64]bool{}
	if r.Replayed > 0 {
		for _, k := range v.order {
			replayed[k.index] = k.index <= r.Replayed
		}
	}
	for _, k := range v.order {
		ct := v.certs[k]
		if ct.claim.State == nil {
			continue // votes for a state the archive does not hold
		}
		cr := CertReport{Index: k.index, Term: k.term, Roster: k.roster, Digest: fmt.Sprintf("%x", k.digest),
			Certified: consensus.Certifies(ct.signers, v.versions[k.roster])}
		cr.Replayed = cr.Certified && replayed[k.index]
		for _, s := range ct.signers {
			cr.Signers = append(cr.Signers, v.name(s))
		}
		slices.Sort(cr.Signers)
		r.Checkpoints = append(r.Checkpoints, cr)
	}
	slices.SortFunc(r.Checkpoints, func(a, b CertReport) int { return cmp.Compare(a.Index, b.Index) })
	return r
}
