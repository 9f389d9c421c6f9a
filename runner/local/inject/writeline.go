package inject

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// writeLine is the delay line of a connection's writes (direction "from"),
// as a netem qdisc is the delay line of an interface: Write schedules each
// chunk and queues it, and returns at once unless the line is full; one
// goroutine, started when the line fills and gone when it empties, sends
// the chunks in order, each at its time. So a body written in many pieces
// is delayed once, not once per piece, and a sender is never slowed by a
// delay, only by a full line (TCP backpressure).
type writeLine struct {
	queued atomic.Int32 // chunks in q; 0 means nothing waits and no writer runs

	mu      sync.Mutex
	q       []*chunk
	qBytes  int
	running bool          // the writer goroutine runs
	err     error         // the writer failed: every later Write returns it
	space   chan struct{} // cap 1: a chunk has left the line
}

// Write schedules b on the write delay line: cut into chunks of at most
// 32 KiB, each scheduled as arriving now (delay, loss stall, bandwidth).
// A chunk that is due at once, with nothing ahead of it, is written here;
// the others wait in the line. Write blocks while the direction is cut by
// a partition or the line is full (networkBandwidth's limit, or 4 MiB).
func (c *faultConn) Write(b []byte) (int, error) {
	fs := c.f.load()
	if !fs.active(dirFrom) && c.w.queued.Load() == 0 {
		return c.Conn.Write(b)
	}
	arrival := time.Now()
	written := 0
	for written < len(b) {
		if err := c.w.failed(); err != nil {
			return written, err
		}
		fs = c.f.load()
		if fs.partition[dirFrom] {
			if err := c.wait(fs, &c.wd, nil); err != nil {
				return written, err
			}
			continue
		}
		limit := maxQueued
		if l := fs.limit[dirFrom]; l > 0 {
			limit = l
		}
		if c.w.full(limit) {
			if err := c.waitFor(fs, &c.wd, nil, c.w.space); err != nil {
				return written, err
			}
			continue
		}
		p := b[written:min(written+chunkSize, len(b))]
		var ch *chunk
		if len(fs.net[dirFrom]) > 0 {
			release, hold, by := schedule(fs, dirFrom, len(p), arrival)
			ch = &chunk{release: release, hold: hold, by: by}
		}
		if c.w.queued.Load() == 0 && (ch == nil || !ch.hold && !time.Now().Before(ch.release)) {
			m, err := c.Conn.Write(p)
			written += m
			if err != nil {
				return written, err
			}
			continue
		}
		if ch == nil {
			ch = &chunk{}
		}
		ch.data = bytes.Clone(p)
		c.w.push(c, ch)
		written += len(p)
	}
	return written, nil
}

// CloseWrite shuts down the writing side when the connection has one
// (*net.TCPConn), once the chunks in the write delay line have been sent.
func (c *faultConn) CloseWrite() error {
	for c.w.queued.Load() > 0 {
		if err := c.waitFor(c.f.load(), &c.wd, nil, c.w.space); err != nil {
			return err
		}
	}
	if err := c.w.failed(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errors.ErrUnsupported}
}

func (w *writeLine) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writeLine) full(limit int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.qBytes >= limit
}

// push queues a chunk and starts the writer if it is not running.
func (w *writeLine) push(c *faultConn, ch *chunk) {
	w.mu.Lock()
	w.q = append(w.q, ch)
	w.qBytes += len(ch.data)
	w.queued.Add(1)
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// head is the next chunk to send; with none, the writer stops (false).
func (w *writeLine) head() (*chunk, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.q) == 0 {
		w.running = false
		return nil, false
	}
	return w.q[0], true
}

// pop removes the head once it has been written (or the line is given up
// with err: everything queued is dropped and the writer stops).
func (w *writeLine) pop(err error) {
	w.mu.Lock()
	if err != nil {
		w.err = err
		w.queued.Add(-int32(len(w.q)))
		clear(w.q)
		w.q, w.qBytes, w.running = nil, 0, false
	} else {
		w.qBytes -= len(w.q[0].data)
		w.q[0] = nil
		w.q = w.q[1:]
		w.queued.Add(-1)
	}
	w.mu.Unlock()
	select {
	case w.space <- struct{}{}:
	default:
	}
}

// writeLoop sends the queued chunks in order, each at its release time; a
// chunk whose fault has been cleared goes at once, and nothing goes while
// the direction is cut. It ends when the line is empty or the connection
// closed (the chunks still queued are dropped).
func (c *faultConn) writeLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		// Load the fault set before looking at the chunk: a Clear after
		// this point closes fs.changed; one before it is visible in alive.
		fs := c.f.load()
		ch, ok := c.w.head()
		if !ok {
			return
		}
		if len(ch.by) > 0 && !ch.alive() {
			ch.hold, ch.release, ch.by = false, time.Time{}, nil
		}
		wait := time.Until(ch.release)
		if fs.partition[dirFrom] || ch.hold || wait > 0 {
			if !fs.partition[dirFrom] && !ch.hold && wait <= fineWindow {
				preciseSleep(wait)
				continue
			}
			var tc <-chan time.Time
			if !fs.partition[dirFrom] && !ch.hold {
				timer.Reset(wait - fineWindow)
				tc = timer.C
			}
			select {
			case <-tc:
			case <-fs.changed:
			case <-c.closed:
				c.w.pop(net.ErrClosed)
				return
			}
			timer.Stop()
			continue
		}
		_, err := c.Conn.Write(ch.data)
		c.w.pop(err)
		if err != nil {
			return
		}
	}
}
