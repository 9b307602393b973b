// Package misp reads and writes MISP events and feeds, and maps them to and
// from crisis-log entries of kind intel (log.Intel). It is pure: it reads
// no clock, keeps no state, and touches no disk or network (ReadFeed reads
// an fs.FS it is given; Feed returns the files to write). Package node
// stores what Map returns and hands Export what it holds; cmd/crisismesh
// reads and writes the files.
//
// # Reading
//
// [Decode] reads a MISP event ({"Event": …}, or the bare event object
// PyMISP writes), a list ({"response": […]}, as MISP's search API answers)
// or a JSON array of events; [ReadFeed] reads a MISP feed (manifest.json
// and one <uuid>.json per event). Every item has a JSON path ($.Event,
// $.response[2].Event.Attribute[7], <uuid>.json$.Event.Object[0]) that
// refusals name.
//
// # The mapping
//
// An event becomes one entry per item, all of kind intel:
//
//   - the event's own fields (info, threat level, analysis, date, Orgc,
//     tags, galaxies, sightings, RelatedEvent and every other field: all
//     but Attribute and Object, which stay only when they are empty lists,
//     so that export gives them back) as one item of type "event";
//   - each attribute (with its tags, sightings, galaxies) as an item of
//     type "attribute" whose parent is the event;
//   - each object, its attributes inside it, as an item of type "object".
//
// The item is kept verbatim as JSON in the entry's payload (compact, keys
// sorted, numbers as written), with its MISP UUID as ID and its MISP
// timestamp as version, so an export gives back exactly what came in.
// What crisismesh understands is also put in the entry's own fields:
//
//   - TLP: the tlp tag (tlp:white is TLP 1.0 and read as clear, with a
//     note); an event without one is refused unless Options.TLP says
//     which to assume. An attribute or object is never wider than its
//     event: a wider own tag is kept at the event's label (with a note),
//     and an object is as narrow as its narrowest attribute.
//   - RSIT: an rsit:CLASS="TYPE" tag to RSITClass and RSITType; NIS2:
//     nis2:impact-sectors-impacted to Sectors, impact-severity to Impact,
//     impact-outlook to Outlook. An attribute without its own takes its
//     event's.
//   - Text: a line for people (the event's info, threat level and
//     analysis; an attribute's category, type and value; an object's name).
//   - Distribution, as a [Scope] the node seals the entry to: 0 (your
//     organisation only) → this member only; 1, 2, 3 (community, connected
//     communities, all) and none (a feed's events) → the network, which is
//     the community; 4 (sharing group) → the members named like the
//     group's organisations (and this member); 5 (inherit) → the event's.
//     An item is never sealed wider than its event. TLP:RED goes to named
//     recipients only, so RED with a community distribution is refused.
//
// Tags in the namespaces crisismesh maps (tlp, PAP, rsit, nis2) must carry
// a value their taxonomy defines (the embedded MISP taxonomies); every
// other tag, and every galaxy, is kept verbatim in the item. PAP is
// checked and kept, not mapped.
//
// # Refusals
//
// [Map] refuses, each with its JSON path and reason: two exclusive labels
// (two TLP, PAP, RSIT class or type, NIS2 severity or outlook values), a
// missing TLP without Options.TLP, distribution 4 with sharing group 0 (or
// a sharing group whose organisations the file does not list: it cannot
// be honoured), an undefined value in a mapped namespace, a malformed or
// missing UUID, a UUID used twice in one input, an info over [MaxInfo]
// bytes, an attribute type or category describeTypes.json does not
// define, and an item over [MaxItem] bytes. A refused event takes its
// attributes and objects with it; a refused attribute or object only
// itself. Whether one refusal stops the whole import is the caller's
// choice (node: atomic unless --skip-invalid).
//
// # Updates
//
// [Fresh] keeps only what adds something to what is stored: an unknown
// UUID, a newer timestamp (MISP bumps an item's timestamp on every change,
// and an event's on every change inside it), or an item without a
// timestamp whose data changed (an edit PyMISP has not saved). A second
// import of the same event adds nothing.
//
// # Export
//
// [Export] assembles the newest version of each item into events and never
// widens: TLP:RED is never exported, AMBER+STRICT only with
// ExportOptions.StrictOrg naming the organisation (and then with
// distribution 0), everything is capped by MaxTLP (default amber), and
// distribution and sharing groups go out as they came in. An event's tlp
// tags are replaced by one of its entry's label. [Feed] writes a MISP feed:
// manifest.json, one <uuid>.json per event and hashes.csv.
//
// # Indicators
//
// [Indicators] reads the observables of an item as people read them (a
// type and a value: an attribute's own, each attribute of an object) and
// [Title] what people call an event (its info) or an object (its name);
// node lists them, linked to their event, on the dashboard and in the
// situation report. An [Indicator] is also what interop/stix returns.
//
// # Validation
//
// An attribute_count of null (PyMISP writes it for a new event; MISP's
// schema wants a string) is exported as the count. Every exported event is checked by [Validate] against MISP's own JSON
// Schema (PyMISP's schema.json and schema-lax.json, embedded with the
// github.com/santhosh-tekuri/jsonschema/v6 library) and its attribute types and
// categories against describeTypes.json. The strict 2.4 schema predates
// objects, sightings and other fields MISP writes today and refuses any
// field it does not name, so those fields are set aside for the strict
// check (Validation.Unknown lists them) and the whole event is checked by
// the lax schema; each object's attributes are checked against the strict
// schema's attribute.
//
// Package interop/stix reuses what is not MISP's own: [ParseJSON],
// [CanonicalJSON], [TLPRank], [ParseTLP], [WithPayload], [Problem],
// [Part], [Withheld], [ExportOptions] and [Supersedes].
//
// Nothing here is safe or unsafe for concurrent use: the functions share
// only immutable tables.
package misp
