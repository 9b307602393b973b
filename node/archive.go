package node

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/archive"
	"github.com/crisismesh/crisismesh/replication/log"
)

// ExportArchive writes the after-action archive (package
// replication/archive) to out, an absolute path: written to a temporary
// name, fsynced and renamed, so a failure leaves no half archive.
//
// from and to (zero: unbounded) bound the entries by their author's time,
// inclusive. Kept whatever its time is what verifying the kept entries
// and the decisions needs: every roster and key entry (the roster
// history: who could sign what when), every checkpoint entry (the
// certified states and the decisions they carry), and after a kept entry
// that carries no signature the entries of its feed up to the next
// signed one (which vouches for it). Evidence (forks, revocations) and
// the committed Raft entries this node's Raft log holds are kept whole.
func (n *Node) ExportArchive(out string, from, to time.Time) (ArchiveView, error) {
	if !filepath.IsAbs(out) {
		return ArchiveView{}, fmt.Errorf("archive path %q must be absolute", out)
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return ArchiveView{}, fmt.Errorf("archive: --to %s is before --from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".archive-*.tmp")
	if err != nil {
		return ArchiveView{}, fmt.Errorf("archive export: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	v, err := n.writeArchive(tmp, from, to)
	if err != nil {
		return v, err
	}
	if err := tmp.Sync(); err != nil {
		return v, fmt.Errorf("archive export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return v, fmt.Errorf("archive export: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return v, fmt.Errorf("archive export: %w", err)
	}
	v.File = out
	return v, nil
}

func (n *Node) writeArchive(f *os.File, from, to time.Time) (ArchiveView, error) {
	w, err := archive.NewWriter(f)
	if err != nil {
		return ArchiveView{}, err
	}
	var v ArchiveView
	inWindow := func(e *log.Entry) bool {
		t := time.UnixMilli(e.Header.Time)
		return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
	}
	vouch := map[crypto.MemberID]bool{} // a kept entry of the author waits for a signed successor
	var after *log.OrderKey
	for {
		es, err := n.store.Entries(after, 512)
		if err != nil {
			return v, fmt.Errorf("archive export: %w", err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			a := e.Header.Author
			// A checkpoint's payload: states, votes and the decisions
			// they carry, which anyone holding the genesis can check.
			// Other bodies stay sealed.
			var checkpoint []byte
			if !e.Header.Plain() {
				if b, err := n.store.Read(e); err == nil && b.Kind == log.KindCheckpoint {
					checkpoint = b.Payload
				}
			}
			if !e.Header.Plain() && checkpoint == nil && !inWindow(e) && !vouch[a] {
				continue
			}
			vouch[a] = !e.Signed()
			if err := w.Entry(e); err != nil {
				return v, err
			}
			v.Entries++
			if checkpoint != nil {
				if err := w.Checkpoint(e.ID(), checkpoint); err != nil {
					return v, err
				}
				v.Checkpoints++
			}
		}
		k := es[len(es)-1].Order()
		after = &k
	}
	evidence, err := n.store.Evidence()
	if err != nil {
		return v, fmt.Errorf("archive export: %w", err)
	}
	for _, e := range evidence {
		if err := w.Evidence(e); err != nil {
			return v, err
		}
		v.Evidence++
	}
	committed, first, err := n.engine.Committed()
	if err != nil {
		return v, fmt.Errorf("archive export: %w", err)
	}
	for _, c := range committed {
		if err := w.Decision(c); err != nil {
			return v, err
		}
		v.Decisions++
	}
	info, err := w.Close(n.id, n.store.Network(), archive.Meta{Created: n.now(), From: from, To: to, RaftFirst: first})
	if err != nil {
		return v, err
	}
	v.Network, v.Exporter, v.Created = info.Network.String(), n.id.Card().Name(), info.Created.UTC()
	v.Records, v.Bytes, v.RaftFirst = info.Records, info.Bytes, first
	if !from.IsZero() {
		v.From = &from
	}
	if !to.IsZero() {
		v.To = &to
	}
	return v, nil
}

// handleArchiveExport writes an archive: streamed as the response body
// (its view in the api.HeaderArchive header), or, with "out", to a file
// inside the bundle directory.
func (n *Node) handleArchiveExport(w http.ResponseWriter, r *http.Request) {
	var req api.ArchiveExportRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var from, to time.Time
	if req.From != nil {
		from = *req.From
	}
	if req.To != nil {
		to = *req.To
	}
	serveExport(n, w, req.Out, api.HeaderArchive, func(out string) (ArchiveView, error) { return n.ExportArchive(out, from, to) },
		func(v *ArchiveView) { v.File = "" })
}
