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
//	initiator → hello{network, digest[, frontier]}
//	responder → equal                       (same digest: done, one round trip)
//	responder → frontier                    (else)
//	initiator → frontier, entries…, end     (what the responder lacks)
//	responder → entries…, end               (what the initiator lacks)
//
// A converged pair costs one small round trip (well under 128 bytes of
// protocol), and tells each side that the other holds exactly its own
// frontier, so who-has and peers are right also after an entry reached the
// peer through a third node. Otherwise entries start flowing one round trip after the hello.
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
// construction). Memory is bounded by the batch size and the peer's
// budget (see Bounded resources); libp2p's stream flow control stops a
// sender that outruns the receiver.
//
// # Who brings what
//
// After a heal every peer across the cut starts a session with a node at
// once, and most hold the same feeds it lacks. Each transfer (a session
// or a push) records the heads its peer is about to send (incoming), and
// the frontier a node tells a peer is what it stores raised by what other
// transfers are bringing it, so that a feed comes in through one
// transfer. Working out what to tell a peer and recording what it will
// send are one step under one lock (a claim): for an offer, and for a
// session as soon as its side knows the peer's frontier. The initiator
// knows it before it sends its own; the responder sends its frontier
// first, so an initiator that expects a difference (a kicked session: a
// new or returning peer, a transfer that ended short; and ForceResync)
// announces its stored frontier in its hello, and the responder claims
// what it will send before it answers. Without that, the sessions that
// arrive together each learnt what the others bring a round trip too
// late and each sent the feed (at 50 nodes most of a heal's bytes). Old
// responders ignore the announced frontier; periodic rounds, which
// mostly find equal digests, do not announce (the hello stays small). A
// claim ends with its transfer however it ends; a transfer that ends
// short of its claim asks the peers told for a session again.
// Service.Traffic counts, by path, what was sent and the entries that
// arrived already held.
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
// and goes in the next push. A push is in flight until the receiver has
// stored it: the receiver closes the stream once the entries are ingested
// (durable there) or dropped, and the pusher waits for that, at most the
// link's push timeout (Timing.PushTimeout: 1 s on a LAN), apart from and
// far below the session timeout. So pushes to one peer do not overlap and
// are ingested in order (overlapping pushes of one feed were ingested out
// of order, refused as gaps and sent again by sessions), and under load
// what queues up meanwhile goes in one larger push, one fsync on the
// receiver for the lot; a peer that stops answering (a cut link, a stalled
// process) holds the next push back for the push timeout only, after which
// the push counts as sent, as if the receiver had answered, and sessions
// bring whatever it lacks. A push first names the heads it carries.
// Our own new entries follow at once; entries we relay are an offer: the
// receiver answers with what it holds or is already receiving (from the
// author's push, another relay or a session), and only the rest is sent.
// The receiver counts announced heads as incoming, so sessions and offers
// running meanwhile do not bring the same entries again, and a push that
// ends short has the peers told so asked for a session (as for sessions).
// In a mesh this is what keeps a receiver from getting each entry once per
// peer: the scarcest link, a satellite member's, carries each entry about
// once or twice instead of once per peer. A relay that got an entry first
// can offer it before the author's own push announces it (an author's
// heads cannot be declined), so before answering an offer the receiver
// waits up to about two round trips (5–25 ms) for the offered entries'
// authors it is connected to, other than the offerer, to announce them
// (authorFirst): in a four-node mesh this took the bytes a receiver gets
// per entry from 1.2–1.6× to 1.07–1.11×. push/1 (entries only) is still
// served for older peers.
//
// A push the receiver cannot chain (it lacks predecessors) triggers an
// anti-entropy session with the pusher. Push is the fast path;
// anti-entropy is the guarantee. We push over our own stream rather than
// gossipsub: gossipsub silently drops messages over 1 MiB and does not
// replay what a partitioned node missed, so it would add a second path
// without removing the need for this one.
//
// # Narrow links: /crisismesh/narrow/1 and /2
//
// On a link whose Timing has a Window (the node sets one for the
// satellite profile: transport.Profile.Narrow), this node's own new
// entries do not carry their 3373-byte composite signature each: they go
// on narrow/1 with a provisional signature (the Ed25519 half of the last
// entry's composite; the entries before it unsigned, vouched for through
// the chain), and the receiver's store holds them waiting, apart from its
// feed (replication/log, "Narrow links", for the scheme and why it is
// safe; replication/store, "Waiting entries"). Their composite follows
// within the window: with the push that makes log.Window.Due true (the
// newest entry then travels as stored, with its composite, which covers
// every entry before it), or as a cover alone (log.Cover, 3413 bytes) once
// the oldest has waited Window.Interval, checked every second. Covers go
// in order with the pushes to the peer (the same one-in-flight queue),
// never ahead of the entries they cover. Entries that must travel signed
// (log.TravelsSigned: system kinds, flash) make the push due at once, and
// so does a push that would leave more than half of log.MaxUnsignedRun
// bytes waiting at the peer (its store holds at most that much).
//
// Only the author sends provisionally, and only its own feed: narrow/1
// carries the pusher's own entries (anything else is an offence), relays
// go on push/2 with their composites, and sessions send covered entries
// only. So that a session does not send in full what the peer holds
// waiting, the author plans a session with a narrow peer as if the peer
// held its feed up to the newest entry sent provisionally, and the
// receiver does not count entries it holds waiting as a transfer's
// shortfall. A peer that does not speak narrow/1 (libp2p's identify says
// which protocols it serves) gets push/2 as before.
//
// narrow/2 carries the same messages on one long-lived stream per peer
// instead of a stream per push: each message is answered with msgEnd once
// stored, and the pusher waits for that answer (at most the push timeout)
// as it waits for a narrow/1 stream's close, so pushes to the peer stay
// one at a time and coalesce. A stream costs about 330 bytes of TLS and
// yamux framing to open, negotiate and close; a message on narrow/2 costs
// about 75 with its answer. Measured on the TCP connection under libp2p
// (BenchmarkNarrowLinkWireBytes, one 200-byte post a second, N = 128):
// 911 bytes a post on narrow/1, 662 on narrow/2, of which sync's own
// messages are 585. A receiver keeps one narrow/2 stream per peer (a newer
// one replaces the older); the author uses narrow/2 with a peer that
// serves it and narrow/1 otherwise.
//
// Bounds. A graceful shutdown first sends every connected narrow peer the
// cover it is owed (waiting at most the push timeout); a reconnect sends
// it before anything else. What the author forgets (a crash: its
// per-peer state is memory only) costs bytes, not coverage: the peer's
// next session finds its feed short and gets the entries in full,
// covered, which promotes or replaces the waiting copies. A push that
// fails makes the author forget what it sent there for the same reason.
// A cover the receiver cannot use (it no longer holds the entry waiting)
// makes it ask for a session.
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
// oversized frame, an entry that fails
// validation for a reason no honest peer produces (bad signature,
// non-canonical, wrong network, …), entries past the peer's memory budget
// or a push past its quota (see Bounded resources) ends the session or
// push and counts an offence against the peer; after three offences the peer is disconnected and
// reported through Config.OnMisbehave. Nothing invalid is stored, and the
// node keeps serving others.
//
// # Bounded resources
//
// Nothing a peer sends, and nothing in a bundle, can make this node hold
// memory or do work without a bound; every refusal costs the sender (an
// offence, see above), never the network. The limits and why:
//
//   - Messages: one frame is at most maxFrame (an entry of
//     log.MaxEntrySize plus 64 KiB); the CBOR decoder reads at most 4,096
//     items of an array, so a frontier names at most 4,096 authors.
//   - Frontiers a peer sends keep only members of our roster: what we
//     remember of a peer's frontier (PeerStats.LastFrontier, which offer
//     answers add to) and what we count as incoming grow with the roster,
//     not with authors a peer makes up.
//   - Entries held in memory, per peer: Config.MaxPeerBuffer (default
//     DefaultMaxPeerBuffer, 64 MiB) bounds the bytes of one peer's entries
//     held at once across its sessions and pushes: the batch not yet
//     stored (ingested every 512 entries or 4 MiB) and the unsigned
//     entries carried to the next batch, waiting for the signed entry that
//     vouches for them. A decoded entry is counted at twice its size (the
//     decoder copies its body out of its encoding). A peer that would pass
//     it is cut off with ErrOverBudget, an offence. Why 64 MiB: an honest
//     unsigned run is one group commit of its author (the concurrent
//     appends of one node, each one API request), far below 30 MiB. The budget is per
//     peer, not per node: one hostile member (the threat model's
//     assumption) costs at most 64 MiB; n misbehaving peers could cost n
//     times that. The number of carried entries is also bounded (20,000),
//     since each batch checks them again.
//   - Streams, per peer: one session a peer started runs at a time (a
//     second is answered "busy", not an offence; an honest peer runs one
//     at a time anyway), and at most 4 pushes from one peer are served at
//     once (more are reset before anything is read; an honest peer has one
//     in flight). Each stream reads at most one frame ahead. libp2p's
//     resource manager (package transport) bounds the streams and
//     connections below that.
//   - Rates, per peer: two quotas, each a pair of token buckets (entries
//     and bytes). Config.SessionQuota (DefaultSessionQuota: 50,000
//     entries and 256 MiB per second, bursts of 500,000 and 2 GiB) paces
//     a peer's sessions, which we asked for: the receiver waits for the
//     tokens before reading on (at most one message's worth), libp2p's
//     flow control holds the sender, nobody is blamed. Config.PushQuota
//     (DefaultPushQuota: 10,000 entries and 64 MiB per second, bursts of
//     100,000 and 512 MiB) bounds its pushes, which nobody asked for: a
//     push that finds too few tokens is refused and scored (ErrQuota).
//     Separate buckets, so that a session paced into debt does not make
//     the peer's next push look like a flood. Why these numbers: a
//     partition heal of 10,000 1 KiB entries each way over loopback ran
//     at about 26,000 entries/s and 34 MB/s per direction on the project
//     machine (BenchmarkPartitionHeal, 2026-12-05), so the session quota
//     leaves honest catch-up about twice that and only bites on faster
//     machines or against a peer that brings more than this node should
//     spend on one peer; honest pushes follow what the network writes (a
//     3-node testnet ran at 470-620 entries/s end to end; one node's group
//     commit reached 5,000-8,000 entries/s in a synthetic benchmark; each
//     push is at most Config.PushLimit, 256 KiB, one in flight), well
//     inside the push quota and its burst.
//   - Bundles: Import checks the whole file (streamed through SHA-256,
//     never held) before it ingests; it ingests in batches of 512 entries
//     or 4 MiB, and refuses a bundle whose unsigned carry passes 64 MiB
//     (counted as above) or 20,000 entries with ErrBadBundle and
//     ErrOverBudget, naming the feed and seqs, without reading on. The
//     valid entries before it stay stored.
//
// What is not bounded here: what a member may write into its own feed
// (valid, signed entries) is stored and relayed like any other; the
// quota only limits how fast one peer brings it.
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
