package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/k6opts"
)

func strp(s string) *string { return &s }

// collect is a Sink that keeps every sample.
type collect struct {
	mu      sync.Mutex
	samples []Sample
}

func (c *collect) Add(_ int, s *Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, *s)
}

// oneVU runs n iterations of the requests on one VU and returns the samples.
func oneVU(t *testing.T, n int64, reqs []k6.Request, opts ...Option) []Sample {
	t.Helper()
	c := &collect{}
	sc := k6opts.Scenario{Executor: k6opts.PerVUIterations, VUs: i64(1), Iterations: i64(n), MaxDuration: dur(20 * time.Second)}
	e, err := New(&k6.Load{Scenario: sc, Requests: reqs}, append([]Option{WithSink(c)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return c.samples
}

// conns counts the connections a test server accepted.
func countConns(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// TestHTTP sends real requests to a loopback server and checks what k6's
// script would record for each: status, failed (http_req_failed), checks
// (status, then bodyContains), and that requests arrive as written.
func TestHTTP(t *testing.T) {
	var got struct {
		sync.Mutex
		method, path, body, ctype, ua, host string
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "stock: 12 left") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Lock()
		got.method, got.path, got.body, got.ctype, got.ua, got.host = r.Method, r.URL.RequestURI(), string(b), r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), r.Host
		got.Unlock()
		w.WriteHeader(201)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "part-%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 1<<20))
		io.WriteString(w, "END")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	u := srv.URL

	tests := []struct {
		name       string
		req        k6.Request
		status     int
		failed     bool
		passed     int
		total      int
		wantSample func(t *testing.T)
	}{
		{"expected status", k6.Request{Path: "/ok", URL: u + "/ok", Status: 200}, 200, false, 1, 1, nil},
		{"another status than expected", k6.Request{Path: "/fail", URL: u + "/fail", Status: 200}, 500, true, 0, 1, nil},
		{"the expected error status", k6.Request{Path: "/fail", URL: u + "/fail", Status: 500}, 500, false, 1, 1, nil},
		{"default expectation is 2xx/3xx", k6.Request{Path: "/missing", URL: u + "/missing"}, 404, true, 0, 1, nil},
		{"bodyContains passes", k6.Request{Path: "/ok", URL: u + "/ok", BodyContains: []string{"stock", "left"}}, 200, false, 3, 3, nil},
		{"bodyContains fails", k6.Request{Path: "/ok", URL: u + "/ok", BodyContains: []string{"sold out"}}, 200, false, 1, 2, nil},
		{"chunked body", k6.Request{Path: "/chunked", URL: u + "/chunked", BodyContains: []string{"part-4;"}}, 200, false, 2, 2, nil},
		{"body past a MiB", k6.Request{Path: "/big", URL: u + "/big", BodyContains: []string{"END"}}, 200, false, 2, 2, nil},
		{"connection close", k6.Request{Path: "/close", URL: u + "/close", BodyContains: []string{"bye"}}, 200, false, 2, 2, nil},
		{"redirect followed", k6.Request{Path: "/redirect", URL: u + "/redirect", BodyContains: []string{"stock"}}, 200, false, 2, 2, nil},
		{"HEAD has no body", k6.Request{Method: "HEAD", Path: "/ok", URL: u + "/ok"}, 200, false, 1, 1, nil},
		{"POST with body and headers", k6.Request{Method: "POST", Path: "/echo?x=1", URL: u + "/echo?x=1", Status: 201,
			Headers: map[string]string{"Content-Type": "application/json"}, Body: strp(`{"sku":"A-1"}`)}, 201, false, 1, 1,
			func(t *testing.T) {
				got.Lock()
				defer got.Unlock()
				if got.method != "POST" || got.path != "/echo?x=1" || got.body != `{"sku":"A-1"}` || got.ctype != "application/json" ||
					!strings.HasPrefix(got.ua, "faultline/") || got.host != strings.TrimPrefix(u, "http://") {
					t.Errorf("the server got %+v", &got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := oneVU(t, 3, []k6.Request{tt.req})
			if len(samples) != 3 {
				t.Fatalf("%d samples, want 3", len(samples))
			}
			for _, s := range samples {
				if s.Err != nil || s.Status != tt.status || s.Failed != tt.failed || s.ChecksPassed != tt.passed || s.ChecksTotal != tt.total {
					t.Errorf("sample: status %d failed %v checks %d/%d err %v; want %d %v %d/%d",
						s.Status, s.Failed, s.ChecksPassed, s.ChecksTotal, s.Err, tt.status, tt.failed, tt.passed, tt.total)
				}
				if s.Start.IsZero() || s.End.Before(s.Start) {
					t.Errorf("sample times %v .. %v", s.Start, s.End)
				}
			}
			if tt.wantSample != nil {
				tt.wantSample(t)
			}
		})
	}
}

// TestKeepAlive: one VU reuses one connection, as a k6 VU does; two VUs
// have a connection each.
func TestKeepAlive(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	n := countConns(srv)
	srv.Start()
	defer srv.Close()
	samples := oneVU(t, 50, []k6.Request{{Path: "/", URL: srv.URL + "/"}})
	if len(samples) != 50 || n.Load() != 1 {
		t.Errorf("%d samples over %d connections; want 50 over 1", len(samples), n.Load())
	}
}

// TestStaleKeepAlive: a server that closes every connection after one
// response without saying so; the next request on it is sent again on a
// new connection, not failed.
func TestStaleKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(20 * time.Millisecond)
			}()
		}
	}()
	samples := oneVU(t, 5, []k6.Request{{Path: "/", URL: "http://" + ln.Addr().String() + "/"}})
	for _, s := range samples {
		if s.Failed || s.Err != nil {
			t.Errorf("sample failed: status %d err %v", s.Status, s.Err)
		}
	}
	if len(samples) != 5 || accepted.Load() < 5 {
		t.Errorf("%d samples, %d connections; want 5 and at least 5", len(samples), accepted.Load())
	}
}

// TestMalformedResponse: garbage in place of a response is a failed
// request with an error, never a panic or a pass.
func TestMalformedResponse(t *testing.T) {
	for _, answer := range []string{"garbage\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""} {
		t.Run(fmt.Sprintf("%q", answer), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						_, _ = http.ReadRequest(bufio.NewReader(c))
						io.WriteString(c, answer)
					}()
				}
			}()
			samples := oneVU(t, 2, []k6.Request{{Path: "/", URL: "http://" + ln.Addr().String() + "/"}})
			if len(samples) != 2 {
				t.Fatalf("%d samples, want 2", len(samples))
			}
			for _, s := range samples {
				if !s.Failed || s.Err == nil || s.ChecksPassed != 0 {
					t.Errorf("sample: failed %v err %v checks %d; want a failure with an error", s.Failed, s.Err, s.ChecksPassed)
				}
			}
		})
	}
}

// TestHTTPS: https through net/http, HTTP/2 when the server offers it.
func TestHTTPS(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		io.WriteString(w, "secure")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	cfg := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	samples := oneVU(t, 3, []k6.Request{{Path: "/", URL: srv.URL + "/", BodyContains: []string{"secure"}}}, WithTLSConfig(cfg))
	for _, s := range samples {
		if s.Failed || s.ChecksPassed != 2 {
			t.Errorf("sample: status %d failed %v checks %d err %v", s.Status, s.Failed, s.ChecksPassed, s.Err)
		}
	}
	if p, _ := proto.Load().(string); p != "HTTP/2.0" {
		t.Errorf("the server saw %q, want HTTP/2.0", p)
	}
	// Without the server's CA, as k6 without insecureSkipTLSVerify: failed.
	for _, s := range oneVU(t, 1, []k6.Request{{Path: "/", URL: srv.URL + "/"}}) {
		if !s.Failed || s.Err == nil {
			t.Errorf("an untrusted certificate passed: status %d", s.Status)
		}
	}
}

// TestDialerAndMiddleware: the dialer carries every connection; while the
// middleware is active, requests go through its round tripper.
func TestDialerAndMiddleware(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Fault"))
	}))
	defer srv.Close()
	var dials atomic.Int64
	d := &net.Dialer{}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	mw := &tagging{}
	req := []k6.Request{{Path: "/", URL: srv.URL + "/", BodyContains: []string{"on"}}}
	off := oneVU(t, 3, req, WithDialer(dial), WithMiddleware(mw))
	mw.active.Store(true)
	on := oneVU(t, 3, req, WithDialer(dial), WithMiddleware(mw))
	if off[0].ChecksPassed != 1 || on[0].ChecksPassed != 2 {
		t.Errorf("checks passed without/with the middleware: %d, %d; want 1, 2", off[0].ChecksPassed, on[0].ChecksPassed)
	}
	if mw.seen.Load() != 3 {
		t.Errorf("the middleware saw %d requests, want 3", mw.seen.Load())
	}
	if dials.Load() != 2 {
		t.Errorf("%d dials, want 2 (one per VU, each run)", dials.Load())
	}
}

type tagging struct {
	active atomic.Bool
	seen   atomic.Int64
}

func (m *tagging) Active() bool { return m.active.Load() }
func (m *tagging) Wrap(next http.RoundTripper) http.RoundTripper {
	return rtFunc(func(r *http.Request) (*http.Response, error) {
		m.seen.Add(1)
		r.Header.Set("X-Fault", "on")
		return next.RoundTrip(r)
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestInterruptedRequestHasNoSample: a request cut by gracefulStop leaves
// no sample and counts as interrupted.
func TestInterruptedRequestHasNoSample(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &collect{}
	sc := k6opts.Scenario{Executor: k6opts.ConstantVUs, VUs: i64(2), Duration: dur(100 * time.Millisecond), GracefulStop: dur(100 * time.Millisecond)}
	e, err := New(&k6.Load{Scenario: sc, Requests: []k6.Request{{Path: "/", URL: srv.URL + "/"}}}, WithSink(c))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, err := e.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the run took %v; the hard end was at 200ms", took)
	}
	if len(c.samples) != 0 || sum.Interrupted != 2 || sum.Iterations != 0 {
		t.Errorf("%d samples, %d interrupted, %d iterations; want 0, 2, 0", len(c.samples), sum.Interrupted, sum.Iterations)
	}
}

// TestNewRefuses: what cannot be sent is refused before the start.
func TestNewRefuses(t *testing.T) {
	sc := k6opts.Scenario{Executor: k6opts.ConstantVUs, VUs: i64(1), Duration: dur(time.Second)}
	for name, reqs := range map[string][]k6.Request{
		"no requests":       nil,
		"ftp":               {{Path: "/", URL: "ftp://127.0.0.1/"}},
		"header line break": {{Path: "/", URL: "http://127.0.0.1/", Headers: map[string]string{"X": "a\r\nEvil: 1"}}},
		"header name colon": {{Path: "/", URL: "http://127.0.0.1/", Headers: map[string]string{"X:Y": "a"}}},
	} {
		if _, err := New(&k6.Load{Scenario: sc, Requests: reqs}); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	for name, sc := range map[string]k6opts.Scenario{
		"unknown executor": {Executor: "constant-arival-rate"},
		"zero vus":         {Executor: k6opts.ConstantVUs, VUs: i64(0), Duration: dur(time.Second)},
		"no duration":      {Executor: k6opts.ConstantVUs, VUs: i64(1)},
		"maxVUs below pre": {Executor: k6opts.ConstantArrivalRate, Rate: i64(1), Duration: dur(time.Second), PreAllocatedVUs: i64(5), MaxVUs: i64(2)},
		"no stages":        {Executor: k6opts.RampingVUs},
		"negative target":  {Executor: k6opts.RampingArrivalRate, PreAllocatedVUs: i64(1), Stages: stages(time.Second, -1)},
		"iterations < vus": {Executor: k6opts.SharedIterations, VUs: i64(3), Iterations: i64(2)},
		"negative start":   {Executor: k6opts.ConstantVUs, VUs: i64(1), Duration: dur(time.Second), StartTime: dur(-time.Second)},
	} {
		if _, err := New(&k6.Load{Scenario: sc, Requests: []k6.Request{{Path: "/", URL: "http://127.0.0.1/"}}}); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// FuzzReadResponse: no input makes the response parser panic or hang.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nbody", "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n"} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, keep bool) {
		var body []byte
		br := bufio.NewReaderSize(bytes.NewReader(b), 64)
		for range 3 {
			if _, _, err := readResponse(br, false, keep, &body); err != nil {
				return
			}
			if len(body) > maxBody {
				t.Fatalf("kept %d bytes", len(body))
			}
		}
	})
}
