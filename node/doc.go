// Package node is one crisismesh participant: it prepares data
// directories, wires the crisis log, sync, consensus and transport into a
// running [Node], and serves the local API, the dashboard and the metrics.
// It owns every goroutine it starts; [Node.Close] stops them all.
//
// Only cmd/crisismesh and sim may import node. It may import
// replication/*, transport and crypto, never the other way round: it is
// the one place where they meet (the Raft stream layer, for one, is built
// here with transport and handed to replication/consensus).
//
// # Before a node runs
//
//   - identity.go: [Keygen] makes an identity (identity.key, card.json);
//     [LoadIdentity], [ReadCard], [ReadPassphraseFile] read them back.
//   - network.go: [CreateNetwork] founds a network (the signed genesis),
//     reporting every problem at once ([ProblemsError]); [ReadGenesis]
//     reads and verifies one.
//   - datadir.go: a data directory holds the identity, config.toml, the
//     genesis, the API token (api.token), the store, Raft's snapshots and
//     bundles/ (the API's bundle directory unless bundle_dir says another).
//     [Init] makes one, [Join] installs a genesis into it (also one that
//     does not list the member yet: [Listed]; the node then waits for the
//     roster update that adds it, dialling the peers [AddPeers] put in
//     config.toml), [Testnet]
//     prepares several on 127.0.0.1 sharing one genesis; [DefaultDir] is
//     $CRISISMESH_DIR, else ~/.crisismesh.
//   - config.go: [Config] is config.toml (listen addresses, link profile,
//     static peers, mDNS, relay, API address, logging, and the optional
//     [matrix] section of the Matrix bridge); [DefaultConfig],
//     [Config.Validate] (every problem at once), [LoadConfig] (unknown
//     keys refused), [WriteConfig].
//
// # A running node
//
//   - node.go: [Open] locks the directory (one process per directory,
//     [ErrRunning]), loads config, identity and genesis, opens the store,
//     and starts the libp2p host, sync and Raft (over [RaftProtocol]).
//     [Options] carry what is not in the directory: the passphrase, the
//     logger, and, for tests and sim, a fault injector, a wall clock and a
//     free-space probe. A goroutine follows roster changes into the
//     transport's gate, and on an admin node keys.go keeps every active
//     member holding the current whole-network group key.
//   - entries.go: [Node.Post] writes an entry (sealed to the whole network
//     or to named members), [Node.Entries] and [Node.ViewEntry] read them
//     as [EntryView]s (sealed or not-believed entries say why).
//   - crisis.go: [Node.Crisis] reads the crisis state ([CrisisView]: local
//     with its age, or linearizable on the leader); [Node.Command] signs
//     and submits a command and reports a [CommandResult] whose
//     [CommandStatus] is committed, pending (proposed through the log) or
//     refused (by a named rule); [CommandRequest] is a command as the API
//     and CLI take it.
//   - status.go: [Node.Status] reports the member, the log (entries,
//     digest, forks), peers, Raft, the crisis, the disk, the offences
//     this node has seen, the entries waiting for their post-quantum
//     signature and the alerts ([StatusView]).
//   - waiting.go: [Node.Waiting] lists the entries held waiting for their
//     post-quantum signature ([WaitingView]; "Waiting entries" below).
//   - sync.go: [Node.WhoHas] says which members hold an entry and why not;
//     [Node.ForceSync] runs a full resync with one member now.
//   - bundle.go: [Node.ExportBundle] and [Node.ImportBundle] move the log
//     through a file when no link works.
//   - archive.go: [Node.ExportArchive] writes the after-action archive
//     (package replication/archive): every entry, evidence, checkpoint
//     payload and committed Raft entry, optionally bounded by author time;
//     verify.go: [VerifyArchive] checks one offline with the genesis alone
//     (no node runs), and with a data directory's keys opens bodies.
//   - members.go: governing the running network. [Node.Members] lists the
//     roster and the updates waiting for approvals ([MembersView]);
//     [Node.ChangeRoster] signs a roster update (add, revoke, rotate,
//     voters) as this node's admin (a member may always revoke its own key:
//     break glass) and writes it, unless a rule refuses it;
//     [Node.Approve] signs an admin's approval of another admin's update;
//     [Node.UpdateStatus] says where an update stands ([UpdateResult]:
//     in-force, pending for approvals or for Raft, refused by a rule).
//     Decisions: member cards are not bound to a network (one person may
//     serve in several networks with one card), so "a card for another
//     network" is not a refusal; what must be unique (names for ever,
//     member IDs, peer IDs) the roster rules refuse.
//   - groups.go: named need-to-know groups. [Node.Groups], [Node.ChangeGroup]
//     (create, add, remove, delete: roster updates like any other), and the
//     key duty: a member of a group issues a new epoch when the group has no
//     key sealed to exactly its members (so every change of a group brings
//     one); [Node.RotateKey] starts an epoch by hand.
//   - rotate.go: a member's own key rotation: [PrepareRotation] (init
//     --rotate) makes the next identity in D/next; once the roster rotates
//     the member to it, [Open] adopts it (crash-safe renames) and keeps the
//     old key in D/previous to read what was sealed to it.
//   - intel.go: MISP in and out through package interop/misp, STIX 2.1
//     through package interop/stix; both share the import's tally, the
//     batch append and the export caps.
//     [Node.ImportMISP] maps an event, list or feed to entries of kind
//     intel, keeps only what adds something (UUID and timestamp), seals
//     each to its MISP distribution (never wider: organisation only → this
//     member; a sharing group → its organisations that are members) and
//     stores them in one batch: one refused item stores nothing unless
//     SkipInvalid. [Node.ExportMISP] gives back the newest version of each
//     event this node can read, capped by TLP (never RED; AMBER+STRICT
//     only for a named organisation).
//     [Node.ImportSTIX] maps a bundle to entries of kind intel, one per
//     object, sealed to the network (TLP:RED is refused: a bundle names
//     no recipients), atomic unless SkipInvalid; a second import adds
//     nothing. [Node.ExportSTIX] gives back a bundle of the newest
//     version of each object, never wider than asked.
//   - indicators.go: [Node.Indicators] lists the indicators in the MISP
//     and STIX intel this node can read (newest version of each item),
//     each linked to its incident (a MISP event; a STIX incident related
//     to the indicator), for the dashboard and the report.
//   - report.go: [Node.BuildReport] assembles a situation report (state,
//     level history, timeline of incidents and sitreps, indicators,
//     Reserve requests, decisions, lessons) and [Report.Render] writes it
//     as Markdown or as one HTML page that needs no network. Decision:
//     a report travels beyond one organisation, so it holds at most
//     TLP:AMBER (default); AMBER+STRICT and RED are refused as a cap, and
//     what is above the cap is counted, never shown. The crisis state and
//     its decisions are the network's and always in it.
//   - matrix.go: the Matrix bridge (package interop/matrix), started by
//     [Open] when config.toml has a [matrix] section and stopped by
//     [Node.Close]. The node is the bridge's matrix.Node: entries after a
//     per-author position, a message written from the room (this node's
//     member as author, sealed to the network, its Matrix origin in the
//     payload: [EntryView].Bridged), the local crisis view, and the
//     Reserve alerts `status` shows (posted to the room as notices).
//     [Node.MatrixStatus] reports it.
//   - views.go: [Info] (the build's version and suites), [ViewCard] and
//     [ViewRoster].
//   - reserve.go: Reserve requests as views (only an open one counts
//     down) and the status alerts under [ReserveAlertBefore] or overdue.
//   - ids.go: one resolver for ID prefixes (below).
//
// The demo (`crisismesh demo`) is a narrated scenario of package sim
// (sim.Demo), which node may not import.
//
// Every place that takes an ID (an entry, a crisis command, a Reserve
// request, a roster update) takes any prefix of at least [MinIDPrefix] hex
// digits that names one ID this node knows (ids.go); an ambiguous prefix
// is refused with the matches listed. Views always carry full IDs.
//
// The views' JSON field names are a contract with the CLI and scripts (they
// are defined in node/api and described in its openapi.json): add fields,
// never rename or remove one.
//
// # Waiting entries
//
// Over a narrow link (the satellite profile) a member's own entries
// arrive with a provisional signature, the Ed25519 half of their
// composite, and the store holds them waiting, apart from the feed, until
// the composite covers them (replication/log, "Narrow links"). They are
// never acted on; the node shows them so that the operator sees who owes
// which signatures since when. The window they are judged by is the one
// sync sends this node's own entries by on narrow links: [narrow] in
// config.toml, by default log.DefaultWindow (128 entries or 120 s, and
// 30 s of grace), read in one place (Node.narrowWindow). [Node.Waiting] lists each waiting entry's
// header: member, seq, ID, Lamport clock, priority, since when this node
// holds it, how long it has waited by the node's clock, whether another
// waiting entry of the member has the same seq (conflicting), and its
// status, waiting or, past the window's interval and grace, overdue.
// [Node.Status] counts them (waiting, waiting_overdue) and adds one
// waiting-overdue alert per member with overdue entries; /metrics has the
// gauges crisismesh_entries_waiting and crisismesh_entries_waiting_overdue;
// the dashboard says how many wait beside the peers and lists their
// headers when opened.
// The Matrix bridge keeps posting the Reserve alerts only.
//
// Decision: the body of a waiting entry is not shown, not even to a
// member who could open it. Whoever holds a member's Ed25519 key alone (a
// thief of the seed, a quantum computer) can make entries that wait in
// that member's name; shown as text, a forgery would be read and acted
// on by people, which is what the composite signature is there to
// prevent. The body is shown, in the log, once the entry is covered.
//
// # Interfaces
//
//   - api.go: the local HTTP API under /api/v1 (127.0.0.1 only). Its
//     written contract is package node/api: paths, limits, request and
//     response types (node names them too: [EntryView] is api.EntryView),
//     the error body (a stable code and what to do), the typed client the
//     CLI uses, and the OpenAPI 3.1 document served at
//     /api/v1/openapi.json, which lists every route. The route table in
//     api.go is the only list of routes; tests hold it and real answers
//     against the document.
//   - web.go: what guards the API besides the bearer token: the Host must
//     be the API's own address (421), a request that changes something
//     must come from the API's own Origin when it names one and must name
//     it when only the session cookie authenticates it (403), and the
//     login form, which trades a one-time code ([Node.LoginCode]) or the
//     token for an HttpOnly, SameSite=Strict cookie; the token never
//     travels in a URL.
//   - strictjson.go: every JSON request body is decoded strictly (unknown,
//     repeated or wrong-case keys and trailing data are 400 naming the
//     field; a body over its route's limit is 413).
//   - bundle.go also serves bundles as streamed bodies; a path the API
//     takes must be inside bundle_dir (config.toml).
//   - archive.go serves archives the same way (serveExport).
//   - intel.go: MISP and STIX imports (the MISP JSON or the bundle as the
//     body; 422 with the refusals and their JSON paths) and exports.
//   - report.go: /api/v1/indicators and /api/v1/report (Markdown or HTML
//     as the body, capped by max_tlp).
//   - matrix.go: /api/v1/matrix/status, the bridge's state.
//   - waiting.go: /api/v1/waiting, the entries waiting for their
//     post-quantum signature.
//   - events.go: /api/v1/events, a server-sent event stream of entries and
//     crisis changes.
//   - dashboard.go: the dashboard, static files embedded in the binary,
//     served at /dashboard/ ([DashboardURL] is the login form's address).
//   - metrics.go: Prometheus metrics at /metrics (no token; counts and
//     states only), from a registry of the node's own.
package node
