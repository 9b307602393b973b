package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// importTable is the "Imports flow one way" table of DESIGN.md: for each of our
// packages (relative to the module root), the packages of ours it may import.
// Libraries (the standard library and other modules) are not listed: any
// package may use them.
//
// A package below an entry (crypto/internal/x, replication/log/logtest)
// belongs to the longest entry that is a prefix of its path. It may import
// anything in its own entry's subtree plus anything its entry may import.
// "x/*" stands for every entry below x.
//
// Change this table only together with DESIGN.md. node/api is not in
// DESIGN.md's table yet: it is the API contract (node/api's package doc),
// kept apart from node so that a program talking to a node links neither
// node nor replication nor transport.
var importTable = map[string][]string{
	"cmd/crisismesh":        {"node", "node/api", "sim", "interop/*"},
	"sim":                   {"node", "node/api", "transport", "replication/*", "crypto"},
	"node":                  {"node/api", "replication/*", "transport", "crypto", "interop/*"},
	"node/api":              {"crypto"}, // the API contract: types, paths, client, OpenAPI document
	"interop/misp":          {"replication/log"},
	"interop/matrix":        {"replication/log"},
	"interop/stix":          {"replication/log", "interop/misp"}, // shares misp's JSON, TLP and export helpers
	"replication/sync":      {"replication/log", "replication/store", "crypto"},
	"replication/archive":   {"replication/consensus", "replication/crisis", "replication/log", "crypto"},
	"replication/consensus": {"replication/crisis", "replication/log", "replication/store", "crypto"},
	"replication/store":     {"replication/log", "crypto"},
	"replication/log":       {"crypto"},
	"replication/crisis":    {"crypto"},
	"transport":             {"crypto"},
	"crypto":                {},
}

// listedPackage is the part of `go list -json` output that the import rules
// need.
type listedPackage struct {
	ImportPath   string
	Name         string
	Imports      []string // production imports: the only ones checked against the table
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// importRules says which module is "ours" and how its packages may import
// each other.
type importRules struct {
	// Module is the module path; packages below it are ours.
	Module string
	// MayImport maps a table entry to the entries it may import; see
	// importTable.
	MayImport map[string][]string
}

// checkImports returns every violation of rules in pkgs, one message each, in
// the order of pkgs and their imports. It reads no files and runs nothing, so
// tests can feed it a made-up graph.
//
// Rules:
//   - every package of ours belongs to an entry of the table;
//   - its production imports of our packages are in its own entry or in an
//     entry that its entry may import;
//   - production code does not import "testing" (STYLE.md, "Avoid") or a
//     test-helper package (one whose name ends in "test", like
//     crypto/mlkem/mlkemtest or crypto/cryptotest); test helpers may import
//     both.
//
// Test files (TestImports, XTestImports) are not checked.
func checkImports(pkgs []listedPackage, rules importRules) []string {
	var violations []string
	report := func(format string, args ...any) {
		violations = append(violations, fmt.Sprintf(format, args...))
	}
	for _, p := range pkgs {
		rel, ours := rules.rel(p.ImportPath)
		if !ours {
			continue
		}
		if p.Error != nil {
			report("%s: go list: %s", rel, strings.TrimSpace(p.Error.Err))
		}
		entry, ok := rules.entryOf(rel)
		if !ok {
			report("%s: package is in no entry of the import table; add it to DESIGN.md and this table", rel)
			continue
		}
		who := rel
		if entry != rel {
			who = fmt.Sprintf("%s (part of %s)", rel, entry)
		}
		helper := isTestHelper(p.ImportPath)
		for _, imp := range p.Imports {
			if !helper && (imp == "testing" || strings.HasPrefix(imp, "testing/")) {
				report("%s imports %q in production code; only _test.go files and test-helper packages (name ending in \"test\") may", who, imp)
				continue
			}
			impRel, impOurs := rules.rel(imp)
			if !helper && isTestHelper(imp) {
				name := imp
				if impOurs {
					name = impRel
				}
				report("%s imports test-helper package %s in production code; only _test.go files and other test helpers may", who, name)
				continue
			}
			if !impOurs {
				continue // a library
			}
			impEntry, ok := rules.entryOf(impRel)
			switch {
			case !ok:
				report("%s imports %s, which is in no entry of the import table", who, impRel)
			case impEntry == entry || rules.allows(entry, impEntry):
				// allowed
			default:
				report("%s imports %s; %s may import %s", who, impRel, entry, describe(rules.MayImport[entry]))
			}
		}
	}
	return violations
}

// rel returns importPath relative to the module, and whether it is ours at
// all. The module's root package is ".".
func (r importRules) rel(importPath string) (string, bool) {
	if importPath == r.Module {
		return ".", true
	}
	rest, ok := strings.CutPrefix(importPath, r.Module+"/")
	return rest, ok
}

// entryOf returns the longest table entry that is rel or a parent of rel.
func (r importRules) entryOf(rel string) (string, bool) {
	best := ""
	for entry := range r.MayImport {
		if within(rel, entry) && len(entry) > len(best) {
			best = entry
		}
	}
	return best, best != ""
}

// allows reports whether entry may import packages of entry target.
func (r importRules) allows(entry, target string) bool {
	for _, item := range r.MayImport[entry] {
		if matches(item, target) {
			return true
		}
	}
	return false
}

// matches reports whether the table item ("crypto", "replication/*") names
// the entry target.
func matches(item, target string) bool {
	if parent, ok := strings.CutSuffix(item, "/*"); ok {
		return strings.HasPrefix(target, parent+"/")
	}
	return item == target
}

// within reports whether rel is dir or below it, by whole path elements
// (replication/logx is not within replication/log).
func within(rel, dir string) bool {
	return rel == dir || strings.HasPrefix(rel, dir+"/")
}

// isTestHelper reports whether the package at importPath is a test helper,
// by Go's convention of naming them <something>test (httptest, mlkemtest).
func isTestHelper(importPath string) bool {
	name := path.Base(importPath)
	return len(name) > len("test") && strings.HasSuffix(name, "test")
}

// describe says what a table entry may import, for messages.
func describe(items []string) string {
	if len(items) == 0 {
		return "nothing of ours"
	}
	return "only " + strings.Join(items, ", ")
}

// listModule runs `go list -e -json ./...` at the root of the module that
// contains the current directory and returns the module path and its
// packages.
func listModule(t *testing.T) (string, []listedPackage) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", commandError(err))
	}
	modFile := strings.TrimSpace(string(gomod))
	if modFile == "" || modFile == "/dev/null" || modFile == "NUL" {
		t.Fatalf("go env GOMOD = %q, want the path of go.mod", modFile)
	}
	root := filepath.Dir(modFile)

	cmd := exec.Command("go", "list", "-e", "-json", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -e -json ./... in %s: %v", root, commandError(err))
	}

	var (
		module string
		pkgs   []listedPackage
	)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			listedPackage
			Module *struct{ Path string }
		}
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.Module != nil && module == "" {
			module = p.Module.Path
		}
		pkgs = append(pkgs, p.listedPackage)
	}
	if module == "" {
		t.Fatalf("go list in %s named no module; got %d packages", root, len(pkgs))
	}
	return module, pkgs
}

func commandError(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
	}
	return err
}

// TestImportRules checks the real tree against importTable.
func TestImportRules(t *testing.T) {
	module, pkgs := listModule(t)

	// Guard against a vacuous pass: the package running this test must be
	// among the listed ones.
	self := module + "/cmd/crisismesh"
	if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == self }) {
		t.Fatalf("go list ./... did not list %s; got %d packages", self, len(pkgs))
	}

	for _, v := range checkImports(pkgs, importRules{Module: module, MayImport: importTable}) {
		t.Errorf("import rule violated: %s", v)
	}
}

// TestImportTable checks the table itself against what DESIGN.md says around
// it, so that an edit to the table cannot quietly undo those sentences.
func TestImportTable(t *testing.T) {
	rules := importRules{MayImport: importTable}
	for entry, items := range importTable {
		for _, item := range items {
			found := false
			for other := range importTable {
				found = found || matches(item, other)
			}
			if !found {
				t.Errorf("importTable[%q] names %q, which matches no entry of the table", entry, item)
			}
			if matches(item, entry) {
				t.Errorf("importTable[%q] names %q, which is the entry itself", entry, item)
			}
		}
	}

	// "Nothing imports node but cmd and sim."
	var importNode []string
	for entry := range importTable {
		if rules.allows(entry, "node") {
			importNode = append(importNode, entry)
		}
	}
	slices.Sort(importNode)
	if want := []string{"cmd/crisismesh", "sim"}; !slices.Equal(importNode, want) {
		t.Errorf("entries that may import node: got %v, want %v", importNode, want)
	}

	// "replication and transport never import each other."
	for entry := range importTable {
		for target := range importTable {
			if within(entry, "replication") && within(target, "transport") ||
				within(entry, "transport") && within(target, "replication") {
				if rules.allows(entry, target) {
					t.Errorf("importTable lets %s import %s, want replication and transport apart", entry, target)
				}
			}
		}
	}

	// crypto is the bottom of the graph.
	if got := importTable["crypto"]; len(got) != 0 {
		t.Errorf("importTable[\"crypto\"] = %v, want nothing of ours", got)
	}
}

// TestCheckImports proves that checkImports can fail: each case is a made-up
// graph that breaks one rule, and the violation must be reported.
func TestCheckImports(t *testing.T) {
	const m = "example.com/mesh"
	rules := importRules{Module: m, MayImport: importTable}

	// clean is a graph that follows every rule, using sub-packages, test
	// helpers, libraries and test-only imports.
	clean := []listedPackage{
		{ImportPath: m + "/cmd/crisismesh", Imports: []string{"fmt", "github.com/spf13/cobra", m + "/node", m + "/node/api", m + "/sim", m + "/interop/misp"}},
		{ImportPath: m + "/node/api", Imports: []string{"net/http", m + "/crypto"}},
		{ImportPath: m + "/interop/misp", Imports: []string{"encoding/json", m + "/replication/log"}},
		{ImportPath: m + "/sim", Imports: []string{m + "/node", m + "/transport", m + "/replication/sync", m + "/replication/crisis", m + "/crypto", m + "/sim/internal/scenario"}},
		{ImportPath: m + "/sim/internal/scenario", Imports: []string{"os", m + "/crypto"}},
		{ImportPath: m + "/node", Imports: []string{"net/http", m + "/node/api", m + "/replication/log", m + "/replication/store", m + "/replication/sync", m + "/replication/consensus", m + "/replication/crisis", m + "/transport", m + "/crypto", m + "/crypto/keyfile"},
			TestImports: []string{"testing", m + "/crypto/cryptotest", m + "/replication/store/storetest"}},
		{ImportPath: m + "/replication/sync", Imports: []string{m + "/replication/log", m + "/replication/store", m + "/crypto"}},
		{ImportPath: m + "/replication/consensus", Imports: []string{"github.com/hashicorp/raft", m + "/replication/crisis", m + "/replication/log", m + "/replication/store", m + "/crypto"}},
		{ImportPath: m + "/replication/store", Imports: []string{m + "/replication/log", m + "/crypto"}},
		{ImportPath: m + "/replication/store/storetest", Imports: []string{"testing", m + "/replication/store", m + "/replication/log", m + "/crypto/cryptotest"}},
		{ImportPath: m + "/replication/log", Imports: []string{m + "/crypto"},
			// Test files are not held to the table.
			XTestImports: []string{"testing", m + "/replication/store", m + "/replication/log/logtest"}},
		{ImportPath: m + "/replication/log/logtest", Imports: []string{"testing", m + "/replication/log", m + "/crypto"}},
		{ImportPath: m + "/replication/crisis", Imports: []string{"errors", m + "/crypto"}},
		{ImportPath: m + "/transport", Imports: []string{"github.com/libp2p/go-libp2p", m + "/crypto"}},
		{ImportPath: m + "/crypto", Imports: []string{"crypto/hpke", "github.com/cloudflare/circl/sign/mldsa/mldsa65", m + "/crypto/internal/composite"}},
		{ImportPath: m + "/crypto/internal/composite", Imports: []string{"crypto/ed25519"}},
		{ImportPath: m + "/crypto/keyfile", Imports: []string{m + "/crypto"}},
		{ImportPath: m + "/crypto/cryptotest", Imports: []string{"testing", "testing/synctest", "crypto/mlkem/mlkemtest", m + "/crypto"}},
	}

	// with returns clean plus extra packages.
	with := func(extra ...listedPackage) []listedPackage {
		return append(slices.Clip(clean), extra...)
	}
	// imports returns clean with pkg's production imports extended.
	imports := func(pkg string, extra ...string) []listedPackage {
		out := slices.Clone(clean)
		for i, p := range out {
			if p.ImportPath == m+"/"+pkg {
				out[i].Imports = append(slices.Clip(p.Imports), extra...)
				return out
			}
		}
		t.Fatalf("no package %s in the clean graph", pkg)
		return nil
	}

	tests := []struct {
		name string
		pkgs []listedPackage
		want []string
	}{
		{
			name: "clean",
			pkgs: clean,
			want: nil,
		},
		{
			name: "log imports store",
			pkgs: imports("replication/log", m+"/replication/store"),
			want: []string{"replication/log imports replication/store; replication/log may import only crypto"},
		},
		{
			name: "transport imports replication",
			pkgs: imports("transport", m+"/replication/log"),
			want: []string{"transport imports replication/log; transport may import only crypto"},
		},
		{
			name: "replication imports transport",
			pkgs: imports("replication/sync", m+"/transport"),
			want: []string{"replication/sync imports transport; replication/sync may import only replication/log, replication/store, crypto"},
		},
		{
			name: "crypto imports node",
			pkgs: imports("crypto", m+"/node"),
			want: []string{"crypto imports node; crypto may import nothing of ours"},
		},
		{
			name: "crypto sub-package imports replication",
			pkgs: imports("crypto/internal/composite", m+"/replication/log"),
			want: []string{"crypto/internal/composite (part of crypto) imports replication/log; crypto may import nothing of ours"},
		},
		{
			name: "sub-package of an allowed entry is still checked",
			pkgs: imports("replication/store", m+"/replication/consensus"),
			want: []string{"replication/store imports replication/consensus; replication/store may import only replication/log, crypto"},
		},
		{
			name: "node imports sim",
			pkgs: imports("node", m+"/sim"),
			want: []string{"node imports sim; node may import only node/api, replication/*, transport, crypto, interop/*"},
		},
		{
			name: "interop imports the store",
			pkgs: imports("interop/misp", m+"/replication/store"),
			want: []string{"interop/misp imports replication/store; interop/misp may import only replication/log"},
		},
		{
			name: "the API contract imports the node",
			pkgs: imports("node/api", m+"/node"),
			want: []string{"node/api imports node; node/api may import only crypto"},
		},
		{
			name: "the API contract imports replication",
			pkgs: imports("node/api", m+"/replication/crisis"),
			want: []string{"node/api imports replication/crisis; node/api may import only crypto"},
		},
		{
			name: "cmd imports transport",
			pkgs: imports("cmd/crisismesh", m+"/transport"),
			want: []string{"cmd/crisismesh imports transport; cmd/crisismesh may import only node, node/api, sim, interop/*"},
		},
		{
			name: "node imports testing",
			pkgs: imports("node", "testing"),
			want: []string{`node imports "testing" in production code; only _test.go files and test-helper packages (name ending in "test") may`},
		},
		{
			name: "log imports synctest",
			pkgs: imports("replication/log", "testing/synctest"),
			want: []string{`replication/log imports "testing/synctest" in production code; only _test.go files and test-helper packages (name ending in "test") may`},
		},
		{
			name: "node imports our test helper",
			pkgs: imports("node", m+"/crypto/cryptotest"),
			want: []string{"node imports test-helper package crypto/cryptotest in production code; only _test.go files and other test helpers may"},
		},
		{
			name: "crypto imports a library test helper",
			pkgs: imports("crypto", "crypto/mlkem/mlkemtest"),
			want: []string{"crypto imports test-helper package crypto/mlkem/mlkemtest in production code; only _test.go files and other test helpers may"},
		},
		{
			name: "test helper still follows the table",
			pkgs: imports("replication/log/logtest", m+"/replication/store"),
			want: []string{"replication/log/logtest (part of replication/log) imports replication/store; replication/log may import only crypto"},
		},
		{
			name: "unknown package",
			pkgs: with(listedPackage{ImportPath: m + "/util", Imports: []string{m + "/crypto"}}),
			want: []string{"util: package is in no entry of the import table; add it to DESIGN.md and this table"},
		},
		{
			name: "unknown package next to an entry",
			pkgs: with(listedPackage{ImportPath: m + "/replication/logx"}),
			want: []string{"replication/logx: package is in no entry of the import table; add it to DESIGN.md and this table"},
		},
		{
			name: "module root package",
			pkgs: with(listedPackage{ImportPath: m}),
			want: []string{".: package is in no entry of the import table; add it to DESIGN.md and this table"},
		},
		{
			name: "import of an unknown package",
			pkgs: imports("node", m+"/replication"),
			want: []string{"node imports replication, which is in no entry of the import table"},
		},
		{
			name: "package that go list could not load",
			pkgs: with(listedPackage{ImportPath: m + "/sim/faults", Error: &struct{ Err string }{"no Go files\n"}}),
			want: []string{"sim/faults: go list: no Go files"},
		},
		{
			name: "other modules are not ours",
			pkgs: with(listedPackage{ImportPath: "example.com/meshy/util", Imports: []string{"testing", m + "/node"}}),
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkImports(tt.pkgs, rules)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("checkImports violations: got %q, want %q; diff (-want +got):\n%s", got, tt.want, diff)
			}
		})
	}
}

func TestIsTestHelper(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"crypto/mlkem/mlkemtest", true},
		{"net/http/httptest", true},
		{"example.com/mesh/crypto/cryptotest", true},
		{"example.com/mesh/replication/store/storetest", true},
		{"testing", false},
		{"example.com/mesh/test", false},
		{"example.com/mesh/crypto", false},
		{"example.com/mesh/transport/testsuite", false},
	}
	for _, tt := range tests {
		if got := isTestHelper(tt.path); got != tt.want {
			t.Errorf("isTestHelper(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
