package load

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// RequestTimeout is how long one request may take, as k6's default
// (params.timeout 60s). On the fast path a connection's deadline is moved
// only when less than half of it is left (moving it costs a runtime timer
// update per request, which showed in the p50): a request there gets
// between 30s and 60s.
const RequestTimeout = 60 * time.Second

// maxRedirects is k6's default limit on redirects followed.
const maxRedirects = 10

// vu is one virtual user: its own connections, random source and buffers.
// Its life, as the executors drive it:
//
//	state      what it does                       how it leaves the state
//	idle       waits in the pool or loop          an executor runs an iteration on it
//	busy       runs one iteration                 the iteration ends, or interrupt()
//	stopping   finishes its iteration, no more    gracefulStop/gracefulRampDown ends: interrupt()
//	done       connections closed                 -
type vu struct {
	id  int
	e   *Engine
	rng *rand.Rand

	ctx    context.Context // cancelled by interrupt: the request in flight fails at once
	cancel context.CancelFunc
	stop   func() bool

	mu    sync.Mutex
	conns map[string]*h1conn
	std   *http.Client     // https, redirects and requests an HTTP middleware must see
	gc    *grpc.ClientConn // gRPC calls (grpc.go)
	body  []byte
}

func (e *Engine) newVU(parent context.Context, id int) *vu {
	v := &vu{id: id, e: e, rng: rand.New(rand.NewPCG(uint64(id)+1, uint64(e.seed))), conns: map[string]*h1conn{}}
	v.ctx, v.cancel = context.WithCancel(parent)
	v.stop = context.AfterFunc(v.ctx, v.abortConns)
	return v
}

// interrupt ends the VU's request in flight at once.
func (v *vu) interrupt() { v.cancel() }

// abortConns makes every I/O on the VU's connections fail now.
func (v *vu) abortConns() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.conns {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
}

// close releases the VU's connections.
func (v *vu) close() {
	v.stop()
	v.cancel()
	v.mu.Lock()
	for k, c := range v.conns {
		_ = c.nc.Close()
		delete(v.conns, k)
	}
	v.mu.Unlock()
	if v.std != nil {
		v.std.CloseIdleConnections()
	}
	if v.gc != nil {
		_ = v.gc.Close()
	}
}

// iterate runs one iteration: one request of the mix. It reports false
// when the iteration was interrupted (no sample then).
func (v *vu) iterate() bool {
	r := v.e.mix.pick(v.rng)
	var s Sample
	if r.grpc != nil {
		v.invoke(r, &s)
	} else if r.scheme == "http" && (v.e.mw == nil || !v.e.mw.Active()) {
		v.fast(r, &s)
	} else {
		v.slow(r, &s)
	}
	if v.ctx.Err() != nil {
		return false
	}
	v.e.sink.Add(v.id, &s)
	return true
}

// fast sends a plain-http request on the VU's keep-alive connection: the
// prepared bytes in one write, the response parsed in place.
func (v *vu) fast(r *request, s *Sample) {
	s.Request = r.idx
	keep := len(r.contains) > 0
	for attempt := 0; ; attempt++ {
		c, err := v.conn(r.hostport)
		if err != nil {
			v.failed(r, s, time.Now(), err)
			return
		}
		s.Start = time.Now()
		c.deadline(s.Start)
		v.body = v.body[:0]
		var resp response
		var got bool
		_, werr := c.nc.Write(r.raw)
		err = werr
		if err == nil {
			resp, got, err = readResponse(c.br, r.noBody, keep, &v.body)
		}
		if err != nil {
			v.drop(r.hostport)
			// A keep-alive connection the server closed while idle fails
			// before any byte of a response: send the request again on a new
			// one, once — as Go's client (and so k6) does: when it could not
			// be written, or when it is replayable (an idempotent method
			// without a body). A POST that reached a server which then died
			// is a failure, not a retry.
			if c.used && !got && attempt == 0 && v.ctx.Err() == nil && (werr != nil || r.replayable()) {
				continue
			}
			v.failed(r, s, s.Start, err)
			return
		}
		c.used = true
		if resp.close {
			v.drop(r.hostport)
		}
		if resp.location != "" && isRedirect(resp.status) {
			v.redirect(r, s, resp)
			return
		}
		v.done(r, s, resp.status, v.body)
		return
	}
}

func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// redirect follows a redirect the fast path met through the VU's net/http
// client, which follows the rest (k6 follows up to 10); the sample spans the
// whole chain.
func (v *vu) redirect(r *request, s *Sample, resp response) {
	base, err := http.NewRequest(r.method, r.url, nil)
	if err != nil {
		v.failed(r, s, s.Start, err)
		return
	}
	loc, err := base.URL.Parse(resp.location)
	if err != nil {
		v.failed(r, s, s.Start, err)
		return
	}
	method, body := r.method, r.body
	if resp.status != 307 && resp.status != 308 && r.method != http.MethodGet && r.method != http.MethodHead {
		method, body = http.MethodGet, nil
	}
	req, err := http.NewRequestWithContext(v.ctx, method, loc.String(), bytes.NewReader(body))
	if err != nil {
		v.failed(r, s, s.Start, err)
		return
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header = r.header.Clone()
	start := s.Start
	v.send(r, s, req)
	s.Start = start
}

// slow sends a request through net/http: https (HTTP/2 when offered), and
// every request while an HTTP middleware (the local backend's HTTP faults)
// is active.
func (v *vu) slow(r *request, s *Sample) {
	req, err := http.NewRequestWithContext(v.ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		v.failed(r, s, time.Now(), err)
		return
	}
	if !r.hasBody {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header = r.header.Clone()
	req.Host = r.host
	s.Start = time.Time{}
	v.send(r, s, req)
}

// send runs req on the VU's net/http client; the sample starts when a
// connection was got (connecting is not part of the duration).
func (v *vu) send(r *request, s *Sample, req *http.Request) {
	s.Request = r.idx
	began := time.Now()
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		if s.Start.IsZero() {
			s.Start = time.Now()
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := v.client().Do(req)
	if s.Start.IsZero() {
		s.Start = began
	}
	if err != nil {
		v.failed(r, s, s.Start, err)
		return
	}
	v.body = v.body[:0]
	if len(r.contains) > 0 {
		err = readN(bufio.NewReader(resp.Body), -1, true, &v.body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		v.failed(r, s, s.Start, err)
		return
	}
	v.done(r, s, resp.StatusCode, v.body)
}

// client is the VU's net/http client (made on first use): its own
// transport, as each k6 VU has its own connections.
func (v *vu) client() *http.Client {
	if v.std != nil {
		return v.std
	}
	var rt http.RoundTripper = &http.Transport{
		DialContext:         v.e.dial,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     v.e.tls,
		IdleConnTimeout:     time.Minute,
	}
	if v.e.mw != nil {
		rt = v.e.mw.Wrap(rt)
	}
	v.std = &http.Client{Transport: rt, Timeout: RequestTimeout, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return v.std
}

// deadline bounds the request starting at now by RequestTimeout. Moving a
// connection's deadline costs a runtime timer update, so it is moved only
// when less than half the timeout is left: every request still has at
// least RequestTimeout/2, at most RequestTimeout.
func (c *h1conn) deadline(now time.Time) {
	if c.until.Sub(now) < RequestTimeout/2 {
		c.until = now.Add(RequestTimeout)
		_ = c.nc.SetDeadline(c.until)
	}
}

// conn returns the VU's connection to hostport, dialling it when needed.
func (v *vu) conn(hostport string) (*h1conn, error) {
	v.mu.Lock()
	c := v.conns[hostport]
	v.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(v.ctx, RequestTimeout)
	nc, err := v.e.dial(ctx, "tcp", hostport)
	cancel()
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c = &h1conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ctx.Err() != nil {
		nc.Close()
		return nil, v.ctx.Err()
	}
	v.conns[hostport] = c
	return c, nil
}

// drop closes and forgets the connection to hostport.
func (v *vu) drop(hostport string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c := v.conns[hostport]; c != nil {
		_ = c.nc.Close()
		delete(v.conns, hostport)
	}
}

func (v *vu) failed(r *request, s *Sample, start time.Time, err error) {
	s.Request, s.Start, s.End = r.idx, start, time.Now()
	s.Status, s.Failed, s.Err = 0, true, err
	s.ChecksPassed, s.ChecksTotal = r.checks(0, nil)
}

func (v *vu) done(r *request, s *Sample, status int, body []byte) {
	s.End = time.Now()
	s.Status, s.Failed, s.Err = status, !r.expected(status), nil
	s.ChecksPassed, s.ChecksTotal = r.checks(status, body)
}
