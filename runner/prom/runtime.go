package prom

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"

	"faultline.dev/faultline/runner/scrape"
)

// Series the runtime SLIs are read from: both client_golang's runtime/
// metrics names and its default Go collector's.
const (
	Goroutines = "go_goroutines"
	HeapInUse  = "go_memstats_heap_inuse_bytes"
	RSS        = "process_resident_memory_bytes"
	// GCPauses is the runtime/metrics pause histogram (classic buckets);
	// older client_golang versions call it go_gc_pauses_seconds_total.
	GCPauses     = "go_gc_pauses_seconds"
	GCPausesOld  = "go_gc_pauses_seconds_total"
	SchedLatency = "go_sched_latencies_seconds"
	// GCDuration is the default collector's pause summary.
	GCDuration = "go_gc_duration_seconds"
)

// Runtime reads the Go runtime SLIs of every pod of the target.
type Runtime struct {
	C *Client
	// Matchers select the target's series, without braces:
	// `namespace="shop",pod=~"checkout-.*"`.
	Matchers string
	// PodLabel names the pod of a series (default "pod"; "instance" when a
	// series has no such label).
	PodLabel string
}

func (r *Runtime) sel(name, extra string) string {
	m := r.Matchers
	if extra != "" {
		if m != "" {
			m += ","
		}
		m += extra
	}
	if name == "" {
		return "{" + m + "}"
	}
	return name + "{" + m + "}"
}

func (r *Runtime) pod(l map[string]string) string {
	pl := r.PodLabel
	if pl == "" {
		pl = "pod"
	}
	if v := l[pl]; v != "" {
		return l["namespace"] + "/" + v
	}
	return l["instance"]
}

// Phases reads [from, to] once and returns, per named window, the phase's
// figures: for goroutines, heap and RSS the worst pod (its mean and max),
// for GC pauses and scheduler latency the pods' histograms merged. A
// window without a single goroutine sample has Samples 0 (no data).
func (r *Runtime) Phases(ctx context.Context, from, to time.Time, windows map[string]Window) (map[string]*scrape.Phase, error) {
	get := func(sel string) ([]Series, error) { return r.C.Raw(ctx, sel, from, to) }
	gor, err := get(r.sel(Goroutines, ""))
	if err != nil {
		return nil, err
	}
	heap, err := get(r.sel(HeapInUse, ""))
	if err != nil {
		return nil, err
	}
	rss, err := get(r.sel(RSS, ""))
	if err != nil {
		return nil, err
	}
	gc, err := get(r.sel("", `__name__=~"`+GCPauses+`_bucket|`+GCPausesOld+`_bucket"`))
	if err != nil {
		return nil, err
	}
	sched, err := get(r.sel(SchedLatency+"_bucket", ""))
	if err != nil {
		return nil, err
	}
	// Its largest pause: quantile "1", or "1.0" as Prometheus 2.42 stores
	// it when it scraped the protobuf format (measured).
	gcMax, err := get(r.sel(GCDuration, `quantile=~"1|1\\.0"`))
	if err != nil {
		return nil, err
	}
	out := map[string]*scrape.Phase{}
	for name, w := range windows {
		gm, gx, n, pods := r.worst(gor, w)
		hm, hx, _, _ := r.worst(heap, w)
		_, rx, _, _ := r.worst(rss, w)
		_, px, _, _ := r.worst(gcMax, w)
		out[name] = scrape.Windowed(n, pods, gm, gx, hm, hx, rx, px, classic(gc, w), classic(sched, w))
	}
	return out, nil
}

// worst is a gauge's worst pod in w: the largest per-pod mean and max, the
// most samples a pod had, and how many pods had any.
func (r *Runtime) worst(ss []Series, w Window) (mean, maxV float64, n, pods int) {
	mean, maxV = math.NaN(), math.NaN()
	seen := map[string]bool{}
	for _, s := range ss {
		m, x, k := gaugeStats(s.Floats, w)
		if k == 0 {
			continue
		}
		seen[r.pod(s.Labels)] = true
		mean, maxV, n = fmax(mean, m), fmax(maxV, x), max(n, k)
	}
	return mean, maxV, n, len(seen)
}

// classic merges a classic histogram's _bucket series (every pod, every
// le) over w into one cumulative scrape.Histogram; empty when none.
func classic(ss []Series, w Window) scrape.Histogram {
	byLE := map[float64]float64{}
	for _, s := range ss {
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil {
			continue
		}
		byLE[le] += Delta(s.Floats, w)
	}
	var h scrape.Histogram
	for le := range byLE {
		h.Bounds = append(h.Bounds, le)
	}
	slices.Sort(h.Bounds)
	for _, le := range h.Bounds {
		h.Counts = append(h.Counts, byLE[le])
	}
	return h
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

// RuntimePoint is the worst pod's goroutines, heap in use and RSS in one
// second (the largest sample of any pod; NaN when none).
type RuntimePoint struct {
	Second                     int
	Goroutines, HeapInUse, RSS float64
}

// PerSecond reads the gauges of [start, start+secs s) and returns one
// point per second that has any sample: the worst pod's, for a plot.
func (r *Runtime) PerSecond(ctx context.Context, start time.Time, secs int) ([]RuntimePoint, error) {
	end := start.Add(time.Duration(secs) * time.Second)
	var got [3][]Series
	for i, name := range []string{Goroutines, HeapInUse, RSS} {
		ss, err := r.C.Raw(ctx, r.sel(name, ""), start, end)
		if err != nil {
			return nil, err
		}
		got[i] = ss
	}
	var out []RuntimePoint
	for sec := range secs {
		w := Window{From: start.Add(time.Duration(sec) * time.Second).UnixMilli(), To: start.Add(time.Duration(sec+1) * time.Second).UnixMilli()}
		p := RuntimePoint{Second: sec}
		any := false
		for i, v := range []*float64{&p.Goroutines, &p.HeapInUse, &p.RSS} {
			_, x, n, _ := r.worst(got[i], w)
			*v = x
			any = any || n > 0
		}
		if any {
			out = append(out, p)
		}
	}
	return out, nil
}
