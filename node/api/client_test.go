package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node/api"
)

// fakeNode answers as a node would, for the client's own tests.
func fakeNode(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"unauthorized","message":"wrong bearer token"}`)
			return
		}
		fmt.Fprint(w, `{"member":"cert-lu","entries":3}`)
	})
	mux.HandleFunc("GET "+api.PathEntries, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") == "" {
			w.Header().Set(api.HeaderNext, "b")
			fmt.Fprint(w, `[{"id":"a"},{"id":"b"}]`)
			return
		}
		fmt.Fprint(w, `[{"id":"c"}]`)
	})
	mux.HandleFunc("POST "+api.PathBundleExport, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderBundle, `{"exporter":"cert-lu","entries":2}`)
		w.Write([]byte("BUNDLE"))
	})
	mux.HandleFunc("POST "+api.PathArchiveExport, func(w http.ResponseWriter, r *http.Request) {
		var req api.ArchiveExportRequest
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.From == nil || req.To != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set(api.HeaderArchive, `{"exporter":"cert-lu","entries":5,"decisions":2}`)
		w.Write([]byte("ARCHIVE"))
	})
	mux.HandleFunc("GET "+api.PathCrisis, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "not JSON")
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestClientErrors(t *testing.T) {
	s := fakeNode(t)
	ctx := context.Background()
	_, err := api.NewClient(s.URL, "wrong", nil).Status(ctx)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusUnauthorized || ae.Code != "unauthorized" || err.Error() != "wrong bearer token (unauthorized)" {
		t.Errorf("wrong token: got %#v (%v), want an *api.Error with 401 and code unauthorized", err, err)
	}
	_, err = api.NewClient(s.URL, "tok", nil).Crisis(ctx, false)
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusBadGateway || ae.Code != "http-502" {
		t.Errorf("an error without a JSON body: got %#v", err)
	}
	_, err = api.NewClient("http://127.0.0.1:1", "tok", nil).Status(ctx)
	if err == nil || errors.As(err, &ae) || !strings.Contains(err.Error(), "node API at http://127.0.0.1:1") {
		t.Errorf("no node: got %v, want a transport error naming the address", err)
	}
}

func TestClientPagesAndBundles(t *testing.T) {
	s := fakeNode(t)
	cl := api.NewClient(s.URL+"/", "tok", nil)
	ctx := context.Background()
	var ids []string
	after := ""
	for {
		es, next, err := cl.Entries(ctx, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("entries by pages: got %v, want a,b,c", ids)
	}
	var buf bytes.Buffer
	v, err := cl.ExportBundle(ctx, "", &buf)
	if err != nil || v.Exporter != "cert-lu" || v.Entries != 2 || buf.String() != "BUNDLE" {
		t.Errorf("export: %+v %q %v", v, buf.String(), err)
	}
	buf.Reset()
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	av, err := cl.ExportArchive(ctx, api.ArchiveExportRequest{From: &from}, &buf)
	if err != nil || av.Exporter != "cert-lu" || av.Entries != 5 || av.Decisions != 2 || buf.String() != "ARCHIVE" {
		t.Errorf("archive export: %+v %q %v", av, buf.String(), err)
	}
}

func ExampleClient() {
	// A stand-in for a node's API; a real one is at "http://" + the api
	// address in config.toml, with the token in the data directory's
	// api.token.
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"member":"cert-lu","entries":3,"raft":{"role":"follower"}}`)
	}))
	defer node.Close()

	cl := api.NewClient(node.URL, "TOKEN", nil)
	s, err := cl.Status(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Member, s.Entries, s.Raft.Role)
	// Output: cert-lu 3 follower
}
