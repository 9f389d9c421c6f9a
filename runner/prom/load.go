package prom

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The load series: k6's experimental-prometheus-rw output with
// K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true names a Counter
// k6_<metric>_total, a Trend of times k6_<metric>_seconds (a native
// histogram in seconds), a Rate k6_<metric>_rate (a gauge of the ratio
// since the start: neither windowable nor mergeable, so not read). Every
// sample's tags are labels; each series is cumulative since the runner
// started and is pushed, when it changed, with the time of its latest
// sample. The k6-operator tags each runner instance_id=<n>.
const (
	HTTPReqs        = "k6_http_reqs_total"
	HTTPReqDuration = "k6_http_req_duration_seconds"
	HTTPReqFailed   = "k6_http_req_failed_rate"

	// Labels faultline's compiled load sets (test-wide tags and the
	// script's per-request tags).
	LabelScenario = "faultline_scenario"
	LabelVersion  = "faultline_version"
	LabelRunID    = "faultline_run_id"
	LabelPhase    = "phase"
	LabelFault    = "fault"
	// LabelExpected is k6's system tag: "false" for a failed request
	// (http_req_failed).
	LabelExpected = "expected_response"
)

// LoadMatchers selects one run's load series. A series without a run id
// (a TestRun applied without one) matches too, inside the run's time range.
func LoadMatchers(scenario, version, runID string) string {
	return fmt.Sprintf(`%s=%q,%s=%q,%s=~%q`, LabelScenario, scenario, LabelVersion, version, LabelRunID, quoteRE(runID)+"|")
}

func quoteRE(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// LoadData holds a run's load series, read once.
type LoadData struct {
	reqs, dur []Series
}

// Runners is the number of distinct runners (instance_id) seen.
func (d *LoadData) Runners() int {
	ids := map[string]bool{}
	for _, s := range d.dur {
		ids[s.Labels["instance_id"]] = true
	}
	return len(ids)
}

// Empty reports whether no load series was found.
func (d *LoadData) Empty() bool { return len(d.reqs) == 0 && len(d.dur) == 0 }

// ReadLoad fetches the load series matchers select in [from, to].
func ReadLoad(ctx context.Context, c *Client, matchers string, from, to time.Time) (*LoadData, error) {
	d := &LoadData{}
	var err error
	if d.reqs, err = c.Raw(ctx, HTTPReqs+"{"+matchers+"}", from, to); err != nil {
		return nil, err
	}
	if d.dur, err = c.Raw(ctx, HTTPReqDuration+"{"+matchers+"}", from, to); err != nil {
		return nil, err
	}
	return d, nil
}

// LoadWindow is the load of one window, every runner summed.
type LoadWindow struct {
	Requests, Failed float64
	// Latency in seconds (nil without requests).
	Latency *Hist
}

// Window sums every series over w.
func (d *LoadData) Window(w Window) LoadWindow {
	var out LoadWindow
	for _, s := range d.reqs {
		n := Delta(s.Floats, w)
		out.Requests += n
		if s.Labels[LabelExpected] == "false" {
			out.Failed += n
		}
	}
	for _, s := range d.dur {
		h := HistDelta(s.Hists, w)
		if h == nil || h.Count == 0 {
			continue
		}
		if out.Latency == nil {
			out.Latency = h
		} else {
			out.Latency = out.Latency.Add(h)
		}
	}
	return out
}

// Writer writes samples as k6's remote-write output does (the names above,
// the same labels, cumulative per series, each push stamped with the
// series' latest sample): the tests' stand-in k6 runners use it. The
// engine writes through EngineWriter, which counts requests at their
// start. Both write latency histograms of schema WriterSchema (bucket
// factor 1.0027), finer than k6's 1.1 (schema 3): Prometheus merges the
// two at the coarser one.
type Writer struct {
	URL string
	// Labels go on every series (faultline_scenario, _version, _run_id).
	Labels map[string]string
	HTTP   *http.Client

	mu     sync.Mutex
	series map[string]*wseries
}

// WriterSchema is the schema of the engine's latency histograms.
const WriterSchema = 8

type wseries struct {
	labels       map[string]string
	reqs         float64
	hist         *Hist
	latest, sent int64
	dirty        bool
}

// Add records one request. tags are its per-request labels (name, method,
// status, phase, fault); failed is http_req_failed.
func (w *Writer) Add(tags map[string]string, end time.Time, seconds float64, failed bool) {
	l := maps.Clone(w.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, tags)
	l[LabelExpected] = fmt.Sprint(!failed)
	key := labelKey(l)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.series == nil {
		w.series = map[string]*wseries{}
	}
	s := w.series[key]
	if s == nil {
		h := NewHist(WriterSchema)
		h.ZeroThreshold = math.Ldexp(1, -128)
		s = &wseries{labels: l, hist: h}
		w.series[key] = s
	}
	s.reqs++
	s.hist.Observe(seconds)
	s.latest = max(s.latest, end.UnixMilli())
	s.dirty = true
}

func labelKey(l map[string]string) string {
	ks := slices.Sorted(maps.Keys(l))
	var b strings.Builder
	for _, k := range ks {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// Flush pushes every series that changed since the last flush.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	var pts []Point
	var sent []*wseries
	for _, s := range w.series {
		if !s.dirty {
			continue
		}
		t := max(s.latest, s.sent+1) // strictly increasing per series
		rl := maps.Clone(s.labels)
		rl["__name__"] = HTTPReqs
		hl := maps.Clone(s.labels)
		hl["__name__"] = HTTPReqDuration
		pts = append(pts, Point{Labels: rl, T: t, V: s.reqs}, Point{Labels: hl, T: t, Hist: s.hist.Clone()})
		s.dirty, s.sent = false, t
		sent = append(sent, s)
	}
	w.mu.Unlock()
	if len(pts) == 0 {
		return nil
	}
	err := Push(ctx, w.HTTP, w.URL, pts)
	if err != nil {
		w.mu.Lock()
		for _, s := range sent { // resend next time
			s.dirty = true
		}
		w.mu.Unlock()
	}
	return err
}

// Run flushes every interval until ctx ends, then once more; fn, when set,
// is told about each failed push.
func (w *Writer) Run(ctx context.Context, interval time.Duration, fn func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := w.Flush(fctx); err != nil && fn != nil {
				fn(err)
			}
			cancel()
			return
		case <-t.C:
			if err := w.Flush(ctx); err != nil && fn != nil && ctx.Err() == nil {
				fn(err)
			}
		}
	}
}
