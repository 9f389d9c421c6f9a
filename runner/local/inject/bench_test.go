package inject

// Benchmarks, each side by side in one run: the in-process path (Dial and
// Middleware, no fault) against direct and against toxiproxy, and the
// accuracy of an injected 50 ms delay, in-process and with toxiproxy.
//
//	go test -run '^$' -bench . -benchtime 1x ./runner/local/inject/
//
// Figures are noisy on a shared 2-core machine: compare the ratios and
// offsets, which are measured in the same run.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// trivialTarget is a Go HTTP server answering "ok" on 127.0.0.1.
func trivialTarget(b testing.TB) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startToxiproxy runs toxiproxy (github.com/Shopify/toxiproxy/v2) as a
// library, with no toxic.
func startToxiproxy(b testing.TB, upstream string) *toxiproxy.Proxy {
	b.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	px := toxiproxy.NewProxy(srv, "bench", "127.0.0.1:0", upstream)
	if err := px.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(px.Stop)
	return px
}

// path is one way to reach the target: a client and the address it uses.
type path struct {
	name string
	c    *http.Client
	addr string
}

// benchClient is a keep-alive client for workers goroutines; with f, it is
// the in-process path (faultClient's transport, sized for the workers).
func benchClient(b testing.TB, f *Faults, workers int) *http.Client {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	if f == nil {
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	tr.DialContext = f.Dial((&net.Dialer{Timeout: 5 * time.Second}).DialContext)
	return &http.Client{Transport: f.Middleware().Wrap(tr), Timeout: 10 * time.Second}
}

// throughput sends workers×perWorker GETs, one goroutine per worker, and
// returns requests per second.
func throughput(b testing.TB, p path, workers, perWorker int) float64 {
	b.Helper()
	url := "http://" + p.addr + "/"
	var wg sync.WaitGroup
	var errs sync.Map
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for range perWorker {
				resp, err := p.c.Get(url)
				if err != nil {
					errs.Store(w, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	errs.Range(func(_, v any) bool { b.Fatalf("%s: GET %s: %v", p.name, url, v); return false })
	return float64(workers*perWorker) / took.Seconds()
}

// BenchmarkPassThrough measures req/s of an HTTP/1.1 keep-alive Go client
// (32 goroutines) against a trivial Go server: direct, in-process through
// Dial and Middleware with no fault (the local backend's path), and through
// toxiproxy with no toxic, interleaved over 3 rounds in one run.
func BenchmarkPassThrough(b *testing.B) {
	const workers, perWorker, rounds = 32, 500, 3
	target := trivialTarget(b)
	tp := startToxiproxy(b, target)
	paths := []path{
		{"direct", benchClient(b, nil, workers), target},
		{"inject", benchClient(b, NewFaults(), workers), target},
		{"toxiproxy", benchClient(b, nil, workers), tp.Listen},
	}
	total := map[string]float64{}
	for range b.N {
		for _, p := range paths { // warm up connections
			throughput(b, p, workers, 20)
		}
		for range rounds {
			for _, p := range paths {
				total[p.name] += throughput(b, p, workers, perWorker)
			}
		}
	}
	n := float64(b.N * rounds)
	for _, p := range paths {
		b.ReportMetric(total[p.name]/n, p.name+"_req/s")
	}
	b.ReportMetric(total["inject"]/total["direct"], "inject/direct")
	b.ReportMetric(total["toxiproxy"]/total["direct"], "toxiproxy/direct")
}

// h1RoundTrips times n sequential GETs on one keep-alive connection made by
// dial, the way the load engine's fast path sends plain-http requests: the
// request in one write, the response read in place by the same goroutine.
func h1RoundTrips(b testing.TB, dial DialFunc, addr string, n int) []time.Duration {
	b.Helper()
	nc, err := dial(context.Background(), "tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 16<<10)
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, time.Since(start))
	}
	return out
}

// BenchmarkDelayAccuracy measures what a configured 50 ms response delay
// adds to sequential request/response round trips: p50 and p99 minus
// (50 ms + the direct p50), in-process (a networkDelay through Dial) and
// for toxiproxy's latency toxic on the same target, in one run, with two
// clients: "h1", as the load engine sends plain http (one goroutine), and
// Go's net/http (the engine's path for https and while an httpFault is
// active; its reading goroutine hands each response to the caller, one
// more wake-up after an idle wait).
func BenchmarkDelayAccuracy(b *testing.B) {
	const latency, n = 50 * time.Millisecond, 200
	target := trivialTarget(b)
	plain := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	f := NewFaults()
	mustSet(b, f, "d", delayFault(latency, 0, 0, ""))
	tp := startToxiproxy(b, target)
	if _, err := tp.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":50}}`)); err != nil {
		b.Fatal(err)
	}
	type client struct {
		name string
		run  func(f *Faults, addr string) []time.Duration
	}
	clients := []client{
		{"h1", func(f *Faults, addr string) []time.Duration {
			dial := DialFunc(plain)
			if f != nil {
				dial = f.Dial(plain)
			}
			return h1RoundTrips(b, dial, addr, n)
		}},
		{"nethttp", func(f *Faults, addr string) []time.Duration {
			return latencies(b, benchClient(b, f, 1), "http://"+addr, n)
		}},
	}
	for range b.N {
		for _, c := range clients {
			direct := percentile(c.run(nil, target), 0.5)
			b.ReportMetric(float64(direct)/float64(time.Microsecond), c.name+"_direct_p50_µs")
			for _, p := range []struct {
				name string
				f    *Faults
				addr string
			}{{"inject", f, target}, {"toxiproxy", nil, tp.Listen}} {
				ds := c.run(p.f, p.addr)
				off := func(q float64) float64 {
					return float64(percentile(ds, q)-latency-direct) / float64(time.Millisecond)
				}
				b.ReportMetric(off(0.5), p.name+"_"+c.name+"_p50-configured_ms")
				b.ReportMetric(off(0.99), p.name+"_"+c.name+"_p99-configured_ms")
			}
		}
	}
}
