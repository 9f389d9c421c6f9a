package runner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/promtest"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/prom"
	"faultline.dev/faultline/schema"
)

// inClusterStandIn is a STAND-IN Backend for the kubernetes backend with
// --load in-cluster (no cluster, no k6 here): its "TestRun" is two
// runners writing k6's remote-write series (prom.Writer, instance_id 1
// and 2) into a real Prometheus, 100 req/s each, every 100ms a batch of 10
// requests pushed at once — so each request's push instant is known and
// the test can say exactly which window it belongs to. Of each batch, 4
// are gRPC calls (k6_grpc_req_duration_seconds and the script's
// k6_faultline_grpc_reqs_total), 6 HTTP requests, each checked once as the
// compiled script counts checks (k6_faultline_checks_total): a check
// fails with its request, and in the fault also when slower than 80ms. Faults are no-ops
// on the runner's own clock. No sample reaches the runner in-process.
type inClusterStandIn struct {
	url   string
	runID string
	stop  func() // called once at stopAt (0: never): Prometheus goes away

	stopAt time.Duration

	mu      sync.Mutex
	batches []batch
}

type batch struct {
	at             time.Time
	n, fails       int
	checks, passed int
	ms             []float64
}

func (b *inClusterStandIn) Name() string { return "stand-in" }
func (b *inClusterStandIn) Prepare(context.Context, *plan.Plan) (string, error) {
	return "http://127.0.0.1:1", nil
}
func (b *inClusterStandIn) Inject(context.Context, plan.Fault) (time.Time, error) {
	return time.Now(), nil
}
func (b *inClusterStandIn) Recover(context.Context, plan.Fault) (time.Time, error) {
	return time.Now(), nil
}
func (b *inClusterStandIn) Cleanup(context.Context) error { return nil }
func (b *inClusterStandIn) Failures() <-chan error        { return nil }
func (b *inClusterStandIn) OwnsLoad() bool                { return true }

func (b *inClusterStandIn) StartLoad(ctx context.Context, p *plan.Plan) (time.Time, <-chan results.LoadOutcome, error) {
	done := make(chan results.LoadOutcome, 1)
	start := time.Now()
	var ws []*prom.Writer
	for i := 1; i <= 2; i++ {
		ws = append(ws, &prom.Writer{URL: b.url, Labels: map[string]string{prom.LabelScenario: p.Scenario, prom.LabelVersion: p.Version,
			prom.LabelRunID: b.runID, "instance_id": fmt.Sprint(i), "scenario": "default"}})
	}
	go func() {
		defer func() { done <- results.LoadOutcome{Stage: "finished", ThresholdsKnown: true} }()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		k := 0
		stopped := false
		for now := range tick.C {
			if now.Sub(start) >= p.LoadEnd.Std() || ctx.Err() != nil {
				return
			}
			if b.stopAt > 0 && !stopped && now.Sub(start) >= b.stopAt {
				b.stop()
				stopped = true
			}
			inFault := now.Sub(start) >= p.Faults[0].Start.Std() && now.Sub(start) < p.Faults[0].End.Std()
			for i, w := range ws {
				bt := batch{at: now}
				for j := range 10 {
					ms := 5 + float64((k*7+j*13+i*29)%40) // 5..44ms
					failed := (k+j+i)%50 == 0
					if inFault && i == 0 {
						ms += 50
						failed = (k+j)%5 == 0
					}
					phase := plan.Steady
					if inFault {
						phase = plan.FaultPhase
					}
					fault := "none"
					if inFault {
						fault = "jitter"
					}
					tags := map[string]string{prom.LabelPhase: phase, prom.LabelFault: fault}
					if j%5 < 2 {
						tags["name"] = "faultline.demo.v1.Shop/Checkout"
						w.AddGRPC(tags, now, ms/1000, failed)
					} else {
						tags["name"], tags["method"], tags["status"] = "GET /", "GET", "200"
						w.Add(tags, now, ms/1000, failed)
					}
					passed := !failed && !(inFault && ms > 80)
					w.AddCheck(map[string]string{prom.LabelPhase: phase, prom.LabelFault: fault}, now, passed)
					bt.n++
					bt.checks++
					if failed {
						bt.fails++
					}
					if passed {
						bt.passed++
					}
					bt.ms = append(bt.ms, ms)
				}
				if err := w.Flush(context.Background()); err == nil {
					b.mu.Lock()
					b.batches = append(b.batches, bt)
					b.mu.Unlock()
				}
			}
			k++
		}
	}()
	return start, done, nil
}

// defaultCollectorService is a Go service exposing only client_golang's
// DEFAULT Go collector (go_gc_duration_seconds, no runtime/metrics
// histograms), collecting garbage often.
func defaultCollectorService(t *testing.T) string {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promtest.GoService(t, reg, 20*time.Millisecond)
}

func promPlan(t *testing.T, promURL string) *plan.Plan {
	t.Helper()
	s := &schema.Scenario{Name: "checkout", Version: "1.0.0",
		Target: schema.Target{URL: "http://127.0.0.1:1", GRPC: "127.0.0.1:2", Prometheus: &schema.PrometheusTarget{URL: promURL, Matchers: map[string]string{"namespace": "shop"}}},
		Load: schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: sd("6s"),
			Requests: []schema.Request{{Path: "/", Weight: 3}, {GRPC: &schema.GRPCCall{Method: "faultline.demo.v1.Shop/Checkout"}, Weight: 2}}},
		Faults: map[string]schema.Fault{"jitter": {Start: sd("2s"), Duration: sd("2s"), NetworkDelay: &schema.NetworkDelay{Latency: sd("50ms")}}},
		SLOs: &schema.SLOs{
			Steady: &schema.PhaseSLO{Throughput: ptr(150.0), ErrorRate: ptr(5.0), Checks: ptr(95.0), GCPause: &schema.GCPauseSLO{P99: sd("1s")}},
			Fault:  &schema.PhaseSLO{Latency: &schema.LatencySLO{P99: sd("500ms")}, Checks: ptr(60.0)},
		},
	}
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInClusterFromPrometheus: an in-cluster load (two stand-in runners)
// and a default-collector Go service, judged per phase from a real
// Prometheus only: each phase's requests and failures (HTTP requests and
// gRPC calls) and its checks are exactly those pushed in its actual
// window, summed over both runners; the checks SLOs judged from them; p99 within 2% of
// the exact quantile of the same samples; the throughput SLO judged on the
// sum (200/s; a runner alone has 100/s); the gcPause SLO judged from
// go_gc_duration_seconds, not no-data; the runtime plots read from
// Prometheus; faultline_fault_active written over the fault's window.
func TestInClusterFromPrometheus(t *testing.T) {
	svc := defaultCollectorService(t)
	srv := promtest.Start(t, promtest.Target{Addr: svc, Labels: map[string]string{"namespace": "shop", "pod": "checkout-0"}})
	time.Sleep(2 * time.Second) // a scrape or two before the load
	b := &inClusterStandIn{url: srv.WriteURL(), runID: "r1"}
	res, err := Run(context.Background(), promPlan(t, srv.URL), b, Options{ReportDir: t.TempDir(), RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != results.VerdictPass {
		t.Errorf("verdict %s: %s", res.Verdict, res.Reason)
	}
	if res.LoadNote != PromSamplesNote {
		t.Errorf("load note %q", res.LoadNote)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	checksRate := map[string]float64{}
	for i, ph := range res.Phases {
		from := res.LoadStart.Add(time.Duration(ph.JudgedFrom * float64(time.Second)))
		to := res.LoadStart.Add(time.Duration(ph.End * float64(time.Second)))
		last := i == len(res.Phases)-1
		var n, fails, checks, passed int
		var ms []float64
		for _, bt := range b.batches {
			if !bt.at.Truncate(time.Millisecond).Before(from.Truncate(time.Millisecond)) && (last || bt.at.Truncate(time.Millisecond).Before(to.Truncate(time.Millisecond))) {
				n += bt.n
				fails += bt.fails
				checks += bt.checks
				passed += bt.passed
				ms = append(ms, bt.ms...)
			}
		}
		if ph.Requests != int64(n) || ph.Failed != int64(fails) {
			t.Errorf("%s: %d requests, %d failed from Prometheus; pushed %d, %d in its window (HTTP and gRPC)", ph.Name, ph.Requests, ph.Failed, n, fails)
		}
		if checks > 0 {
			checksRate[ph.Name] = 100 * float64(passed) / float64(checks)
		}
		if want := checksRate[ph.Name]; checks == 0 || ph.ChecksRate != want {
			t.Errorf("%s: checks %.4f%% from Prometheus; pushed %d of %d passed (%.4f%%) in its window", ph.Name, ph.ChecksRate, passed, checks, want)
		}
		if n == 0 {
			continue
		}
		exact := quantile(ms, 0.99)
		if rel := math.Abs(ph.P99-exact) / exact; rel > 0.02 {
			t.Errorf("%s: p99 %.3fms from Prometheus, %.3fms exact (%.2f%%)", ph.Name, ph.P99, exact, 100*rel)
		}
		t.Logf("%s [%.2f, %.2f): %d requests, %d failed, checks %.2f%% (%d of %d), p99 %.3fms (exact %.3fms), %.1f req/s", ph.Name, ph.JudgedFrom, ph.End, ph.Requests, ph.Failed, ph.ChecksRate, passed, checks, ph.P99, exact, ph.Throughput)
	}
	// Without a direct scrape the runtime plots come from Prometheus; the
	// fault window is written as faultline_fault_active for the dashboard.
	if len(res.Runtime) < 3 || res.Runtime[0].Goroutines <= 0 {
		t.Errorf("runtime series from Prometheus: %+v", res.Runtime)
	}
	fa, err := (&prom.Client{URL: srv.URL}).Raw(context.Background(), prom.FaultActive+`{faultline_run_id="r1",fault="jitter"}`, res.LoadStart.Add(-time.Second), res.EndedAt.Add(time.Second))
	if err != nil || len(fa) != 1 || len(res.Faults) != 1 {
		t.Fatalf("%s: %v, %d series", prom.FaultActive, err, len(fa))
	}
	ones := 0
	for _, p := range fa[0].Floats {
		in := p.T >= res.Faults[0].Start.UnixMilli() && p.T < res.Faults[0].End.UnixMilli()
		if (p.V == 1) != in {
			t.Errorf("%s at %d = %v, the fault's window [%d, %d)", prom.FaultActive, p.T, p.V, res.Faults[0].Start.UnixMilli(), res.Faults[0].End.UnixMilli())
		}
		if p.V == 1 {
			ones++
		}
	}
	if ones < 2 {
		t.Errorf("%s: %d points at 1 over a 2s fault", prom.FaultActive, ones)
	}
	checksJudged := 0
	defer func() {
		if checksJudged != 2 {
			t.Errorf("%d checks SLOs judged, want steady's and fault's", checksJudged)
		}
	}()
	for _, s := range res.SLOs {
		t.Logf("SLO %s %s: %s measured %.4g (%s)", s.Phase, s.SLO, s.Status, s.Measured, s.Note)
		switch s.SLO {
		case "throughput":
			// The sum of both runners (one alone reads ~100/s); a push that
			// lands just past a window's start moves 20 requests out of it
			// (the counts themselves are checked exactly above).
			if s.Status != results.StatusPass || s.Measured < 180 || s.Measured > 210 {
				t.Errorf("throughput: %s %v, want ~200/s (both runners) passing 150", s.Status, s.Measured)
			}
		case "checks":
			// Judged from the script's check counter, not no-data; the same
			// figure as the phase's (checked exactly above).
			if s.Status != results.StatusPass || s.Measured != checksRate[s.Phase] {
				t.Errorf("%s checks: %s %v, want judged passing at %v", s.Phase, s.Status, s.Measured, checksRate[s.Phase])
			}
			checksJudged++
		case "gcPause.p99":
			if s.Status != results.StatusPass || s.Measured <= 0 || !strings.Contains(s.Note, "go_gc_duration_seconds") {
				t.Errorf("gcPause.p99 of a default-collector service: %s %v (%s), want judged", s.Status, s.Measured, s.Note)
			}
		}
	}
}

// TestPrometheusStoppedMidRun: Prometheus goes away during the load: the
// run is not a pass.
func TestPrometheusStoppedMidRun(t *testing.T) {
	srv := promtest.Start(t)
	b := &inClusterStandIn{url: srv.WriteURL(), runID: "r2", stopAt: 3 * time.Second, stop: srv.Stop}
	p := promPlan(t, srv.URL)
	p.Source.SLOs.Steady.GCPause = nil
	res, err := Run(context.Background(), p, b, Options{ReportDir: t.TempDir(), RunID: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict == results.VerdictPass || !strings.Contains(res.Reason, "Prometheus") {
		t.Errorf("verdict %s (%s), want an error naming Prometheus", res.Verdict, res.Reason)
	}
}

func quantile(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// TestToAggQuantiles: a window read from Prometheus answers quantiles from
// its native histogram (the middle of the bucket holding them), not from a
// sketch of the buckets' middles, which rounds twice: for every latency
// set here each quantile is within half a schema-8 bucket of the exact
// value (ranked as the sketch ranks) and within 2% of the in-process
// sketch's on the same requests. The clustered sets are ones where the
// sketch of middles lands a sketch bucket (2.02%) away from the in-process
// sketch, as TestRunPrometheusWrite once read (fault p50 20.6983 ms from
// Prometheus, 20.2884 ms in-process); the test checks they still do.
func TestToAggQuantiles(t *testing.T) {
	halfBucket := math.Pow(2, math.Ldexp(1, -(prom.WriterSchema+1)))
	// clustered: n requests at each value (ms).
	clustered := func(n int, ms ...float64) []float64 {
		var out []float64
		for _, v := range ms {
			for range n {
				out = append(out, v)
			}
		}
		return out
	}
	// twiceRounded finds, near from ms, a value whose median, among slower
	// requests (so that the maximum does not cap it), the sketch of middles
	// puts more than 2% from the in-process sketch.
	twiceRounded := func(from float64) float64 {
		for v := from; v < from*1.1; v *= 1.0001 {
			ms := append(clustered(3, v), 3*from)
			h := prom.NewHist(prom.WriterSchema)
			for _, x := range ms {
				h.Observe(x / 1000)
			}
			in, mids := aggOf(ms), toAgg(prom.LoadWindow{Requests: float64(len(ms)), Latency: h})
			mids.Quantiles = nil
			if math.Abs(mids.Quantile(0.5)-in.Quantile(0.5))/in.Quantile(0.5) > 0.02 {
				return v
			}
		}
		t.Fatalf("no value near %vms rounds twice", from)
		return 0
	}
	lognormal := func(n int, median, sigma float64, seed uint64) []float64 {
		out := make([]float64, n)
		x := seed
		for i := range out {
			// a small LCG pair into Box–Muller: deterministic, no global rand
			x = x*6364136223846793005 + 1442695040888963407
			u1 := (float64(x>>11) + 0.5) / (1 << 53)
			x = x*6364136223846793005 + 1442695040888963407
			u2 := (float64(x>>11) + 0.5) / (1 << 53)
			out[i] = median * math.Exp(sigma*math.Sqrt(-2*math.Log(u1))*math.Cos(2*math.Pi*u2))
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		ms           []float64
		roundedTwice bool // the sketch of middles is more than 2% off
	}{
		{"one value rounded twice", append(clustered(100, twiceRounded(20)), 60), true},
		// the median is the faster cluster's slowest request
		{"two clusters, the median rounded twice", slices.Concat(clustered(301, twiceRounded(20.2)), clustered(300, 20.9), []float64{24}), true},
		{"lognormal 2ms", lognormal(5000, 2, 0.6, 1), false},
		{"lognormal 20ms narrow", lognormal(5000, 20.5, 0.01, 2), false},
		{"lognormal 300ms wide", lognormal(2000, 300, 1.2, 3), false},
		{"sub-millisecond", lognormal(3000, 0.37, 0.3, 4), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := prom.NewHist(prom.WriterSchema)
			for _, v := range tc.ms {
				h.Observe(v / 1000)
			}
			in := aggOf(tc.ms)
			got := toAgg(prom.LoadWindow{Requests: float64(len(tc.ms)), Latency: h})
			sorted := slices.Sorted(slices.Values(tc.ms))
			twice := false
			for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
				exact := sorted[int(q*float64(len(sorted)-1))]
				v, want := got.Quantile(q), in.Quantile(q)
				if r := v / exact; r > halfBucket*(1+1e-9) || r < 1/halfBucket/(1+1e-9) {
					t.Errorf("p%v %.5fms, exact %.5fms: %.3f%% off, more than half a bucket", 100*q, v, exact, 100*(r-1))
				}
				if rel := math.Abs(v-want) / want; rel > 0.02 {
					t.Errorf("p%v %.5fms from the histogram, %.5fms in-process: %.2f%%", 100*q, v, want, 100*rel)
				}
				mids := *got
				mids.Quantiles = nil
				if rel := math.Abs(mids.Quantile(q)-want) / want; rel > 0.02 {
					twice = true
				}
			}
			if twice != tc.roundedTwice {
				t.Errorf("the sketch of the buckets' middles more than 2%% off the in-process sketch: %v, want %v", twice, tc.roundedTwice)
			}
		})
	}
}

// aggOf is the in-process aggregate of latencies (ms).
func aggOf(ms []float64) *aggregate.Agg {
	a := aggregate.New()
	for _, v := range ms {
		a.AddRequest(v, false)
	}
	return a
}
