package runner

import (
	"math"
	"slices"
	"strings"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
)

// finish judges what was collected.
func (r *run) finish() {
	res := r.res
	res.EndedAt = time.Now().UTC()
	res.Faults = nil
	if r.src != nil {
		r.src.record(r)
	}
	if n, ok := r.b.(Noter); ok {
		for _, note := range n.Notes() {
			res.Warnings = append(res.Warnings, note)
			r.logf("note: %s", note)
		}
	}
	windows := r.tl.Windows()
	pc := r.promClient()
	if pc != nil {
		r.promRuntime(pc, windows)
	}
	var data map[string]phaseData
	switch {
	case r.col != nil:
		r.col.FinalizeAll()
		data = r.judgeSamples(windows, r.col.Snapshot(), r.col.Transition())
	case res.Load != "" && !r.tl.LoadStart().IsZero() && pc != nil:
		snap, err := r.promSnapshot(pc, windows)
		if err != nil {
			r.infra("reading the in-cluster load from Prometheus: " + err.Error())
			r.windowsOnly(windows)
			break
		}
		res.LoadNote = PromSamplesNote
		data = r.judgeSamples(windows, snap, 0)
	case res.Load != "" && !r.tl.LoadStart().IsZero():
		r.windowsOnly(windows)
	}
	r.mu.Lock()
	res.Runtime = r.rtSeries
	r.mu.Unlock()
	if d, err := goroutineGrowth(r.o.ReportDir); err != nil {
		res.Warnings = append(res.Warnings, "reading the goroutine profiles: "+err.Error())
	} else {
		res.Goroutines = d
	}
	res.SLOs = judge(r.p.Source, data)
	judgeFromThresholds(res)
	r.verdict()
	res.ExitCode = results.ExitCode(res.Verdict)
}

// loadEnd is the end of the load in seconds since its start: the plan's,
// or earlier when the run ended before it.
func (r *run) loadEnd() float64 {
	loadEnd := r.p.LoadEnd.Std().Seconds()
	if start := r.tl.LoadStart(); !start.IsZero() {
		loadEnd = math.Min(loadEnd, r.res.EndedAt.Sub(start).Seconds())
	}
	return loadEnd
}

// judgeSamples fills the phases, the faults' windows and evidence, the
// series and the recovery time from the collected samples, and returns
// what the SLOs are judged on.
func (r *run) judgeSamples(windows []results.Window, snap Snapshot, transition int64) map[string]phaseData {
	res := r.res
	res.Series, res.LateRequests = snap.Series, snap.Late
	data := map[string]phaseData{}
	for _, b := range phaseBounds(r.p, windows, r.loadEnd()) {
		agg := snap.Phases[b.Name]
		r.mu.Lock()
		rt := r.runtime[b.Name]
		r.mu.Unlock()
		data[b.Name] = phaseData{agg: agg, runtime: rt, seconds: b.End - b.JudgedFrom}
		res.Phases = append(res.Phases, summarize(b, agg, rt))
	}
	if snap.Grace != nil && snap.Grace.Requests > 0 {
		res.RecoveryGraceRequests = snap.Grace.Requests
	}
	res.TransitionRequests = transition
	for _, w := range windows {
		fr := results.FaultResult{Window: w}
		if a := snap.PerFault[w.Fault]; a != nil {
			fr.Requests, fr.P50, fr.P99, fr.ErrorRate = a.Requests, nan0(a.Quantile(0.5)), nan0(a.Quantile(0.99)), nan0(a.ErrorRate())
			fr.Effective, fr.Evidence = efficacy(r.p.Source.Faults[w.Fault], a, snap.Phases[plan.Steady])
		} else {
			fr.Effective, fr.Evidence = "unknown", "no requests during the fault"
		}
		res.Faults = append(res.Faults, fr)
	}
	if last, start := r.tl.LastFaultEnd(), r.tl.LoadStart(); !last.IsZero() && !start.IsZero() {
		secs, ok := recoveryTime(snap.Series, last.Sub(start).Seconds(), snap.Phases[plan.Steady])
		res.Recovery = &results.Recovery{Recovered: ok, Seconds: secs}
	}
	return data
}

// windowsOnly fills, for a load without samples, the phases' and the
// faults' actual windows, without numbers.
func (r *run) windowsOnly(windows []results.Window) {
	for _, b := range phaseBounds(r.p, windows, r.loadEnd()) {
		r.mu.Lock()
		rt := r.runtime[b.Name]
		r.mu.Unlock()
		r.res.Phases = append(r.res.Phases, summarize(b, nil, rt))
	}
	for _, w := range windows {
		r.res.Faults = append(r.res.Faults, results.FaultResult{Window: w, Effective: "unknown", Evidence: "in-cluster load: no samples"})
	}
}

// verdict decides the run's one outcome: an infrastructure error outranks
// an abort, which outranks the SLOs; a phase without data is an error,
// never a pass.
func (r *run) verdict() {
	res := r.res
	r.mu.Lock()
	infra, abort := r.infraReason, r.abortReason
	r.mu.Unlock()
	switch {
	case infra != "":
		res.Verdict, res.Reason = results.VerdictError, infra
	case abort != "" && res.AbortedOnBreach && anyFailed(res.SLOs):
		res.Verdict, res.Reason = results.VerdictSLOBreach, abort
	case abort != "":
		res.Verdict, res.Reason = results.VerdictAborted, abort
	case res.LoadOutcome != nil && len(res.LoadOutcome.ThresholdsCrossed) > 0:
		res.Verdict = results.VerdictSLOBreach
		res.Reason = "k6 thresholds crossed on runner(s) " + strings.Join(res.LoadOutcome.ThresholdsCrossed, ", ") +
			" (in-cluster load: judged per runner from the TestRun's outcome; per-phase numbers are not available)"
	default:
		r.judgedVerdict()
	}
}

// judgedVerdict is the verdict of a run that went to its end.
func (r *run) judgedVerdict() {
	res := r.res
	var empty, failed []string
	for _, s := range res.SLOs {
		switch {
		case s.Status == results.StatusNoData && !slices.Contains(empty, s.Phase+" "+s.SLO):
			empty = append(empty, s.Phase+" "+s.SLO)
		case s.Status == results.StatusFail:
			failed = append(failed, s.Phase+" "+s.SLO)
		}
	}
	switch {
	case len(empty) > 0:
		res.Verdict = results.VerdictError
		res.Reason = "no data to judge: " + strings.Join(empty, ", ") + " (a phase without samples is an error, not a pass)"
		if res.Load != "" && res.LoadOutcome != nil {
			res.Reason += "; in-cluster load: per-phase numbers are not available; the TestRun's outcome: " + res.LoadOutcome.String()
		}
	case len(failed) > 0:
		res.Verdict = results.VerdictSLOBreach
		res.Reason = "SLO breached: " + strings.Join(failed, ", ")
	default:
		res.Verdict, res.Reason = results.VerdictPass, "every SLO met"
	}
}

// k6Judged reports whether the compiled k6 script enforces an SLO as a
// per-phase threshold (compiler/k6): latency, errors, checks, throughput.
func k6Judged(slo string) bool {
	return strings.HasPrefix(slo, "latency.") || slo == "errorRate" || slo == "checks" || slo == "throughput"
}

// judgeFromThresholds fills, for an in-cluster load, the SLOs k6 enforced:
// met when every runner's thresholds passed. A crossed threshold does not
// say which SLO it was, so those stay no-data and the verdict is a breach
// (see finish); an unknown outcome leaves them no-data.
func judgeFromThresholds(res *results.Result) {
	out := res.LoadOutcome
	if res.Load == "" || out == nil || out.Err != nil || !out.ThresholdsKnown || len(out.ThresholdsCrossed) > 0 {
		return
	}
	for i := range res.SLOs {
		if s := &res.SLOs[i]; s.Status == results.StatusNoData && k6Judged(s.SLO) {
			s.Status = results.StatusPass
			s.Note = "k6 threshold passed on every runner (per runner, planned phase window); no measured value in-cluster"
		}
	}
}

func anyFailed(ss []results.SLOResult) bool {
	for _, s := range ss {
		if s.Status == results.StatusFail {
			return true
		}
	}
	return false
}

// phaseBounds computes the actual phase windows (seconds since load start).
func phaseBounds(p *plan.Plan, windows []results.Window, loadEnd float64) []results.PhaseResult {
	if len(windows) == 0 {
		return []results.PhaseResult{{Name: plan.Steady, Start: 0, End: loadEnd, JudgedFrom: 0}}
	}
	first, last := math.Inf(1), 0.0
	for _, w := range windows {
		first = math.Min(first, w.StartOffset)
		end := w.EndOffset
		if w.End.IsZero() {
			end = loadEnd
		}
		last = math.Max(last, end)
	}
	var out []results.PhaseResult
	if first > 0 {
		out = append(out, results.PhaseResult{Name: plan.Steady, Start: 0, End: first})
	}
	out = append(out, results.PhaseResult{Name: plan.FaultPhase, Start: first, End: last, JudgedFrom: first})
	if last < loadEnd {
		judge := last
		if rec, ok := p.Phase(plan.Recovery); ok {
			judge = math.Min(last+time.Duration(rec.JudgeFrom-rec.Start).Seconds(), loadEnd)
		}
		out = append(out, results.PhaseResult{Name: plan.Recovery, Start: last, End: loadEnd, JudgedFrom: judge})
	}
	return out
}
