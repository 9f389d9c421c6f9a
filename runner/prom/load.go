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

	// The compiled script's own series (compiler/k6): k6 counts no gRPC
	// calls and writes checks and grpc_req_failed as Rates, so the script
	// counts each gRPC call at its end (label failed "true"/"false") and
	// each check (label passed "true"/"false") in Counters.
	GRPCReqDuration = "k6_grpc_req_duration_seconds"
	GRPCReqs        = "k6_faultline_grpc_reqs_total"
	Checks          = "k6_faultline_checks_total"
	LabelFailed     = "failed"
	LabelPassed     = "passed"

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
	reqs, dur         []Series // HTTP
	grpcReqs, grpcDur []Series
	checks            []Series
}

// Runners is the number of distinct runners (instance_id) seen.
func (d *LoadData) Runners() int {
	ids := map[string]bool{}
	for _, s := range slices.Concat(d.dur, d.grpcDur, d.grpcReqs) {
		ids[s.Labels["instance_id"]] = true
	}
	return len(ids)
}

// Empty reports whether no request series was found (HTTP or gRPC).
func (d *LoadData) Empty() bool {
	return len(d.reqs) == 0 && len(d.dur) == 0 && len(d.grpcReqs) == 0 && len(d.grpcDur) == 0
}

// ReadLoad fetches the load series matchers select in [from, to]: HTTP
// requests, gRPC calls and checks.
func ReadLoad(ctx context.Context, c *Client, matchers string, from, to time.Time) (*LoadData, error) {
	d := &LoadData{}
	for _, q := range []struct {
		name string
		into *[]Series
	}{{HTTPReqs, &d.reqs}, {HTTPReqDuration, &d.dur}, {GRPCReqs, &d.grpcReqs}, {GRPCReqDuration, &d.grpcDur}, {Checks, &d.checks}} {
		var err error
		if *q.into, err = c.Raw(ctx, q.name+"{"+matchers+"}", from, to); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// LoadWindow is the load of one window, every runner summed.
type LoadWindow struct {
	// Requests and Failed count HTTP requests and gRPC calls.
	Requests, Failed float64
	// Checks and ChecksPassed count the script's checks (0 when the load
	// wrote none).
	Checks, ChecksPassed float64
	// Latency in seconds, HTTP and gRPC merged (nil without requests).
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
	for _, s := range d.grpcReqs {
		n := Delta(s.Floats, w)
		out.Requests += n
		if s.Labels[LabelFailed] == "true" {
			out.Failed += n
		}
	}
	for _, s := range d.checks {
		n := Delta(s.Floats, w)
		out.Checks += n
		if s.Labels[LabelPassed] == "true" {
			out.ChecksPassed += n
		}
	}
	for _, s := range slices.Concat(d.dur, d.grpcDur) {
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

// wseries is one series: a counter, or a histogram when hist is set.
type wseries struct {
	labels       map[string]string // with __name__
	v            float64
	hist         *Hist
	latest, sent int64
	dirty        bool
}

// Add records one HTTP request. tags are its per-request labels (name,
// method, status, phase, fault); failed is http_req_failed.
func (w *Writer) Add(tags map[string]string, end time.Time, seconds float64, failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.labels(tags, LabelExpected, fmt.Sprint(!failed))
	w.count(HTTPReqs, l, end)
	w.observe(HTTPReqDuration, l, end, seconds)
}

// AddGRPC records one gRPC call as k6 and the compiled script write it:
// grpc_req_duration (tags: name, method, status, phase, fault; none when
// seconds < 0, a call that never connected) and faultline_grpc_reqs
// (tags plus failed).
func (w *Writer) AddGRPC(tags map[string]string, end time.Time, seconds float64, failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count(GRPCReqs, w.labels(tags, LabelFailed, fmt.Sprint(failed)), end)
	if seconds >= 0 {
		w.observe(GRPCReqDuration, w.labels(tags, "", ""), end, seconds)
	}
}

// AddCheck records one check as the compiled script counts it in
// faultline_checks (tags: phase, fault; plus passed).
func (w *Writer) AddCheck(tags map[string]string, end time.Time, passed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count(Checks, w.labels(tags, LabelPassed, fmt.Sprint(passed)), end)
}

func (w *Writer) labels(tags map[string]string, k, v string) map[string]string {
	l := maps.Clone(w.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, tags)
	if k != "" {
		l[k] = v
	}
	return l
}

// get returns the series of name and l, creating it; w.mu is held.
func (w *Writer) get(name string, l map[string]string) *wseries {
	l = maps.Clone(l)
	l["__name__"] = name
	key := labelKey(l)
	if w.series == nil {
		w.series = map[string]*wseries{}
	}
	s := w.series[key]
	if s == nil {
		s = &wseries{labels: l}
		w.series[key] = s
	}
	return s
}

func (w *Writer) count(name string, l map[string]string, end time.Time) {
	s := w.get(name, l)
	s.v++
	s.latest = max(s.latest, end.UnixMilli())
	s.dirty = true
}

func (w *Writer) observe(name string, l map[string]string, end time.Time, seconds float64) {
	s := w.get(name, l)
	if s.hist == nil {
		s.hist = NewHist(WriterSchema)
		s.hist.ZeroThreshold = math.Ldexp(1, -128)
	}
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
		p := Point{Labels: maps.Clone(s.labels), T: t, V: s.v}
		if s.hist != nil {
			p.Hist = s.hist.Clone()
		}
		pts = append(pts, p)
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
