package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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

	"github.com/crisismesh/crisismesh/replication/store"
)

// API paths. They are a contract with the CLI and scripts.
const (
	apiStatus  = "/api/v1/status"
	apiEntries = "/api/v1/entries"
	apiCrisis  = "/api/v1/crisis"
	apiMembers = "/api/v1/members"
)

// apiError is the JSON body of every API error: a stable code and what to do.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ReadToken reads the API bearer token of a data directory.
func ReadToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// startAPI serves the local HTTP API on cfg.API (127.0.0.1 only).
func (n *Node) startAPI() error {
	token, err := ReadToken(n.dir)
	if errors.Is(err, os.ErrNotExist) {
		if err = writeToken(n.dir); err == nil {
			token, err = ReadToken(n.dir)
		}
	}
	if err != nil {
		return fmt.Errorf("node: API token: %w", err)
	}
	ln, err := net.Listen("tcp", n.cfg.API)
	if err != nil {
		return fmt.Errorf("node: API on %s: %w (is another node using this port? change api in %s)", n.cfg.API, err, filepath.Join(n.dir, ConfigFile))
	}
	api := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET " + apiStatus, n.handleStatus},
		{"GET " + apiEntries, n.handleEntries},
		{"POST " + apiEntries, n.handlePost},
		{"GET " + apiCrisis, n.handleCrisis},
		{"POST " + apiCrisis, n.handleCommand},
		{"GET " + apiCrisis + "/commands/{id}", n.handleCommandStatus},
		{"GET " + apiCrisis + "/history", n.handleHistory},
		{"GET /api/v1/who-has/{id}", n.handleWhoHas},
		{"POST /api/v1/sync", n.handleSync},
		{"POST /api/v1/bundles/export", n.handleExport},
		{"POST /api/v1/bundles/import", n.handleImport},
		{"GET " + apiMembers, n.handleMembers},
		{"POST " + apiMembers, n.handleRosterChange},
		{"GET " + apiMembers + "/updates/{id}", n.handleUpdateStatus},
		{"POST " + apiMembers + "/updates/{id}/approve", n.handleApprove},
		{"GET /api/v1/groups", n.handleGroups},
		{"POST /api/v1/groups", n.handleGroupChange},
		{"POST /api/v1/keys/rotate", n.handleKeyRotate},
	} {
		api.HandleFunc(r.pattern, n.metrics.instrument(r.pattern, r.h))
	}
	// /metrics carries only counts and states, no entry content, and is
	// served without the token so Prometheus can scrape it on 127.0.0.1;
	// everything else needs the token.
	root := http.NewServeMux()
	root.Handle("GET /metrics", n.metrics.handler())
	api.HandleFunc("GET /api/v1/events", n.handleEvents)
	api.Handle("GET /dashboard/", http.StripPrefix("/dashboard/", dashboardFiles()))
	root.HandleFunc("GET /login", loginHandler(token))
	root.Handle("/", bearer(token, api))
	n.api = &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
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

// bearer refuses requests without the data directory's token.
// The token may also come in the session cookie that /login sets, so the
// dashboard (and its EventSource, which cannot set headers) works.
func bearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if c, err := r.Cookie(cookieName(token)); err == nil && len(got) == 0 {
			got = []byte("Bearer " + c.Value)
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token: use the token in the data directory's "+TokenFile)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
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

func (n *Node) handleEntries(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	es, err := n.Entries(r.URL.Query().Get("after"), limit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, es)
}

func (n *Node) handlePost(w http.ResponseWriter, r *http.Request) {
	var req PostRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", "body is not a post: "+err.Error())
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
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", "body is not a crisis command: "+err.Error())
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
	cmd, err := req.ToCommand()
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

// syncRequest, exportRequest and importRequest are API bodies.
type syncRequest struct {
	Peer string `json:"peer"`
}

type exportRequest struct {
	Out string `json:"out"`
	For string `json:"for,omitempty"`
}

type importRequest struct {
	File string `json:"file"`
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err.Error())
		return false
	}
	return true
}

func (n *Node) handleSync(w http.ResponseWriter, r *http.Request) {
	var req syncRequest
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

func (n *Node) handleExport(w http.ResponseWriter, r *http.Request) {
	var req exportRequest
	if !decodeBody(w, r, &req) {
		return
	}
	v, err := n.ExportBundle(req.Out, req.For)
	if err != nil {
		writeError(w, http.StatusBadRequest, "export-failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) handleImport(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	if !decodeBody(w, r, &req) {
		return
	}
	v, err := n.ImportBundle(r.Context(), req.File)
	if err != nil {
		writeFailure(w, err, http.StatusBadRequest, "import-failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
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

// keyRotateRequest is the body of POST /api/v1/keys/rotate.
type keyRotateRequest struct {
	Group string `json:"group,omitempty"`
}

func (n *Node) handleKeyRotate(w http.ResponseWriter, r *http.Request) {
	var req keyRotateRequest
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

// cookieName is the session cookie of one node. Browsers share cookies
// between ports of one host, so two nodes on 127.0.0.1 need two names.
func cookieName(token string) string {
	h := sha256.Sum256([]byte(token))
	return "crisismesh_" + hex.EncodeToString(h[:6])
}

// loginHandler trades the token (in the query, as printed by `run`) for an
// HttpOnly, SameSite=Strict cookie and sends the browser to the dashboard.
func loginHandler(token string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(token)) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "wrong token: open the URL that `crisismesh run` prints")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName(token), Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/dashboard/", http.StatusSeeOther)
	}
}
