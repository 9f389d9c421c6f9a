package demotarget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const checkoutBody = `{"sku":"demo","qty":1}`

// testConfig is a fast configuration on ephemeral loopback ports.
func testConfig() Config {
	return Config{
		Listen:            "127.0.0.1:0",
		DownstreamListen:  "127.0.0.1:0",
		DownstreamLatency: time.Millisecond,
		DownstreamTimeout: 300 * time.Millisecond,
		AuditTimeout:      3 * time.Second,
		IdleTimeout:       300 * time.Millisecond,
		ShutdownTimeout:   3 * time.Second,
	}
}

// start runs the target through Run until the test ends, and returns it
// with a client of its own.
func start(t *testing.T, cfg Config) (*Server, *http.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Server, 1)
	cfg.Ready = func(s *Server) { ready <- s }
	var logBuf syncBuffer
	cfg.Log = &logBuf
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	var s *Server
	select {
	case s = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256},
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
		client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("target log:\n%s", logBuf.String())
		}
	})
	if !strings.Contains(logBuf.String(), "demo-target listening on "+s.URL()+"\n") {
		t.Errorf("log lacks the readiness line; got:\n%s", logBuf.String())
	}
	return s, client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	s, c := start(t, testConfig())
	down := "http://" + s.DownstreamAddr()
	tests := []struct {
		name, method, url, body string
		want                    int
		contains                string
	}{
		{"healthz", "GET", s.URL() + "/healthz", "", 200, "ok"},
		{"catalog", "GET", s.URL() + "/catalog", "", 200, `"sku":"demo"`},
		{"checkout", "POST", s.URL() + "/checkout", checkoutBody, 200, `"status":"paid"`},
		{"checkout qty 3", "POST", s.URL() + "/checkout", `{"sku":"mug","qty":3}`, 200, `"amount_cents":3897`},
		{"checkout bad json", "POST", s.URL() + "/checkout", `{"sku":`, 400, "body must be JSON"},
		{"checkout zero qty", "POST", s.URL() + "/checkout", `{"sku":"demo","qty":0}`, 400, "qty must be"},
		{"checkout huge qty", "POST", s.URL() + "/checkout", `{"sku":"demo","qty":1000}`, 400, "qty must be"},
		{"checkout unknown sku", "POST", s.URL() + "/checkout", `{"sku":"nope","qty":1}`, 404, "unknown sku"},
		{"checkout wrong method", "GET", s.URL() + "/checkout", "", 405, ""},
		{"catalog wrong method", "POST", s.URL() + "/catalog", "{}", 405, ""},
		{"unknown route", "GET", s.URL() + "/nope", "", 404, ""},
		{"pprof index", "GET", s.URL() + "/debug/pprof/", "", 200, "goroutine"},
		{"pprof goroutine", "GET", s.URL() + "/debug/pprof/goroutine?debug=1", "", 200, "goroutine profile"},
		{"pprof cmdline", "GET", s.URL() + "/debug/pprof/cmdline", "", 200, ""},
		{"pay not on main listener", "POST", s.URL() + "/pay", checkoutBody, 404, ""},
		{"downstream pay", "POST", down + "/pay", checkoutBody, 200, `"status":"paid"`},
		{"downstream pay bad body", "POST", down + "/pay", `{}`, 400, ""},
		{"downstream audit", "POST", down + "/pay/audit", checkoutBody, 204, ""},
		{"downstream has no catalog", "GET", down + "/catalog", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, c, tt.method, tt.url, tt.body)
			if code != tt.want {
				t.Errorf("status %d, want %d; body %q", code, tt.want, body)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body %q lacks %q", body, tt.contains)
			}
		})
	}
}

func TestCatalogShowsStock(t *testing.T) {
	s, c := start(t, testConfig())
	stock := func() int {
		_, body := do(t, c, "GET", s.URL()+"/catalog", "")
		var cat catalogResponse
		if err := json.Unmarshal([]byte(body), &cat); err != nil {
			t.Fatalf("catalog: %v in %q", err, body)
		}
		if len(cat.Items) != 4 || cat.Items[0].SKU != "demo" {
			t.Fatalf("catalog items not sorted by sku or wrong size: %+v", cat.Items)
		}
		return cat.Items[0].Stock
	}
	before := stock()
	if code, body := do(t, c, "POST", s.URL()+"/checkout", `{"sku":"demo","qty":2}`); code != 200 {
		t.Fatalf("checkout: %d %s", code, body)
	}
	if after := stock(); after != before-2 {
		t.Errorf("stock %d after buying 2 of %d", after, before)
	}
}

func TestMetrics(t *testing.T) {
	s, c := start(t, testConfig())
	do(t, c, "POST", s.URL()+"/checkout", checkoutBody)
	do(t, c, "GET", s.URL()+"/catalog", "")
	code, body := do(t, c, "GET", s.URL()+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"\ngo_goroutines ",
		"\ngo_sched_latencies_seconds_bucket{",
		"\ngo_memstats_heap_inuse_bytes ",
		"\ngo_gc_duration_seconds{",
		"\nprocess_open_fds ",
		`demotarget_http_requests_total{code="200",method="post",route="/checkout"} 1`,
		`demotarget_http_requests_total{code="200",method="get",route="/catalog"} 1`,
		`demotarget_http_request_duration_seconds_bucket{code="200",method="post",route="/checkout",le="`,
		`demotarget_downstream_requests_total{call="pay",outcome="ok"} 1`,
		"\ndemotarget_audit_inflight ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestCheckoutDownstream(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	tests := []struct {
		name          string
		latency       time.Duration
		downstreamURL string
		want          int
	}{
		{"fast downstream pays", time.Millisecond, "", 200},
		{"slow but within the deadline", 100 * time.Millisecond, "", 200},
		{"slower than the deadline", 5 * time.Second, "", 503},
		{"downstream unreachable", time.Millisecond, closedURL, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DownstreamLatency = tt.latency
			cfg.DownstreamURL = tt.downstreamURL
			cfg.AuditTimeout = 500 * time.Millisecond // let the shutdown be quick
			s, c := start(t, cfg)
			t0 := time.Now()
			code, body := do(t, c, "POST", s.URL()+"/checkout", checkoutBody)
			took := time.Since(t0)
			if code != tt.want {
				t.Errorf("status %d, want %d; body %q", code, tt.want, body)
			}
			if limit := cfg.DownstreamTimeout + 250*time.Millisecond; took > limit {
				t.Errorf("checkout took %v, more than the %v deadline (+slack)", took, cfg.DownstreamTimeout)
			}
			if tt.want == 503 && !strings.Contains(body, "did not answer within") {
				t.Errorf("503 body %q does not say why", body)
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	tests := []struct {
		name     string
		cfg      func(*Config)
		contains string
		external bool
	}{
		{"port taken", func(c *Config) { c.Listen = taken.Addr().String() }, "address already in use", false},
		{"downstream port taken", func(c *Config) { c.DownstreamListen = taken.Addr().String() }, "--downstream-listen", false},
		{"all interfaces refused", func(c *Config) { c.Listen = ":18080" }, "all interfaces", true},
		{"external ip refused", func(c *Config) { c.Listen = "192.0.2.1:18080" }, "--allow-external", true},
		{"external downstream refused", func(c *Config) { c.DownstreamListen = "0.0.0.0:0" }, "not loopback", true},
		{"hostname refused", func(c *Config) { c.Listen = "example.com:80" }, "not loopback", true},
		{"no port", func(c *Config) { c.Listen = "127.0.0.1" }, "host:port", false},
		{"bad port", func(c *Config) { c.Listen = "127.0.0.1:http" }, "not a number", false},
		{"bad downstream url", func(c *Config) { c.DownstreamURL = "127.0.0.1:9" }, "http(s) URL", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.cfg(&cfg)
			called := false
			cfg.Ready = func(*Server) { called = true }
			err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("Run error %v, want one containing %q", err, tt.contains)
			}
			if errors.Is(err, ErrExternalListen) != tt.external {
				t.Errorf("errors.Is(err, ErrExternalListen) = %v, want %v", !tt.external, tt.external)
			}
			if called {
				t.Error("Ready called although Run failed")
			}
		})
	}

	t.Run("allow external validates", func(t *testing.T) {
		cfg := Config{Listen: "0.0.0.0:18080", AllowExternal: true}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})
	t.Run("localhost accepted", func(t *testing.T) {
		cfg := Config{Listen: "localhost:18080", DownstreamListen: "[::1]:0"}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})
}

func TestShutdownOnCancel(t *testing.T) {
	cfg := testConfig()
	cfg.DownstreamLatency = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *Server, 1)
	cfg.Ready = func(s *Server) { ready <- s }
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	s := <-ready
	addr, downAddr := s.Addr(), s.DownstreamAddr()

	// A checkout in flight when the shutdown starts is still answered.
	inflight := make(chan int, 1)
	go func() {
		resp, err := http.Post(s.URL()+"/checkout", "application/json", strings.NewReader(checkoutBody))
		if err != nil {
			inflight <- -1
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout + 2*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	t.Logf("shutdown took %v", time.Since(t0))
	if code := <-inflight; code != 200 {
		t.Errorf("in-flight checkout got %d, want 200", code)
	}
	for _, a := range []string{addr, downAddr} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("port %s not freed: %v", a, err)
			continue
		}
		ln.Close()
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

// settle waits until the process has at most limit goroutines and returns
// the last count.
func settle(limit int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// baseline is the goroutine count of an idle, warmed-up target.
func baseline(t *testing.T, s *Server, c *http.Client, cfg Config) int {
	t.Helper()
	for range 3 {
		do(t, c, "POST", s.URL()+"/checkout", checkoutBody)
		do(t, c, "GET", s.URL()+"/catalog", "")
	}
	c.CloseIdleConnections()
	time.Sleep(2 * cfg.IdleTimeout) // idle downstream connections close
	return runtime.NumGoroutine()
}

// hammer runs workers concurrent clients, each doing n checkouts and n
// catalog reads, and returns the status counts and the slowest checkout.
func hammer(t *testing.T, s *Server, c *http.Client, workers, n int) (map[int]int, time.Duration) {
	t.Helper()
	var (
		mu      sync.Mutex
		codes   = map[int]int{}
		slowest time.Duration
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range n {
				t0 := time.Now()
				resp, err := c.Post(s.URL()+"/checkout", "application/json", strings.NewReader(checkoutBody))
				took := time.Since(t0)
				code := -1
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
					if code != 200 && code != 503 {
						t.Logf("checkout %d: %s", code, b)
					}
				}
				if resp, err := c.Get(s.URL() + "/catalog"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				slowest = max(slowest, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return codes, slowest
}

func TestConcurrentCheckouts(t *testing.T) {
	cfg := testConfig()
	cfg.DownstreamTimeout = 5 * time.Second // a loaded -race run must not time out
	s, c := start(t, cfg)
	base := baseline(t, s, c, cfg)
	stockBefore := s.stockOf("demo")

	const workers, n = 200, 5
	codes, slowest := hammer(t, s, c, workers, n)
	t.Logf("codes %v, slowest checkout %v, goroutines baseline %d", codes, slowest, base)
	if codes[200] != workers*n {
		t.Errorf("%d of %d checkouts succeeded: %v", codes[200], workers*n, codes)
	}
	if got := stockBefore - s.stockOf("demo"); got != codes[200] {
		t.Errorf("stock went down by %d for %d paid checkouts", got, codes[200])
	}
	if got := s.orders.Load(); got < workers*n {
		t.Errorf("%d orders numbered, want at least %d", got, workers*n)
	}

	c.CloseIdleConnections()
	limit := base + 10
	if got := settle(limit, 5*time.Second); got > limit {
		t.Errorf("goroutines %d after the load, want at most %d (baseline %d)", got, limit, base)
	}
}

// TestAuditLeakRecovers shows the documented weakness: while the downstream
// is slow, checkouts answer 503 within their deadline but leave audit
// goroutines behind; once the downstream is fast again they drain, and the
// audit timeout bounds them even if it stays slow.
func TestAuditLeakRecovers(t *testing.T) {
	tests := []struct {
		name         string
		workers      int
		slow         time.Duration
		auditTimeout time.Duration
		recoverFast  bool // make the downstream fast again after the burst
	}{
		{"downstream recovers", 200, 1500 * time.Millisecond, 5 * time.Second, true},
		{"audit timeout bounds a downstream that stays slow", 50, time.Minute, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DownstreamTimeout = 200 * time.Millisecond
			cfg.AuditTimeout = tt.auditTimeout
			s, c := start(t, cfg)
			base := baseline(t, s, c, cfg)

			s.SetDownstreamLatency(tt.slow)
			t0 := time.Now()
			codes, slowest := hammer(t, s, c, tt.workers, 1)
			burst := time.Since(t0)
			leaked, during := s.AuditInFlight(), runtime.NumGoroutine()
			t.Logf("codes %v, slowest %v, burst %v; baseline %d goroutines, %d during (%d audits in flight)",
				codes, slowest, burst, base, during, leaked)
			if codes[503] != tt.workers {
				t.Errorf("%d of %d checkouts got 503: %v", codes[503], tt.workers, codes)
			}
			if limit := cfg.DownstreamTimeout + time.Second; slowest > limit {
				t.Errorf("slowest checkout %v, want within the %v deadline (+1s slack under load)", slowest, cfg.DownstreamTimeout)
			}
			if burst < tt.slow && leaked < tt.workers/2 {
				t.Errorf("only %d audit goroutines in flight while the downstream is slow, want about %d", leaked, tt.workers)
			}

			if tt.recoverFast {
				s.SetDownstreamLatency(time.Millisecond)
			}
			c.CloseIdleConnections()
			limit := base + 10
			within := min(tt.slow, tt.auditTimeout) + 2*cfg.IdleTimeout + 3*time.Second
			deadline := time.Now().Add(within)
			for s.AuditInFlight() > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := settle(limit, time.Until(deadline)); got > limit {
				t.Errorf("goroutines %d, want back to at most %d (baseline %d) within %v", got, limit, base, within)
			}
			if n := s.AuditInFlight(); n != 0 {
				t.Errorf("%d audit goroutines still in flight", n)
			}
			if tt.recoverFast {
				if code, body := do(t, c, "POST", s.URL()+"/checkout", checkoutBody); code != 200 {
					t.Errorf("checkout after recovery: %d %s", code, body)
				}
			}
		})
	}
}

func (s *Server) stockOf(sku string) int {
	s.stockMu.RLock()
	defer s.stockMu.RUnlock()
	return s.stock[sku]
}

func TestCheckoutClientGone(t *testing.T) {
	cfg := testConfig()
	cfg.DownstreamLatency = 2 * time.Second
	cfg.DownstreamTimeout = 5 * time.Second
	cfg.AuditTimeout = 500 * time.Millisecond
	s, c := start(t, cfg)
	before := s.stockOf("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/checkout", strings.NewReader(checkoutBody))
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("checkout answered %d although the client gave up", resp.StatusCode)
	}
	want := `demotarget_http_requests_total{code="499",method="post",route="/checkout"} 1`
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, body := do(t, c, "GET", s.URL()+"/metrics", "")
		if strings.Contains(body, want) && strings.Contains(body, `demotarget_downstream_requests_total{call="pay",outcome="canceled"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := s.stockOf("demo"); got != before {
		t.Errorf("stock %d, want the reservation released (%d)", got, before)
	}
}
