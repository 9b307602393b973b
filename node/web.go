package node

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/crisismesh/crisismesh/node/api"
)

// What guards the API, besides the token:
//
//   - Host: every request, GET included, must name the API's own address
//     (the configured one, the one listened on, or localhost / 127.0.0.1
//     with its port): a page on another origin that rebinds its DNS name
//     to 127.0.0.1 gets 421 Misdirected Request, never an answer.
//   - Origin: a request that changes something (any method but GET and
//     HEAD) and carries an Origin must come from the API's own origin; one
//     authenticated only by the session cookie must carry it. A script
//     with the bearer header needs none (curl sends none).
//   - Login: the token never travels in a URL. /login is a form taking a
//     one-time code (10 minutes, once; `crisismesh run` prints one and
//     `crisismesh dashboard` asks the node for another) or the token
//     itself; the answer is an HttpOnly, SameSite=Strict session cookie
//     whose value is derived from the token, not the token. The old
//     /login?token=… link is refused with a message saying what to do:
//     a link with the token ends up in shell history, browser history and
//     screen shares.

const (
	loginCodeTTL   = 10 * time.Minute
	maxLoginCodes  = 32 // outstanding codes; the oldest goes first
	loginFormLimit = 4 << 10
)

// webGuard holds what the guard checks; it is safe for concurrent use.
type webGuard struct {
	token   string
	session string // the session cookie's value
	cookie  string // the session cookie's name
	addr    string // the address listened on
	hosts   map[string]bool
	origins map[string]bool

	mu    sync.Mutex
	codes map[string]time.Time // sha256 of a code → when it expires
}

func newWebGuard(token, configured, listening string) *webGuard {
	g := &webGuard{token: token, session: sessionValue(token), cookie: cookieName(token), addr: listening,
		hosts: map[string]bool{}, origins: map[string]bool{}, codes: map[string]time.Time{}}
	for _, a := range []string{configured, listening} {
		g.hosts[a] = true
		if _, port, err := net.SplitHostPort(a); err == nil {
			g.hosts["localhost:"+port] = true
			g.hosts["127.0.0.1:"+port] = true
		}
	}
	for h := range g.hosts {
		g.origins["http://"+h] = true
	}
	return g
}

// guard wraps a route's handler with the checks its route asks for.
func (g *webGuard) guard(rt route, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hosts[r.Host] {
			writeError(w, http.StatusMisdirectedRequest, "wrong-host",
				fmt.Sprintf("Host %q is not this API's address: use http://%s", r.Host, g.addr))
			return
		}
		origin := r.Header.Get("Origin")
		unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead
		if unsafe && origin != "" && !g.origins[origin] {
			writeError(w, http.StatusForbidden, "wrong-origin",
				fmt.Sprintf("Origin %q is not this API's own (http://%s): requests from other pages are refused", origin, g.addr))
			return
		}
		if rt.access == token {
			bearer := r.Header.Get("Authorization")
			switch {
			case bearer != "":
				if !subtleEqual(bearer, "Bearer "+g.token) {
					writeError(w, http.StatusUnauthorized, "unauthorized", "wrong bearer token: use the token in the data directory's "+TokenFile)
					return
				}
			case g.hasSession(r):
				if unsafe && origin == "" {
					writeError(w, http.StatusForbidden, "wrong-origin",
						"a request with the session cookie that changes something must carry this API's Origin (browsers send it)")
					return
				}
			default:
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token: use the token in the data directory's "+TokenFile+", or log in at http://"+g.addr+api.PathLogin)
				return
			}
		}
		if rt.limit > 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, rt.limit)
		}
		if rt.write != 0 {
			var deadline time.Time // none
			if rt.write > 0 {
				deadline = time.Now().Add(rt.write)
			}
			// The server's WriteTimeout was set when the request was read;
			// a stream or a bundle moves the deadline.
			http.NewResponseController(w).SetWriteDeadline(deadline)
		}
		h(w, r)
	})
}

func (g *webGuard) hasSession(r *http.Request) bool {
	c, err := r.Cookie(g.cookie)
	return err == nil && subtleEqual(c.Value, g.session)
}

// cookieName is the session cookie of one node. Browsers share cookies
// between ports of one host, so two nodes on 127.0.0.1 need two names.
func cookieName(token string) string {
	h := sha256.Sum256([]byte(token))
	return "crisismesh_" + hex.EncodeToString(h[:6])
}

// sessionValue is the session cookie's value: derived from the token (so
// it outlives a restart of the node) without revealing it.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("crisismesh dashboard session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// newCode issues a one-time login code valid until now+loginCodeTTL.
func (g *webGuard) newCode(now time.Time) (string, time.Time, error) {
	var b [10]byte // 80 bits
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, err
	}
	raw := base32.StdEncoding.EncodeToString(b[:]) // 16 characters
	code := raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
	exp := now.Add(loginCodeTTL)
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, e := range g.codes {
		if !now.Before(e) {
			delete(g.codes, k)
		}
	}
	for len(g.codes) >= maxLoginCodes {
		var oldest string
		for k, e := range g.codes {
			if oldest == "" || e.Before(g.codes[oldest]) {
				oldest = k
			}
		}
		delete(g.codes, oldest)
	}
	g.codes[codeKey(code)] = exp
	return code, exp, nil
}

// useCode reports whether code is an outstanding, unexpired code, and
// spends it.
func (g *webGuard) useCode(code string, now time.Time) bool {
	k := codeKey(code)
	g.mu.Lock()
	defer g.mu.Unlock()
	exp, ok := g.codes[k]
	delete(g.codes, k)
	return ok && now.Before(exp)
}

// codeKey is how a code is held: its hash, in the form people type it
// (case and dashes ignored).
func codeKey(code string) string {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	h := sha256.Sum256([]byte(c))
	return string(h[:])
}

// LoginCode issues a one-time code for the dashboard's login form of this
// node (valid 10 minutes, once). The node must serve its API.
func (n *Node) LoginCode() (api.LoginCode, error) {
	if n.web == nil {
		return api.LoginCode{}, fmt.Errorf("node: no API (api is empty in %s)", ConfigFile)
	}
	code, exp, err := n.web.newCode(n.now())
	if err != nil {
		return api.LoginCode{}, fmt.Errorf("node: login code: %w", err)
	}
	return api.LoginCode{Code: code, URL: "http://" + n.web.addr + api.PathLogin, Expires: exp.UTC()}, nil
}

func (n *Node) handleLoginCode(w http.ResponseWriter, _ *http.Request) {
	lc, err := n.LoginCode()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, lc)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crisismesh login</title></head>
<body>
<h1>crisismesh dashboard</h1>
{{if .}}<p id="login-error" role="alert">{{.}}</p>{{end}}
<form id="login" method="post" action="/login">
<label>One-time code (printed by <code>crisismesh run</code> or <code>crisismesh dashboard</code>) or the API token
<input id="code" name="code" autocomplete="off" autofocus required></label>
<button type="submit">Log in</button>
</form>
</body></html>
`))

func showLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	loginPage.Execute(w, msg)
}

// handleLoginForm shows the login form; the token in the URL (the old
// link) is refused.
func (n *Node) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("token") {
		showLogin(w, http.StatusBadRequest, "The token no longer goes in a link. Type a one-time code (crisismesh dashboard --dir DIR prints one) or the token below.")
		return
	}
	showLogin(w, http.StatusOK, "")
}

// handleLogin trades a one-time code (or the token) posted from the form
// for the session cookie and sends the browser to the dashboard.
func (n *Node) handleLogin(w http.ResponseWriter, r *http.Request) {
	code := r.PostFormValue("code")
	if code == "" || !(n.web.useCode(code, n.now()) || subtleEqual(code, n.web.token)) {
		showLogin(w, http.StatusUnauthorized, "Wrong or spent code: get a new one with crisismesh dashboard --dir DIR.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: n.web.cookie, Value: n.web.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, api.PathDashboard, http.StatusSeeOther)
}
