package scrape

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapeRealGoCollector scrapes what client_golang's Go and process
// collectors really expose, on loopback.
func TestScrapeRealGoCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	s := &Scraper{URL: srv.URL}
	first, err := s.Scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Make GC pauses and goroutines happen between the scrapes.
	stop := make(chan struct{})
	for range 50 {
		go func() { <-stop }()
	}
	for range 5 {
		runtime.GC()
	}
	second, err := s.Scrape(context.Background())
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	// The first scrape's own goroutines (its connection's server and
	// client sides) may be gone by the second: allow for a few.
	if second.Goroutines < first.Goroutines+45 {
		t.Errorf("goroutines %v then %v: the 50 new ones are missing", first.Goroutines, second.Goroutines)
	}
	if math.IsNaN(second.HeapInUse) || second.HeapInUse <= 0 || math.IsNaN(second.RSS) || second.RSS <= 0 {
		t.Errorf("heap %v rss %v", second.HeapInUse, second.RSS)
	}
	if second.SchedLatency.Count() == 0 {
		t.Error("go_sched_latencies_seconds missing")
	}
	var ph Phase
	ph.Add(first)
	ph.Add(second)
	if n := ph.GCPauses().Count(); n < 5 {
		t.Errorf("%v GC pauses between the scrapes, want >= 5", n)
	}
	if q := ph.GCPauses().Quantile(0.99); math.IsNaN(q) || q <= 0 || q > 1 {
		t.Errorf("GC pause p99 %v s", q)
	}
	if ph.GoroutinesMax != second.Goroutines || ph.Samples != 2 {
		t.Errorf("phase %+v", ph)
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := Histogram{Bounds: []float64{0.001, 0.01, 0.1, math.Inf(1)}, Counts: []float64{50, 90, 100, 100}}
	for _, tc := range []struct{ q, want float64 }{
		{0.5, 0.001}, {0.9, 0.01}, {0.95, 0.055}, {0.25, 0.0005},
	} {
		if got := h.Quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	if !math.IsNaN((Histogram{}).Quantile(0.5)) {
		t.Error("empty histogram has a quantile")
	}
	d := h.Sub(Histogram{Bounds: h.Bounds, Counts: []float64{50, 50, 50, 50}})
	if d.Count() != 50 || math.Abs(d.Quantile(0.5)-0.006625) > 1e-12 {
		t.Errorf("sub: %+v q50 %v", d, d.Quantile(0.5))
	}
}

func TestScrapeErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer srv.Close()
	if _, err := (&Scraper{URL: srv.URL}).Scrape(context.Background()); err == nil {
		t.Error("a 500 scraped fine")
	}
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := (&Scraper{URL: srv.URL}).Scrape(ctx); err == nil {
		t.Error("a closed server scraped fine")
	}
}

// TestDefaultCollectorGCPause: a target with client_golang's default Go
// collector exposes only the go_gc_duration_seconds summary: a phase's
// gcPause p99 is its largest pause (quantile 1), an upper bound, judged —
// not missing.
func TestDefaultCollectorGCPause(t *testing.T) {
	text := func(q1 string) string {
		return "# TYPE go_gc_duration_seconds summary\n" +
			"go_gc_duration_seconds{quantile=\"0\"} 1e-05\ngo_gc_duration_seconds{quantile=\"0.5\"} 0.0002\n" +
			"go_gc_duration_seconds{quantile=\"1\"} " + q1 + "\ngo_gc_duration_seconds_sum 0.1\ngo_gc_duration_seconds_count 100\n" +
			"# TYPE go_goroutines gauge\ngo_goroutines 12\n"
	}
	var p Phase
	for _, q1 := range []string{"0.003", "0.007", "0.004"} {
		s, err := Parse(strings.NewReader(text(q1)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		p.Add(s)
	}
	v, note := p.GCPauseP99()
	if v != 0.007 || !strings.Contains(note, "upper bound") {
		t.Errorf("p99 %v (%s), want the largest quantile 1 seen, 0.007, as an upper bound", v, note)
	}
	var none Phase
	s, _ := Parse(strings.NewReader("# TYPE go_goroutines gauge\ngo_goroutines 12\n"), time.Now())
	none.Add(s)
	if v, _ := none.GCPauseP99(); !math.IsNaN(v) {
		t.Errorf("no GC metrics: p99 %v, want NaN (no data)", v)
	}
}
