// Package scrape reads a Go service's Prometheus /metrics during a run —
// goroutines, heap in use, RSS, GC pauses and scheduler latency — and
// aggregates them per phase. Histograms (GC pauses, scheduler latencies) are
// cumulative in Prometheus, so a phase's quantile comes from the difference
// between its first and last scrape.
package scrape

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one scrape.
type Sample struct {
	Time       time.Time
	Goroutines float64 // go_goroutines
	HeapInUse  float64 // go_memstats_heap_inuse_bytes
	RSS        float64 // process_resident_memory_bytes
	// Cumulative histograms: upper bound (seconds) → count.
	GCPauses     Histogram // go_gc_pauses_seconds (runtime/metrics), else empty
	SchedLatency Histogram // go_sched_latencies_seconds
	// GCPauseMax is the largest pause go_gc_duration_seconds reports
	// (its quantile 1), in seconds.
	GCPauseMax float64
}

// Histogram is a cumulative Prometheus histogram.
type Histogram struct {
	Bounds []float64
	Counts []float64
}

// Sub returns h minus an earlier snapshot of the same histogram.
func (h Histogram) Sub(earlier Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts))}
	for i := range h.Counts {
		out.Counts[i] = h.Counts[i]
		if i < len(earlier.Counts) && len(earlier.Bounds) == len(h.Bounds) {
			out.Counts[i] -= earlier.Counts[i]
		}
	}
	return out
}

// Quantile estimates quantile q (0..1) in seconds by linear interpolation
// inside the bucket, as Prometheus' histogram_quantile does; NaN if empty.
func (h Histogram) Quantile(q float64) float64 {
	if len(h.Counts) == 0 {
		return math.NaN()
	}
	total := h.Counts[len(h.Counts)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	i := sort.Search(len(h.Counts), func(i int) bool { return h.Counts[i] >= rank })
	if i >= len(h.Bounds) {
		i = len(h.Bounds) - 1
	}
	lo, prev := 0.0, 0.0
	if i > 0 {
		lo, prev = h.Bounds[i-1], h.Counts[i-1]
	}
	hi := h.Bounds[i]
	if math.IsInf(hi, 1) {
		return lo
	}
	in := h.Counts[i] - prev
	if in <= 0 {
		return hi
	}
	return lo + (hi-lo)*(rank-prev)/in
}

// Count is the number of observations.
func (h Histogram) Count() float64 {
	if len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// Scraper polls one /metrics URL.
type Scraper struct {
	URL      string
	Interval time.Duration
	Client   *http.Client
}

// Scrape reads the endpoint once.
func (s *Scraper) Scrape(ctx context.Context) (Sample, error) {
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return Sample{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return Sample{}, fmt.Errorf("scraping %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, fmt.Errorf("scraping %s: %s", s.URL, resp.Status)
	}
	return Parse(resp.Body, time.Now())
}

// Run scrapes every Interval until ctx ends, calling fn with each sample
// or error.
func (s *Scraper) Run(ctx context.Context, fn func(Sample, error)) {
	iv := s.Interval
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		fn(s.Scrape(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader, at time.Time) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, fmt.Errorf("parsing metrics: %w", err)
	}
	s := Sample{Time: at, Goroutines: math.NaN(), HeapInUse: math.NaN(), RSS: math.NaN(), GCPauseMax: math.NaN()}
	gauge := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			return math.NaN()
		}
		m := f.Metric[0]
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
		return math.NaN()
	}
	s.Goroutines = gauge("go_goroutines")
	s.HeapInUse = gauge("go_memstats_heap_inuse_bytes")
	s.RSS = gauge("process_resident_memory_bytes")
	s.GCPauses = histogram(fams["go_gc_pauses_seconds"])
	s.SchedLatency = histogram(fams["go_sched_latencies_seconds"])
	if f := fams["go_gc_duration_seconds"]; f != nil && len(f.Metric) > 0 && f.Metric[0].Summary != nil {
		for _, q := range f.Metric[0].Summary.Quantile {
			if q.GetQuantile() == 1 {
				s.GCPauseMax = q.GetValue()
			}
		}
	}
	return s, nil
}

func histogram(f *dto.MetricFamily) Histogram {
	if f == nil || len(f.Metric) == 0 || f.Metric[0].Histogram == nil {
		return Histogram{}
	}
	h := f.Metric[0].Histogram
	var out Histogram
	for _, b := range h.Bucket {
		out.Bounds = append(out.Bounds, b.GetUpperBound())
		out.Counts = append(out.Counts, float64(b.GetCumulativeCount()))
	}
	if n := len(out.Bounds); n == 0 || !math.IsInf(out.Bounds[n-1], 1) {
		out.Bounds = append(out.Bounds, math.Inf(1))
		out.Counts = append(out.Counts, float64(h.GetSampleCount()))
	}
	return out
}

// Phase aggregates the scrapes of one phase.
type Phase struct {
	Samples                       int
	GoroutinesMean, GoroutinesMax float64
	HeapMean, HeapMax             float64
	RSSMax                        float64
	GCPauseMax                    float64
	// GCPauseSeen and SchedSeen count the scrapes that carried GC pause
	// and scheduler latency data.
	GCPauseSeen, SchedSeen int
	// Pods is how many pods the phase's figures come from (Prometheus:
	// the gauges are the worst pod's, the histograms merged); 0 for a
	// direct scrape of one URL.
	Pods        int
	first, last *Sample
	// gc and sched, when set, are the phase's histograms as a whole
	// (from Prometheus), instead of last minus first.
	gc, sched *Histogram
}

// Windowed returns a phase whose figures were computed elsewhere over its
// window (from Prometheus): gauges as given, GC pauses and scheduler
// latency as the histograms observed during the phase (empty when the
// target does not expose them).
func Windowed(samples, pods int, goroutinesMean, goroutinesMax, heapMean, heapMax, rssMax, gcPauseMax float64, gc, sched Histogram) *Phase {
	p := &Phase{Samples: samples, Pods: pods, GoroutinesMean: goroutinesMean, GoroutinesMax: goroutinesMax,
		HeapMean: heapMean, HeapMax: heapMax, RSSMax: rssMax, GCPauseMax: gcPauseMax, gc: &gc, sched: &sched}
	if len(gc.Bounds) > 0 || !math.IsNaN(gcPauseMax) {
		p.GCPauseSeen = samples
	}
	if len(sched.Bounds) > 0 {
		p.SchedSeen = samples
	}
	return p
}

// GCPauseP99 is the phase's 99th percentile GC pause in seconds and where
// it comes from. With runtime/metrics (go_gc_pauses_seconds) it is the
// histogram's p99 over the phase. A target with client_golang's default
// Go collector exposes only the go_gc_duration_seconds summary, whose
// quantiles cover the last pauses of the process, not the phase, and has
// no p99: its largest pause seen during the phase (quantile 1) bounds the
// phase's p99 from above, so a pass is sound and a breach may be
// pessimistic. NaN when neither is exposed.
func (p *Phase) GCPauseP99() (float64, string) {
	if h := p.GCPauses(); h.Count() > 0 {
		return h.Quantile(0.99), "from go_gc_pauses_seconds"
	}
	if !math.IsNaN(p.GCPauseMax) && p.GCPauseSeen > 0 {
		return p.GCPauseMax, "upper bound: the largest pause go_gc_duration_seconds reported during the phase (the default Go collector has no p99; expose runtime/metrics, collectors.WithGoCollectorRuntimeMetrics, for the exact p99)"
	}
	return math.NaN(), "from go_gc_pauses_seconds, else go_gc_duration_seconds: no pause in the phase, or neither exposed"
}

// Add folds one sample in.
func (p *Phase) Add(s Sample) {
	if p.Samples == 0 {
		p.GoroutinesMax, p.HeapMax, p.RSSMax, p.GCPauseMax = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	n := float64(p.Samples)
	p.GoroutinesMean = (p.GoroutinesMean*n + nz(s.Goroutines)) / (n + 1)
	p.HeapMean = (p.HeapMean*n + nz(s.HeapInUse)) / (n + 1)
	p.GoroutinesMax = fmax(p.GoroutinesMax, s.Goroutines)
	p.HeapMax = fmax(p.HeapMax, s.HeapInUse)
	p.RSSMax = fmax(p.RSSMax, s.RSS)
	p.GCPauseMax = fmax(p.GCPauseMax, s.GCPauseMax)
	if len(s.GCPauses.Bounds) > 0 || !math.IsNaN(s.GCPauseMax) {
		p.GCPauseSeen++
	}
	if len(s.SchedLatency.Bounds) > 0 {
		p.SchedSeen++
	}
	p.Samples++
	c := s
	if p.first == nil {
		p.first = &c
	}
	p.last = &c
}

// GCPauses returns the GC pauses observed during the phase.
func (p *Phase) GCPauses() Histogram {
	if p.gc != nil {
		return *p.gc
	}
	if p.first == nil || p.last == nil {
		return Histogram{}
	}
	return p.last.GCPauses.Sub(p.first.GCPauses)
}

// SchedLatency returns the scheduler latencies observed during the phase.
func (p *Phase) SchedLatency() Histogram {
	if p.sched != nil {
		return *p.sched
	}
	if p.first == nil || p.last == nil {
		return Histogram{}
	}
	return p.last.SchedLatency.Sub(p.first.SchedLatency)
}

func nz(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func fmax(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return math.Max(a, b)
}
