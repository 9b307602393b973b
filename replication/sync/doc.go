// Package sync makes the crisis logs of nodes converge: over libp2p streams
// when peers can reach each other, and through bundle files carried by hand
// when nothing else works. It uses only libp2p's core interfaces
// (host.Host, network.Stream); the host itself is built by package
// transport and handed over by package node.
//
// # Anti-entropy: /crisismesh/sync/1
//
// One session on one stream, both directions at once:
//
//	initiator → hello{network, digest}
//	responder → equal                       (same digest: done, one round trip)
//	responder → frontier                    (else)
//	initiator → frontier, entries…, end     (what the responder lacks)
//	responder → entries…, end               (what the initiator lacks)
//
// A converged pair costs one small round trip (well under 128 bytes of
// protocol). Otherwise entries start flowing one round trip after the hello.
// Each side sends exactly what the other's frontier lacks, feed by feed in
// seq order (the receiver refuses gaps), in passes of falling priority:
// roster and key entries first, then control (proposals, checkpoints),
// flash, immediate and routine. A pass sends, per feed, the entries up to
// the last one of its priority, extended to the next signed entry so that
// every cut is vouched for. A feed whose history diverges from the peer's
// (a fork the peer has not seen) is sent whole, so the receiver can prove
// the fork; fork evidence a peer lacks is sent with it.
//
// The receiver ingests in batches as entries arrive; every batch is
// durable before the next is read, so an interrupted session leaves valid,
// shorter feeds and the next session continues from there (resumable by
// construction). Memory is bounded by the batch size; libp2p's stream flow
// control stops a sender that outruns the receiver.
//
// A watchdog aborts a session that makes no progress for the peer's
// session timeout; the anti-entropy loop then tries another peer. Sessions
// run on connect and every sync interval with a random connected peer;
// ForceResync skips the digest shortcut with one peer.
//
// # Push: /crisismesh/push/2
//
// New entries (appended here or learned from a peer) are pushed at once to
// connected peers whose last known frontier lacks them, on a stream of
// their own, one push in flight per peer; what arrives meanwhile waits
// and goes in the next push. A push first names the heads it carries.
// Our own new entries follow at once; entries we relay are an offer: the
// receiver answers with what it holds or is already receiving (from the
// author's push, another relay or a session), and only the rest is sent.
// The receiver counts announced heads as incoming, so sessions and offers
// running meanwhile do not bring the same entries again, and a push that
// ends short has the peers told so asked for a session (as for sessions).
// In a mesh this is what keeps a receiver from getting each entry once per
// peer: the scarcest link, a satellite member's, carries each entry about
// once or twice instead of once per peer. push/1 (entries only) is still
// served for older peers.
//
// A push the receiver cannot chain (it lacks predecessors) triggers an
// anti-entropy session with the pusher. Push is the fast path;
// anti-entropy is the guarantee. We push over our own stream rather than
// gossipsub: gossipsub silently drops messages over 1 MiB and does not
// replay what a partitioned node missed, so it would add a second path
// without removing the need for this one.
//
// # Store and forward
//
// Every valid entry is relayed, whether this node can read it or not: A
// and C that never meet converge through B.
//
// # Bad peers
//
// Every message has one encoding: a frame is a length in its shortest
// uvarint form and canonical CBOR, and a frontier lists authors in
// ascending order; anything else is malformed. A malformed message, an
// oversized frame or an entry that fails
// validation for a reason no honest peer produces (bad signature,
// non-canonical, wrong network, …) ends the session and counts an offence
// against the peer; after three offences the peer is disconnected and
// reported through Config.OnMisbehave. Nothing invalid is stored, and the
// node keeps serving others.
//
// # Full disk
//
// When the store refuses writes because this node's disk is full
// (store.ErrDiskFull), sync stops asking for entries it could not store:
// it starts no session, turns away sessions peers start (an error
// message, not an offence on either side), and drops pushes. A failed
// ingest is never counted against the peer that sent the entries. The
// node looks every second whether space is back, and then starts a
// session with every connected peer to catch up. Its own entries reach
// others again at that point (or by bundle: export only reads).
//
// # Bundles
//
// Export writes the same missing-entries stream to a file: a magic line,
// framed entries, and a trailer with the entry count, the SHA-256 of the
// payload and the network ID, signed by the exporting member (context
// crisismesh/bundle/v1). Import checks trailer, signature, network,
// checksum over the whole file, and that exactly the counted frames (each
// length in its shortest form) fill the payload, before ingesting
// anything, so a truncated, tampered or foreign bundle stores nothing and
// no bytes ride under the signature unread; importing twice is harmless.
package sync
