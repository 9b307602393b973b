package api

import _ "embed"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3.1 document (openapi.json in this
// package), as the node serves it at PathOpenAPI. The caller must not
// modify the returned slice.
func OpenAPI() []byte { return openAPI }
