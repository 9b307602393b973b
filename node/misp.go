package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/interop/misp"
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
	if req.TLP != "" {
		if opts.TLP, err = misp.ParseTLP(req.TLP); err != nil {
			return res, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	plan := misp.Map(evs, opts)
	res.Events, res.Refused, res.Notes = len(evs), problems(plan.Refused), problems(plan.Notes)
	if len(plan.Refused) > 0 && !req.SkipInvalid {
		return res, fmt.Errorf("%w: %d problems, nothing stored (fix them, or --skip-invalid to store the valid items)", ErrMISPRefused, len(plan.Refused))
	}
	known, err := n.mispHeld()
	if err != nil {
		return res, err
	}
	fresh, unchanged := misp.Fresh(plan.Items, known)
	res.Unchanged = unchanged
	if len(fresh) == 0 {
		return res, nil
	}
	exercise := n.exerciseOpen()
	drafts := make([]log.Draft, 0, len(fresh))
	for _, it := range fresh {
		key, err := n.mispKey(ctx, it)
		if err != nil {
			return res, fmt.Errorf("%s: %w", it.Path, err)
		}
		b := it.Body
		b.Exercise = exercise
		drafts = append(drafts, log.Draft{Body: b, Key: key})
	}
	es, err := n.store.Append(ctx, drafts...)
	if err != nil {
		return res, err
	}
	res.Written = len(es)
	for _, e := range es {
		res.Bytes += e.Size()
	}
	return res, nil
}

// mispKey returns the key an item is sealed under: its scope, never wider.
func (n *Node) mispKey(ctx context.Context, it misp.Item) (*crypto.GroupKey, error) {
	if it.Scope.Network() {
		key, ok := n.store.NetworkKey()
		if !ok {
			return nil, errors.New("this node holds no network key yet: it arrives from an admin node once connected; check 'crisismesh status'")
		}
		return key, nil
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

// mispHeld returns the newest MISP item of each ID this node can read.
func (n *Node) mispHeld() (map[string]*log.Intel, error) {
	held := map[string]*log.Intel{}
	err := n.eachIntel(func(_ *log.Entry, _ *log.Body, in *log.Intel) {
		if k, ok := held[in.ID]; !ok || misp.Supersedes(in, k) {
			held[in.ID] = in
		}
	})
	return held, err
}

// eachIntel calls f with every readable MISP intel entry in display order.
func (n *Node) eachIntel(f func(*log.Entry, *log.Body, *log.Intel)) error {
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
			if err != nil || in.Format != log.IntelMISP {
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
	opts := misp.ExportOptions{StrictOrg: req.AmberStrictOrg}
	if req.MaxTLP != "" {
		t, err := misp.ParseTLP(req.MaxTLP)
		if err != nil {
			return MISPExport{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		opts.MaxTLP = t
	}
	if _, err := opts.Check(); err != nil {
		return MISPExport{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
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
	err := n.eachIntel(func(e *log.Entry, b *log.Body, in *log.Intel) {
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
	var withheld []api.Withheld
	for _, h := range held {
		withheld = append(withheld, api.Withheld{ID: h.ID, Type: h.Type, Reason: h.Reason})
	}
	if req.Event != "" && len(events) == 0 {
		return MISPExport{Withheld: withheld}, fmt.Errorf("%w: no exportable MISP event %s (withheld: %d items)", ErrNotFound, req.Event, len(withheld))
	}
	return MISPExport{Events: events, Withheld: withheld}, nil
}

func eventOf(in *log.Intel) string {
	if in.Type == misp.TypeEvent {
		return in.ID
	}
	return in.Parent
}

func (n *Node) handleMISPImport(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("MISP document over %d bytes: import it in parts", tooBig.Limit))
		} else {
			writeError(w, http.StatusBadRequest, "bad-request", "request body: "+err.Error())
		}
		return
	}
	q := r.URL.Query()
	req := MISPImportRequest{TLP: q.Get("tlp"), SkipInvalid: q.Get("skip_invalid") == "1" || q.Get("skip_invalid") == "true"}
	res, err := n.ImportMISP(r.Context(), buf.Bytes(), req)
	switch {
	case errors.Is(err, ErrMISPRefused):
		msg := err.Error()
		for i, p := range res.Refused {
			if i == 20 {
				msg += fmt.Sprintf("\n  … and %d more", len(res.Refused)-i)
				break
			}
			msg += "\n  " + p.String()
		}
		writeJSON(w, http.StatusUnprocessableEntity, api.MISPRefusal{Error: api.Error{Code: "refused", Message: msg}, MISPImportResult: res})
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
