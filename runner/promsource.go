package runner

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/prom"
)

// PodLister is a Backend that knows the target's pods (their names), so
// the Go runtime SLIs read from Prometheus are those of exactly these pods.
type PodLister interface {
	TargetPods(ctx context.Context) ([]string, error)
}

// PromSamplesNote is results.json's loadNote when an in-cluster load was
// judged from the k6 runners' remote-write series.
const PromSamplesNote = "in-cluster load: per-phase numbers read back from Prometheus (k6's experimental-prometheus-rw output), every runner summed, HTTP requests and gRPC calls together, latency histograms merged; a request or check counts in the window its runner pushed it in (1s pushes); checks are counted by the script's faultline_checks (k6's own checks metric is a ratio, neither windowable nor mergeable)"

// promWait is how long the reading waits after the load for the last
// pushes (1s apart) to land.
const promWait = 2500 * time.Millisecond

func (r *run) promClient() *prom.Client {
	pt := r.p.Source.Target.Prometheus
	if pt == nil || pt.URL == "" {
		return nil
	}
	return &prom.Client{URL: pt.URL}
}

// runtimeMatchers select the target's Go runtime series: the scenario's
// matchers, else the target's namespace and, when the backend lists them,
// its pods.
func (r *run) runtimeMatchers(ctx context.Context) string {
	pt := r.p.Source.Target.Prometheus
	m := maps.Clone(pt.Matchers)
	if len(m) == 0 {
		m = map[string]string{}
		if k := r.p.Source.Target.Kubernetes; k != nil {
			m["namespace"] = k.Namespace
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	if pl, ok := r.b.(PodLister); ok && len(pt.Matchers) == 0 {
		pods, err := pl.TargetPods(ctx)
		switch {
		case err != nil:
			r.res.Warnings = append(r.res.Warnings, "listing the target's pods for the Prometheus matchers: "+err.Error()+" (every pod of the namespace is read)")
		case len(pods) > 0:
			label := pt.PodLabel
			if label == "" {
				label = "pod"
			}
			quoted := make([]string, len(pods))
			for i, p := range pods {
				quoted[i] = strings.ReplaceAll(p, ".", `\\.`)
			}
			parts = append(parts, fmt.Sprintf("%s=~%q", label, strings.Join(quoted, "|")))
		}
	}
	return strings.Join(parts, ",")
}

// promWindows are the phases' judged windows, recovery's allowance
// ("grace"), and each fault's window, in Unix milliseconds; the last phase
// runs to the end of the run, so that requests still draining count.
func (r *run) promWindows(windows []results.Window) (phases map[string]prom.Window, faults map[string]prom.Window, bounds []results.PhaseResult) {
	start := r.tl.LoadStart()
	at := func(off float64) int64 { return start.Add(time.Duration(off * float64(time.Second))).UnixMilli() }
	end := r.res.EndedAt.Add(promWait).UnixMilli()
	bounds = phaseBounds(r.p, windows, r.loadEnd())
	phases = map[string]prom.Window{}
	for i, b := range bounds {
		to := at(b.End)
		if i == len(bounds)-1 {
			to = end
		}
		phases[b.Name] = prom.Window{From: at(b.JudgedFrom), To: to}
		if b.Name == plan.Recovery && b.JudgedFrom > b.Start {
			phases["grace"] = prom.Window{From: at(b.Start), To: at(b.JudgedFrom)}
		}
	}
	faults = map[string]prom.Window{}
	for _, w := range windows {
		to := end
		if !w.End.IsZero() {
			to = w.End.UnixMilli()
		}
		faults[w.Fault] = prom.Window{From: w.Start.UnixMilli(), To: to}
	}
	return phases, faults, bounds
}

// promRuntime reads the Go runtime SLIs per phase from Prometheus.
func (r *run) promRuntime(c *prom.Client, windows []results.Window) {
	if r.tl.LoadStart().IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pt := r.p.Source.Target.Prometheus
	rt := &prom.Runtime{C: c, Matchers: r.runtimeMatchers(ctx), PodLabel: pt.PodLabel}
	phases, _, _ := r.promWindows(windows)
	got, err := rt.Phases(ctx, r.tl.LoadStart().Add(-time.Minute), r.res.EndedAt.Add(promWait), phases)
	if err != nil {
		r.infra("reading the Go runtime SLIs from Prometheus: " + err.Error())
		return
	}
	// Without a direct scrape, the runtime plots come from Prometheus too:
	// the worst pod's gauges, per second with a sample.
	var pts []results.RuntimePoint
	r.mu.Lock()
	noSeries := len(r.rtSeries) == 0
	r.mu.Unlock()
	if noSeries {
		secs := int(math.Ceil(r.res.EndedAt.Sub(r.tl.LoadStart()).Seconds()))
		ps, err := rt.PerSecond(ctx, r.tl.LoadStart(), secs)
		if err != nil {
			r.res.Warnings = append(r.res.Warnings, "reading the runtime plots from Prometheus: "+err.Error())
		}
		for _, p := range ps {
			pts = append(pts, results.RuntimePoint{Offset: float64(p.Second), Goroutines: nan0(p.Goroutines), HeapInUse: nan0(p.HeapInUse), RSS: nan0(p.RSS)})
		}
	}
	r.mu.Lock()
	maps.Copy(r.runtime, got)
	r.scrapeOK = true
	if len(r.rtSeries) == 0 {
		r.rtSeries = pts
	}
	r.mu.Unlock()
	if n := got[plan.Steady]; n == nil || n.Samples == 0 {
		r.logf("prometheus %s: no Go runtime series for {%s} during the run: the runtime SLOs have no data", c.URL, rt.Matchers)
	}
}

// promSnapshot reads an in-cluster load's numbers back from Prometheus
// and shapes them as the collector's: per phase, per fault, per second.
func (r *run) promSnapshot(c *prom.Client, windows []results.Window) (Snapshot, error) {
	if d := time.Until(r.res.EndedAt.Add(promWait)); d > 0 {
		time.Sleep(d) // the runners' last pushes
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := r.tl.LoadStart()
	d, err := prom.ReadLoad(ctx, c, prom.LoadMatchers(r.p.Scenario, r.p.Version, r.o.RunID), start.Add(-time.Minute), r.res.EndedAt.Add(promWait))
	if err != nil {
		return Snapshot{}, err
	}
	if d.Empty() {
		return Snapshot{}, fmt.Errorf("prometheus %s has no %s or %s series for {%s}: is the TestRun's experimental-prometheus-rw output sending to this server (K6_PROMETHEUS_RW_SERVER_URL), with native histograms enabled?", c.URL, prom.HTTPReqDuration, prom.GRPCReqDuration, prom.LoadMatchers(r.p.Scenario, r.p.Version, r.o.RunID))
	}
	phases, faults, _ := r.promWindows(windows)
	snap := Snapshot{Phases: map[string]*aggregate.Agg{}, PerFault: map[string]*aggregate.Agg{}, Grace: aggregate.New()}
	for name, w := range phases {
		a := toAgg(d.Window(w))
		if name == "grace" {
			snap.Grace = a
			continue
		}
		snap.Phases[name] = a
	}
	for name, w := range faults {
		snap.PerFault[name] = toAgg(d.Window(w))
	}
	for sec := 0; sec < int(math.Ceil(r.loadEnd())); sec++ {
		from := start.Add(time.Duration(sec) * time.Second)
		lw := d.Window(prom.Window{From: from.UnixMilli(), To: from.Add(time.Second).UnixMilli()})
		p := results.Point{Offset: float64(sec), Requests: int64(lw.Requests), Failed: int64(lw.Failed), Phase: r.tl.Classify(from.Add(500 * time.Millisecond)).Phase,
			Ended: int64(lw.Requests), FailedEnded: int64(lw.Failed)}
		if h := lw.Latency; h != nil {
			p.P50, p.P95, p.P99 = nan0(1000*h.Quantile(0.5)), nan0(1000*h.Quantile(0.95)), nan0(1000*h.Quantile(0.99))
			if bs := h.EachBucket(); len(bs) > 0 {
				p.Max = 1000 * bs[len(bs)-1].Hi
			}
		}
		snap.Series = append(snap.Series, p)
	}
	r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("in-cluster load read from Prometheus %s: %d runner(s)", c.URL, d.Runners()))
	if err := r.writeFaultActive(ctx, strings.TrimSuffix(c.URL, "/")+"/api/v1/write", windows); err != nil {
		r.res.Warnings = append(r.res.Warnings, "writing "+prom.FaultActive+" for the dashboard: "+err.Error())
	}
	return snap, nil
}

// toAgg turns a window of the load series into the aggregate the verdict
// reads: counts exact; quantiles at the geometric middle of the native
// histogram's bucket holding them (off by at most half a bucket: 0.14% at
// the engine's schema 8, 4.4% at k6's schema 3), and its sketch holding
// each bucket's observations there for merging; the maximum at the top
// bucket's upper bound.
func toAgg(w prom.LoadWindow) *aggregate.Agg {
	a := aggregate.New()
	a.Requests, a.Failed = int64(math.Round(w.Requests)), int64(math.Round(w.Failed))
	a.AddChecks(int(math.Round(w.ChecksPassed)), int(math.Round(w.Checks)))
	if h := w.Latency; h != nil {
		a.SumMS = 1000 * h.Sum
		for _, b := range h.EachBucket() {
			mid := math.Sqrt(b.Lo * b.Hi)
			if b.Lo <= 0 {
				mid = b.Hi / 2
			}
			_ = a.Latency.AddWithCount(1000*mid, b.Count)
			a.MaxMS = max(a.MaxMS, 1000*b.Hi)
		}
		a.Quantiles = func(q float64) float64 { return 1000 * h.Quantile(q) }
	}
	return a
}

// PromPhases reads a finished run's load back from Prometheus the way an
// in-cluster run is judged (prom.ReadLoad over each phase's actual judged
// window, every runner summed, toAgg): the numbers a local run written
// with --prometheus-write has there, by phase name. The last phase runs
// to the end of the run.
func PromPhases(ctx context.Context, c *prom.Client, res *results.Result) (map[string]*aggregate.Agg, error) {
	if res.LoadStart.IsZero() {
		return nil, fmt.Errorf("run %s: the load never started", res.RunID)
	}
	at := func(off float64) int64 {
		return res.LoadStart.Add(time.Duration(off * float64(time.Second))).UnixMilli()
	}
	end := res.EndedAt.Add(promWait)
	d, err := prom.ReadLoad(ctx, c, prom.LoadMatchers(res.Scenario, res.Version, res.RunID), res.LoadStart.Add(-time.Minute), end)
	if err != nil {
		return nil, err
	}
	if d.Empty() {
		return nil, fmt.Errorf("prometheus %s has no %s series for {%s}", c.URL, prom.HTTPReqDuration, prom.LoadMatchers(res.Scenario, res.Version, res.RunID))
	}
	out := map[string]*aggregate.Agg{}
	for i, ph := range res.Phases {
		w := prom.Window{From: at(ph.JudgedFrom), To: at(ph.End)}
		if i == len(res.Phases)-1 {
			w.To = end.UnixMilli()
		}
		out[ph.Name] = toAgg(d.Window(w))
	}
	return out, nil
}
