package runner

import (
	"math"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/load"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/scrape"
	"faultline.dev/faultline/schema"
)

func sd(s string) schema.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return schema.Duration(d)
}

func ptr[T any](v T) *T { return &v }

// testPlan: 60s load, fault a [10s,20s), fault b [15s,30s), recovery within 5s.
func testPlan(t *testing.T) *plan.Plan {
	t.Helper()
	s := &schema.Scenario{Name: "t", Version: "1.0.0", Target: schema.Target{URL: "http://127.0.0.1:1"},
		Load: schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: sd("60s"), Requests: []schema.Request{{Path: "/"}}},
		Faults: map[string]schema.Fault{
			"a": {Start: sd("10s"), Duration: sd("10s"), NetworkDelay: &schema.NetworkDelay{Latency: sd("100ms")}},
			"b": {Start: sd("15s"), Duration: sd("15s"), NetworkLoss: &schema.NetworkLoss{Loss: 10}},
		},
		SLOs: &schema.SLOs{Recovery: &schema.RecoverySLO{Within: sd("5s")}},
	}
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClassify(t *testing.T) {
	p := testPlan(t)
	tl := NewTimeline(p)
	t0 := time.Unix(1000, 0)
	tl.SetLoadStart(t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// Actual windows differ from the plan: a late by 0.4s, b early-ended.
	tl.Injected(p.Faults[0], at(10.4))
	tl.Injected(p.Faults[1], at(15.1))
	tl.Recovered("a", at(20.2), nil)
	tl.Recovered("b", at(29.9), nil)
	for _, tc := range []struct {
		t      float64
		phase  string
		grace  bool
		faults string
	}{
		{0, plan.Steady, false, ""},
		{10.3, plan.Steady, false, ""}, // planned fault start, not yet injected
		{10.4, plan.FaultPhase, false, "a"},
		{16, plan.FaultPhase, false, "a,b"},
		{20.1, plan.FaultPhase, false, "a,b"},
		{25, plan.FaultPhase, false, "b"},
		{29.95, plan.Recovery, true, ""},
		{34.8, plan.Recovery, true, ""},
		{35, plan.Recovery, false, ""},
	} {
		c := tl.Classify(at(tc.t))
		if c.Phase != tc.phase || c.Grace != tc.grace || strings.Join(c.Faults, ",") != tc.faults {
			t.Errorf("t=%.2f: got %+v, want %s grace=%v faults=%q", tc.t, c, tc.phase, tc.grace, tc.faults)
		}
	}
}

// TestSinkToCollector sends samples the way the engine does (from several
// VUs, through the sink's shards) and checks they land in the phase of
// their START time, by the actual windows.
func TestSinkToCollector(t *testing.T) {
	p := testPlan(t)
	tl := NewTimeline(p)
	t0 := time.UnixMilli(aggregate.SlotOf(time.Now().UnixMilli()))
	tl.SetLoadStart(t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tl.Injected(p.Faults[0], at(10))
	tl.Injected(p.Faults[1], at(15))
	tl.Recovered("a", at(20), nil)
	tl.Recovered("b", at(30), nil)

	c := NewCollector(tl)
	s := newSink(tl)
	send := func(sec float64, n int, ms float64, failed int, vu int) {
		for i := range n {
			start := at(sec)
			s.Add(vu+i, &load.Sample{Start: start, End: start.Add(time.Duration(ms * float64(time.Millisecond))), Failed: i < failed,
				ChecksPassed: 1, ChecksTotal: 1})
		}
	}
	send(1, 100, 10, 0, 0)
	send(9.9, 100, 10, 0, 3)
	send(12, 50, 110, 0, 0) // fault a
	s.flush(c)
	send(12, 50, 110, 0, 7)   // the same slot in a later flush merges
	send(25, 100, 10, 20, 1)  // fault b, 20% errors
	send(32, 100, 12, 0, 2)   // recovery grace (within 5s)
	send(40, 100, 11, 0, 100) // recovery, judged
	// Started in steady, answered after the fault began: neither phase.
	s.Add(0, &load.Sample{Start: at(9.9), End: at(10.2)})
	// Started in steady, answered later but still in steady: steady.
	s.Add(0, &load.Sample{Start: at(5), End: at(5.3), ChecksPassed: 1, ChecksTotal: 2})
	s.flush(c)
	c.FinalizeAll()
	snap := c.Snapshot()
	want := map[string]int64{plan.Steady: 201, plan.FaultPhase: 200, plan.Recovery: 100}
	if c.Transition() != 1 {
		t.Errorf("%d transition requests, want 1", c.Transition())
	}
	for ph, n := range want {
		if snap.Phases[ph] == nil || snap.Phases[ph].Requests != n {
			t.Errorf("phase %s: %v requests, want %d", ph, snap.Phases[ph], n)
		}
	}
	if snap.Grace.Requests != 100 {
		t.Errorf("grace %d requests, want 100", snap.Grace.Requests)
	}
	// Fault a's evidence also holds the request in flight when it began.
	if snap.PerFault["a"].Requests != 101 || snap.PerFault["b"].Requests != 100 {
		t.Errorf("per fault a=%d b=%d, want 101 and 100", snap.PerFault["a"].Requests, snap.PerFault["b"].Requests)
	}
	if got := snap.Phases[plan.FaultPhase].ErrorRate(); math.Abs(got-10) > 1e-9 {
		t.Errorf("fault error rate %.2f, want 10", got)
	}
	if got := snap.Phases[plan.Steady].ChecksRate(); math.Abs(got-100*201.0/202) > 1e-9 {
		t.Errorf("steady checks %.3f%%, want %.3f%%", got, 100*201.0/202)
	}
	if q := snap.PerFault["a"].Quantile(0.5); math.Abs(q-110) > 110*0.011 {
		t.Errorf("fault a p50 %.2f, want 110 within 1%%", q)
	}
	// Seconds by start: 1, 5, 9, 12, 25, 32, 40; the straddler ended in
	// second 10, which has a point of its own (no request started in it).
	bySec := map[float64]results.Point{}
	for _, p := range snap.Series {
		bySec[p.Offset] = p
	}
	if len(snap.Series) != 8 || bySec[12].Requests != 100 || bySec[12].Phase != plan.FaultPhase || bySec[9].Requests != 101 || bySec[9].Ended != 100 {
		t.Errorf("series %+v", snap.Series)
	}
	if p := bySec[10]; p.Requests != 0 || p.Ended != 1 || bySec[25].FailedEnded != 20 {
		t.Errorf("by end: second 10 %+v, second 25 %+v", p, bySec[25])
	}
}

// TestSoFar: the live aggregate of a phase holds its final and open slots.
func TestSoFar(t *testing.T) {
	p := testPlan(t)
	tl := NewTimeline(p)
	t0 := time.UnixMilli(aggregate.SlotOf(time.Now().UnixMilli()))
	tl.SetLoadStart(t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tl.Injected(p.Faults[0], at(10))
	c := NewCollector(tl)
	s := newSink(tl)
	for i := range 30 {
		s.Add(i, &load.Sample{Start: at(2), End: at(2.01)})
		s.Add(i, &load.Sample{Start: at(11), End: at(11.5), Failed: i%2 == 0})
	}
	s.flush(c)
	c.Finalize(at(5)) // steady's slot is final, the fault's still open
	if got := c.SoFar(plan.Steady); got.Requests != 30 {
		t.Errorf("steady so far: %d requests, want 30", got.Requests)
	}
	if got := c.SoFar(plan.FaultPhase); got.Requests != 30 || got.Failed != 15 {
		t.Errorf("fault so far: %d requests, %d failed; want 30, 15", got.Requests, got.Failed)
	}
}

// TestCollectorMemoryFlat: over a long run, slots are folded and dropped
// after FinalizeLag, so what the collector holds does not grow.
func TestCollectorMemoryFlat(t *testing.T) {
	p := testPlan(t)
	tl := NewTimeline(p)
	t0 := time.UnixMilli(aggregate.SlotOf(time.Now().UnixMilli()))
	tl.SetLoadStart(t0)
	c := NewCollector(tl)
	maxOpen := 0
	for sec := 0; sec < 600; sec++ { // ten simulated minutes
		now := t0.Add(time.Duration(sec) * time.Second)
		for k := 0; k < 10; k++ {
			a := aggregate.New()
			a.AddRequest(float64(5+k), false)
			c.add(aggregate.Key{Start: aggregate.SlotOf(now.Add(time.Duration(k) * 100 * time.Millisecond).UnixMilli())}, a)
		}
		c.Finalize(now.Add(-FinalizeLag))
		maxOpen = max(maxOpen, c.OpenSlots())
	}
	limit := int(FinalizeLag/(aggregate.SlotWidth*time.Millisecond)) + 2*int(FinalizeLag/time.Second) + 20
	if maxOpen > limit {
		t.Errorf("collector held %d slots at most, want <= %d (bounded by the lag)", maxOpen, limit)
	}
	c.FinalizeAll()
	snap := c.Snapshot()
	// No fault was injected: every request is steady.
	if snap.Phases[plan.Steady] == nil || snap.Phases[plan.Steady].Requests != 6000 || len(snap.Series) != 600 {
		t.Errorf("after finalize: %v steady requests, %d points", snap.Phases[plan.Steady], len(snap.Series))
	}
}

func TestJudge(t *testing.T) {
	agg := func(n int, ms float64, failed int) *aggregate.Agg {
		a := aggregate.New()
		for i := range n {
			a.AddRequest(ms, i < failed)
			a.AddCheck(i >= failed)
		}
		return a
	}
	s := &schema.Scenario{SLOs: &schema.SLOs{
		Steady: &schema.PhaseSLO{Latency: &schema.LatencySLO{P99: sd("50ms")}, ErrorRate: ptr(1.0), Throughput: ptr(5.0)},
		Fault:  &schema.PhaseSLO{Latency: &schema.LatencySLO{P99: sd("50ms")}, Checks: ptr(99.0)},
		Recovery: &schema.RecoverySLO{PhaseSLO: schema.PhaseSLO{ErrorRate: ptr(1.0), Goroutines: &schema.GaugeSLO{OverSteady: ptr(10.0)}},
			Within: sd("5s")},
	}}
	steadyRT, recRT := &scrape.Phase{}, &scrape.Phase{}
	steadyRT.Add(scrape.Sample{Goroutines: 100})
	recRT.Add(scrape.Sample{Goroutines: 130})
	data := map[string]phaseData{
		plan.Steady:     {agg: agg(100, 20, 0), runtime: steadyRT, seconds: 10},
		plan.FaultPhase: {agg: agg(100, 80, 5), seconds: 10},
		plan.Recovery:   {agg: nil, runtime: recRT, seconds: 10},
	}
	got := map[string]string{}
	for _, r := range judge(s, data) {
		got[r.Phase+" "+r.SLO] = r.Status
	}
	want := map[string]string{
		"steady latency.p99":             results.StatusPass,
		"steady errorRate":               results.StatusPass,
		"steady throughput":              results.StatusPass,
		"fault latency.p99":              results.StatusFail,
		"fault checks":                   results.StatusFail,
		"recovery errorRate":             results.StatusNoData, // no requests: never a pass
		"recovery goroutines.overSteady": results.StatusFail,   // +30% > 10%
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("judged %v", got)
	}
}

func TestEfficacy(t *testing.T) {
	agg := func(ms float64) *aggregate.Agg {
		a := aggregate.New()
		for range 100 {
			a.AddRequest(ms, false)
		}
		return a
	}
	delay := schema.Fault{NetworkDelay: &schema.NetworkDelay{Latency: sd("100ms")}}
	if e, _ := efficacy(delay, agg(112), agg(10)); e != "yes" {
		t.Errorf("a delay that added 102ms: %s", e)
	}
	if e, ev := efficacy(delay, agg(11), agg(10)); e != "no" || !strings.Contains(ev, "did not visibly move") {
		t.Errorf("a delay that moved nothing: %s %s", e, ev)
	}
	if e, _ := efficacy(delay, agg(11), nil); e != "unknown" {
		t.Errorf("without a steady phase: %s", e)
	}
	// A kill with just start is judged on the seconds after the instant.
	kill := schema.Fault{Start: sd("10s"), PodKill: &schema.PodKill{}}
	if e, ev := efficacy(kill, agg(40), agg(10)); e != "yes" || !strings.Contains(ev, "over the 30s after the kill") {
		t.Errorf("an instant kill that moved p99: %s %s", e, ev)
	}
	kill.Duration = sd("20s")
	if _, ev := efficacy(kill, agg(40), agg(10)); strings.Contains(ev, "after the kill") {
		t.Errorf("a kill with a duration is judged on its window: %s", ev)
	}
}

func TestRecoveryTime(t *testing.T) {
	steady := aggregate.New()
	for range 100 {
		steady.AddRequest(10, false)
	}
	pt := func(sec, p99 float64) results.Point { return results.Point{Offset: sec, Requests: 10, P99: p99} }
	series := []results.Point{pt(30, 300), pt(31, 200), pt(32, 12), pt(33, 12), pt(34, 13), pt(35, 11)}
	if s, ok := recoveryTime(series, 30, steady); !ok || s != 2 {
		t.Errorf("recovered after %.0fs (%v), want 2s", s, ok)
	}
	if _, ok := recoveryTime(series[:3], 30, steady); ok {
		t.Error("recovered without three good seconds")
	}
}

// TestSegmentsSplitSlots: requests in the 100ms slot that holds an
// injection are placed by which side of it they started on — the runner
// marks each event before asking the backend — not all in the phase of the
// slot's start.
func TestSegmentsSplitSlots(t *testing.T) {
	p := testPlan(t)
	tl := NewTimeline(p)
	t0 := time.UnixMilli(aggregate.SlotOf(time.Now().UnixMilli()))
	tl.SetLoadStart(t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	c := NewCollector(tl)
	s := newSink(tl)
	s.origin.Store(t0.UnixMilli())
	// 10 requests at 10.010s, before the injection at 10.040s (same slot).
	for i := range 10 {
		s.Add(i, &load.Sample{Start: at(10.010), End: at(10.012)})
	}
	m := tl.Mark(at(10.040))
	tl.Injected(p.Faults[0], at(10.0401))
	tl.Settle(m, at(10.0401))
	// 20 requests after it, in the same slot: they failed.
	for i := range 20 {
		s.Add(i, &load.Sample{Start: at(10.050), End: at(10.060), Failed: true})
	}
	// 5 in flight across the injection: started before, ended after.
	for i := range 5 {
		s.Add(i, &load.Sample{Start: at(10.020), End: at(10.070), Failed: true})
	}
	s.flush(c)
	c.FinalizeAll()
	snap := c.Snapshot()
	if st := snap.Phases[plan.Steady]; st == nil || st.Requests != 10 || st.Failed != 0 {
		t.Errorf("steady: %+v, want the 10 requests before the injection, none failed", st)
	}
	if f := snap.Phases[plan.FaultPhase]; f == nil || f.Requests != 20 || f.Failed != 20 {
		t.Errorf("fault: %+v, want the 20 requests after it", f)
	}
	if c.Transition() != 5 {
		t.Errorf("%d requests straddle the injection, want 5", c.Transition())
	}
	if a := snap.PerFault["a"]; a == nil || a.Requests != 25 || a.Failed != 25 {
		t.Errorf("fault a's evidence: %+v, want the 20 after it and the 5 in flight", a)
	}
}

func TestScrapeInterval(t *testing.T) {
	for _, tc := range []struct {
		scale float64
		want  time.Duration
	}{
		{0, time.Second}, // not scaled
		{1, time.Second}, // scale 1
		{2, time.Second}, // a longer run scrapes as often as a normal one
		{0.5, 500 * time.Millisecond},
		{0.3, 300 * time.Millisecond},
		{0.15, 250 * time.Millisecond}, // the floor
		{0.01, 250 * time.Millisecond},
	} {
		if got := scrapeInterval(tc.scale); got != tc.want {
			t.Errorf("scrapeInterval(%v) = %v, want %v", tc.scale, got, tc.want)
		}
	}
}
