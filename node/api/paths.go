package api

// Paths of the API. Patterns with {id} take an ID in that place. The node
// registers exactly these (with their methods, see openapi.json), and the
// test in node checks that the document and the server agree.
const (
	PathStatus        = "/api/v1/status"
	PathEntries       = "/api/v1/entries"
	PathCrisis        = "/api/v1/crisis"
	PathCommand       = "/api/v1/crisis/commands/{id}" // what became of a crisis command
	PathHistory       = "/api/v1/crisis/history"       // every decision, committed or refused
	PathWhoHas        = "/api/v1/who-has/{id}"
	PathSync          = "/api/v1/sync"
	PathBundleExport  = "/api/v1/bundles/export"
	PathBundleImport  = "/api/v1/bundles/import"
	PathArchiveExport = "/api/v1/archive/export"
	PathMembers       = "/api/v1/members"
	PathUpdate        = "/api/v1/members/updates/{id}"
	PathApprove       = "/api/v1/members/updates/{id}/approve"
	PathGroups        = "/api/v1/groups"
	PathKeyRotate     = "/api/v1/keys/rotate"
	PathMISPImport    = "/api/v1/misp/import" // the MISP JSON as the body; query tlp=, skip_invalid=1
	PathMISPExport    = "/api/v1/misp/export" // query since=, max_tlp=, amber_strict_org=, event=
	PathSTIXImport    = "/api/v1/stix/import" // the STIX bundle as the body; query tlp=, skip_invalid=1
	PathSTIXExport    = "/api/v1/stix/export" // query max_tlp=, amber_strict_org=
	PathIndicators    = "/api/v1/indicators"  // the indicators in MISP and STIX intel, linked to their incidents
	PathReport        = "/api/v1/report"      // a situation report; query format=md|html, max_tlp=
	PathEvents        = "/api/v1/events"
	PathMatrixStatus  = "/api/v1/matrix/status"
	PathWaiting       = "/api/v1/waiting" // entries waiting for their post-quantum signature
	PathLoginCodes    = "/api/v1/login-codes"
	PathOpenAPI       = "/api/v1/openapi.json"
	PathLogin         = "/login"
	PathDashboard     = "/dashboard/"
	PathMetrics       = "/metrics"
	HeaderNext        = "Crisismesh-Next"    // GET entries: the after= of the next page; absent on the last page
	HeaderBundle      = "Crisismesh-Bundle"  // bundle export streamed: the BundleView as JSON
	HeaderArchive     = "Crisismesh-Archive" // archive export streamed: the ArchiveView as JSON
	ContentTypeBundle = "application/octet-stream"
	ContentTypeMD     = "text/markdown; charset=utf-8"
	ContentTypeHTML   = "text/html; charset=utf-8"
)

// Limits of GET /api/v1/entries: without limit= a page holds DefaultLimit
// entries, and never more than MaxLimit.
const (
	DefaultLimit = 500
	MaxLimit     = 1000
)

// Body limits: a request body larger than its endpoint's limit is refused
// with 413 (code "too-large").
const (
	MaxEntryBody  = 1 << 20   // POST /api/v1/entries: the largest entry
	MaxBody       = 64 << 10  // every other JSON body
	MaxBundleBody = 1 << 30   // a bundle streamed to POST /api/v1/bundles/import
	MaxMISPBody   = 256 << 20 // a MISP event, list or feed posted to /api/v1/misp/import, a STIX bundle to /api/v1/stix/import (interop/misp.MaxFile)
)
