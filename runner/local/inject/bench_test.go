package inject

// Benchmarks: the injector's pass-through against direct (and toxiproxy),
// side by side in one run, and the accuracy of an injected delay.
//
//	go test -run '^$' -bench . -benchtime 1x ./runner/local/inject/
//
// BenchmarkWrk needs wrk on PATH (apt-get install -y wrk); it is skipped
// otherwise. Figures are noisy on a shared 2-core machine: compare the
// ratios, which are measured in the same run.

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
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

// startToxiproxy runs toxiproxy as a library, with no toxic.
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

// throughput sends workers×perWorker GETs over keep-alive connections, one
// goroutine per worker, and returns requests per second.
func throughput(b testing.TB, addr string, workers, perWorker int) float64 {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + addr + "/"
	var wg sync.WaitGroup
	var errs sync.Map
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for range perWorker {
				resp, err := c.Get(url)
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
	errs.Range(func(_, v any) bool { b.Fatalf("GET %s: %v", url, v); return false })
	return float64(workers*perWorker) / took.Seconds()
}

// BenchmarkPassThrough measures req/s of an HTTP/1.1 keep-alive Go client
// (32 goroutines) against a trivial Go server: direct, through this
// injector with no fault, and through toxiproxy with no toxic, interleaved
// over 3 rounds in one run.
func BenchmarkPassThrough(b *testing.B) {
	target := trivialTarget(b)
	p := startProxy(b, target)
	tp := startToxiproxy(b, target)
	const workers, perWorker, rounds = 32, 500, 3
	paths := []struct{ name, addr string }{{"direct", target}, {"inject", p.Addr()}, {"toxiproxy", tp.Listen}}
	total := map[string]float64{}
	for range b.N {
		for _, pt := range paths { // warm up connections
			throughput(b, pt.addr, workers, 20)
		}
		for range rounds {
			for _, pt := range paths {
				total[pt.name] += throughput(b, pt.addr, workers, perWorker)
			}
		}
	}
	n := float64(b.N * rounds)
	for _, pt := range paths {
		b.ReportMetric(total[pt.name]/n, pt.name+"_req/s")
	}
	b.ReportMetric(total["inject"]/total["direct"], "inject/direct")
	b.ReportMetric(total["toxiproxy"]/total["direct"], "toxiproxy/direct")
}

// BenchmarkDelayAccuracy measures what a configured 50 ms response delay
// adds to sequential request/response round trips: p50 and p99 minus
// (50 ms + the direct p50), for this injector and for toxiproxy's latency
// toxic on the same target.
func BenchmarkDelayAccuracy(b *testing.B) {
	const latency, n = 50 * time.Millisecond, 200
	target := trivialTarget(b)
	c := newClient(b, true)
	direct := percentile(latencies(b, c, "http://"+target, n), 0.5)

	p := startProxy(b, target)
	mustSet(b, p, "d", delayFault(latency, 0, 0, ""))
	tp := startToxiproxy(b, target)
	if _, err := tp.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":50}}`)); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		for _, pt := range []struct{ name, addr string }{{"inject", p.Addr()}, {"toxiproxy", tp.Listen}} {
			ds := latencies(b, c, "http://"+pt.addr, n)
			off := func(q float64) float64 {
				return float64(percentile(ds, q)-latency-direct) / float64(time.Millisecond)
			}
			b.ReportMetric(off(0.5), pt.name+"_p50-configured_ms")
			b.ReportMetric(off(0.99), pt.name+"_p99-configured_ms")
		}
	}
	b.ReportMetric(float64(direct)/float64(time.Microsecond), "direct_p50_µs")
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// BenchmarkWrk runs wrk (2 threads, 32 connections, 5 s) against the
// trivial target directly, through this injector and through toxiproxy.
func BenchmarkWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk not installed")
	}
	target := trivialTarget(b)
	p := startProxy(b, target)
	tp := startToxiproxy(b, target)
	rate := map[string]float64{}
	for range b.N {
		for _, pt := range []struct{ name, addr string }{{"direct", target}, {"inject", p.Addr()}, {"toxiproxy", tp.Listen}} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, wrk, "-t2", "-c32", "-d5s", "http://"+pt.addr+"/").CombinedOutput()
			cancel()
			if err != nil {
				b.Fatalf("wrk %s: %v\n%s", pt.name, err, out)
			}
			m := wrkRate.FindSubmatch(out)
			if m == nil {
				b.Fatalf("wrk %s: no Requests/sec in\n%s", pt.name, out)
			}
			r, _ := strconv.ParseFloat(string(m[1]), 64)
			rate[pt.name] += r
			b.Logf("wrk -t2 -c32 -d5s, %s: %.0f req/s", pt.name, r)
		}
	}
	for _, k := range []string{"direct", "inject", "toxiproxy"} {
		b.ReportMetric(rate[k]/float64(b.N), "wrk_"+k+"_req/s")
	}
	b.ReportMetric(rate["inject"]/rate["direct"], "inject/direct")
	b.ReportMetric(rate["toxiproxy"]/rate["direct"], "toxiproxy/direct")
}
