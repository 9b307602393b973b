package sync

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// narrow/2: narrow/1's messages on one long-lived stream per narrow-link
// peer (package doc, "Narrow links"). Opening, negotiating and closing a
// stream for each push cost about 330 bytes on the link (TLS records and
// yamux frames both ways, the protocol's name), more than half of what an
// isolated post itself costs. On narrow/2 a push is one frame and its
// answer (msgEnd, once stored) another. The pusher waits for the answer
// as narrow/1 waits for the stream's close, so pushes to a peer stay one
// at a time and what queues meanwhile goes in the next: without that
// wait, posts went one message each and a satellite-mesh scenario sent
// ten times the bytes (peers' sessions reached the receiver while the
// posts were still arriving one by one, and sent them again in full).

// narrowOut is our narrow/2 stream to one peer. Only the push in flight to
// that peer uses it (one at a time, transfers sees to that).
type narrowOut struct {
	s network.Stream
	*conn
}

// sendOnNarrowStream sends m on p's narrow/2 stream, opening one if there
// is none (or it broke: a stream found broken before anything was written
// on it is replaced once), and waits until p says m is stored, at most the
// push timeout (then, as for narrow/1, it carries on as if p had, and the
// stream is dropped). It returns the bytes written.
func (svc *Service) sendOnNarrowStream(ctx context.Context, p peer.ID, m *message) (int64, error) {
	t := svc.timing(p)
	c, reused, err := svc.narrowStream(ctx, p)
	if err != nil {
		return 0, err
	}
	before := c.written.n.Load()
	c.s.SetWriteDeadline(time.Now().Add(t.SessionTimeout))
	err = c.send(m)
	if err != nil && reused && c.written.n.Load() == before {
		svc.dropNarrowStream(p, c)
		if c, _, err = svc.narrowStream(ctx, p); err != nil {
			return 0, err
		}
		before = c.written.n.Load()
		c.s.SetWriteDeadline(time.Now().Add(t.SessionTimeout))
		err = c.send(m)
	}
	n := func() int64 { return c.written.n.Load() - before }
	if err != nil {
		svc.dropNarrowStream(p, c)
		return n(), err
	}
	c.s.SetReadDeadline(time.Now().Add(t.PushTimeout))
	a, err := c.recv()
	var timeout net.Error
	switch {
	case errors.As(err, &timeout) && timeout.Timeout():
		svc.logger.Debug("narrow push not confirmed stored in time", "peer", p, "timeout", t.PushTimeout)
		svc.dropNarrowStream(p, c)
		return n(), nil
	case err != nil:
		if isProtocol(err) {
			svc.offence(p, err)
		}
		svc.dropNarrowStream(p, c)
		return n(), err
	case a.Type != msgEnd:
		svc.offence(p, errUnexpected(a.Type))
		svc.dropNarrowStream(p, c)
		return n(), errUnexpected(a.Type)
	}
	c.s.SetReadDeadline(time.Time{})
	return n(), nil
}

// narrowStream returns p's narrow/2 stream, opening it if there is none or
// its connection closed; reused says it was open already.
func (svc *Service) narrowStream(ctx context.Context, p peer.ID) (c *narrowOut, reused bool, err error) {
	svc.mu.Lock()
	c = svc.narrowOut[p]
	svc.mu.Unlock()
	if c != nil && !c.s.Conn().IsClosed() {
		return c, true, nil
	}
	if c != nil {
		svc.dropNarrowStream(p, c)
	}
	ctx, cancel := context.WithTimeout(ctx, svc.timing(p).SessionTimeout)
	defer cancel()
	s, err := svc.cfg.Host.NewStream(ctx, p, ProtocolNarrow2)
	if err != nil {
		return nil, false, err
	}
	c = &narrowOut{s: s, conn: newConn(s, nil)}
	svc.mu.Lock()
	svc.narrowOut[p] = c
	svc.mu.Unlock()
	return c, false, nil
}

// dropNarrowStream resets c, p's narrow/2 stream, and forgets it.
func (svc *Service) dropNarrowStream(p peer.ID, c *narrowOut) {
	c.s.Reset()
	svc.mu.Lock()
	if svc.narrowOut[p] == c {
		delete(svc.narrowOut, p)
	}
	svc.mu.Unlock()
}

// closeNarrowStreams ends every narrow/2 stream when the service closes:
// ours are closed (each message sent on them was answered or given up
// on), the peers' are reset, which ends their handlers.
func (svc *Service) closeNarrowStreams() {
	svc.mu.Lock()
	out, in := svc.narrowOut, svc.narrowIn
	svc.narrowOut, svc.narrowIn = map[peer.ID]*narrowOut{}, map[peer.ID]network.Stream{}
	svc.mu.Unlock()
	for _, c := range out {
		c.s.Close()
	}
	for _, s := range in {
		s.Reset()
	}
}

// handleNarrowStream serves narrow/2: narrow messages one after another
// until the pusher closes the stream, each ingested as on narrow/1
// (serveNarrow) and answered with msgEnd. A peer has one such
// stream: a newer one replaces the older (the pusher opens another only
// when it gave the old one up). The wait between messages has no
// deadline (the stream lives as long as the connection); reading a
// message once it has begun has the session timeout. A message beyond the
// peer's pushes being served, malformed or of another type ends the
// stream, as anything serveNarrow refuses does: the pusher then forgets
// what it sent and sessions bring it.
func (svc *Service) handleNarrowStream(s network.Stream) {
	p := s.Conn().RemotePeer()
	svc.mu.Lock()
	if svc.stopping() {
		svc.mu.Unlock()
		s.Reset()
		return
	}
	old := svc.narrowIn[p]
	svc.narrowIn[p] = s
	svc.mu.Unlock()
	if old != nil {
		old.Reset()
	}
	defer func() {
		svc.mu.Lock()
		if svc.narrowIn[p] == s {
			delete(svc.narrowIn, p)
		}
		svc.mu.Unlock()
	}()
	c := newConn(s, nil)
	for {
		s.SetReadDeadline(time.Time{})
		if _, err := c.r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				s.Close() // the pusher is done: all it sent is stored
			} else {
				s.Reset()
			}
			return
		}
		if !svc.serveNarrowMessage(p, s, c) {
			return
		}
	}
}

// serveNarrowMessage reads and serves one message of a narrow/2 stream;
// it reports whether the stream goes on (false: it was reset).
func (svc *Service) serveNarrowMessage(p peer.ID, s network.Stream, c *conn) bool {
	if svc.stopping() || !svc.startPush(p) {
		svc.logger.Debug("narrow push refused: the peer has too many pushes being served", "peer", p, "limit", maxPushesPerPeer)
		s.Reset()
		return false
	}
	defer svc.endPush(p)
	t := svc.timing(p)
	s.SetReadDeadline(time.Now().Add(t.SessionTimeout))
	m, err := c.recv()
	if err != nil {
		svc.pushFailed(p, s, err)
		return false
	}
	if m.Type != msgNarrow {
		svc.offence(p, errUnexpected(m.Type))
		s.Reset()
		return false
	}
	if !svc.serveNarrow(p, s, m) {
		s.Reset()
		return false
	}
	s.SetWriteDeadline(time.Now().Add(t.SessionTimeout))
	if err := c.send(&message{Type: msgEnd}); err != nil {
		s.Reset()
		return false
	}
	return true
}
