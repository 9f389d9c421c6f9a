package inject

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

// --- helpers ---------------------------------------------------------------

// target is a small HTTP service: "/big?n=N" sends N bytes, "/sink" reads
// the body and answers its length, "/hdr" echoes X-Injected and the body,
// "/missing" is a 404, anything else answers "ok".
func newTarget(t testing.TB) *httptest.Server {
	t.Helper()
	big := bytes.Repeat([]byte("x"), 4<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(big[:n])
	})
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/hdr", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Injected"), b)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func hostPort(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// startProxy serves a proxy to upstream until the test ends.
func startProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1:0", upstream)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(context.Background()) }()
	t.Cleanup(func() {
		p.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return p
}

func newClient(t testing.TB, keepAlive bool) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableKeepAlives: !keepAlive, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type result struct {
	code int
	body string
	hdr  http.Header
	took time.Duration
	err  error
}

func do(c *http.Client, method, url string, body string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return result{err: err}
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return result{code: resp.StatusCode, body: string(b), hdr: resp.Header, took: time.Since(start), err: err}
}

// latencies times n sequential GETs of url.
func latencies(t testing.TB, c *http.Client, url string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		r := do(c, "GET", url, "")
		if r.err != nil || r.code != 200 {
			t.Fatalf("GET %s: %d %v", url, r.code, r.err)
		}
		out = append(out, r.took)
	}
	return out
}

func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func delayFault(latency, jitter time.Duration, corr float64, dir string) schema.Fault {
	return schema.Fault{NetworkDelay: &schema.NetworkDelay{Latency: schema.Duration(latency), Jitter: schema.Duration(jitter), Correlation: corr, Direction: dir}}
}

func mustSet(t testing.TB, p *Proxy, name string, f schema.Fault) {
	t.Helper()
	if err := p.Set(name, f); err != nil {
		t.Fatal(err)
	}
}

// --- pass-through ----------------------------------------------------------

// echoServer echoes every connection until EOF, then half-closes.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln.Addr().String()
}

func TestPassThroughBytesIdentical(t *testing.T) {
	p := startProxy(t, echoServer(t))
	for _, size := range []int{1, 1500, 64 << 10, 8 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			payload := make([]byte, size)
			rand.Read(payload)
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite() // the end of stream must travel too
				}
				werr <- err
			}()
			got, err := io.ReadAll(c) // ends only if the echo's FIN came back through
			if err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("echo through the proxy: got %d bytes, want %d identical bytes", len(got), len(payload))
			}
		})
	}
	if s := p.Stats(); s.BytesFrom < 8<<20 || s.BytesTo < 8<<20 || s.Accepted != 4 {
		t.Errorf("stats = %+v", s)
	}
}

// --- delay -----------------------------------------------------------------

// "Latency" is what a request/response round trip gains: the configured
// latency once for direction "to" (responses, the default) or "from"
// (requests), twice for "both".
func TestDelayAccuracy(t *testing.T) {
	target := newTarget(t)
	n := 200
	if testing.Short() {
		n = 40
	}
	direct := newClient(t, true)
	base := percentile(latencies(t, direct, target.URL, n), 0.5)
	for _, tc := range []struct {
		dir     string
		latency time.Duration
		added   time.Duration
		n       int
	}{
		{"", 50 * time.Millisecond, 50 * time.Millisecond, n},
		{"from", 20 * time.Millisecond, 20 * time.Millisecond, 50},
		{"both", 20 * time.Millisecond, 40 * time.Millisecond, 50},
	} {
		t.Run("direction="+tc.dir, func(t *testing.T) {
			p := startProxy(t, hostPort(target))
			c := newClient(t, true)
			mustSet(t, p, "d", delayFault(tc.latency, 0, 0, tc.dir))
			ds := latencies(t, c, "http://"+p.Addr(), tc.n)
			p50, p99 := percentile(ds, 0.5), percentile(ds, 0.99)
			t.Logf("direct p50 %v; through %v delay (%q): p50 %v, p99 %v", base, tc.latency, tc.dir, p50, p99)
			if off := p50 - base - tc.added; off < -time.Millisecond || off > time.Millisecond {
				t.Errorf("p50 %v - direct %v = %v added, want %v ± 1ms", p50, base, p50-base, tc.added)
			}
		})
	}
}

func TestJitterAndCorrelation(t *testing.T) {
	target := newTarget(t)
	const latency, jitter, n = 20 * time.Millisecond, 10 * time.Millisecond, 100
	lag1 := func(ds []time.Duration) float64 {
		var mean float64
		for _, d := range ds {
			mean += float64(d)
		}
		mean /= float64(len(ds))
		var num, den float64
		for i, d := range ds {
			x := float64(d) - mean
			den += x * x
			if i > 0 {
				num += x * (float64(ds[i-1]) - mean)
			}
		}
		return num / den
	}
	// End to end, a busy machine adds its own noise to every round trip, so
	// the correlation is compared between the two settings, not against
	// the configured value (TestDelaySamplerCorrelation checks that on the
	// injector's own draws).
	acs := map[float64]float64{}
	for _, tc := range []struct {
		corr           float64
		minSpreadRatio float64 // (max-min)/(2·jitter)
	}{
		{0, 0.7},
		{90, 0},
	} {
		t.Run(fmt.Sprint("correlation=", tc.corr), func(t *testing.T) {
			p := startProxy(t, hostPort(target))
			c := newClient(t, true)
			mustSet(t, p, "j", delayFault(latency, jitter, tc.corr, ""))
			ds := latencies(t, c, "http://"+p.Addr(), n)
			lo, hi := slices.Min(ds), slices.Max(ds)
			// Clip to the configured range before the autocorrelation: a
			// request stalled by a busy machine is not the injector's draw.
			clipped := make([]time.Duration, len(ds))
			for i, d := range ds {
				clipped[i] = min(max(d, latency-jitter), latency+jitter)
			}
			acs[tc.corr] = lag1(clipped)
			t.Logf("min %v max %v lag-1 autocorrelation %.2f", lo, hi, acs[tc.corr])
			// Never early; late only by overhead (the top 10% may be
			// scheduling noise on a loaded machine, under -race).
			if p90 := percentile(ds, 0.9); lo < latency-jitter || p90 > latency+jitter+3*time.Millisecond {
				t.Errorf("delays span [%v, p90 %v], want within %v ± %v (+3ms overhead)", lo, p90, latency, jitter)
			}
			if spread := float64(hi-lo) / float64(2*jitter); spread < tc.minSpreadRatio {
				t.Errorf("delays span only %.0f%% of ±jitter", 100*spread)
			}
		})
	}
	if d := acs[90] - acs[0]; d < 0.2 {
		t.Errorf("correlation 90 gives a lag-1 autocorrelation of %.2f, correlation 0 %.2f: want at least 0.2 more", acs[90], acs[0])
	}
}

// TestDelaySamplerCorrelation checks the injector's own delay draws (no
// network, no timing noise): netem's u = c·u_prev + (1-c)·uniform is an
// AR(1) process whose lag-1 autocorrelation is c.
func TestDelaySamplerCorrelation(t *testing.T) {
	for _, tc := range []struct{ corr, min, max float64 }{
		{0, -0.06, 0.06},
		{50, 0.44, 0.56},
		{90, 0.86, 0.94},
	} {
		f := newNetFault("j")
		f.delay = &schema.NetworkDelay{Latency: schema.Duration(20 * time.Millisecond), Jitter: schema.Duration(10 * time.Millisecond), Correlation: tc.corr}
		var xs []float64
		lo, hi := time.Hour, time.Duration(0)
		for range 20000 {
			d := f.delaySample()
			lo, hi = min(lo, d), max(hi, d)
			xs = append(xs, float64(d))
		}
		var mean, num, den float64
		for _, x := range xs {
			mean += x
		}
		mean /= float64(len(xs))
		for i, x := range xs {
			den += (x - mean) * (x - mean)
			if i > 0 {
				num += (x - mean) * (xs[i-1] - mean)
			}
		}
		ac := num / den
		if ac < tc.min || ac > tc.max {
			t.Errorf("correlation %.0f: lag-1 autocorrelation %.3f, want in [%.2f, %.2f]", tc.corr, ac, tc.min, tc.max)
		}
		if lo < 10*time.Millisecond || hi > 30*time.Millisecond {
			t.Errorf("correlation %.0f: draws span [%v, %v], want within 20ms ± 10ms", tc.corr, lo, hi)
		}
	}
}

// --- loss ------------------------------------------------------------------

// With loss L% on responses, each single-packet response is stalled by a
// retransmission timeout (≥ 200 ms) with probability ≈ L; nothing fails.
func TestLossStallsAboutLossPercent(t *testing.T) {
	target := newTarget(t)
	const n, workers = 160, 16
	for _, loss := range []float64{0, 25} {
		t.Run(fmt.Sprint("loss=", loss), func(t *testing.T) {
			p := startProxy(t, hostPort(target))
			mustSet(t, p, "l", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: loss}})
			c := newClient(t, false) // a fresh connection per request
			var mu sync.Mutex
			stalled, failed := 0, 0
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for range n / workers {
						r := do(c, "GET", "http://"+p.Addr()+"/w"+strconv.Itoa(w), "")
						mu.Lock()
						// Six losses in a row hold the data until the fault
						// ends (0.25^6 per chunk): the client's timeout is a
						// stall too, as with real TCP. A reset or a bad
						// answer is a failure.
						var ne net.Error
						switch {
						case r.err != nil && errors.As(r.err, &ne) && ne.Timeout():
							stalled++
						case r.err != nil || r.code != 200:
							failed++
							t.Logf("request failed: %v (status %d)", r.err, r.code)
						case r.took >= RetransmitTimeout*3/4:
							stalled++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			frac := float64(stalled) / n
			t.Logf("loss %v%%: %d/%d requests stalled (%.1f%%), %d failed", loss, stalled, n, 100*frac, failed)
			if failed > 0 {
				t.Errorf("%d requests failed: loss must stall, not break", failed)
			}
			// Binomial(160, .25): σ ≈ 3.4%; allow ±12%.
			if math.Abs(frac-loss/100) > 0.12 {
				t.Errorf("stalled fraction %.2f, want %.2f ± 0.12", frac, loss/100)
			}
		})
	}
}

func TestTotalLossHoldsUntilClear(t *testing.T) {
	target := newTarget(t)
	p := startProxy(t, hostPort(target))
	c := newClient(t, true)
	latencies(t, c, "http://"+p.Addr(), 1) // connection up before the fault
	mustSet(t, p, "l", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100}})
	done := make(chan result, 1)
	go func() { done <- do(c, "GET", "http://"+p.Addr(), "") }()
	select {
	case r := <-done:
		t.Fatalf("request went through 100%% loss: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	p.Clear("l")
	select {
	case r := <-done:
		if r.err != nil || r.body != "ok" {
			t.Fatalf("after Clear: %+v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("held response not released by Clear")
	}
}

// --- bandwidth -------------------------------------------------------------

func TestBandwidthCapsThroughput(t *testing.T) {
	target := newTarget(t)
	const size = 600_000
	for _, tc := range []struct {
		dir, method, path string
	}{
		{"", "GET", "/big?n=" + strconv.Itoa(size)},          // responses ("to")
		{"from", "POST", "/sink"},                            // requests
		{"both", "GET", "/big?n=" + strconv.Itoa(size)},      // both ways
		{"from", "GET", "/big?n=" + strconv.Itoa(size) + ""}, // not the limited way: full speed
	} {
		t.Run(tc.dir+" "+tc.method, func(t *testing.T) {
			p := startProxy(t, hostPort(target))
			c := newClient(t, true)
			mustSet(t, p, "bw", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{
				Rate: "400kbps", Buffer: 10_000, Limit: 64 << 10, Direction: tc.dir}})
			body := ""
			if tc.method == "POST" {
				body = strings.Repeat("y", size)
			}
			r := do(c, tc.method, "http://"+p.Addr()+tc.path, body)
			if r.err != nil || r.code != 200 {
				t.Fatalf("%+v", r.err)
			}
			got := float64(size) / r.took.Seconds()
			t.Logf("%d bytes in %v: %.0f B/s", size, r.took, got)
			if tc.dir == "from" && tc.method == "GET" {
				if got < 2_000_000 {
					t.Errorf("download throttled by a limit on requests: %.0f B/s", got)
				}
				return
			}
			// 400kbps is 400,000 bytes/s (tc units); the burst is 10 kB.
			if want := 400_000.0; got < want*0.8 || got > want*1.2 {
				t.Errorf("throughput %.0f B/s, want 400000 ± 20%%", got)
			}
		})
	}
}

// --- partition -------------------------------------------------------------

func TestPartition(t *testing.T) {
	target := newTarget(t)
	p := startProxy(t, hostPort(target))
	c := newClient(t, true)
	latencies(t, c, "http://"+p.Addr(), 1) // an existing keep-alive connection
	mustSet(t, p, "cut", schema.Fault{NetworkPartition: &schema.NetworkPartition{}})

	// A new connection is reset at once.
	fresh := newClient(t, false)
	start := time.Now()
	if r := do(fresh, "GET", "http://"+p.Addr(), ""); r.err == nil {
		t.Fatalf("new connection during a partition answered %d", r.code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v, want immediate", d)
	}
	// The existing connection hangs...
	done := make(chan result, 1)
	go func() { done <- do(c, "GET", "http://"+p.Addr(), "") }()
	select {
	case r := <-done:
		t.Fatalf("request on an existing connection crossed the partition: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	// ... and flows again when the partition heals.
	p.Clear("cut")
	select {
	case r := <-done:
		if r.err != nil || r.body != "ok" {
			t.Fatalf("after healing: %+v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("existing connection did not recover")
	}
	if r := do(fresh, "GET", "http://"+p.Addr(), ""); r.err != nil || r.body != "ok" {
		t.Fatalf("new connection after healing: %+v", r)
	}
	if s := p.Stats(); s.Refused < 1 {
		t.Errorf("Refused = %d", s.Refused)
	}
}

// --- HTTP faults -----------------------------------------------------------

func ptr[T any](v T) *T { return &v }

func TestHTTPFaults(t *testing.T) {
	target := newTarget(t)
	type probe struct {
		method, path, body string
		wantErr            bool
		wantCode           int
		wantBody           string
		wantHeader         [2]string
		minTook, maxTook   time.Duration
	}
	ok := func(method, path string) probe {
		return probe{method: method, path: path, wantCode: 200, wantBody: "ok", maxTook: 80 * time.Millisecond}
	}
	for _, tc := range []struct {
		name   string
		fault  schema.HTTPFault
		probes []probe
	}{
		{"request abort, path and method", schema.HTTPFault{Target: "request", Path: "/api/*", Method: "GET", Abort: true}, []probe{
			{method: "GET", path: "/api/v1/users", wantErr: true},
			ok("POST", "/api/v1/users"),
			ok("GET", "/other"),
		}},
		{"request delay", schema.HTTPFault{Target: "request", Path: "/slow", Delay: schema.Duration(150 * time.Millisecond)}, []probe{
			{method: "GET", path: "/slow", wantCode: 200, wantBody: "ok", minTook: 150 * time.Millisecond, maxTook: 300 * time.Millisecond},
			ok("GET", "/slower"),
		}},
		{"request replace", schema.HTTPFault{Target: "request", Path: "/hdr", Replace: &schema.HTTPReplace{
			Headers: map[string]string{"X-Injected": "yes"}, Body: ptr("new")}}, []probe{
			{method: "POST", path: "/hdr", body: "old", wantCode: 200, wantBody: "yes|new"},
		}},
		{"response replace", schema.HTTPFault{Target: "response", Path: "/api/*", Replace: &schema.HTTPReplace{
			Code: 503, Body: ptr("nope"), Headers: map[string]string{"X-Fault": "1"}}}, []probe{
			{method: "GET", path: "/api/x", wantCode: 503, wantBody: "nope", wantHeader: [2]string{"X-Fault", "1"}},
			ok("GET", "/apix"),
		}},
		{"response abort", schema.HTTPFault{Target: "response", Method: "DELETE", Abort: true}, []probe{
			{method: "DELETE", path: "/x", wantErr: true},
			ok("GET", "/x"),
		}},
		{"response delay", schema.HTTPFault{Target: "response", Path: "/x", Delay: schema.Duration(100 * time.Millisecond)}, []probe{
			{method: "GET", path: "/x", wantCode: 200, wantBody: "ok", minTook: 100 * time.Millisecond, maxTook: 250 * time.Millisecond},
			ok("GET", "/y"),
		}},
		{"response code filter", schema.HTTPFault{Target: "response", Code: 404, Replace: &schema.HTTPReplace{Code: 500}}, []probe{
			{method: "GET", path: "/missing", wantCode: 500, wantBody: "404 page not found\n"},
			ok("GET", "/found"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, hostPort(target))
			c := newClient(t, true)
			base := "http://" + p.Addr()
			latencies(t, c, base, 2) // keep-alive connections exist before the fault: they must switch
			mustSet(t, p, "h", schema.Fault{HTTPFault: &tc.fault})
			for _, pr := range tc.probes {
				r := do(c, pr.method, base+pr.path, pr.body)
				what := pr.method + " " + pr.path
				if pr.wantErr {
					if r.err == nil {
						t.Errorf("%s: got %d %q, want the connection closed without a response", what, r.code, r.body)
					}
					continue
				}
				if r.err != nil {
					t.Errorf("%s: %v", what, r.err)
					continue
				}
				if r.code != pr.wantCode || r.body != pr.wantBody {
					t.Errorf("%s: got %d %q, want %d %q", what, r.code, r.body, pr.wantCode, pr.wantBody)
				}
				if h := pr.wantHeader; h[0] != "" && r.hdr.Get(h[0]) != h[1] {
					t.Errorf("%s: header %s = %q, want %q", what, h[0], r.hdr.Get(h[0]), h[1])
				}
				if r.took < pr.minTook || (pr.maxTook > 0 && r.took > pr.maxTook) {
					t.Errorf("%s: took %v, want [%v, %v]", what, r.took, pr.minTook, pr.maxTook)
				}
			}
			if p.Stats().HTTP == 0 {
				t.Error("no request went through the HTTP path")
			}
			// After Clear every probe is clean, and connections go back to
			// the raw path.
			p.Clear("h")
			for _, pr := range tc.probes {
				for range 2 {
					r := do(c, pr.method, base+pr.path, pr.body)
					if r.err != nil || r.took > 80*time.Millisecond || r.hdr.Get("X-Fault") != "" {
						t.Errorf("after Clear %s %s: %+v", pr.method, pr.path, r)
					}
				}
			}
			httpBefore := p.Stats().HTTP
			latencies(t, c, base, 5)
			if d := p.Stats().HTTP - httpBefore; d != 0 {
				t.Errorf("%d requests still on the HTTP path after Clear", d)
			}
		})
	}
}

// HTTP and network faults compose: a delay on responses still applies to
// requests on the HTTP path.
func TestHTTPFaultWithNetworkDelay(t *testing.T) {
	target := newTarget(t)
	p := startProxy(t, hostPort(target))
	c := newClient(t, true)
	mustSet(t, p, "h", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "response", Path: "/api", Replace: &schema.HTTPReplace{Code: 418}}})
	mustSet(t, p, "d", delayFault(30*time.Millisecond, 0, 0, ""))
	r := do(c, "GET", "http://"+p.Addr()+"/api", "")
	if r.err != nil || r.code != 418 || r.took < 30*time.Millisecond {
		t.Fatalf("got %d in %v (%v), want 418 after ≥ 30ms", r.code, r.took, r.err)
	}
	if got := p.Active(); !slices.Equal(got, []string{"d", "h"}) {
		t.Errorf("Active() = %v", got)
	}
	p.ClearAll()
	if got := p.Active(); len(got) != 0 {
		t.Errorf("Active() after ClearAll = %v", got)
	}
}

// --- recovery --------------------------------------------------------------

func TestClearRestoresImmediately(t *testing.T) {
	target := newTarget(t)
	for _, tc := range []struct {
		name  string
		fault schema.Fault
	}{
		{"delay", delayFault(400*time.Millisecond, 0, 0, "both")},
		{"bandwidth", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{Rate: "1kbps", Buffer: 1, Limit: 1}}},
		{"http delay", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Delay: schema.Duration(400 * time.Millisecond)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, hostPort(target))
			c := newClient(t, true)
			latencies(t, c, "http://"+p.Addr(), 1)
			mustSet(t, p, "f", tc.fault)
			// A request caught by the fault is released when it is cleared...
			done := make(chan result, 1)
			go func() { done <- do(c, "GET", "http://"+p.Addr()+"/big?n=2000", "") }()
			time.Sleep(50 * time.Millisecond)
			cleared := time.Now()
			p.Clear("f")
			r := <-done
			if r.err != nil || len(r.body) != 2000 {
				t.Fatalf("in-flight request: %+v", r.err)
			}
			if d := time.Since(cleared); d > 50*time.Millisecond {
				t.Errorf("in-flight request finished %v after Clear, want at once", d)
			}
			// ... and the next ones are clean (the fault would add ≥ 400 ms
			// or ≥ 100 ms each; a stray slow one is machine noise).
			ds := latencies(t, c, "http://"+p.Addr(), 20)
			if p50, hi := percentile(ds, 0.5), slices.Max(ds); p50 > 5*time.Millisecond || hi > 90*time.Millisecond {
				t.Errorf("requests after Clear: p50 %v, max %v; want clean", p50, hi)
			}
		})
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
		defer target.Close()
		p, err := New("", hostPort(target))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- p.Serve(ctx) }()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		// Connections in every state: fast path, delay line, held by a
		// partition, HTTP path.
		latencies(t, c, "http://"+p.Addr(), 3)
		mustSet(t, p, "d", delayFault(5*time.Millisecond, 0, 0, "both"))
		latencies(t, c, "http://"+p.Addr(), 3)
		mustSet(t, p, "h", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "response", Path: "/nothing"}})
		latencies(t, c, "http://"+p.Addr(), 3)
		p.ClearAll()
		mustSet(t, p, "cut", schema.Fault{NetworkPartition: &schema.NetworkPartition{Direction: "from"}})
		go do(c, "GET", "http://"+p.Addr(), "") // stays held
		time.Sleep(50 * time.Millisecond)
		addr := p.Addr()
		cancel() // Serve's context ends the proxy
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		p.Close()
		// The port is free again.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port not released: %v", err)
		}
		ln.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestCloseWithoutServe(t *testing.T) {
	p, err := New("", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Addr()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := p.Serve(context.Background()); err == nil {
		t.Error("Serve after Close: want an error")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	ln.Close()
}

// --- validation ------------------------------------------------------------

func TestSetRejects(t *testing.T) {
	p, err := New("", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	peer := &schema.NetworkPeer{Hosts: []string{"db"}}
	for _, tc := range []struct {
		name        string
		fault       schema.Fault
		unsupported bool
		want        string
	}{
		{"cpu", schema.Fault{CPUStress: &schema.CPUStress{Workers: 1}}, true, "cpuStress"},
		{"peer", schema.Fault{NetworkDelay: &schema.NetworkDelay{Latency: schema.Duration(time.Millisecond), Peer: peer}}, true, "peer"},
		{"none", schema.Fault{}, false, "no kind"},
		{"rate", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{Rate: "fast", Limit: 1, Buffer: 1}}, false, "rate"},
		{"direction", delayFault(time.Millisecond, 0, 0, "sideways"), false, "direction"},
		{"loss", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 101}}, false, "loss"},
		{"code on request", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Code: 404}}, false, "code"},
		{"target", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "both"}}, false, "target"},
		{"", delayFault(time.Millisecond, 0, 0, ""), false, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Set(tc.name, tc.fault)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("Set = %v, want an error mentioning %q (unsupported: %v)", err, tc.want, tc.unsupported)
			}
		})
	}
	if len(p.Active()) != 0 {
		t.Errorf("a rejected fault became active: %v", p.Active())
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits float64
		bad  bool
	}{
		{"1mbps", 8e6, false},
		{"500kbps", 4e6, false},
		{"10gbps", 8e10, false},
		{"1bps", 8, false},
		{"0kbps", 0, true},
		{"1mbit", 0, true},
		{"kbps", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad || got != tc.bits {
			t.Errorf("ParseRate(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.bits, tc.bad)
		}
	}
}
