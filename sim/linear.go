package sim

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// InvLinearizable names the porcupine check of a workload's history.
const InvLinearizable = "crisis history linearizable (porcupine)"

// OpKind is what an operation of a History does to the set of affected
// member states of the open crisis.
type OpKind int

// The operations.
const (
	OpAdd    OpKind = iota // add State
	OpRemove               // remove State
	OpRead                 // read the whole set
)

func (k OpKind) String() string {
	switch k {
	case OpAdd:
		return "add"
	case OpRemove:
		return "remove"
	case OpRead:
		return "read"
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// An Op is one operation of a History.
//
// An add or remove ends Committed (it changed the set), Refused (it changed
// nothing: the state was already present, or absent) or Unknown (its
// outcome is not known: it may have taken effect at any time after Call,
// even after the history ends). Return is ignored for an Unknown outcome:
// the checker treats it as the end of time, as porcupine's documentation
// recommends for operations that never returned. A read is recorded only
// when it happened, with the set it returned.
type Op struct {
	Client  int
	Kind    OpKind
	State   string   // the member state added or removed
	Outcome Outcome  // of an add or remove
	Set     []string // what a read returned
	Call    time.Time
	Return  time.Time
}

// History records the operations of a workload, from several clients. It is
// safe for concurrent use. The zero value is an empty history.
//
// Operations recorded live (by the workload) are stamped by the History
// itself: each call and return gets a time strictly after every stamp
// before it, so operations that follow each other stay ordered even where
// the clock stands still (virtual time inside a synctest bubble advances
// only when every goroutine waits).
type History struct {
	mu      gosync.Mutex
	ops     []Op
	pending map[int]bool // ops called but not returned: unknown so far
	dropped map[int]bool // ops known to have had no effect
	last    time.Time    // the newest stamp handed out
	clients int          // client IDs reserved by workloads
}

// Record adds a completed operation with its own times. Records from
// concurrent workloads should use the History's stamps instead (the
// workload does).
func (h *History) Record(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.Set = slices.Clone(op.Set)
	h.ops = append(h.ops, op)
	if op.Return.After(h.last) {
		h.last = op.Return
	}
	if op.Call.After(h.last) {
		h.last = op.Call
	}
}

// Len returns the number of operations recorded (including those still
// running), not counting dropped ones.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops) - len(h.dropped)
}

// stampLocked returns a time after every stamp handed out so far; the
// caller holds mu.
func (h *History) stampLocked() time.Time {
	t := time.Now()
	if !t.After(h.last) {
		t = h.last.Add(time.Nanosecond)
	}
	h.last = t
	return t
}

// stamp returns a fresh stamp: the call time of a read about to be made.
func (h *History) stamp() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stampLocked()
}

// reserveClients returns the first of n fresh client IDs, so that the
// clients of two workloads get lanes of their own in the visualisation.
func (h *History) reserveClients(n int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.clients
	h.clients += n
	return first
}

// begin records the call of an add or remove; its outcome is unknown until
// end or drop.
func (h *History) begin(client int, kind OpKind, state string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending == nil {
		h.pending = map[int]bool{}
	}
	h.ops = append(h.ops, Op{Client: client, Kind: kind, State: state, Outcome: OutcomeUnknown, Call: h.stampLocked()})
	h.pending[len(h.ops)-1] = true
	return len(h.ops) - 1
}

// end records the outcome of an add or remove begun with begin.
func (h *History) end(op int, out Outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, op)
	h.ops[op].Outcome = out
	h.ops[op].Return = h.stampLocked()
}

// drop removes an add or remove that certainly had no effect on the set.
func (h *History) drop(op int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, op)
	if h.dropped == nil {
		h.dropped = map[int]bool{}
	}
	h.dropped[op] = true
}

// read records a read called at call (a stamp) that returned set.
func (h *History) read(client int, call time.Time, set []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, Op{Client: client, Kind: OpRead, Set: slices.Clone(set), Call: call, Return: h.stampLocked()})
}

// Ops returns a copy of the history: every operation not dropped, those
// still running with an unknown outcome.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, 0, len(h.ops))
	for i, op := range h.ops {
		if h.dropped[i] {
			continue
		}
		if h.pending[i] {
			op.Outcome = OutcomeUnknown
		}
		op.Set = slices.Clone(op.Set)
		out = append(out, op)
	}
	return out
}

// The porcupine model. A state is the set of affected member states as a
// bit set over the alphabet of the history (every state any operation
// names), so that a step costs a few instructions.

type linInput struct {
	kind  OpKind
	bit   uint64 // add, remove: the state's bit
	state string
}

type linOutput struct {
	outcome Outcome
	set     uint64   // read: the set returned
	shown   []string // read: as returned, for the visualisation
}

// stepBudget bounds the model steps of one check. Inside a synctest bubble
// porcupine's timeout, which runs on the (virtual) clock, cannot fire while
// the checker computes; the budget stands in for it.
const stepBudget = 30_000_000

// setModel returns the model over alphabet, with a step budget: once steps
// exceed budget (0: none) every step fails and *exhausted is set, so the
// caller can tell a real Illegal from an exhausted search.
func setModel(alphabet []string, budget int64, steps *atomic.Int64, exhausted *atomic.Bool) porcupine.Model {
	describe := func(set uint64) string {
		var names []string
		for i, s := range alphabet {
			if set&(1<<i) != 0 {
				names = append(names, s)
			}
		}
		return "{" + strings.Join(names, ",") + "}"
	}
	return porcupine.Model{
		Init: func() any { return uint64(0) },
		Step: func(state, input, output any) (bool, any) {
			if budget > 0 && steps.Add(1) > budget {
				exhausted.Store(true)
				return false, state
			}
			s, in, out := state.(uint64), input.(linInput), output.(linOutput)
			if in.kind == OpRead {
				return out.set == s, s
			}
			present := s&in.bit != 0
			want := in.kind == OpAdd // the add wants the state present
			switch out.outcome {
			case OutcomeCommitted:
				// A committed change changed the set.
				if present == want {
					return false, s
				}
			case OutcomeRefused:
				// A refused change found nothing to do.
				return present == want, s
			default:
				// Unknown: taken here as applied (a no-op where there was
				// nothing to do). Its return is the end of time, so "never
				// applied" is the same as "applied after everything else".
			}
			if want {
				return true, s | in.bit
			}
			return true, s &^ in.bit
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			if in.kind == OpRead {
				return "read → {" + strings.Join(out.shown, ",") + "}"
			}
			return fmt.Sprintf("%s %s → %s", in.kind, in.state, out.outcome)
		},
		DescribeState: func(state any) string { return describe(state.(uint64)) },
	}
}

// toOperations turns a history into porcupine operations over a bit-set
// alphabet.
func toOperations(ops []Op) ([]porcupine.Operation, []string, error) {
	var alphabet []string
	for _, op := range ops {
		if op.Kind == OpRead {
			alphabet = append(alphabet, op.Set...)
		} else {
			alphabet = append(alphabet, op.State)
		}
	}
	slices.Sort(alphabet)
	alphabet = slices.Compact(alphabet)
	if len(alphabet) > 64 {
		return nil, nil, fmt.Errorf("sim: the history names %d member states; the checker handles at most 64", len(alphabet))
	}
	bit := func(s string) uint64 {
		i, _ := slices.BinarySearch(alphabet, s)
		return 1 << i
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		in := linInput{kind: op.Kind, state: op.State}
		res := linOutput{outcome: op.Outcome}
		ret := op.Return.UnixNano()
		switch op.Kind {
		case OpRead:
			res.shown = slices.Clone(op.Set)
			for _, s := range op.Set {
				res.set |= bit(s)
			}
			if bits.OnesCount64(res.set) != len(op.Set) {
				return nil, nil, fmt.Errorf("sim: a read returned %v, which names a state twice", op.Set)
			}
		default:
			in.bit = bit(op.State)
			if op.Outcome == OutcomeUnknown {
				ret = math.MaxInt64
			}
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call.UnixNano(), Output: res, Return: ret})
	}
	return out, alphabet, nil
}

// checkTimeout bounds one porcupine check.
const checkTimeout = 30 * time.Second

// checkLinearizable checks h against the sequential specification of a set
// of member states (starting empty). It returns nil when the history is
// linearizable. When it is not, it writes porcupine's HTML visualisation
// to htmlPath (unless empty) and says so; when porcupine cannot decide in
// time, it says that.
func checkLinearizable(h *History, htmlPath string) error {
	ops := h.Ops()
	pops, alphabet, err := toOperations(ops)
	if err != nil {
		return err
	}
	var steps atomic.Int64
	var exhausted atomic.Bool
	res, info := porcupine.CheckOperationsVerbose(setModel(alphabet, stepBudget, &steps, &exhausted), pops, checkTimeout)
	if exhausted.Load() || res == porcupine.Unknown {
		return fmt.Errorf("%d operations: porcupine could not decide linearizability within %s or %d model steps", len(ops), checkTimeout, stepBudget)
	}
	if res == porcupine.Ok {
		return nil
	}
	msg := fmt.Sprintf("%d operations are not linearizable", len(ops))
	if htmlPath == "" {
		return errors.New(msg)
	}
	f, err := os.Create(htmlPath)
	if err != nil {
		return fmt.Errorf("%s; the visualisation could not be written: %w", msg, err)
	}
	// The visualisation replays the model: give it one without a budget.
	werr := porcupine.Visualize(setModel(alphabet, 0, &steps, &exhausted), info, f)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("%s; the visualisation could not be written to %s: %w", msg, htmlPath, werr)
	}
	return fmt.Errorf("%s; see %s", msg, htmlPath)
}

// checkHistory checks the linearizability of the workloads' history; a
// failed check names porcupine's visualisation (in e.htmlDir).
func (e *engine) checkHistory(step int) Check {
	html := e.htmlPath(step)
	c := verdict(InvLinearizable, step, checkLinearizable(&e.hist, html))
	if !c.OK {
		if _, err := os.Stat(html); err == nil {
			c.File = html
		}
	}
	return c
}

// htmlPath is where a failed porcupine check's visualisation goes.
func (e *engine) htmlPath(step int) string {
	name := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '_'
	}, e.sc.Name)
	return filepath.Join(e.htmlDir, fmt.Sprintf("linearizability-%s-seed%d-step%d.html", name, e.seed, step))
}
