package runner

import (
	"fmt"
	"strings"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/schema"
)

// Abort on breach: a phase whose SLOs set abortOnBreach is judged every
// second on its requests so far; a breached latency, errorRate or checks
// SLO stops the run (the load, then the faults) as a breach. A judgement
// needs evidence: at least AbortMinRequests requests in the phase, over at
// least AbortMinSeconds of it.
const (
	AbortMinRequests = 50
	AbortMinSeconds  = 1.0
)

// abortable are the SLOs abortOnBreach acts on (as the compiled k6 script's
// abortOnFail thresholds do).
func abortable(slo string) bool {
	return strings.HasPrefix(slo, "latency.") || slo == "errorRate" || slo == "checks"
}

// checkBreach judges the current phase's abortOnBreach SLOs on what it has
// collected so far.
func (r *run) checkBreach(now time.Time) {
	if r.col == nil || r.p.Source.SLOs == nil || r.failed() {
		return
	}
	cl := r.tl.Classify(now)
	if cl.Grace {
		return
	}
	slo := phaseSLO(r.p.Source.SLOs, cl.Phase)
	if slo == nil || !slo.AbortOnBreach {
		return
	}
	from := r.phaseStart(cl.Phase)
	if from.IsZero() || now.Sub(from).Seconds() < AbortMinSeconds {
		return
	}
	agg := r.col.SoFar(cl.Phase)
	if agg.Requests < AbortMinRequests {
		return
	}
	only := &schema.SLOs{}
	switch cl.Phase {
	case plan.Steady:
		only.Steady = slo
	case plan.FaultPhase:
		only.Fault = slo
	case plan.Recovery:
		only.Recovery = &schema.RecoverySLO{PhaseSLO: *slo}
	}
	var breached []string
	for _, s := range judge(&schema.Scenario{SLOs: only}, map[string]phaseData{cl.Phase: {agg: agg}}) {
		if s.Status == results.StatusFail && abortable(s.SLO) {
			breached = append(breached, fmt.Sprintf("%s %.2f%s (limit %s %.2f%s)", s.SLO, s.Measured, s.Unit, s.Op, s.Limit, s.Unit))
		}
	}
	if len(breached) == 0 {
		return
	}
	r.mu.Lock()
	r.res.AbortedOnBreach = true
	r.res.Breach = &results.Breach{Phase: cl.Phase, SLOs: breached, Requests: agg.Requests, Seconds: now.Sub(from).Seconds(),
		At: now.Sub(r.tl.LoadStart()).Seconds()}
	r.mu.Unlock()
	r.abort(fmt.Sprintf("abortOnBreach: the %s phase breached %s on %d requests over %.1fs; the run was stopped", cl.Phase, strings.Join(breached, ", "), agg.Requests, now.Sub(from).Seconds()))
	r.logf("%s", r.abortReason)
	if r.src != nil {
		go r.src.stop()
	}
}

// phaseSLO returns the SLOs of a phase, or nil.
func phaseSLO(s *schema.SLOs, phase string) *schema.PhaseSLO {
	switch phase {
	case plan.Steady:
		return s.Steady
	case plan.FaultPhase:
		return s.Fault
	case plan.Recovery:
		if s.Recovery != nil {
			return &s.Recovery.PhaseSLO
		}
	}
	return nil
}

// phaseStart is when the phase's judged part began, by the actual windows.
func (r *run) phaseStart(phase string) time.Time {
	start := r.tl.LoadStart()
	switch phase {
	case plan.Steady:
		return start
	case plan.FaultPhase:
		ws := r.tl.Windows()
		if len(ws) == 0 {
			return time.Time{}
		}
		first := ws[0].Start
		for _, w := range ws {
			if w.Start.Before(first) {
				first = w.Start
			}
		}
		return first
	case plan.Recovery:
		last := r.tl.LastFaultEnd()
		if last.IsZero() {
			return last
		}
		if rec, ok := r.p.Phase(plan.Recovery); ok {
			last = last.Add(time.Duration(rec.JudgeFrom - rec.Start))
		}
		return last
	}
	return time.Time{}
}
