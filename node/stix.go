package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/interop/stix"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
)

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
	if req.TLP != "" {
		if opts.TLP, err = misp.ParseTLP(req.TLP); err != nil {
			return res, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	plan := stix.Map(b, opts)
	res.Objects, res.Refused, res.Notes = len(b.Objects), problems(plan.Refused), problems(plan.Notes)
	if len(plan.Refused) > 0 && !req.SkipInvalid {
		return res, fmt.Errorf("%w: %d problems, nothing stored (fix them, or --skip-invalid to store the valid objects)", ErrSTIXRefused, len(plan.Refused))
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
