package inject

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// chunkSize is the most one read takes from a socket: the unit faults
	// act on.
	chunkSize = 32 << 10
	// maxQueued bounds the bytes a connection may have waiting in one
	// direction (a delay line of 32 KiB chunks); past it the injector stops
	// reading, like a TCP window that is full.
	maxQueued = 4 << 20
)

var aLongTimeAgo = time.Unix(1, 0)

// fineWindow is the last stretch of a scheduled wait, slept with
// preciseSleep instead of a Go timer (which can fire up to ~1 ms late).
const fineWindow = 1500 * time.Microsecond

// conn is one proxied connection: a client (a socket, or the HTTP path's
// pipe) and its own connection to the target.
type conn struct {
	p                *Proxy
	client, upstream net.Conn
	ctx              context.Context
	cancel           context.CancelFunc
	stopClose        func() bool
	upgradable       bool // a client socket that may move to the HTTP path
	handover         atomic.Bool
	prefix           []byte // the first bytes of the request that triggered the hand-over
	toDone           chan struct{}
	pumps            [2]*pump // by direction
}

func (p *Proxy) newConn(client, up net.Conn, upgradable bool) *conn {
	c := &conn{p: p, client: client, upstream: up, upgradable: upgradable, toDone: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(p.ctx)
	c.stopClose = context.AfterFunc(c.ctx, func() {
		client.Close()
		up.Close()
	})
	c.pumps[dirTo] = newPump(c, dirTo, up, client, &p.bytesTo)
	c.pumps[dirFrom] = newPump(c, dirFrom, client, up, &p.bytesFrom)
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	return c
}

// run forwards both directions until both have ended, then closes the
// connection, or hands the client over to the HTTP path.
func (c *conn) run() {
	c.p.wg.Go(func() {
		defer close(c.toDone)
		c.pumps[dirTo].run()
	})
	c.pumps[dirFrom].run()
	<-c.toDone
	handed := c.handover.Load() && c.ctx.Err() == nil
	c.stopClose()
	c.cancel()
	if !handed {
		c.client.Close()
	}
	c.upstream.Close()
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	if handed {
		c.p.toHTTP(&prefixConn{Conn: c.client, prefix: c.prefix})
	}
}

// beginHandover moves a raw connection to the HTTP path at a request
// boundary: b is the start of a new request, so (HTTP/1.1, no pipelining)
// the previous response has been delivered in full. It stops the other
// direction, lets both delay lines drain and always returns false (the
// pump stops).
func (c *conn) beginHandover(b []byte) bool {
	c.prefix = bytes.Clone(b)
	c.handover.Store(true)
	_ = c.upstream.SetReadDeadline(aLongTimeAgo)
	select {
	case <-c.toDone:
	case <-c.ctx.Done():
	}
	c.pumps[dirFrom].finish(false)
	return false
}

// pump forwards one direction of a connection. Without an active fault on
// its direction and with nothing queued, the reading goroutine writes each
// chunk straight through. Otherwise chunks go into a FIFO delay line that a
// writer goroutine (started on first use) releases at their scheduled time.
type pump struct {
	c        *conn
	dir      direction
	src, dst net.Conn
	counter  *atomic.Int64

	queued atomic.Int32 // chunks in q; 0 means the writer is idle

	mu     sync.Mutex
	q      []*chunk
	qBytes int
	eof    bool // the reader has finished
	writer bool // the writer goroutine has been started
	wdone  chan struct{}
	notify chan struct{} // a chunk was queued, or eof
	space  chan struct{} // a chunk was written
}

type chunk struct {
	data    []byte
	release time.Time
	hold    bool        // wait until one of by is cleared
	by      []*netFault // the faults that scheduled it
}

// alive reports whether every fault that scheduled the chunk is still
// active.
func (ch *chunk) alive() bool {
	for _, f := range ch.by {
		if !f.live.Load() {
			return false
		}
	}
	return true
}

func newPump(c *conn, d direction, src, dst net.Conn, counter *atomic.Int64) *pump {
	return &pump{c: c, dir: d, src: src, dst: dst, counter: counter,
		notify: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run is the reading side.
func (pu *pump) run() {
	buf := make([]byte, chunkSize)
	for {
		n, err := pu.src.Read(buf)
		if n > 0 && !pu.forward(buf[:n]) {
			if !pu.c.handover.Load() {
				pu.c.cancel()
			}
			pu.finish(false)
			return
		}
		if err != nil {
			switch {
			case pu.dir == dirTo && pu.c.handover.Load():
				pu.finish(false) // deliver what is queued, keep the client open
			case errors.Is(err, io.EOF):
				pu.finish(true)
			default:
				pu.c.cancel()
				pu.finish(false)
			}
			return
		}
	}
}

// finish ends the reading side: the writer drains the queue and exits; with
// closeWrite, the end of stream is passed on.
func (pu *pump) finish(closeWrite bool) {
	pu.mu.Lock()
	already := pu.eof
	pu.eof = true
	started, wdone := pu.writer, pu.wdone
	pu.mu.Unlock()
	if already {
		return
	}
	signal(pu.notify)
	if started {
		<-wdone
	}
	if closeWrite && pu.c.ctx.Err() == nil {
		if cw, ok := pu.dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			pu.dst.Close()
		}
	}
}

// forward passes one chunk on, through the faults active on its direction.
// It returns false when the connection is finished.
func (pu *pump) forward(b []byte) bool {
	for {
		fs := pu.c.p.load()
		if pu.dir == dirFrom && pu.c.upgradable && len(fs.http) > 0 {
			return pu.c.beginHandover(b)
		}
		if fs.partition[pu.dir] {
			if !pu.wait(fs, nil) {
				return false
			}
			continue
		}
		if !fs.active(pu.dir) && pu.queued.Load() == 0 {
			if _, err := pu.dst.Write(b); err != nil {
				return false
			}
			pu.counter.Add(int64(len(b)))
			return true
		}
		limit := maxQueued
		if l := fs.limit[pu.dir]; l > 0 {
			limit = l
		}
		pu.mu.Lock()
		full := pu.qBytes >= limit
		pu.mu.Unlock()
		if full {
			if !pu.wait(fs, pu.space) {
				return false
			}
			continue
		}
		pu.enqueue(fs, b)
		return true
	}
}

// wait blocks until the fault set changes, ch fires or the connection ends.
func (pu *pump) wait(fs *faultSet, ch chan struct{}) bool {
	select {
	case <-fs.changed:
		return true
	case <-ch:
		return true
	case <-pu.c.ctx.Done():
		return false
	}
}

// schedule decides when a chunk of n bytes arriving at t leaves on
// direction d: delays, then losses, then bandwidth. hold reports a chunk
// that waits until one of the faults in by is cleared.
func schedule(fs *faultSet, d direction, n int, t time.Time) (release time.Time, hold bool, by []*netFault) {
	if k := len(fs.net[d]); k > 0 {
		by = make([]*netFault, 0, k)
	}
	for _, f := range fs.net[d] {
		f.mu.Lock()
		switch {
		case f.delay != nil:
			t = t.Add(f.delaySample())
		case f.loss != nil:
			stall, h := f.lossStall(n)
			t = t.Add(stall)
			hold = hold || h
		default:
			t = f.shape(t, n)
		}
		f.mu.Unlock()
		by = append(by, f)
	}
	return t, hold, by
}

// enqueue schedules a chunk and queues it for the writer.
func (pu *pump) enqueue(fs *faultSet, b []byte) {
	t, hold, by := schedule(fs, pu.dir, len(b), time.Now())
	ch := &chunk{data: bytes.Clone(b), release: t, hold: hold, by: by}
	pu.mu.Lock()
	pu.q = append(pu.q, ch)
	pu.qBytes += len(b)
	pu.queued.Add(1)
	start := !pu.writer
	if start {
		pu.writer = true
		pu.wdone = make(chan struct{})
	}
	pu.mu.Unlock()
	if start {
		pu.c.p.wg.Go(pu.writeLoop)
	}
	signal(pu.notify)
}

// writeLoop releases queued chunks in order, each at its time; a chunk
// whose fault has been cleared goes at once.
func (pu *pump) writeLoop() {
	defer close(pu.wdone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		// Load the fault set before looking at the chunk: a Clear after
		// this point closes fs.changed; one before it is visible in alive.
		fs := pu.c.p.load()
		pu.mu.Lock()
		if len(pu.q) == 0 {
			eof := pu.eof
			pu.mu.Unlock()
			if eof {
				return
			}
			select {
			case <-pu.notify:
			case <-pu.c.ctx.Done():
				return
			}
			continue
		}
		ch := pu.q[0]
		pu.mu.Unlock()
		if len(ch.by) > 0 && !ch.alive() {
			ch.hold, ch.release, ch.by = false, time.Time{}, nil
		}
		if wait := time.Until(ch.release); ch.hold || wait > 0 {
			if !ch.hold && wait <= fineWindow {
				preciseSleep(wait)
				continue
			}
			var tc <-chan time.Time
			if !ch.hold {
				timer.Reset(wait - fineWindow)
				tc = timer.C
			}
			select {
			case <-tc:
			case <-fs.changed:
			case <-pu.c.ctx.Done():
				return
			}
			timer.Stop()
			continue
		}
		_, err := pu.dst.Write(ch.data)
		pu.mu.Lock()
		pu.q[0] = nil
		pu.q = pu.q[1:]
		pu.qBytes -= len(ch.data)
		pu.mu.Unlock()
		pu.queued.Add(-1)
		signal(pu.space)
		if err != nil {
			pu.c.cancel()
			return
		}
		pu.counter.Add(int64(len(ch.data)))
	}
}

// prefixConn replays the bytes read before a hand-over.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
