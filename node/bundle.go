package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/crisismesh/crisismesh/node/api"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/sync"
)

// ExportBundle writes a bundle to out (an absolute path): everything the
// member called forMember lacks as far as this node last saw, or every
// entry when forMember is "".
func (n *Node) ExportBundle(out, forMember string) (BundleView, error) {
	if !filepath.IsAbs(out) {
		return BundleView{}, fmt.Errorf("bundle path %q must be absolute", out)
	}
	var base log.Frontier
	if forMember != "" {
		p, _, err := n.resolvePeer(forMember)
		if err != nil {
			return BundleView{}, err
		}
		for _, ps := range n.sync.Peers() {
			if ps.Peer == p {
				base = ps.LastFrontier
			}
		}
	}
	info, err := sync.Export(n.store, n.id, base, out, n.now())
	if err != nil {
		return BundleView{}, err
	}
	return n.bundleView(out, info), nil
}

// ImportBundle checks and ingests a bundle file (an absolute path).
func (n *Node) ImportBundle(ctx context.Context, file string) (BundleView, error) {
	if !filepath.IsAbs(file) {
		return BundleView{}, fmt.Errorf("bundle path %q must be absolute", file)
	}
	res, err := sync.Import(ctx, n.store, file)
	if err != nil {
		return BundleView{}, err
	}
	v := n.bundleView(file, res.Info)
	v.Added, v.Dups, v.Rejected = res.Added, res.Duplicates, len(res.Rejected)
	return v, nil
}

func (n *Node) bundleView(file string, info sync.BundleInfo) BundleView {
	exp := info.Exporter.Short()
	if m, ok := n.store.Roster().Member(info.Exporter); ok {
		exp = m.Card.Name()
	}
	return BundleView{File: file, Network: info.Network.String(), Exporter: exp, Created: info.Created, Entries: info.Entries, Bytes: info.Bytes}
}

// bundleDir is the one directory where the API reads or writes bundles
// named by path (config.toml bundle_dir; default bundles/ in the data
// directory). The CLI streams bundles instead and needs none.
func (n *Node) bundleDir() string {
	d := n.cfg.BundleDir
	if d == "" {
		d = bundlesDir
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(n.dir, d)
	}
	return filepath.Clean(d)
}

// confined returns p if it names a file inside the bundle directory, and
// an error saying where bundles may go otherwise.
func (n *Node) confined(p string) (string, error) {
	dir := n.bundleDir()
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	if !filepath.IsAbs(p) || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("bundle path %q is outside %s, the only directory the API reads or writes bundles in (bundle_dir in %s); or stream the bundle through the API as the CLI does", p, dir, ConfigFile)
	}
	// A symbolic link inside the directory must not lead out of it.
	if real, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		if realDir, err := filepath.EvalSymlinks(dir); err == nil && real != realDir && !strings.HasPrefix(real, realDir+string(filepath.Separator)) {
			return "", fmt.Errorf("bundle path %q leads out of %s through a symbolic link", p, dir)
		}
	}
	return p, nil
}

// handleExport writes a bundle: streamed as the response body (the
// bundle's view in the api.HeaderBundle header), or, with "out", to a
// file inside the bundle directory.
func (n *Node) handleExport(w http.ResponseWriter, r *http.Request) {
	var req api.ExportRequest
	if !decodeBody(w, r, &req) {
		return
	}
	serveExport(n, w, req.Out, api.HeaderBundle, func(out string) (BundleView, error) { return n.ExportBundle(out, req.For) },
		func(v *BundleView) { v.File = "" })
}

// serveExport answers an export request (code export-failed): with out,
// export writes the file there (inside the bundle directory) and the
// answer is its view; without, export writes it to a private temporary
// place, and the file is the response body with its view (unnamed by
// streamed) as JSON in header hdr.
func serveExport[V any](n *Node, w http.ResponseWriter, out, hdr string, export func(path string) (V, error), streamed func(*V)) {
	if out != "" {
		out, err := n.confined(out)
		if err == nil {
			var v V
			if v, err = export(out); err == nil {
				writeJSON(w, http.StatusOK, v)
				return
			}
		}
		writeError(w, http.StatusBadRequest, "export-failed", err.Error())
		return
	}
	tmp, err := n.bundleTemp()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "export-failed", err.Error())
		return
	}
	defer os.RemoveAll(tmp)
	v, err := export(filepath.Join(tmp, "export"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "export-failed", err.Error())
		return
	}
	f, err := os.Open(filepath.Join(tmp, "export"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "export-failed", err.Error())
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "export-failed", err.Error())
		return
	}
	streamed(&v)
	b, _ := json.Marshal(v)
	w.Header().Set(hdr, string(b))
	w.Header().Set("Content-Type", api.ContentTypeBundle)
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, f)
}

// handleImport checks and ingests a bundle: the request body itself
// (Content-Type application/octet-stream), or a JSON body naming a file
// inside the bundle directory.
func (n *Node) handleImport(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == api.ContentTypeBundle {
		n.importStreamed(w, r)
		return
	}
	var req api.ImportRequest
	r.Body = http.MaxBytesReader(w, r.Body, api.MaxBody) // a JSON body is small
	if !decodeBody(w, r, &req) {
		return
	}
	file, err := n.confined(req.File)
	if err != nil {
		writeError(w, http.StatusBadRequest, "import-failed", err.Error())
		return
	}
	v, err := n.ImportBundle(r.Context(), file)
	if err != nil {
		writeFailure(w, err, http.StatusBadRequest, "import-failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) importStreamed(w http.ResponseWriter, r *http.Request) {
	tmp, err := n.bundleTemp()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "import-failed", err.Error())
		return
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "bundle")
	f, err := os.Create(file)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "import-failed", err.Error())
		return
	}
	_, err = io.Copy(f, r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("bundle over %d bytes, the limit of %s %s", tooBig.Limit, r.Method, r.URL.Path))
		return
	case err != nil:
		writeFailure(w, err, http.StatusBadRequest, "import-failed", "reading the bundle: "+err.Error())
		return
	}
	v, err := n.ImportBundle(r.Context(), file)
	if err != nil {
		writeFailure(w, err, http.StatusBadRequest, "import-failed", err.Error())
		return
	}
	v.File = ""
	writeJSON(w, http.StatusOK, v)
}

// bundleTemp makes a private temporary directory for one streamed bundle
// inside the bundle directory (so it is on the node's own disk).
func (n *Node) bundleTemp() (string, error) {
	dir := n.bundleDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("bundle directory: %w", err)
	}
	return os.MkdirTemp(dir, ".stream-*")
}
