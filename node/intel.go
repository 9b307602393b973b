package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/interop/stix"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
)

// MISPImportRequest says how to import a MISP event, list or feed (the
// body of POST /api/v1/misp/import is the MISP JSON itself; these are its
// query parameters tlp and skip_invalid).
type MISPImportRequest struct {
	TLP         string // assumed for an event without a tlp tag
	SkipInvalid bool   // store the valid items and list the rest
}

// assumedTLP parses the TLP an import assumes for an item without one
// (none when empty).
func (req MISPImportRequest) assumedTLP() (log.TLP, error) {
	if req.TLP == "" {
		return "", nil
	}
	t, err := misp.ParseTLP(req.TLP)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return t, nil
}

// tally records a mapping's refusals and notes in t and, unless skip,
// refuses the whole import (refusedErr) when there is any refusal; what
// names the things refused ("items", "objects").
func tally(t *api.ImportTally, refused, notes []misp.Problem, skip bool, refusedErr error, what string) error {
	t.Refused, t.Notes = problems(refused), problems(notes)
	if len(refused) > 0 && !skip {
		return fmt.Errorf("%w: %d problems, nothing stored (fix them, or --skip-invalid to store the valid %s)", refusedErr, len(refused), what)
	}
	return nil
}

// The MISP API's types are the contract's (node/api).
type (
	MISPImportResult  = api.MISPImportResult
	MISPExport        = api.MISPExport
	MISPExportRequest = api.MISPExportRequest
)

// problems converts the mapping's problems to the API's.
func problems(ps []misp.Problem) []api.Problem {
	var out []api.Problem
	for _, p := range ps {
		out = append(out, api.Problem{Path: p.Path, Reason: p.Reason})
	}
	return out
}

// ErrMISPRefused: an import refused items and, without skip_invalid,
// stored nothing.
var ErrMISPRefused = errors.New("node: MISP import refused")

// ImportMISP maps a MISP event, list or feed (as one JSON document) to
// entries of kind intel and stores those that add something, all in one
// batch: one refused item stores nothing unless req.SkipInvalid.
func (n *Node) ImportMISP(ctx context.Context, data []byte, req MISPImportRequest) (MISPImportResult, error) {
	var res MISPImportResult
	evs, err := misp.Decode(data)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	var opts misp.Options
	if opts.TLP, err = req.assumedTLP(); err != nil {
		return res, err
	}
	plan := misp.Map(evs, opts)
	res.Events = len(evs)
	if err := tally(&res.ImportTally, plan.Refused, plan.Notes, req.SkipInvalid, ErrMISPRefused, "items"); err != nil {
		return res, err
	}
	known, err := n.intelHeld(log.IntelMISP)
	if err != nil {
		return res, err
	}
	fresh, unchanged := misp.Fresh(plan.Items, known)
	res.Unchanged = unchanged
	if len(fresh) == 0 {
		return res, nil
	}
	res.Written, res.Bytes, err = n.appendIntel(ctx, len(fresh), func(i int) (log.Body, *crypto.GroupKey, error) {
		key, err := n.mispKey(ctx, fresh[i])
		if err != nil {
			return log.Body{}, nil, fmt.Errorf("%s: %w", fresh[i].Path, err)
		}
		return fresh[i].Body, key, nil
	})
	return res, err
}

// appendIntel stores n intel entries (item(i) gives the body of the i-th
// and the key it is sealed under) in one batch, marked as exercise while
// an exercise crisis is open, and returns how many it wrote and their
// encoded size.
func (n *Node) appendIntel(ctx context.Context, count int, item func(i int) (log.Body, *crypto.GroupKey, error)) (written, size int, err error) {
	exercise := n.exerciseOpen()
	drafts := make([]log.Draft, 0, count)
	for i := range count {
		b, key, err := item(i)
		if err != nil {
			return 0, 0, err
		}
		b.Exercise = exercise
		drafts = append(drafts, log.Draft{Body: b, Key: key})
	}
	es, err := n.store.Append(ctx, drafts...)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range es {
		size += e.Size()
	}
	return len(es), size, nil
}

// networkKey returns the network key intel shared with the whole network
// is sealed under.
func (n *Node) networkKey() (*crypto.GroupKey, error) {
	key, ok := n.store.NetworkKey()
	if !ok {
		return nil, errors.New("this node holds no network key yet: it arrives from an admin node once connected; check 'crisismesh status'")
	}
	return key, nil
}

// mispKey returns the key an item is sealed under: its scope, never wider.
func (n *Node) mispKey(ctx context.Context, it misp.Item) (*crypto.GroupKey, error) {
	if it.Scope.Network() {
		return n.networkKey()
	}
	// A sharing group's organisations that are members (by name); the
	// others are left out, which narrows. This member is always in.
	var names []string
	r := n.store.Roster()
	for _, org := range it.Scope.Orgs {
		if m, ok := r.ByName(org); ok && !m.Revoked {
			names = append(names, org)
		}
	}
	return n.recipientKey(ctx, names)
}

// intelHeld returns the newest item of each ID of format this node can
// read.
func (n *Node) intelHeld(format string) (map[string]*log.Intel, error) {
	held := map[string]*log.Intel{}
	err := n.eachIntel(format, func(_ *log.Entry, _ *log.Body, in *log.Intel) {
		if k, ok := held[in.ID]; !ok || misp.Supersedes(in, k) {
			held[in.ID] = in
		}
	})
	return held, err
}

// eachIntel calls f with every readable intel entry of format ("": of
// every format) in display order.
func (n *Node) eachIntel(format string, f func(*log.Entry, *log.Body, *log.Intel)) error {
	var from *log.OrderKey
	for {
		es, err := n.store.Entries(from, 1024)
		if err != nil {
			return err
		}
		for _, e := range es {
			b, err := n.store.Read(e)
			if err != nil || b.Kind != log.KindIntel {
				continue
			}
			in, err := log.DecodeIntel(b.Payload)
			if err != nil || (format != "" && in.Format != format) {
				continue
			}
			f(e, b, in)
		}
		if len(es) < 1024 {
			return nil
		}
		k := es[len(es)-1].Order()
		from = &k
	}
}

// ExportMISP assembles the MISP events this node holds (newest version of
// each item), never wider than req allows.
func (n *Node) ExportMISP(req MISPExportRequest) (MISPExport, error) {
	opts, err := exportOptions(req.MaxTLP, req.AmberStrictOrg)
	if err != nil {
		return MISPExport{}, err
	}
	var since *log.OrderKey
	if req.Since != "" {
		h, err := log.ParseHash(req.Since)
		if err != nil {
			return MISPExport{}, fmt.Errorf("%w: --since: %w", ErrBadRequest, err)
		}
		e, err := n.store.Get(h)
		if err != nil {
			return MISPExport{}, fmt.Errorf("%w: --since %s: %w", ErrNotFound, req.Since, err)
		}
		k := e.Order()
		since = &k
	}
	var parts []misp.Part
	changed := map[string]bool{} // events with an entry after since
	err = n.eachIntel(log.IntelMISP, func(e *log.Entry, b *log.Body, in *log.Intel) {
		parts = append(parts, misp.Part{Intel: in, TLP: b.TLP})
		if since != nil {
			if k := e.Order(); bytes.Compare(k[:], since[:]) > 0 {
				changed[eventOf(in)] = true
			}
		}
	})
	if err != nil {
		return MISPExport{}, err
	}
	if since != nil || req.Event != "" {
		want := strings.ToLower(req.Event)
		kept := parts[:0]
		for _, p := range parts {
			ev := eventOf(p.Intel)
			if (since == nil || changed[ev]) && (want == "" || ev == want) {
				kept = append(kept, p)
			}
		}
		parts = kept
	}
	events, held, err := misp.Export(parts, opts)
	if err != nil {
		return MISPExport{}, err
	}
	withheld := apiWithheld(held)
	if req.Event != "" && len(events) == 0 {
		return MISPExport{Withheld: withheld}, fmt.Errorf("%w: no exportable MISP event %s (withheld: %d items)", ErrNotFound, req.Event, len(withheld))
	}
	return MISPExport{Events: events, Withheld: withheld}, nil
}

// exportOptions reads an export request's caps (the --max-tlp and
// --amber-strict-org of MISP and STIX exports).
func exportOptions(maxTLP, strictOrg string) (misp.ExportOptions, error) {
	opts := misp.ExportOptions{StrictOrg: strictOrg}
	if maxTLP != "" {
		t, err := misp.ParseTLP(maxTLP)
		if err != nil {
			return opts, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		opts.MaxTLP = t
	}
	if _, err := opts.Check(); err != nil {
		return opts, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return opts, nil
}

func apiWithheld(held []misp.Withheld) []api.Withheld {
	var withheld []api.Withheld
	for _, h := range held {
		withheld = append(withheld, api.Withheld{ID: h.ID, Type: h.Type, Reason: h.Reason})
	}
	return withheld
}

func eventOf(in *log.Intel) string {
	if in.Type == misp.TypeEvent {
		return in.ID
	}
	return in.Parent
}

func (n *Node) handleMISPImport(w http.ResponseWriter, r *http.Request) {
	data, ok := readImport(w, r, "MISP document")
	if !ok {
		return
	}
	q := r.URL.Query()
	req := MISPImportRequest{TLP: q.Get("tlp"), SkipInvalid: skipInvalid(q)}
	res, err := n.ImportMISP(r.Context(), data, req)
	writeImport(w, err, ErrMISPRefused, res, res.Refused, func(e api.Error) any { return api.MISPRefusal{Error: e, MISPImportResult: res} })
}

func skipInvalid(q url.Values) bool {
	return q.Get("skip_invalid") == "1" || q.Get("skip_invalid") == "true"
}

// readImport reads the body of an import request (what: the document, as
// an error names it), answering the error itself if it cannot.
func readImport(w http.ResponseWriter, r *http.Request, what string) ([]byte, bool) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("%s over %d bytes: import it in parts", what, tooBig.Limit))
		} else {
			writeError(w, http.StatusBadRequest, "bad-request", "request body: "+err.Error())
		}
		return nil, false
	}
	return buf.Bytes(), true
}

// writeImport answers an import: 422 with refusal(the error, its first
// 20 refusals in the message) if err is refusedErr, else the usual
// errors, else res.
func writeImport(w http.ResponseWriter, err, refusedErr error, res any, refused []api.Problem, refusal func(api.Error) any) {
	switch {
	case errors.Is(err, refusedErr):
		msg := err.Error()
		for i, p := range refused {
			if i == 20 {
				msg += fmt.Sprintf("\n  … and %d more", len(refused)-i)
				break
			}
			msg += "\n  " + p.String()
		}
		writeJSON(w, http.StatusUnprocessableEntity, refusal(api.Error{Code: "refused", Message: msg}))
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
	case err != nil:
		writeFailure(w, err, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (n *Node) handleMISPExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v, err := n.ExportMISP(MISPExportRequest{Since: q.Get("since"), MaxTLP: q.Get("max_tlp"), AmberStrictOrg: q.Get("amber_strict_org"), Event: q.Get("event")})
	writeExport(w, v, err)
}

// writeExport answers an export.
func writeExport(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "refused", err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not-found", err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// STIXImportRequest says how to import a STIX bundle (query parameters
// tlp and skip_invalid), as a MISP import.
type STIXImportRequest = MISPImportRequest

// The STIX API's types are the contract's (node/api).
type (
	STIXImportResult  = api.STIXImportResult
	STIXExport        = api.STIXExport
	STIXExportRequest = api.STIXExportRequest
)

// ErrSTIXRefused: an import refused objects and, without skip_invalid,
// stored nothing.
var ErrSTIXRefused = errors.New("node: STIX import refused")

// ImportSTIX maps a STIX 2.1 bundle to entries of kind intel (one per
// object) and stores those that add something, all in one batch, sealed
// to the network (a bundle names no recipients; TLP:RED is refused by the
// mapping): one refused object stores nothing unless req.SkipInvalid.
func (n *Node) ImportSTIX(ctx context.Context, data []byte, req STIXImportRequest) (STIXImportResult, error) {
	var res STIXImportResult
	b, err := stix.Decode(data)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	var opts stix.Options
	if opts.TLP, err = req.assumedTLP(); err != nil {
		return res, err
	}
	plan := stix.Map(b, opts)
	res.Objects = len(b.Objects)
	if err := tally(&res.ImportTally, plan.Refused, plan.Notes, req.SkipInvalid, ErrSTIXRefused, "objects"); err != nil {
		return res, err
	}
	known, err := n.intelHeld(log.IntelSTIX)
	if err != nil {
		return res, err
	}
	fresh, unchanged := stix.Fresh(plan.Items, known)
	res.Unchanged = unchanged
	if len(fresh) == 0 {
		return res, nil
	}
	key, err := n.networkKey()
	if err != nil {
		return res, err
	}
	res.Written, res.Bytes, err = n.appendIntel(ctx, len(fresh), func(i int) (log.Body, *crypto.GroupKey, error) {
		return fresh[i].Body, key, nil
	})
	return res, err
}

// ExportSTIX assembles a STIX 2.1 bundle of the newest version of each
// STIX object this node holds, never wider than req allows.
func (n *Node) ExportSTIX(req STIXExportRequest) (STIXExport, error) {
	opts, err := exportOptions(req.MaxTLP, req.AmberStrictOrg)
	if err != nil {
		return STIXExport{}, err
	}
	var parts []misp.Part
	err = n.eachIntel(log.IntelSTIX, func(_ *log.Entry, b *log.Body, in *log.Intel) {
		parts = append(parts, misp.Part{Intel: in, TLP: b.TLP})
	})
	if err != nil {
		return STIXExport{}, err
	}
	bundle, held, err := stix.Export(parts, opts)
	if err != nil {
		return STIXExport{}, err
	}
	return STIXExport{Bundle: bundle, Withheld: apiWithheld(held)}, nil
}

func (n *Node) handleSTIXImport(w http.ResponseWriter, r *http.Request) {
	data, ok := readImport(w, r, "STIX bundle")
	if !ok {
		return
	}
	q := r.URL.Query()
	res, err := n.ImportSTIX(r.Context(), data, STIXImportRequest{TLP: q.Get("tlp"), SkipInvalid: skipInvalid(q)})
	writeImport(w, err, ErrSTIXRefused, res, res.Refused, func(e api.Error) any { return api.STIXRefusal{Error: e, STIXImportResult: res} })
}

func (n *Node) handleSTIXExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v, err := n.ExportSTIX(STIXExportRequest{MaxTLP: q.Get("max_tlp"), AmberStrictOrg: q.Get("amber_strict_org")})
	writeExport(w, v, err)
}
