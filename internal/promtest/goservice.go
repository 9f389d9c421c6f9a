package promtest

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// GoService serves reg's metrics on a free loopback port, as a Go service
// a Prometheus scrapes, and collects garbage every gcEvery so that GC
// pauses are observed in any window; it stops at the end of the test. It
// returns host:port.
func GoService(t testing.TB, reg *prometheus.Registry, gcEvery time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(l)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			runtime.GC()
			time.Sleep(gcEvery)
		}
	}()
	t.Cleanup(func() { cancel(); srv.Close() })
	return l.Addr().String()
}
