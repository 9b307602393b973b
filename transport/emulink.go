package transport

import (
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// segmentSize is the unit the emulator times: small enough that bandwidth
// is smooth at a few hundred kbit/s, large enough to cost little.
const segmentSize = 16 << 10

// emuConn emulates a link on a real TCP connection, in user space (this
// kernel has no netem). Each direction is a delay line: a segment leaves
// when the link has serialised the ones before it (bandwidth), arrives a
// latency later, and a lost segment arrives a stall later with everything
// behind it (TCP retransmits; it does not reorder). Writes block when the
// line holds a bandwidth-delay product's worth of data, so a sender sees
// the link's pace, as with a real socket buffer.
//
// The link's parameters are read for every segment, so changing them acts
// on open connections. Deadlines are the emulator's own: the pumps read and
// write the real connection without deadlines. Close drops data in flight.
type emuConn struct {
	net.Conn // the real connection: addresses come from it

	out, in *line
	rd, wd  deadline

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	pumps     sync.WaitGroup
}

func newEmuConn(c net.Conn, out, in func() (Link, time.Time), seed uint64) *emuConn {
	e := &emuConn{
		Conn: c,
		out:  newLine(out, seed),
		in:   newLine(in, seed+1),
		done: make(chan struct{}),
	}
	e.rd.init()
	e.wd.init()
	e.pumps.Add(2)
	go e.sendLoop()
	go e.receiveLoop()
	return e
}

// sendLoop writes outgoing segments to the real connection when they are
// due at the other end. (Delaying before the real write, not after the
// real read, keeps the emulation on the side that dialled; the other side
// runs an ordinary socket.)
func (e *emuConn) sendLoop() {
	defer e.pumps.Done()
	for {
		b, err := e.out.next(e.done)
		if err != nil {
			return
		}
		if _, err := e.Conn.Write(b); err != nil {
			e.out.fail(err)
			return
		}
	}
}

// receiveLoop reads the real connection and queues what arrives, timed by
// the link.
func (e *emuConn) receiveLoop() {
	defer e.pumps.Done()
	buf := make([]byte, segmentSize)
	for {
		n, err := e.Conn.Read(buf)
		if n > 0 {
			if perr := e.in.push(append([]byte(nil), buf[:n]...), nil, e.done); perr != nil {
				return
			}
		}
		if err != nil {
			e.in.fail(err)
			return
		}
	}
}

func (e *emuConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return e.in.read(p, &e.rd, e.done)
}

func (e *emuConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := min(len(p)-n, segmentSize)
		if err := e.out.push(append([]byte(nil), p[n:n+k]...), &e.wd, e.done); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

func (e *emuConn) Close() error {
	e.closeOnce.Do(func() {
		close(e.done)
		e.closeErr = e.Conn.Close()
		e.pumps.Wait()
	})
	return e.closeErr
}

func (e *emuConn) closed() bool { return isDone(e.done) }

func (e *emuConn) SetDeadline(t time.Time) error {
	e.rd.set(t)
	e.wd.set(t)
	return nil
}

func (e *emuConn) SetReadDeadline(t time.Time) error  { e.rd.set(t); return nil }
func (e *emuConn) SetWriteDeadline(t time.Time) error { e.wd.set(t); return nil }

// deadline is a settable point in time that wakes waiters when it moves.
type deadline struct {
	mu      sync.Mutex
	t       time.Time
	changed chan struct{}
}

func (d *deadline) init() { d.changed = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t = t
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *deadline) get() (time.Time, <-chan struct{}) {
	if d == nil {
		return time.Time{}, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t, d.changed
}

// line is one direction of an emulated link: a queue of timed segments.
type line struct {
	link func() (Link, time.Time)

	mu      sync.Mutex
	q       [][]byte
	at      []time.Time // when q[i] reaches the far end
	off     int         // bytes of q[0] already read
	queued  int         // bytes in q not yet read
	last    time.Time   // when the link finishes serialising the last segment
	lastAt  time.Time
	err     error // the producer's end: reported once q is empty
	rng     *rand.Rand
	changed chan struct{} // closed and replaced on every change
}

func newLine(link func() (Link, time.Time), seed uint64) *line {
	return &line{link: link, rng: rand.New(rand.NewPCG(seed, seed>>1|1)), changed: make(chan struct{})}
}

func (l *line) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// capacity is how many bytes the line may hold until they reach the far
// end: the bandwidth-delay product (both latencies, plus slack) and two
// segments, one on the wire and one waiting, so that a writer that keeps
// up keeps the link busy; 1 MiB when the bandwidth is unlimited.
func capacity(lk Link) int {
	if lk.Bandwidth <= 0 {
		return 1 << 20
	}
	bdp := int(float64(lk.Bandwidth) / 8 * (2*lk.Latency + 100*time.Millisecond).Seconds())
	return bdp + 2*segmentSize
}

// push queues b, timed by the link, waiting while the line is full.
func (l *line) push(b []byte, dl *deadline, done <-chan struct{}) error {
	for {
		if isDone(done) {
			return net.ErrClosed
		}
		lk, stallUntil := l.link()
		l.mu.Lock()
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return err
		}
		if l.queued == 0 || l.queued+len(b) <= capacity(lk) {
			now := time.Now()
			start := now
			if l.last.After(start) {
				start = l.last
			}
			if stallUntil.After(start) {
				start = stallUntil
			}
			depart := start
			if lk.Bandwidth > 0 {
				depart = depart.Add(time.Duration(float64(len(b)*8) / float64(lk.Bandwidth) * float64(time.Second)))
			}
			if lk.Loss > 0 && l.rng.Float64() < lk.Loss {
				depart = depart.Add(lk.lossStall())
			}
			at := depart.Add(lk.Latency)
			if at.Before(l.lastAt) {
				at = l.lastAt // a shorter latency set later must not reorder
			}
			l.last, l.lastAt = depart, at
			l.q = append(l.q, b)
			l.at = append(l.at, at)
			l.queued += len(b)
			l.signalLocked()
			l.mu.Unlock()
			return nil
		}
		changed := l.changed
		l.mu.Unlock()
		t, dlChanged := dl.get()
		if !t.IsZero() && !time.Now().Before(t) {
			return os.ErrDeadlineExceeded
		}
		if !wait(t, changed, dlChanged, done) {
			return net.ErrClosed
		}
	}
}

// read copies arrived bytes into p, waiting for the first to arrive.
func (l *line) read(p []byte, dl *deadline, done <-chan struct{}) (int, error) {
	for {
		if isDone(done) {
			return 0, net.ErrClosed
		}
		var due time.Time
		l.mu.Lock()
		if len(l.q) > 0 {
			if due = l.at[0]; !time.Now().Before(due) {
				n := copy(p, l.q[0][l.off:])
				l.off += n
				l.queued -= n
				if l.off == len(l.q[0]) {
					l.popLocked()
				}
				l.signalLocked()
				l.mu.Unlock()
				return n, nil
			}
		} else if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return 0, err
		}
		changed := l.changed
		l.mu.Unlock()
		t, dlChanged := dl.get()
		if !t.IsZero() && !time.Now().Before(t) {
			return 0, os.ErrDeadlineExceeded
		}
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
		if !wait(due, changed, dlChanged, done) {
			return 0, net.ErrClosed
		}
	}
}

// next returns the next whole segment once it is due.
func (l *line) next(done <-chan struct{}) ([]byte, error) {
	for {
		var due time.Time
		l.mu.Lock()
		if len(l.q) > 0 {
			if due = l.at[0]; !time.Now().Before(due) {
				b := l.q[0]
				l.queued -= len(b)
				l.popLocked()
				l.signalLocked()
				l.mu.Unlock()
				return b, nil
			}
		} else if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return nil, err
		}
		changed := l.changed
		l.mu.Unlock()
		if !wait(due, changed, nil, done) {
			return nil, net.ErrClosed
		}
	}
}

func (l *line) popLocked() {
	l.q[0] = nil
	l.q, l.at, l.off = l.q[1:], l.at[1:], 0
}

// fail ends the line: readers get err after what is queued.
func (l *line) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	l.signalLocked()
}

// wait blocks until the time until (zero: no timer), a change, or done; it
// returns false on done.
func wait(until time.Time, changed, dlChanged, done <-chan struct{}) bool {
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-done:
		return false
	case <-changed:
	case <-dlChanged:
	case <-timeout:
	}
	return true
}

func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// SetKeepAlive and SetKeepAlivePeriod forward to the wrapped TCP
// connection, so libp2p can set keepalives on emulated links too.
func (c *emuConn) SetKeepAlive(on bool) error {
	if k, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return k.SetKeepAlive(on)
	}
	return nil
}

// SetKeepAlivePeriod forwards to the wrapped TCP connection.
func (c *emuConn) SetKeepAlivePeriod(d time.Duration) error {
	if k, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return k.SetKeepAlivePeriod(d)
	}
	return nil
}
