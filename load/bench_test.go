package load

// Benchmarks of the engine's parts, side by side in one run:
//
//	go test -run '^$' -bench . -benchtime 3x ./load

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/k6opts"
)

// loopbackTarget is a Go HTTP server answering "ok" on 127.0.0.1.
func loopbackTarget(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkFastPathVsNetHTTP: the engine's own HTTP/1.1 path (a prepared
// request written at once, the response parsed in place, one connection
// per VU) against Go's net/http client doing the same closed loop with the
// same number of workers, for 2s each, alternating: requests per second,
// p50, and the ratios. This is why the plain-http path is written by hand.
func BenchmarkFastPathVsNetHTTP(b *testing.B) {
	u := loopbackTarget(b)
	const vus, d = 8, 2 * time.Second
	var engRPS, stdRPS, engP50, stdP50 float64
	for i := 0; i < b.N; i++ {
		var mu sync.Mutex
		var ds []time.Duration
		sc := k6opts.Scenario{Executor: k6opts.ConstantVUs, VUs: i64(vus), Duration: dur(d), GracefulStop: dur(time.Second)}
		e, err := New(&k6.Load{Scenario: sc, Requests: []k6.Request{{Path: "/", URL: u + "/", Status: 200}}}, WithSink(SinkFunc(func(_ int, s *Sample) {
			mu.Lock()
			ds = append(ds, s.End.Sub(s.Start))
			mu.Unlock()
		})))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Run(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		engRPS += float64(len(ds)) / d.Seconds()
		engP50 += p50ms(ds)

		ds = ds[:0]
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range vus {
			wg.Go(func() {
				c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
				defer c.CloseIdleConnections()
				for time.Now().Before(end) {
					t0 := time.Now()
					resp, err := c.Get(u + "/")
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					took := time.Since(t0)
					mu.Lock()
					ds = append(ds, took)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		stdRPS += float64(len(ds)) / d.Seconds()
		stdP50 += p50ms(ds)
	}
	n := float64(b.N)
	b.ReportMetric(engRPS/n, "engine-req/s")
	b.ReportMetric(stdRPS/n, "nethttp-req/s")
	b.ReportMetric(engRPS/stdRPS, "rps-ratio")
	b.ReportMetric(engP50/n, "engine-p50-ms")
	b.ReportMetric(stdP50/n, "nethttp-p50-ms")
}

func p50ms(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

// BenchmarkPacer: the cost of computing one iteration's start time (a
// million per op, so that the figure holds at -benchtime 3x).
func BenchmarkPacer(b *testing.B) {
	lin := LinearPacer{StartRate: 10, TimeUnit: time.Second, Stages: stages(time.Minute, 2000, 10*time.Minute, 2000, time.Minute, 0)}
	con := ConstantPacer{Rate: 2000, TimeUnit: time.Second, Duration: time.Hour}
	for _, p := range []struct {
		name string
		p    Pacer
	}{{"constant", con}, {"linear-3-stages", lin}} {
		b.Run(p.name, func(b *testing.B) {
			const n = 1000000
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for j := int64(0); j < n; j++ {
					p.p.At(j)
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*n), "ns/At")
		})
	}
}
