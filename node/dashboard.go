package node

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard is static files embedded in the binary: no build step, no
// CDN; it reads the same API as the CLI and updates from the event stream.
//
//go:embed dashboard
var dashboardFS embed.FS

func dashboardFiles() http.Handler {
	sub, err := fs.Sub(dashboardFS, "dashboard")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return http.FileServer(http.FS(sub))
}

// DashboardURL is where a person opens the dashboard of a running node:
// the login link that sets the session cookie.
func DashboardURL(dir string) (string, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return "", err
	}
	token, err := ReadToken(dir)
	if err != nil {
		return "", err
	}
	return "http://" + cfg.API + "/login?token=" + token, nil
}
