// Package demotarget is the demo service faultline's `make demo` and the
// shipped scenarios run against on a laptop: a small shop checkout service
// written the way real Go services are, so that faults show up in its
// latency, its errors and its Go runtime metrics.
//
// Endpoints on the main listener (default 127.0.0.1:18080):
//
//	GET  /catalog        the product catalog, JSON; reads a sync.RWMutex map
//	                     (and the stock map under its read lock)
//	POST /checkout       body {"sku":"demo","qty":1}; reserves stock under the
//	                     stock map's write lock, then pays through the
//	                     downstream /pay with a deadline (Config.DownstreamTimeout,
//	                     default 1s): 200 paid, 400 bad body, 404 unknown sku,
//	                     502 payment refused or failed, 503 payment timed out
//	                     (499 recorded when the client hung up first)
//	GET  /healthz        200 "ok"
//	GET  /metrics        Prometheus: Go runtime collector with all runtime/metrics
//	                     (go_sched_latencies_seconds, go_gc_duration_seconds,
//	                     go_goroutines, go_memstats_*), process collector,
//	                     demotarget_http_requests_total{route,method,code},
//	                     demotarget_http_request_duration_seconds{route,method,code},
//	                     demotarget_downstream_requests_total{call,outcome},
//	                     demotarget_audit_inflight
//	     /debug/pprof/   net/http/pprof, registered on the service's own mux
//
// The downstream (the "payments" dependency) is served by the same process on
// a second listener (default: an ephemeral loopback port):
//
//	POST /pay            answers after Config.DownstreamLatency
//	POST /pay/audit      the audit log sink; same latency
//
// Both sit under /pay*, so one HTTP fault on /pay* (the slow-downstream
// scenario) slows payments and audit writes alike. Config.DownstreamURL lets
// the service call the downstream through something else, such as faultline's
// local fault injector placed in front of the downstream listener.
//
// # Behaviour under faults
//
// Each checkout spawns two goroutines: one calls /pay under the request's
// deadline (the handler waits for it or for the deadline, whichever comes
// first, and answers 503 on timeout, releasing the reserved stock), and one
// writes an audit record to /pay/audit. Payments are bounded: a slow
// downstream shows up as latency and 503s, not as goroutines that pile up.
//
// The deliberate weakness, kept so that the recovery goroutine SLO has
// something to see: the audit goroutine is fire-and-forget and detached from
// the request ("audit records must survive a client hanging up"), bounded
// only by its own, longer timeout (Config.AuditTimeout, default 5s). While
// the downstream is slow, every checkout leaves an audit goroutine (plus its
// connection's goroutines) behind for as long as the downstream takes, up to
// that timeout: goroutines grow with rate × downstream latency. Once the
// downstream is fast again they finish, idle downstream connections are
// closed after Config.IdleTimeout (default 5s), and the count returns to the
// steady level. demotarget_audit_inflight shows the backlog.
//
// Only loopback addresses are accepted for the listeners unless
// Config.AllowExternal is set.
package demotarget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
)

// Defaults of Config's zero fields.
const (
	DefaultListen            = "127.0.0.1:18080"
	DefaultDownstreamListen  = "127.0.0.1:0"
	DefaultDownstreamLatency = 2 * time.Millisecond
	DefaultDownstreamTimeout = time.Second
	DefaultAuditTimeout      = 5 * time.Second
	DefaultIdleTimeout       = 5 * time.Second
	DefaultShutdownTimeout   = 5 * time.Second
)

// initialStock is each product's stock; a product that runs out is
// restocked to it (the demo warehouse never leaves a long run without stock).
const initialStock = 100_000

// StatusClientClosedRequest (nginx's 499) is recorded for a checkout whose
// client hung up before the payment finished.
const StatusClientClosedRequest = 499

// maxQty is the largest quantity one checkout may order.
const maxQty = 100

// Config configures the demo target. The zero value of every field but Log
// and Ready means its default.
type Config struct {
	// Listen is the main listener's address (DefaultListen). Port 0 picks a
	// free port; Server.Addr reports it.
	Listen string
	// DownstreamListen is the downstream's listener (DefaultDownstreamListen).
	DownstreamListen string
	// GRPCListen, when set, is the gRPC server's address (faultline.demo.v1.Shop
	// beside health and reflection; see grpc.go). Port 0 picks a free port;
	// Server.GRPCAddr reports it.
	GRPCListen string
	// DownstreamURL, if set, is the base URL the service calls the downstream
	// at (for example a fault injector's proxy in front of DownstreamListen);
	// by default it calls its own downstream listener directly.
	DownstreamURL string
	// DownstreamLatency is how long /pay and /pay/audit take to answer
	// (DefaultDownstreamLatency); negative means none. Server.SetDownstreamLatency
	// changes it while running.
	DownstreamLatency time.Duration
	// DownstreamTimeout is a checkout's deadline for its payment (DefaultDownstreamTimeout).
	DownstreamTimeout time.Duration
	// AuditTimeout bounds each detached audit write (DefaultAuditTimeout).
	AuditTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections to and on the downstream
	// (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown (DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// AllowExternal allows non-loopback listen addresses.
	AllowExternal bool
	// Log receives the readiness lines and server errors; nil discards them.
	Log io.Writer
	// Ready, if set, is called by Run once both listeners are bound, before
	// serving starts (connections made from then on are served).
	Ready func(*Server)
}

// ErrExternalListen is returned for a non-loopback listen address without
// Config.AllowExternal.
var ErrExternalListen = errors.New("non-loopback listen address")

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DownstreamListen == "" {
		c.DownstreamListen = DefaultDownstreamListen
	}
	if c.DownstreamLatency == 0 {
		c.DownstreamLatency = DefaultDownstreamLatency
	}
	if c.DownstreamLatency < 0 {
		c.DownstreamLatency = 0
	}
	if c.DownstreamTimeout <= 0 {
		c.DownstreamTimeout = DefaultDownstreamTimeout
	}
	if c.AuditTimeout <= 0 {
		c.AuditTimeout = DefaultAuditTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate checks the configuration without binding anything: listen
// addresses are host:port, loopback unless AllowExternal, and DownstreamURL
// is an http(s) URL.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, l := range []struct{ flag, addr string }{{"listen", c.Listen}, {"downstream-listen", c.DownstreamListen}, {"grpc-listen", c.GRPCListen}} {
		if l.addr == "" {
			continue // grpc-listen unset: no gRPC server
		}
		if err := checkListen(l.addr, c.AllowExternal); err != nil {
			return fmt.Errorf("%s %q: %w", l.flag, l.addr, err)
		}
	}
	if c.DownstreamURL != "" {
		u, err := url.Parse(c.DownstreamURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("downstream-url %q: want an http(s) URL such as http://127.0.0.1:18081", c.DownstreamURL)
		}
	}
	return nil
}

func checkListen(addr string, allowExternal bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:18080: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if allowExternal {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	what := "host " + strconv.Quote(host)
	if host == "" {
		what = "an empty host (all interfaces)"
	}
	return fmt.Errorf("%w: %s is not loopback; use 127.0.0.1 or pass --allow-external to expose the demo target", ErrExternalListen, what)
}

// Server is a bound demo target. Listen creates it, Serve runs it.
type Server struct {
	cfg        Config
	ln, downLn net.Listener
	main, down *http.Server
	grpcLn     net.Listener // nil without Config.GRPCListen
	grpcSrv    *grpc.Server
	client     *http.Client
	downURL    string

	latency atomic.Int64 // downstream latency, ns

	catalogMu sync.RWMutex
	catalog   map[string]Product

	stockMu sync.RWMutex
	stock   map[string]int

	orders atomic.Int64

	// auditCtx outlives requests; it is cancelled only at the end of a shutdown.
	auditCtx    context.Context
	auditCancel context.CancelFunc
	audits      sync.WaitGroup
	auditN      atomic.Int64

	reg           *prometheus.Registry
	downstreamReq *prometheus.CounterVec
	auditInflight prometheus.Gauge

	served     atomic.Bool
	lastErrLog atomic.Int64 // unix ns of the last logged downstream error
}

// Product is a catalog entry as /catalog shows it.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
	Stock      int    `json:"stock"`
}

// Listen validates cfg and binds both listeners. Nothing is served until
// Serve; a failure to bind (a port already in use) is reported here.
func Listen(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ln, err := listen(cfg.Listen, "listen")
	if err != nil {
		return nil, err
	}
	downLn, err := listen(cfg.DownstreamListen, "downstream-listen")
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		ln:      ln,
		downLn:  downLn,
		downURL: "http://" + downLn.Addr().String(),
		catalog: map[string]Product{
			"demo":    {SKU: "demo", Name: "Demo widget", PriceCents: 1999},
			"gopher":  {SKU: "gopher", Name: "Gopher plush", PriceCents: 2499},
			"mug":     {SKU: "mug", Name: "Faultline mug", PriceCents: 1299},
			"sticker": {SKU: "sticker", Name: "Sticker pack", PriceCents: 499},
		},
		stock: map[string]int{},
	}
	if cfg.DownstreamURL != "" {
		s.downURL = cfg.DownstreamURL
	}
	for sku := range s.catalog {
		s.stock[sku] = initialStock
	}
	s.latency.Store(int64(cfg.DownstreamLatency))
	s.auditCtx, s.auditCancel = context.WithCancel(context.Background())
	s.client = &http.Client{Transport: &http.Transport{
		Proxy:               nil, // loopback dependency: never through HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: cfg.DownstreamTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128, // pay + audit per checkout: avoid connection churn under load
		IdleConnTimeout:     cfg.IdleTimeout,
	}}
	s.initMetrics()
	if cfg.GRPCListen != "" {
		if s.grpcSrv, err = s.newGRPCServer(); err == nil {
			s.grpcLn, err = listen(cfg.GRPCListen, "grpc-listen")
		}
		if err != nil {
			ln.Close()
			downLn.Close()
			return nil, err
		}
	}
	errLog := log.New(cfg.Log, "demo-target: ", 0)
	s.main = &http.Server{
		Handler:           s.mainMux(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          errLog,
		// No WriteTimeout: /debug/pprof/profile streams for up to its
		// ?seconds=; the checkout is bounded by its own deadline.
	}
	s.down = &http.Server{
		Handler:           s.downstreamMux(),
		ReadHeaderTimeout: 5 * time.Second,
		// Longer than the client's IdleConnTimeout, so that the client, not
		// the server, closes an idle connection: a server closing one as the
		// client reuses it fails the (non-idempotent, never retried) POST.
		IdleTimeout: 2 * cfg.IdleTimeout,
		ErrorLog:    errLog,
	}
	return s, nil
}

func listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s %s: address already in use (another demo-target or service is on that port; stop it or choose another port with --%s): %w", flag, addr, flag, err)
	}
	return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
}

// Addr is the main listener's bound address, such as 127.0.0.1:18080.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// GRPCAddr is the gRPC listener's bound address, or "" without one.
func (s *Server) GRPCAddr() string {
	if s.grpcLn == nil {
		return ""
	}
	return s.grpcLn.Addr().String()
}

// URL is the main listener's base URL, such as http://127.0.0.1:18080.
func (s *Server) URL() string { return "http://" + s.Addr() }

// DownstreamAddr is the downstream listener's bound address.
func (s *Server) DownstreamAddr() string { return s.downLn.Addr().String() }

// SetDownstreamLatency changes how long the downstream takes to answer, for
// requests that arrive from now on.
func (s *Server) SetDownstreamLatency(d time.Duration) { s.latency.Store(int64(max(d, 0))) }

// AuditInFlight is the number of audit goroutines still running.
func (s *Server) AuditInFlight() int { return int(s.auditN.Load()) }

// Run binds the listeners, announces them on cfg.Log ("demo-target
// listening on http://127.0.0.1:18080"), calls cfg.Ready, and serves until
// ctx is cancelled; then it shuts down gracefully and returns nil. The
// caller ties ctx to SIGINT/SIGTERM (signal.NotifyContext).
func Run(ctx context.Context, cfg Config) error {
	s, err := Listen(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.cfg.Log, "demo-target downstream (payments) on http://%s (called at %s)\n", s.DownstreamAddr(), s.downURL)
	if s.grpcLn != nil {
		fmt.Fprintf(s.cfg.Log, "demo-target gRPC (%s, health, reflection) on %s\n", ShopService, s.GRPCAddr())
	}
	fmt.Fprintf(s.cfg.Log, "demo-target listening on %s\n", s.URL())
	if cfg.Ready != nil {
		cfg.Ready(s)
	}
	return s.Serve(ctx)
}

// Serve serves both listeners until ctx is cancelled, then shuts down:
// stops accepting, lets in-flight requests and audit writes finish within
// Config.ShutdownTimeout, cancels what is left, and closes the listeners.
// It returns nil after a clean shutdown, or the error that stopped a server.
// Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if s.served.Swap(true) {
		return errors.New("demotarget: Serve called twice")
	}
	errc := make(chan error, 3)
	go func() { errc <- s.down.Serve(s.downLn) }()
	if s.grpcSrv != nil {
		go func() { errc <- s.grpcSrv.Serve(s.grpcLn) }()
	}
	go func() { errc <- s.main.Serve(s.ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc: // a listener failed: shut the other down too
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if s.grpcSrv != nil {
		// In-flight calls finish (they still reach the downstream), within
		// the shutdown's bound.
		stopped := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-sctx.Done():
			s.grpcSrv.Stop()
		}
	}
	shutErr := s.main.Shutdown(sctx) // in-flight checkouts still reach the downstream
	auditsDone := make(chan struct{})
	go func() { s.audits.Wait(); close(auditsDone) }()
	select {
	case <-auditsDone:
	case <-sctx.Done():
	}
	s.auditCancel()
	<-auditsDone // cancelled audit writes return promptly
	if err := s.down.Shutdown(sctx); shutErr == nil {
		shutErr = err
	}
	if errors.Is(shutErr, context.DeadlineExceeded) {
		s.main.Close()
		s.down.Close()
	}
	s.client.CloseIdleConnections()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return fmt.Errorf("demo-target: %w", serveErr)
	}
	if shutErr != nil && !errors.Is(shutErr, context.DeadlineExceeded) {
		return fmt.Errorf("demo-target shutdown: %w", shutErr)
	}
	return nil
}

func (s *Server) initMetrics() {
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.downstreamReq = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demotarget_downstream_requests_total",
		Help: "Calls to the downstream by call (pay, audit) and outcome (ok, timeout, canceled, error).",
	}, []string{"call", "outcome"})
	s.auditInflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "demotarget_audit_inflight",
		Help: "Detached audit goroutines still running (grows while the downstream is slow).",
	})
	s.reg.MustRegister(s.downstreamReq, s.auditInflight)
}

func (s *Server) mainMux() http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demotarget_http_requests_total",
		Help: "HTTP requests served, by route, method and status code.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "demotarget_http_request_duration_seconds",
		Help:    "HTTP request latency, by route, method and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method", "code"})
	s.reg.MustRegister(requests, duration)
	instrument := func(route string, h http.Handler) http.Handler {
		l := prometheus.Labels{"route": route}
		return promhttp.InstrumentHandlerDuration(duration.MustCurryWith(l),
			promhttp.InstrumentHandlerCounter(requests.MustCurryWith(l), h))
	}

	mux := http.NewServeMux()
	mux.Handle("GET /catalog", instrument("/catalog", http.HandlerFunc(s.handleCatalog)))
	mux.Handle("POST /checkout", instrument("/checkout", http.HandlerFunc(s.handleCheckout)))
	mux.Handle("GET /healthz", instrument("/healthz", http.HandlerFunc(handleHealthz)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: log.New(s.cfg.Log, "demo-target metrics: ", 0)}))
	// net/http/pprof's init also registers on http.DefaultServeMux, which
	// this service never serves.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func (s *Server) downstreamMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		var req payRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil || req.SKU == "" || req.Qty <= 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{"bad payment request"})
			return
		}
		if !s.downstreamDelay(r.Context()) {
			return
		}
		writeJSON(w, http.StatusOK, payResponse{Status: "paid", AmountCents: req.AmountCents})
	})
	mux.HandleFunc("POST /pay/audit", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
		if !s.downstreamDelay(r.Context()) {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// downstreamDelay waits the configured latency; false if the caller gave up.
func (s *Server) downstreamDelay(ctx context.Context) bool {
	d := time.Duration(s.latency.Load())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) handleCatalog(w http.ResponseWriter, _ *http.Request) {
	s.catalogMu.RLock()
	items := make([]Product, 0, len(s.catalog))
	for _, p := range s.catalog {
		items = append(items, p)
	}
	s.catalogMu.RUnlock()
	s.stockMu.RLock()
	for i := range items {
		items[i].Stock = s.stock[items[i].SKU]
	}
	s.stockMu.RUnlock()
	slices.SortFunc(items, func(a, b Product) int {
		if a.SKU < b.SKU {
			return -1
		}
		if a.SKU > b.SKU {
			return 1
		}
		return 0
	})
	writeJSON(w, http.StatusOK, catalogResponse{Items: items})
}

type catalogResponse struct {
	Items []Product `json:"items"`
}

// CheckoutRequest is the body of POST /checkout.
type CheckoutRequest struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// CheckoutResponse is the body of a successful POST /checkout.
type CheckoutResponse struct {
	Order       int64  `json:"order"`
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	AmountCents int    `json:"amount_cents"`
	Status      string `json:"status"`
}

type payRequest struct {
	Order       int64  `json:"order"`
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	AmountCents int    `json:"amount_cents"`
}

type payResponse struct {
	Status      string `json:"status"`
	AmountCents int    `json:"amount_cents"`
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) handleCheckout(w http.ResponseWriter, r *http.Request) {
	var req CheckoutRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"body must be JSON like {\"sku\":\"demo\",\"qty\":1}: " + err.Error()})
		return
	}
	order, amount, err := s.checkout(r.Context(), req.SKU, req.Qty)
	var ce *checkoutError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, CheckoutResponse{Order: order, SKU: req.SKU, Qty: req.Qty, AmountCents: amount, Status: "paid"})
	case errors.As(err, &ce) && ce.status == StatusClientClosedRequest:
		// The client hung up; nobody reads the answer.
		w.WriteHeader(StatusClientClosedRequest)
	case errors.As(err, &ce):
		writeJSON(w, ce.status, errorBody{ce.msg})
	}
}

// checkoutError is a checkout that did not go through: the HTTP status it
// answers with and why.
type checkoutError struct {
	status int
	msg    string
}

func (e *checkoutError) Error() string { return e.msg }

// checkout reserves qty of sku and pays for it: the catalog under its read
// lock, the stock under its write lock, the payment through the downstream
// with a deadline, and the detached audit write. POST /checkout and the
// gRPC Shop/Checkout both run it. A failure is a *checkoutError.
func (s *Server) checkout(rctx context.Context, sku string, qty int) (order int64, amountCents int, err error) {
	if qty < 1 || qty > maxQty {
		return 0, 0, &checkoutError{http.StatusBadRequest, fmt.Sprintf("qty must be 1 to %d", maxQty)}
	}
	s.catalogMu.RLock()
	p, ok := s.catalog[sku]
	s.catalogMu.RUnlock()
	if !ok {
		return 0, 0, &checkoutError{http.StatusNotFound, fmt.Sprintf("unknown sku %q", sku)}
	}

	s.reserve(sku, qty)
	order = s.orders.Add(1)
	pay := payRequest{Order: order, SKU: sku, Qty: qty, AmountCents: p.PriceCents * qty}

	// The audit write: detached from the request and bounded only by its
	// own timeout — the documented weakness (see the package comment).
	s.audits.Add(1)
	s.auditInflight.Inc()
	s.auditN.Add(1)
	go func() {
		defer s.audits.Done()
		defer s.auditInflight.Dec()
		defer s.auditN.Add(-1)
		actx, cancel := context.WithTimeout(s.auditCtx, s.cfg.AuditTimeout)
		defer cancel()
		_, err := s.call(actx, "/pay/audit", pay)
		s.downstreamReq.WithLabelValues("audit", outcome(err)).Inc()
	}()

	// The payment: bounded by the request's deadline.
	ctx, cancel := context.WithTimeout(rctx, s.cfg.DownstreamTimeout)
	defer cancel()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1) // buffered: the goroutine never blocks on a gone handler
	go func() {
		status, err := s.call(ctx, "/pay", pay)
		done <- result{status, err}
	}()

	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res = result{err: ctx.Err()}
	}
	if res.err != nil && rctx.Err() != nil {
		res.err = rctx.Err()
	}
	s.downstreamReq.WithLabelValues("pay", outcome(res.err)).Inc()
	switch {
	case res.err == nil && res.status == http.StatusOK:
		return order, pay.AmountCents, nil
	case rctx.Err() != nil:
		s.release(sku, qty)
		return 0, 0, &checkoutError{StatusClientClosedRequest, "the client hung up"}
	case res.err != nil && errors.Is(res.err, context.DeadlineExceeded):
		s.release(sku, qty)
		return 0, 0, &checkoutError{http.StatusServiceUnavailable, fmt.Sprintf("payment service did not answer within %s", s.cfg.DownstreamTimeout)}
	case res.err != nil:
		s.logDownstreamError(res.err)
		s.release(sku, qty)
		return 0, 0, &checkoutError{http.StatusBadGateway, "payment failed: " + res.err.Error()}
	default:
		s.release(sku, qty)
		return 0, 0, &checkoutError{http.StatusBadGateway, fmt.Sprintf("payment refused: downstream answered %d", res.status)}
	}
}

// reserve takes qty units of sku under the stock map's write lock,
// restocking a product that ran out.
func (s *Server) reserve(sku string, qty int) {
	s.stockMu.Lock()
	defer s.stockMu.Unlock()
	if s.stock[sku] < qty {
		s.stock[sku] += initialStock
	}
	s.stock[sku] -= qty
}

// release puts back a reservation whose payment failed.
func (s *Server) release(sku string, qty int) {
	s.stockMu.Lock()
	s.stock[sku] += qty
	s.stockMu.Unlock()
}

// call POSTs body as JSON to the downstream path and returns the status.
func (s *Server) call(ctx context.Context, path string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.downURL+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drain: keep the connection reusable
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return resp.StatusCode, nil
}

// logDownstreamError logs a failed payment call, at most once a second.
func (s *Server) logDownstreamError(err error) {
	now := time.Now().UnixNano()
	last := s.lastErrLog.Load()
	if now-last < int64(time.Second) || !s.lastErrLog.CompareAndSwap(last, now) {
		return
	}
	fmt.Fprintf(s.cfg.Log, "demo-target: payment call failed (answering 502; further errors within 1s not logged): %v\n", err)
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
