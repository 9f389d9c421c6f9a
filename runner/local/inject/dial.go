package inject

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// DialFunc dials a connection (net.Dialer.DialContext's shape).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial returns a dialer that applies the network faults to every connection
// it makes with next, on the caller's side: no proxy, no second connection.
// What the caller writes is "from" (the target receives it), what it reads
// is "to"; the package doc says what each fault does.
//
//   - While no fault acts on a direction, Read and Write go straight to
//     the connection.
//   - Write schedules each chunk (at most 32 KiB) as arriving now and
//     queues it on the connection's write delay line (writeline.go), whose
//     goroutine sends it when its time comes, in order.
//   - Read returns a chunk once its time comes: arrival + delay (+ loss
//     stall, bandwidth). A read that was waiting when a fault started
//     applies it to what it brings.
//   - networkPartition: new connections fail at once with a connection
//     reset; on existing ones the cut direction stalls.
//   - Clear releases at once whatever a fault holds or delays.
//
// Deadlines set on the connection bound every wait; Close ends them.
func (f *Faults) Dial(next DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if f.load().partitioned() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNRESET)}
		}
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &faultConn{Conn: c, f: f, closed: make(chan struct{}), w: writeLine{space: make(chan struct{}, 1)}}, nil
	}
}

// faultConn is a connection with the faults applied on the caller's side.
// As with any net.Conn, one goroutine reads and one writes at a time; the
// write delay line's goroutine writes only while Write has queued chunks.
type faultConn struct {
	net.Conn
	f         *Faults
	rd, wd    deadline
	closed    chan struct{}
	closeOnce sync.Once

	w writeLine // the delay line of writes (writeline.go)

	lastArrival time.Time // of the last chunk read while a fault acted
	held        bool      // the last chunk read was held back
	waited      bool      // bytes were waiting in the socket when it was released
}

// deadline is a read or write deadline the wrapper's own waits obey.
type deadline struct {
	mu   sync.Mutex
	t    time.Time
	wake chan struct{} // made by a waiter, closed when the deadline changes
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	d.t = t
	if d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	d.mu.Unlock()
}

func (d *deadline) watch() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.wake == nil {
		d.wake = make(chan struct{})
	}
	return d.t, d.wake
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *faultConn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *faultConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *faultConn) Read(b []byte) (int, error) {
	fs := c.f.load()
	for fs.partition[dirTo] {
		// The cut direction stalls: nothing is read until it heals.
		if err := c.wait(fs, &c.rd, nil); err != nil {
			return 0, err
		}
		fs = c.f.load()
	}
	// A chunk that was already waiting in the socket when the previous one
	// was released arrived during that hold: at the latest, with it.
	early := c.held && c.waited
	c.waited = false
	if len(fs.net[dirTo]) > 0 {
		if len(b) > chunkSize {
			b = b[:chunkSize]
		}
	}
	n, err := c.Conn.Read(b)
	if n == 0 {
		return n, err
	}
	// Look again: a fault that started while the read waited acts on what
	// it brought.
	now := c.f.load()
	if !now.active(dirTo) {
		c.held = false
		return n, err
	}
	arrival := time.Now()
	if early && c.lastArrival.Before(arrival) {
		arrival = c.lastArrival
	}
	for now.partition[dirTo] {
		if werr := c.wait(now, &c.rd, nil); werr != nil {
			return 0, werr
		}
		now = c.f.load()
	}
	if len(now.net[dirTo]) == 0 {
		c.held = false
		return n, err
	}
	release, hold, by := schedule(now, dirTo, n, arrival)
	c.lastArrival, c.held = arrival, true
	if werr := c.until(now, &c.rd, release, hold, by); werr != nil {
		return 0, werr
	}
	// Checked now, before the caller can send anything new: what waits
	// in the socket came while this chunk was held.
	c.waited = waiting(c.Conn)
	return n, err
}

// until waits for a chunk's release time (or, when hold, until one of the
// faults in by is cleared); a cleared fault releases it at once.
func (c *faultConn) until(fs *faultSet, d *deadline, release time.Time, hold bool, by []*netFault) error {
	for {
		for _, f := range by {
			if !f.live.Load() {
				return nil
			}
		}
		wait := time.Until(release)
		if !hold && wait <= 0 {
			return nil
		}
		if !hold && wait <= fineWindow {
			preciseSleep(wait)
			return nil
		}
		var t *time.Timer
		var timer <-chan time.Time
		if !hold {
			t = time.NewTimer(wait - fineWindow)
			timer = t.C
		}
		err := c.wait(fs, d, timer)
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return err
		}
		fs = c.f.load()
	}
}

// wait blocks until timer fires or the fault set changes (nil), the
// deadline passes (os.ErrDeadlineExceeded, as the connection would say) or
// the connection is closed (net.ErrClosed).
func (c *faultConn) wait(fs *faultSet, d *deadline, timer <-chan time.Time) error {
	return c.waitFor(fs, d, timer, nil)
}

// waitFor is wait that also returns (nil) when space fires.
func (c *faultConn) waitFor(fs *faultSet, d *deadline, timer <-chan time.Time, space <-chan struct{}) error {
	for {
		dl, changed := d.watch()
		var expire *time.Timer
		var expired <-chan time.Time
		if !dl.IsZero() {
			left := time.Until(dl)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			expire = time.NewTimer(left)
			expired = expire.C
		}
		var err error
		again := false
		select {
		case <-timer:
		case <-space:
		case <-fs.changed:
		case <-c.closed:
			err = net.ErrClosed
		case <-expired:
			err = os.ErrDeadlineExceeded
		case <-changed:
			again = true // the deadline moved: look again
		}
		if expire != nil {
			expire.Stop()
		}
		if !again {
			return err
		}
	}
}
