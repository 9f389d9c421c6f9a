package runner

import (
	"fmt"
	"math"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/scrape"
	"faultline.dev/faultline/schema"
)

// phaseData is what the verdict reads for one phase.
type phaseData struct {
	agg     *aggregate.Agg
	runtime *scrape.Phase
	seconds float64 // judged length, for throughput
}

// judge evaluates every SLO of every phase.
func judge(s *schema.Scenario, data map[string]phaseData) []results.SLOResult {
	var out []results.SLOResult
	if s.SLOs == nil {
		return out
	}
	for _, name := range []string{plan.Steady, plan.FaultPhase, plan.Recovery} {
		slo := phaseSLO(s.SLOs, name)
		if slo == nil {
			continue
		}
		j := &judgement{phase: name}
		j.requests(slo, data[name])
		j.runtime(slo, data[name].runtime, data[plan.Steady].runtime)
		out = append(out, j.out...)
	}
	return out
}

// judgement collects one phase's SLO results.
type judgement struct {
	phase string
	out   []results.SLOResult
}

func (j *judgement) add(name, op string, limit, measured float64, unit string, noData bool, note string) {
	r := results.SLOResult{Phase: j.phase, SLO: name, Op: op, Limit: limit, Measured: measured, Unit: unit, Note: note}
	switch {
	case noData || math.IsNaN(measured):
		r.Status, r.Measured = results.StatusNoData, 0
	case op == "<=" && measured <= limit, op == ">=" && measured >= limit:
		r.Status = results.StatusPass
	default:
		r.Status = results.StatusFail
	}
	j.out = append(j.out, r)
}

// requests judges the SLOs on the phase's requests: latency, errors,
// checks, throughput.
func (j *judgement) requests(slo *schema.PhaseSLO, d phaseData) {
	agg := d.agg
	noReq := agg == nil || agg.Requests == 0
	if agg == nil {
		agg = aggregate.New()
	}
	if l := slo.Latency; l != nil {
		for _, q := range []struct {
			name  string
			limit schema.Duration
			v     func() float64
		}{
			{"latency.p50", l.P50, func() float64 { return agg.Quantile(0.50) }},
			{"latency.p90", l.P90, func() float64 { return agg.Quantile(0.90) }},
			{"latency.p95", l.P95, func() float64 { return agg.Quantile(0.95) }},
			{"latency.p99", l.P99, func() float64 { return agg.Quantile(0.99) }},
			{"latency.avg", l.Avg, agg.AvgMS},
			{"latency.max", l.Max, func() float64 { return agg.MaxMS }},
		} {
			if q.limit > 0 {
				j.add(q.name, "<=", ms(q.limit), q.v(), "ms", noReq, "")
			}
		}
	}
	if slo.ErrorRate != nil {
		j.add("errorRate", "<=", *slo.ErrorRate, agg.ErrorRate(), "%", noReq, "")
	}
	if slo.Checks != nil {
		j.add("checks", ">=", *slo.Checks, agg.ChecksRate(), "%", agg.ChecksTotal == 0, "")
	}
	if slo.Throughput != nil {
		tp := math.NaN()
		if d.seconds > 0 {
			tp = float64(agg.Requests) / d.seconds
		}
		j.add("throughput", ">=", *slo.Throughput, tp, "req/s", noReq, "")
	}
}

// runtime judges the Go runtime SLOs on the phase's scrapes (growth
// against the steady phase's).
func (j *judgement) runtime(slo *schema.PhaseSLO, rt, srt *scrape.Phase) {
	noRT := rt == nil || rt.Samples == 0
	noSteadyRT := srt == nil || srt.Samples == 0
	if g := slo.Goroutines; g != nil {
		if g.Max > 0 {
			j.add("goroutines.max", "<=", float64(g.Max), rtv(rt, func(p *scrape.Phase) float64 { return p.GoroutinesMax }), "", noRT, "")
		}
		if g.OverSteady != nil {
			j.add("goroutines.overSteady", "<=", *g.OverSteady, growth(rt, srt, func(p *scrape.Phase) float64 { return p.GoroutinesMean }), "%", noRT || noSteadyRT, "mean over the phase vs the steady mean")
		}
	}
	if h := slo.HeapInUse; h != nil {
		if h.Max != "" {
			b, _ := h.Max.Bytes()
			j.add("heapInUse.max", "<=", float64(b), rtv(rt, func(p *scrape.Phase) float64 { return p.HeapMax }), "bytes", noRT, "")
		}
		if h.OverSteady != nil {
			j.add("heapInUse.overSteady", "<=", *h.OverSteady, growth(rt, srt, func(p *scrape.Phase) float64 { return p.HeapMean }), "%", noRT || noSteadyRT, "")
		}
	}
	if gc := slo.GCPause; gc != nil {
		if gc.P99 > 0 {
			v, note := math.NaN(), "from go_gc_pauses_seconds"
			if !noRT {
				p99, n := rt.GCPauseP99()
				v, note = 1000*p99, n
			}
			j.add("gcPause.p99", "<=", ms(gc.P99), v, "ms", noRT, note)
		}
		if gc.Max > 0 {
			j.add("gcPause.max", "<=", ms(gc.Max), rtv(rt, func(p *scrape.Phase) float64 { return 1000 * p.GCPauseMax }), "ms", noRT, "from go_gc_duration_seconds")
		}
	}
	if sl := slo.SchedLatency; sl != nil && sl.P99 > 0 {
		v := rtv(rt, func(p *scrape.Phase) float64 { return 1000 * p.SchedLatency().Quantile(0.99) })
		j.add("schedLatency.p99", "<=", ms(sl.P99), v, "ms", noRT, "from go_sched_latencies_seconds")
	}
}

// efficacy says whether a fault visibly moved what it targets, comparing its
// own window with the steady phase.
func efficacy(f schema.Fault, during, steady *aggregate.Agg) (string, string) {
	if during == nil || during.Requests == 0 {
		return "unknown", "no requests during the fault"
	}
	if steady == nil || steady.Requests == 0 {
		return "unknown", "no steady phase to compare with"
	}
	dp50 := during.Quantile(0.5) - steady.Quantile(0.5)
	dp99 := during.Quantile(0.99) - steady.Quantile(0.99)
	derr := during.ErrorRate() - steady.ErrorRate()
	ev := fmt.Sprintf("p50 %+.1fms, p99 %+.1fms, errors %+.2f points vs steady", dp50, dp99, derr)
	if f.Instant() {
		// A kill with just start acts at the instant; its window is
		// the time after it that it is judged on.
		ev += fmt.Sprintf(" over the %s after the kill", schema.OneShotWindow)
	}
	moved := false
	switch {
	case f.NetworkDelay != nil:
		moved = dp50 >= 0.5*ms(f.NetworkDelay.Latency)
	case f.HTTPFault != nil && f.HTTPFault.Delay > 0 && !f.HTTPFault.Abort:
		moved = dp50 >= 0.5*ms(f.HTTPFault.Delay) || dp99 >= 0.5*ms(f.HTTPFault.Delay)
	case f.NetworkBandwidth != nil, f.CPUStress != nil, f.MemoryStress != nil:
		moved = dp99 >= 0.1*steady.Quantile(0.99) && dp99 > 1 || derr >= 1
	default:
		moved = derr >= 1 || dp99 >= 0.2*steady.Quantile(0.99) && dp99 > 5
	}
	if moved {
		return "yes", ev
	}
	return "no", ev + ": the fault did not visibly move latency or errors"
}

// recoveryTime is how long after the last fault ended the service took to be
// back at its steady level (p99 within 20% + 5ms, error rate within 1 point)
// for three seconds in a row; ok is false if it never was.
func recoveryTime(series []results.Point, lastEnd float64, steady *aggregate.Agg) (seconds float64, ok bool) {
	if steady == nil || steady.Requests == 0 {
		return 0, false
	}
	p99 := steady.Quantile(0.99)*1.2 + 5
	errRate := steady.ErrorRate() + 1
	run := 0
	for _, p := range series {
		if p.Offset+1 <= lastEnd || p.Requests == 0 {
			continue
		}
		good := p.P99 <= p99 && 100*float64(p.Failed)/float64(p.Requests) <= errRate
		if !good {
			run = 0
			continue
		}
		run++
		if run == 3 {
			return math.Max(0, p.Offset-2-lastEnd), true
		}
	}
	return 0, false
}

func ms(d schema.Duration) float64 { return float64(time.Duration(d)) / float64(time.Millisecond) }

func rtv(p *scrape.Phase, f func(*scrape.Phase) float64) float64 {
	if p == nil || p.Samples == 0 {
		return math.NaN()
	}
	return f(p)
}

func growth(p, steady *scrape.Phase, f func(*scrape.Phase) float64) float64 {
	if p == nil || steady == nil || p.Samples == 0 || steady.Samples == 0 {
		return math.NaN()
	}
	base := f(steady)
	if base <= 0 {
		return math.NaN()
	}
	return 100 * (f(p) - base) / base
}
