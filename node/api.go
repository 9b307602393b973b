package node

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Timeouts of the API server. A response may take up to apiWriteTimeout
// to write (a crisis command waits for Raft, a forced sync for a peer);
// the event stream has no write deadline and bundles get bundleTimeout.
const (
	apiWriteTimeout = 2 * time.Minute
	apiIdleTimeout  = 2 * time.Minute
	bundleTimeout   = 30 * time.Minute
)

// ReadToken reads the API bearer token of a data directory.
func ReadToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Access says who may call a route.
type access int

const (
	public access = iota // no credentials: /metrics, the login form
	token                // the bearer token, or the session cookie /login sets
)

// route is one entry of the API's route table: every path the server
// serves is here, and nowhere else.
type route struct {
	method, path string
	h            http.HandlerFunc
	access       access
	// limit is the largest request body accepted (0: none expected).
	limit int64
	// write is the response's write timeout: 0 the server's, -1 none.
	write time.Duration
}

// pattern is the route as http.ServeMux and the metrics name it.
func (r route) pattern() string { return r.method + " " + r.path }

// routes is the API's route table. It reads nothing of n, so a test may
// list it on a nil *Node and hold it against the OpenAPI document.
func (n *Node) routes() []route {
	dashboard := http.StripPrefix("/dashboard/", dashboardFiles())
	return []route{
		{method: "GET", path: api.PathStatus, h: n.handleStatus, access: token},
		{method: "GET", path: api.PathEntries, h: n.handleEntries, access: token},
		{method: "POST", path: api.PathEntries, h: n.handlePost, access: token, limit: api.MaxEntryBody},
		{method: "GET", path: api.PathCrisis, h: n.handleCrisis, access: token},
		{method: "POST", path: api.PathCrisis, h: n.handleCommand, access: token, limit: api.MaxBody},
		{method: "GET", path: api.PathCommand, h: n.handleCommandStatus, access: token},
		{method: "GET", path: api.PathHistory, h: n.handleHistory, access: token},
		{method: "GET", path: api.PathWhoHas, h: n.handleWhoHas, access: token},
		{method: "POST", path: api.PathSync, h: n.handleSync, access: token, limit: api.MaxBody},
		{method: "POST", path: api.PathBundleExport, h: n.handleExport, access: token, limit: api.MaxBody, write: bundleTimeout},
		{method: "POST", path: api.PathBundleImport, h: n.handleImport, access: token, limit: api.MaxBundleBody, write: bundleTimeout},
		{method: "POST", path: api.PathArchiveExport, h: n.handleArchiveExport, access: token, limit: api.MaxBody, write: bundleTimeout},
		{method: "GET", path: api.PathMembers, h: n.handleMembers, access: token},
		{method: "POST", path: api.PathMembers, h: n.handleRosterChange, access: token, limit: api.MaxBody},
		{method: "GET", path: api.PathUpdate, h: n.handleUpdateStatus, access: token},
		{method: "POST", path: api.PathApprove, h: n.handleApprove, access: token, limit: api.MaxBody},
		{method: "GET", path: api.PathGroups, h: n.handleGroups, access: token},
		{method: "POST", path: api.PathGroups, h: n.handleGroupChange, access: token, limit: api.MaxBody},
		{method: "POST", path: api.PathKeyRotate, h: n.handleKeyRotate, access: token, limit: api.MaxBody},
		{method: "POST", path: api.PathMISPImport, h: n.handleMISPImport, access: token, limit: api.MaxMISPBody, write: bundleTimeout},
		{method: "GET", path: api.PathMISPExport, h: n.handleMISPExport, access: token, write: bundleTimeout},
		{method: "POST", path: api.PathSTIXImport, h: n.handleSTIXImport, access: token, limit: api.MaxMISPBody, write: bundleTimeout},
		{method: "GET", path: api.PathSTIXExport, h: n.handleSTIXExport, access: token, write: bundleTimeout},
		{method: "GET", path: api.PathIndicators, h: n.handleIndicators, access: token},
		{method: "GET", path: api.PathReport, h: n.handleReport, access: token, write: bundleTimeout},
		{method: "POST", path: api.PathLoginCodes, h: n.handleLoginCode, access: token, limit: api.MaxBody},
		{method: "GET", path: api.PathMatrixStatus, h: n.handleMatrixStatus, access: token},
		{method: "GET", path: api.PathWaiting, h: n.handleWaiting, access: token},
		{method: "GET", path: api.PathEvents, h: n.handleEvents, access: token, write: -1},
		{method: "GET", path: api.PathOpenAPI, h: handleOpenAPI, access: token},
		{method: "GET", path: api.PathDashboard + "{file...}", h: dashboard.ServeHTTP, access: token},
		{method: "GET", path: api.PathLogin, h: n.handleLoginForm, access: public},
		{method: "POST", path: api.PathLogin, h: n.handleLogin, access: public, limit: loginFormLimit},
		{method: "GET", path: api.PathMetrics, h: n.metricsHandler, access: public},
	}
}

// startAPI serves the local HTTP API on cfg.API (127.0.0.1 only).
func (n *Node) startAPI(writeTimeout time.Duration) error {
	tok, err := ReadToken(n.dir)
	if errors.Is(err, os.ErrNotExist) {
		if err = writeToken(n.dir); err == nil {
			tok, err = ReadToken(n.dir)
		}
	}
	if err != nil {
		return fmt.Errorf("node: API token: %w", err)
	}
	ln, err := net.Listen("tcp", n.cfg.API)
	if err != nil {
		return fmt.Errorf("node: API on %s: %w (is another node using this port? change api in %s)", n.cfg.API, err, filepath.Join(n.dir, ConfigFile))
	}
	n.web = newWebGuard(tok, n.cfg.API, ln.Addr().String())
	mux := http.NewServeMux()
	for _, r := range n.routes() {
		h := r.h
		if strings.HasPrefix(r.path, "/api/") && r.write >= 0 {
			h = n.metrics.instrument(r.pattern(), h)
		}
		mux.Handle(r.pattern(), n.web.guard(r, h))
	}
	// Anything else: still a wrong Host first, then 401 or 404.
	mux.Handle("/", n.web.guard(route{access: token}, http.NotFound))
	n.api = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       apiIdleTimeout,
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logger.Error("API stopped", "err", err)
		}
	}()
	n.logger.Info("API listening", "addr", ln.Addr().String())
	return nil
}

func (n *Node) stopAPI() {
	if n.api == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.api.Shutdown(ctx)
}

func (n *Node) metricsHandler(w http.ResponseWriter, r *http.Request) {
	n.metrics.handler().ServeHTTP(w, r)
}

// handleOpenAPI serves the API's own description, the document in
// node/api (openapi.json). It needs the token like the rest: it tells
// nothing secret, but nothing on this port is for anyone without it
// except /metrics and the login form.
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(api.OpenAPI())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Code: code, Message: msg})
}

// writeFailure answers a request that failed with err: a full disk is 507
// Insufficient Storage with code "disk-full" (the message says how much is
// free, the reserve, and what to do), anything else status and code.
func writeFailure(w http.ResponseWriter, err error, status int, code, msg string) {
	if errors.Is(err, store.ErrDiskFull) {
		writeError(w, http.StatusInsufficientStorage, "disk-full", err.Error())
		return
	}
	writeError(w, status, code, msg)
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status(r.Context()))
}

// handleEntries answers one page of at most api.MaxLimit entries (default
// api.DefaultLimit); the header api.HeaderNext names the after= of the
// next page, and is absent on the last.
func (n *Node) handleEntries(w http.ResponseWriter, r *http.Request) {
	limit := api.DefaultLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 0 {
			writeError(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("limit=%q: want a number of entries from 1 to %d", s, api.MaxLimit))
			return
		}
		if l > 0 {
			limit = min(l, api.MaxLimit)
		}
	}
	es, err := n.Entries(r.URL.Query().Get("after"), limit+1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	if len(es) > limit {
		es = es[:limit]
		w.Header().Set(api.HeaderNext, es[limit-1].ID)
	}
	writeJSON(w, http.StatusOK, es)
}

func (n *Node) handlePost(w http.ResponseWriter, r *http.Request) {
	var req PostRequest
	if !decodeBody(w, r, &req) {
		return
	}
	e, err := n.Post(r.Context(), req)
	if err != nil {
		writeFailure(w, err, http.StatusBadRequest, "refused", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, n.ViewEntry(e))
}

func (n *Node) handleCrisis(w http.ResponseWriter, r *http.Request) {
	lin := r.URL.Query().Get("linearizable") == "1"
	v, err := n.Crisis(r.Context(), lin)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "not-leader", err.Error()+": a linearizable read needs the leader; ask the leader's node, or read locally without --linearizable")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) handleCommand(w http.ResponseWriter, r *http.Request) {
	var req CommandRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Request != "" {
		id, err := n.resolveRequest(req.Request)
		if err != nil {
			writeIDError(w, err)
			return
		}
		req.Request = id.String()
	}
	cmd, err := ToCommand(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	res, err := n.Command(r.Context(), cmd)
	if err != nil {
		writeFailure(w, err, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) handleWhoHas(w http.ResponseWriter, r *http.Request) {
	hs, err := n.WhoHas(r.PathValue("id"))
	if err != nil {
		writeIDError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, hs)
}

func (n *Node) handleCommandStatus(w http.ResponseWriter, r *http.Request) {
	res, err := n.CommandStatus(r.PathValue("id"))
	if err != nil {
		writeIDError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) handleHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.History())
}

// writeIDError answers a request whose ID did not resolve: 400 for a bad
// or ambiguous prefix (code "ambiguous-id" lists the matches), 404 for an
// unknown ID.
func writeIDError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrAmbiguous):
		writeError(w, http.StatusBadRequest, "ambiguous-id", err.Error())
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
	default:
		writeError(w, http.StatusNotFound, "not-found", err.Error())
	}
}

func (n *Node) handleSync(w http.ResponseWriter, r *http.Request) {
	var req api.SyncRequest
	if !decodeBody(w, r, &req) {
		return
	}
	rep, err := n.ForceSync(r.Context(), req.Peer)
	if err != nil {
		writeFailure(w, err, http.StatusBadGateway, "sync-failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (n *Node) handleMembers(w http.ResponseWriter, r *http.Request) {
	v, err := n.Members()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) handleRosterChange(w http.ResponseWriter, r *http.Request) {
	var req UpdateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, err := n.ChangeRoster(r.Context(), req)
	n.writeUpdateResult(w, res, err)
}

func (n *Node) handleUpdateStatus(w http.ResponseWriter, r *http.Request) {
	res, err := n.UpdateStatus(r.PathValue("id"))
	n.writeUpdateResult(w, res, err)
}

func (n *Node) handleApprove(w http.ResponseWriter, r *http.Request) {
	res, err := n.Approve(r.Context(), r.PathValue("id"))
	n.writeUpdateResult(w, res, err)
}

func (n *Node) handleGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Groups())
}

func (n *Node) handleGroupChange(w http.ResponseWriter, r *http.Request) {
	var req GroupRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, err := n.ChangeGroup(r.Context(), req)
	n.writeUpdateResult(w, res, err)
}

func (n *Node) handleKeyRotate(w http.ResponseWriter, r *http.Request) {
	var req api.KeyRotateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	v, err := n.RotateKey(r.Context(), req.Group)
	if errors.Is(err, ErrBadRequest) {
		writeError(w, http.StatusBadRequest, "refused", err.Error())
		return
	}
	if err != nil {
		writeFailure(w, err, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeUpdateResult answers a roster request: a refusal by a rule is a
// result (200, status refused), like a refused crisis command.
func (n *Node) writeUpdateResult(w http.ResponseWriter, res UpdateResult, err error) {
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not-found", err.Error())
	case err != nil:
		writeFailure(w, err, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// apiAddr is the address the API listens on, for links it prints.
func (n *Node) apiAddr() string {
	if n.web != nil {
		return n.web.addr
	}
	return n.cfg.API
}

// subtleEqual compares two secrets in constant time.
func subtleEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
