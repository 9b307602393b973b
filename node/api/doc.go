// Package api is the written contract of a crisismesh node's local HTTP
// API: its paths and limits (paths.go), the request and response types
// with their JSON names (types.go), the error body ([Error]), a typed Go
// client ([Client]) that the CLI uses for every call, and the OpenAPI 3.1
// document (openapi.json, [OpenAPI]) that the node serves at
// /api/v1/openapi.json.
//
// The node's handlers (package node) decode and answer these same types;
// node's tests check that every route the node registers is in the
// document and every documented route is served, that the document is
// valid OpenAPI 3.1, and that real answers of a running node validate
// against its schemas. JSON field names are a contract with scripts: add
// fields, never rename or remove one, and change openapi.json with them.
//
// Import rules: api imports nothing of ours but crypto (a member card
// travels in a roster change), so a program that only talks to a node
// does not link the node itself. node, cmd/crisismesh and sim may import
// it (the import table in cmd/crisismesh/importrules_test.go, entry
// "node/api").
package api
