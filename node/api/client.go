package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client is a typed client of one node's API. It is safe for concurrent
// use. Every call blocks on the network and takes a context; an answer
// other than 2xx is returned as an *Error carrying the HTTP status and the
// error code.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the API at base ("http://127.0.0.1:8640")
// that authenticates with the bearer token. hc may be nil
// (http.DefaultClient).
func NewClient(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), token: token, http: hc}
}

// request sends one request; body is JSON-encoded unless it is an
// io.Reader (sent as a bundle). A 2xx response is returned open; anything
// else is read into an *Error.
func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, ContentTypeBundle
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("node API at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &Error{HTTPStatus: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e.details = raw
	if json.Unmarshal(raw, e) != nil || e.Message == "" {
		e.Code, e.Message = "http-"+strconv.Itoa(resp.StatusCode), "node API: "+resp.Status
	}
	return nil, e
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("node API at %s: %s %s: %w", c.base, method, path, err)
	}
	return nil
}

func call[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var v T
	err := c.do(ctx, method, path, body, &v)
	return v, err
}

// withID fills the {id} of a path pattern.
func withID(pattern, id string) string {
	return strings.Replace(pattern, "{id}", url.PathEscape(id), 1)
}

// Status reads the node's status.
func (c *Client) Status(ctx context.Context) (StatusView, error) {
	return call[StatusView](ctx, c, http.MethodGet, PathStatus, nil)
}

// MatrixStatus reads the Matrix bridge's state.
func (c *Client) MatrixStatus(ctx context.Context) (MatrixStatusView, error) {
	return call[MatrixStatusView](ctx, c, http.MethodGet, PathMatrixStatus, nil)
}

// Waiting lists the entries the node holds waiting for their post-quantum
// signature.
func (c *Client) Waiting(ctx context.Context) (WaitingView, error) {
	return call[WaitingView](ctx, c, http.MethodGet, PathWaiting, nil)
}

// Entries reads one page of entries in display order after the entry with
// ID after ("" from the start); limit 0 means DefaultLimit. next is the
// after of the following page, "" when this was the last one.
func (c *Client) Entries(ctx context.Context, after string, limit int) (es []EntryView, next string, err error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := PathEntries
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&es); err != nil {
		return nil, "", fmt.Errorf("node API at %s: GET %s: %w", c.base, path, err)
	}
	return es, resp.Header.Get(HeaderNext), nil
}

// Post writes an entry.
func (c *Client) Post(ctx context.Context, req PostRequest) (EntryView, error) {
	return call[EntryView](ctx, c, http.MethodPost, PathEntries, req)
}

// Crisis reads the crisis state: local, or linearizable (on the leader).
func (c *Client) Crisis(ctx context.Context, linearizable bool) (CrisisView, error) {
	path := PathCrisis
	if linearizable {
		path += "?linearizable=1"
	}
	return call[CrisisView](ctx, c, http.MethodGet, path, nil)
}

// Command signs and submits a crisis command as the node's member.
func (c *Client) Command(ctx context.Context, req CommandRequest) (CommandResult, error) {
	return call[CommandResult](ctx, c, http.MethodPost, PathCrisis, req)
}

// WhoHas says which members hold the entry with this ID.
func (c *Client) WhoHas(ctx context.Context, id string) ([]HolderView, error) {
	return call[[]HolderView](ctx, c, http.MethodGet, withID(PathWhoHas, id), nil)
}

// Sync runs a full resync with one member (a name or peer ID) now.
func (c *Client) Sync(ctx context.Context, peer string) (SyncReport, error) {
	return call[SyncReport](ctx, c, http.MethodPost, PathSync, SyncRequest{Peer: peer})
}

// ExportBundle streams a bundle of what member forMember lacks (every
// entry when "") into w, with the caller's rights on w.
func (c *Client) ExportBundle(ctx context.Context, forMember string, w io.Writer) (BundleView, error) {
	return stream[BundleView](ctx, c, "bundle export", PathBundleExport, HeaderBundle, ExportRequest{For: forMember}, w)
}

// ExportArchive streams an after-action archive into w, with the caller's
// rights on w (req.Out must be empty).
func (c *Client) ExportArchive(ctx context.Context, req ArchiveExportRequest, w io.Writer) (ArchiveView, error) {
	return stream[ArchiveView](ctx, c, "archive export", PathArchiveExport, HeaderArchive, req, w)
}

// stream posts req to path and copies the file the node streams back
// into w; the file's view V comes in header hdr.
func stream[V any](ctx context.Context, c *Client, what, path, hdr string, req any, w io.Writer) (V, error) {
	var v V
	resp, err := c.request(ctx, http.MethodPost, path, req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if err := json.Unmarshal([]byte(resp.Header.Get(hdr)), &v); err != nil {
		return v, fmt.Errorf("node API at %s: %s answered without its %s header: %w", c.base, what, hdr, err)
	}
	// A body cut short fails here (its length was announced); a file
	// cut anywhere else fails its checksum when read.
	if _, err := io.Copy(w, resp.Body); err != nil {
		return v, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// ImportBundle streams the bundle read from r to the node, which checks
// it completely and only then stores its entries.
func (c *Client) ImportBundle(ctx context.Context, r io.Reader) (BundleView, error) {
	return call[BundleView](ctx, c, http.MethodPost, PathBundleImport, r)
}

// Members lists the roster and the updates waiting for approvals.
func (c *Client) Members(ctx context.Context) (MembersView, error) {
	return call[MembersView](ctx, c, http.MethodGet, PathMembers, nil)
}

// ChangeRoster asks the node to sign and write a roster update.
func (c *Client) ChangeRoster(ctx context.Context, req UpdateRequest) (UpdateResult, error) {
	return call[UpdateResult](ctx, c, http.MethodPost, PathMembers, req)
}

// UpdateStatus says where a roster update stands.
func (c *Client) UpdateStatus(ctx context.Context, id string) (UpdateResult, error) {
	return call[UpdateResult](ctx, c, http.MethodGet, withID(PathUpdate, id), nil)
}

// Approve signs the node's admin's approval of a roster update.
func (c *Client) Approve(ctx context.Context, id string) (UpdateResult, error) {
	return call[UpdateResult](ctx, c, http.MethodPost, withID(PathApprove, id), nil)
}

// Groups lists the named groups.
func (c *Client) Groups(ctx context.Context) ([]GroupView, error) {
	return call[[]GroupView](ctx, c, http.MethodGet, PathGroups, nil)
}

// ChangeGroup creates, changes or deletes a named group.
func (c *Client) ChangeGroup(ctx context.Context, req GroupRequest) (UpdateResult, error) {
	return call[UpdateResult](ctx, c, http.MethodPost, PathGroups, req)
}

// RotateKey starts a new key epoch of a group ("" for the network key).
func (c *Client) RotateKey(ctx context.Context, group string) (KeyRotation, error) {
	return call[KeyRotation](ctx, c, http.MethodPost, PathKeyRotate, KeyRotateRequest{Group: group})
}

// LoginCode asks the node for a one-time dashboard login code.
func (c *Client) LoginCode(ctx context.Context) (LoginCode, error) {
	return call[LoginCode](ctx, c, http.MethodPost, PathLoginCodes, nil)
}

// OpenAPI reads the API's OpenAPI document as the node serves it.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, PathOpenAPI, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// ImportMISP posts a MISP event, list or feed (as one JSON document). A
// refused import returns the *Error and, in res, the refusals.
func (c *Client) ImportMISP(ctx context.Context, data []byte, tlp string, skipInvalid bool) (res MISPImportResult, err error) {
	return res, c.postImport(ctx, PathMISPImport, data, tlp, skipInvalid, &res)
}

// ImportSTIX posts a STIX 2.1 bundle. A refused import returns the
// *Error and, in res, the refusals.
func (c *Client) ImportSTIX(ctx context.Context, data []byte, tlp string, skipInvalid bool) (res STIXImportResult, err error) {
	return res, c.postImport(ctx, PathSTIXImport, data, tlp, skipInvalid, &res)
}

// postImport posts an import document to path, decoding the answer into
// res or, if refused, the result fields of the refusal's body (MISPRefusal,
// STIXRefusal) into res.
func (c *Client) postImport(ctx context.Context, path string, data []byte, tlp string, skipInvalid bool, res any) error {
	q := url.Values{}
	if tlp != "" {
		q.Set("tlp", tlp)
	}
	if skipInvalid {
		q.Set("skip_invalid", "1")
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	err := c.do(ctx, "POST", path, json.RawMessage(data), res)
	var e *Error
	if errors.As(err, &e) && e.details != nil {
		_ = json.Unmarshal(e.details, res) // without details, the error alone
	}
	return err
}

// ExportMISP reads the MISP events the node holds, as req allows.
func (c *Client) ExportMISP(ctx context.Context, req MISPExportRequest) (MISPExport, error) {
	path := withQuery(PathMISPExport, map[string]string{"since": req.Since, "max_tlp": req.MaxTLP, "amber_strict_org": req.AmberStrictOrg, "event": req.Event})
	return call[MISPExport](ctx, c, "GET", path, nil)
}

// ExportSTIX reads a STIX 2.1 bundle of the objects the node holds, as
// req allows.
func (c *Client) ExportSTIX(ctx context.Context, req STIXExportRequest) (STIXExport, error) {
	path := withQuery(PathSTIXExport, map[string]string{"max_tlp": req.MaxTLP, "amber_strict_org": req.AmberStrictOrg})
	return call[STIXExport](ctx, c, "GET", path, nil)
}

// withQuery returns path with the query of params that are not empty.
func withQuery(path string, params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path
}

// maxErrorBody bounds an error body the client reads (a refused MISP
// import lists every refusal).
const maxErrorBody = 16 << 20

// CommandStatus reads what became of a crisis command (its ID, or a
// unique prefix of at least 8 hex digits).
func (c *Client) CommandStatus(ctx context.Context, id string) (CommandResult, error) {
	return call[CommandResult](ctx, c, "GET", withID(PathCommand, id), nil)
}

// History reads the crisis decision history.
func (c *Client) History(ctx context.Context) (HistoryView, error) {
	return call[HistoryView](ctx, c, "GET", PathHistory, nil)
}

// Indicators lists the indicators the node holds.
func (c *Client) Indicators(ctx context.Context) (IndicatorsView, error) {
	return call[IndicatorsView](ctx, c, "GET", PathIndicators, nil)
}

// Report reads a situation report, Markdown or HTML as req says.
func (c *Client) Report(ctx context.Context, req ReportRequest) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, withQuery(PathReport, map[string]string{"format": req.Format, "max_tlp": req.MaxTLP}), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
