// leaktarget is a test target with a planted goroutine leak: from
// LEAK_AFTER (a duration since it started) on, every request leaves a
// goroutine blocked for good in plantedLeak. It serves /healthz, /work,
// /metrics (client_golang's default collectors) and /debug/pprof.
// Usage: leaktarget ADDR.
package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var never = make(chan struct{})

// plantedLeak never returns: the stack the leak check must point at.
func plantedLeak() { <-never }

func main() {
	after, err := time.ParseDuration(os.Getenv("LEAK_AFTER"))
	if err != nil {
		after = time.Hour
	}
	leakFrom := time.Now().Add(after)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/work", func(w http.ResponseWriter, _ *http.Request) {
		if time.Now().After(leakFrom) {
			go plantedLeak()
		}
		fmt.Fprintln(w, "done")
	})
	http.Handle("/metrics", promhttp.Handler())
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
