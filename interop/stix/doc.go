// Package stix reads and writes STIX 2.1 bundles and maps their objects to
// and from crisis-log entries of kind intel (log.Intel, format "stix"). It
// is pure like package misp, whose helpers it shares (ParseJSON,
// CanonicalJSON, ParseTLP, the Problem, Part, Withheld and ExportOptions
// types): no clock, no state, no disk or network.
//
// # Reading
//
// [Decode] reads a bundle ({"type": "bundle", "id": …, "objects": […]}),
// or one STIX object on its own as a bundle of it (at path $); every
// object has a JSON path ($.objects[3]) that refusals name. Identifiers
// are TYPE--UUID; upper-case hex digits in the UUID are accepted, as the
// official schema's pattern accepts them, and an ID is compared as
// written.
//
// # The mapping
//
// Each object becomes one entry: its JSON kept verbatim (compact, keys
// sorted) as the Intel's data, its STIX id as ID, its type as Type, its
// modified (else created) timestamp in Unix nanoseconds as Version (0 for
// a cyber-observable, which has neither). A relationship's Parent is its
// source, a sighting's what it sights. The types crisismesh reads
// ([Mapped]: identity, report, incident, indicator, observed-data, note,
// course-of-action, relationship, sighting and the TLP marking
// definitions by their official IDs) get a text for people; every other
// type (malware, attack-pattern, extension SDOs, …) is kept verbatim just
// the same and exported back unchanged.
//
// TLP comes from the object's markings: object_marking_refs naming an
// official TLP 2.0 marking definition (or a TLP 1.0 one, read as its TLP
// 2.0 label with a note: white → clear), legacy "tlp:…" labels, and
// granular markings (the object is as narrow as its narrowest part). An
// object without one is refused unless Options.TLP says which to assume;
// the official TLP marking definitions themselves are TLP:CLEAR. TLP:RED
// is refused: it goes to named recipients only, and a bundle names none.
//
// # Refusals
//
// [Map] refuses, each with its JSON path and reason: two different TLP
// labels on one object, a missing TLP without Options.TLP, TLP:RED, a
// malformed type or id (TYPE--UUID, lower case, of the object's type), an
// id used twice in one bundle, a timestamp that is not RFC 3339 with the
// zone Z, a malformed reference (a property ending in _ref or _refs) or
// one to an object neither in the bundle nor well known (the official TLP
// marking definitions and extension definitions), an object the STIX 2.1
// schemas refuse, and an object over misp.MaxItem bytes. Whether one
// refusal stops the whole import is the caller's choice (node: atomic
// unless --skip-invalid).
//
// # Updates
//
// [Fresh] keeps what adds something to what is stored: an unknown id, a
// newer modified, or an object without timestamps whose data changed. A
// second import of the same bundle adds nothing.
//
// # Export
//
// [Export] writes a bundle of the newest version of each object and never
// widens: TLP:RED is never exported, AMBER+STRICT only with
// ExportOptions.StrictOrg, nothing above MaxTLP (default amber), and an
// object that refers to a withheld one is withheld too. Each object's TLP
// markings are replaced by the official TLP 2.0 marking of its entry's
// label.
//
// # Validation
//
// [Validate] checks an object against the official STIX 2.1 JSON Schemas
// (OASIS cti-stix2-json-schemas, embedded in schema/), compiled with
// github.com/santhosh-tekuri/jsonschema/v6. The schemas name each other by
// URL; a loader serves those URLs from the embedded copy, never the
// network. A type the schemas do not define is checked against the common
// core (an SDO's or SRO's, or a cyber-observable's). Import and export
// both validate every object.
//
// An incident's Incident Core extension ([IncidentCore]: determination,
// investigation status, criticality, incident types) is read into its
// text; the extension SDOs of that suite (impact, event, task) are kept
// verbatim like every other type. Validate checks an object of a type an
// extension adds against the core without its extension-defined
// properties (see Validate).
//
// [Indicators] reads an indicator object's pattern (with its pattern type
// and name) as a misp.Indicator; [Link] reads a relationship between an
// indicator and an incident (either direction, any relationship type),
// which is how node links an indicator to its incident; [Title] is an
// object's name.
//
// Validate compiles each schema once, under a lock; everything else shares
// only immutable tables. The functions are safe for concurrent use.
package stix
