package node

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/crisismesh/crisismesh/node/api"
)

// The dashboard is static files embedded in the binary: no build step, no
// CDN; it reads the same API as the CLI and updates from the event stream.
// Its map of the EU (dashboard/eu-map.svg) is CC BY-SA 3.0, from a public
// world map: dashboard/eu-map.README.md says where from and how it was cut.
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

// DashboardURL is where a person opens the dashboard of a node: its
// login form, which takes a one-time code ([Node.LoginCode]; `crisismesh
// dashboard` asks a running node for one) or the token. The token itself
// never goes in the URL.
func DashboardURL(dir string) (string, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return "", err
	}
	return "http://" + cfg.API + api.PathLogin, nil
}
