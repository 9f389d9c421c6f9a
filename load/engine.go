package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/internal/buildinfo"
)

// DialFunc dials a connection; the local backend passes one that applies
// its network faults to the engine's own connections.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Middleware sees requests at the HTTP level: the local backend's HTTP
// faults. While Active reports true, requests go through Go's net/http with
// the transport Wrap returns; otherwise plain-http requests take the
// engine's fast path, untouched.
type Middleware interface {
	Active() bool
	Wrap(http.RoundTripper) http.RoundTripper
}

// Engine runs one compiled load.
type Engine struct {
	sc      k6opts.Scenario // defaults filled
	exec    executor
	mix     *mix
	dial    DialFunc
	mw      Middleware
	grpc    *grpcDescs // nil without gRPC calls
	grpcInt grpc.UnaryClientInterceptor
	sink    Sink
	seed    int64
	base    string
	ua      string
	tls     *tls.Config

	// iteration replaces the request of an iteration in tests of the
	// executors: it runs on the VU and reports false when interrupted.
	iteration func(v *vu) bool

	vus, busy, maxVUs                atomic.Int64
	iterations, dropped, interrupted atomic.Int64
	ran                              atomic.Bool
}

// Option configures an Engine.
type Option func(*Engine)

// WithDialer sets how VUs connect (default: a net.Dialer with a 10s timeout).
func WithDialer(d DialFunc) Option { return func(e *Engine) { e.dial = d } }

// WithMiddleware sets the HTTP-level middleware.
func WithMiddleware(m Middleware) Option { return func(e *Engine) { e.mw = m } }

// WithSink sets where samples go (default: nowhere).
func WithSink(s Sink) Option { return func(e *Engine) { e.sink = s } }

// WithBaseURL replaces the scheme and host of every request (the paths stay).
func WithBaseURL(u string) Option { return func(e *Engine) { e.base = u } }

// WithTLSConfig sets the TLS configuration of https requests (default:
// Go's, verifying the server against the system's roots, as k6 does unless
// insecureSkipTLSVerify is set).
func WithTLSConfig(c *tls.Config) Option { return func(e *Engine) { e.tls = c } }

// WithSeed seeds the VUs' random choice of requests (default: the time).
func WithSeed(seed int64) Option { return func(e *Engine) { e.seed = seed } }

// New prepares a load: its scenario resolved with k6's defaults, its
// executor checked, its requests prepared.
func New(l *k6.Load, opts ...Option) (*Engine, error) {
	if l == nil {
		return nil, errors.New("load: no load")
	}
	e := &Engine{sc: l.Scenario.WithDefaults(), sink: discard{}, seed: time.Now().UnixNano(),
		ua: "faultline/" + buildinfo.Version()}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	e.dial = d.DialContext
	for _, o := range opts {
		o(e)
	}
	var err error
	if e.exec, err = newExecutor(e.sc); err != nil {
		return nil, err
	}
	if e.iteration == nil {
		if e.mix, err = newMix(l.Requests, e.base, e.ua); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if calls := e.mix.grpcCalls(); len(calls) > 0 {
			if e.grpc, err = newGRPC(l.GRPC, calls); err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
		}
	}
	return e, nil
}

// Stats are the engine's counters.
type Stats struct {
	// VUs is the number of VUs the executor holds now (for arrival-rate
	// executors: made, busy or idle; for the others: active); Busy is the
	// number running an iteration; MaxVUs the most VUs held at once.
	VUs, Busy, MaxVUs int64
	// Iterations completed; Dropped (arrival-rate: no free VU, k6's
	// dropped_iterations); Interrupted by gracefulStop, gracefulRampDown
	// or cancellation.
	Iterations, Dropped, Interrupted int64
}

// Stats returns the counters now; safe to call while Run runs.
func (e *Engine) Stats() Stats {
	return Stats{VUs: e.vus.Load(), Busy: e.busy.Load(), MaxVUs: e.maxVUs.Load(),
		Iterations: e.iterations.Load(), Dropped: e.dropped.Load(), Interrupted: e.interrupted.Load()}
}

// Summary is how a run went.
type Summary struct {
	Start, End time.Time
	Stats
}

// Executor names the executor.
func (e *Engine) Executor() string { return e.sc.Executor }

// Run runs the load once: it takes the start instant, passes it to started
// (when not nil; before any request) and runs the executor to its end,
// graceful stop included. Cancelling ctx stops at once: requests in flight
// are interrupted; the error is then the context's.
func (e *Engine) Run(ctx context.Context, started func(time.Time)) (Summary, error) {
	if !e.ran.CompareAndSwap(false, true) {
		return Summary{}, errors.New("load: an engine runs once")
	}
	start := time.Now()
	if started != nil {
		started(start)
	}
	e.exec.run(ctx, e, start)
	return Summary{Start: start, End: time.Now(), Stats: e.Stats()}, context.Cause(ctx)
}

// addVUs moves the VU count by n and keeps the maximum.
func (e *Engine) addVUs(n int64) {
	v := e.vus.Add(n)
	for {
		m := e.maxVUs.Load()
		if v <= m || e.maxVUs.CompareAndSwap(m, v) {
			return
		}
	}
}

// run runs one iteration on v and counts it; false when it was interrupted.
func (e *Engine) run(v *vu) bool {
	e.busy.Add(1)
	var ok bool
	if e.iteration != nil {
		ok = e.iteration(v)
	} else {
		ok = v.iterate()
	}
	e.busy.Add(-1)
	if ok {
		e.iterations.Add(1)
	} else {
		e.interrupted.Add(1)
	}
	return ok
}
