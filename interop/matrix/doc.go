// Package matrix bridges a node's crisis log and one Matrix room (the
// team's room on its homeserver), with maunium.net/go/mautrix as the
// client. Package node runs it inside `crisismesh run` when config.toml has
// a [matrix] section ([Config]); it talks to the node only through the
// small [Node] interface (entries after a [Position], post a bridged
// message, the local crisis view), so it imports no store, transport or
// consensus, only replication/log's types.
//
// # Mesh to Matrix
//
// Entries of the configured members and kinds (incidents, sitreps,
// requests, decisions and committed crisis states as notices, messages)
// go to the room as formatted messages naming the author, the kind and the
// TLP label (crisis-state checkpoints are written at TLP:AMBER, so they
// go only where AMBER may). What never crosses ([Config.withhold], before every send):
// TLP:RED and AMBER+STRICT; anything above max_tlp (default green); AMBER
// unless max_tlp allows it AND the room is end-to-end encrypted AND every
// joined member is on the allow-list (the members are read fresh before
// each AMBER send); entries this node cannot read (sealed to a group it is
// not in, or not believed); and messages that came from the room. The
// log is append-only, so nothing is ever edited in the room.
//
// Reserve deadlines go as notices ([Node.ReserveAlerts]: the alerts
// `crisismesh status` shows): one when an open Reserve request comes
// under 2 hours from its deadline, one when it is overdue, each once
// (state.json remembers the notices handled, sent or withheld). A notice
// tells of the crisis state, so it goes where crisis states go
// ([Config.withholdNotice]): at TLP:AMBER ([NoticeTLP]), with kind
// checkpoint configured; one withheld (say, while a member not allowed is
// in the room) is not sent later. The outbound loop looks at the alerts
// whenever its queue of entries is empty.
//
// # Matrix to mesh
//
// m.room.message events of allowed users (allow) become message entries
// authored by this node's member, sealed to the whole network, marked as
// bridged ([log.Bridged]: the Matrix sender, event and room), at room_tlp
// (default green; AMBER only from an encrypted room, else written as
// green). Everyone else is ignored (and counted). "!status" and "!crisis"
// from an allowed user are answered in the room as notices from the local
// view; they change nothing.
//
// # Exactly once
//
// The bridge keeps its state in a file, matrix/state.json in the data
// directory, replaced atomically (a new file, fsync, rename, fsync of the
// directory) after every room event handled and every notice sent or
// withheld; for entries sent or withheld, every 64 entries or 1 s,
// whichever comes first, whenever the queue empties, and on Close (one
// write per entry made a catch-up after an outage crawl). A file and not
// the node's badger store: the state belongs to
// the bridge alone, is small (a seq per author, a token, recent event
// IDs), and interop packages may not import replication/store; badger's
// writes are not synced by default either, while this file is.
//
//   - A new bridge (no state.json yet) starts from the log's present, as
//     it starts from the room's: entries written before it was configured
//     are not sent.
//   - The position is a seq per author (feeds are hash chains), not a
//     place in display order: an entry that arrives late from a
//     partitioned author still goes out.
//   - Each event carries its entry ID in its content (org.crisismesh.entry_id;
//     a notice its code and request, org.crisismesh.notice; the
//     transaction ID is derived from it too, but Dendrite keeps
//     transaction IDs in memory only). After any failure, and after a
//     restart, the bridge reads the room backwards (up to 2,000 events)
//     to the last event it recorded as sent and skips the entries (and
//     notices) it finds there. A send under way when Close is called
//     finishes and is recorded. A crash loses the record of at most the
//     entries sent since the last write (64, or 1 s of sends): those are
//     what a crash could double, and the read-back finds them in the room
//     and does not send them again. Only a send the homeserver was still
//     processing when the bridge died (not yet in the room when the
//     restarted bridge reads it) can, in the worst case, go out twice.
//   - Room events are read forward (/messages) from a token recorded with
//     the IDs of the events already written into the log; on start, the
//     entries not yet handled are scanned for bridged events, so a crash
//     between writing an entry and recording its event does not write it
//     twice.
//   - Every failure is retried with exponential backoff (100 ms up to
//     Options.MaxBackoff, 10 s by default); nothing is dropped.
//
// Metrics (in the node's registry): crisismesh_matrix_queue_entries,
// crisismesh_matrix_last_success_timestamp_seconds,
// crisismesh_matrix_errors_total{direction}, crisismesh_matrix_bridged_total{direction},
// crisismesh_matrix_withheld_total{reason}. [Bridge.Status] feeds
// `crisismesh matrix status`.
//
// # Encrypted rooms
//
// In an end-to-end encrypted room the bridge is a device of its own:
// mautrix's OlmMachine with goolm, its pure-Go Olm/Megolm. mautrix v0.33.0
// selects goolm with the goolm build tag (crypto/registergoolm.go; without
// the tag mautrix/crypto links libolm through cgo), so the encryption lives
// in e2ee_goolm.go (//go:build goolm) and a build without the tag
// (e2ee_none.go) refuses an encrypted room with [ErrNoEncryption], which
// says to build with -tags goolm. Plain `go build ./...` and `go test
// ./...` need neither the tag nor C libraries. The device's keys are kept
// in the bridge's directory, mode 0600: crypto.db (mautrix's SQL store on
// modernc.org/sqlite, pure Go; the account and sessions in it are pickled
// under pickle.key) and pickle.key. Before each send the joined members are
// read; when they changed since the room key was shared, a new room key is
// made and shared with the members' devices (who left cannot read on, who
// joined can). A room key that has not arrived yet when a message does is
// waited for (syncing to-device events, the room's stream waiting) for up
// to 5 minutes; then the message is skipped with an error in the log. A
// sync that fails meanwhile (the homeserver down) is retried like any
// failure and never makes the bridge skip the message (the recorded room
// token moves past a skipped message once any event follows it, so the
// message would be lost for good). A message no key can decrypt
// (corrupt, replayed, older than the key it was shared with) is skipped
// at once, loudly. To-device events (room keys) are handled whole even
// when Close comes meanwhile: one handled halfway would be refused as a
// replay when the homeserver sends it again. mautrix's own log records go
// to the bridge's logger (its debug records only when that logs debug).
//
// A Bridge is safe for concurrent use; it owns its goroutines and Close
// stops them.
package matrix
