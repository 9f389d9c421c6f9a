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

// BenchmarkDelayAccuracy measures what a configured 50 ms response delay
// adds to sequential request/response round trips: p50 and p99 minus
// (50 ms + the direct p50), in-process (a networkDelay through Dial) and
// for toxiproxy's latency toxic on the same target, in one run.
func BenchmarkDelayAccuracy(b *testing.B) {
	const latency, n = 50 * time.Millisecond, 200
	target := trivialTarget(b)
	direct := percentile(latencies(b, benchClient(b, nil, 1), "http://"+target, n), 0.5)

	f := NewFaults()
	mustSet(b, f, "d", delayFault(latency, 0, 0, ""))
	tp := startToxiproxy(b, target)
	if _, err := tp.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":50}}`)); err != nil {
		b.Fatal(err)
	}
	paths := []path{
		{"inject", benchClient(b, f, 1), target},
		{"toxiproxy", benchClient(b, nil, 1), tp.Listen},
	}
	for range b.N {
		for _, p := range paths {
			ds := latencies(b, p.c, "http://"+p.addr, n)
			off := func(q float64) float64 {
				return float64(percentile(ds, q)-latency-direct) / float64(time.Millisecond)
			}
			b.ReportMetric(off(0.5), p.name+"_p50-configured_ms")
			b.ReportMetric(off(0.99), p.name+"_p99-configured_ms")
		}
	}
	b.ReportMetric(float64(direct)/float64(time.Microsecond), "direct_p50_µs")
}
