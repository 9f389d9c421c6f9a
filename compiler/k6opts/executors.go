package k6opts

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// MinDuration is the shortest duration and maxDuration k6 runs a scenario
// for.
const MinDuration = time.Second

// Validate checks the scenario against its executor's rules, as k6 does
// before a run:
//
//   - every executor: startTime and gracefulStop not negative;
//   - constant-arrival-rate: rate (> 0), duration (>= 1s) and
//     preAllocatedVUs (>= 0) are required; timeUnit > 0; maxVUs, when set,
//     at least preAllocatedVUs;
//   - ramping-arrival-rate: stages (at least one) and preAllocatedVUs are
//     required; startRate >= 0; timeUnit > 0; maxVUs at least
//     preAllocatedVUs;
//   - constant-vus: duration (>= 1s) is required; vus > 0;
//   - ramping-vus: stages are required; startVUs >= 0; startVUs or some
//     stage's target > 0; gracefulRampDown >= 0;
//   - per-vu-iterations and shared-iterations: vus > 0, iterations > 0,
//     maxDuration >= 1s; shared-iterations also iterations >= vus;
//   - every stage: duration and target not negative.
//
// Unset optional fields take k6's defaults (see WithDefaults). The
// returned error is nil or an *Error whose paths are relative to the
// scenario ("maxVUs", "stages[1].target").
func (s Scenario) Validate() error {
	ps := s.problems()
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Path < ps[j].Path })
	return &Error{Problems: ps}
}

// rules collects a scenario's problems, in field order.
type rules struct {
	s  Scenario
	ps []Problem
}

func (r *rules) add(msg string, keys ...string) {
	r.ps = append(r.ps, Problem{Path: FormatPath(keys), Keys: keys, Message: msg})
}

// required reports a required parameter that is missing.
func (r *rules) required(set bool, field, what string) bool {
	if !set {
		r.add(fmt.Sprintf("%s needs %s, %s", r.s.Executor, field, what), field)
	}
	return set
}

func (r *rules) positive(p *int64, field string) {
	if p != nil && *p <= 0 {
		r.add(fmt.Sprintf("%s must be greater than 0, not %d", field, *p), field)
	}
}

func (r *rules) nonNegative(p *int64, field string) {
	if p != nil && *p < 0 {
		r.add(fmt.Sprintf("%s must not be negative, not %d", field, *p), field)
	}
}

func (r *rules) nonNegativeDur(p *Duration, field string) {
	if p != nil && *p < 0 {
		r.add(fmt.Sprintf("%s must not be negative, not %s", field, p), field)
	}
}

func (r *rules) positiveDur(p *Duration, field string) {
	if p != nil && *p <= 0 {
		r.add(fmt.Sprintf("%s must be greater than 0, not %s", field, p), field)
	}
}

func (r *rules) minDur(p *Duration, field string) {
	if p != nil && p.Std() < MinDuration {
		r.add(fmt.Sprintf("%s must be at least %s (k6 runs no scenario shorter), not %s", field, Duration(MinDuration), p), field)
	}
}

func (r *rules) maxVUs() {
	s := r.s
	if s.MaxVUs != nil && s.PreAllocatedVUs != nil && *s.MaxVUs < *s.PreAllocatedVUs {
		r.add(fmt.Sprintf("maxVUs (%d) must be at least preAllocatedVUs (%d): maxVUs is the most VUs the scenario may use, the preallocated ones included", *s.MaxVUs, *s.PreAllocatedVUs), "maxVUs")
	}
}

func (r *rules) stages(unit string) {
	if len(r.s.Stages) == 0 {
		r.add(fmt.Sprintf("%s needs at least one stage {duration, target} (target in %s)", r.s.Executor, unit), "stages")
		return
	}
	for i, st := range r.s.Stages {
		idx := strconv.Itoa(i)
		if st.Duration < 0 {
			r.add(fmt.Sprintf("the duration of stage %d must not be negative, not %s", i, st.Duration), "stages", idx, "duration")
		}
		if st.Target < 0 {
			r.add(fmt.Sprintf("the target of stage %d must not be negative, not %d", i, st.Target), "stages", idx, "target")
		}
	}
}

func (s Scenario) problems() []Problem {
	r := &rules{s: s}
	r.nonNegativeDur(s.StartTime, "startTime")
	r.nonNegativeDur(s.GracefulStop, "gracefulStop")
	switch s.Executor {
	case ConstantArrivalRate:
		if r.required(s.Rate != nil, "rate", "the number of iterations to start per timeUnit") {
			r.positive(s.Rate, "rate")
		}
		r.positiveDur(s.TimeUnit, "timeUnit")
		if r.required(s.Duration != nil, "duration", `how long it runs (such as "1m")`) {
			r.minDur(s.Duration, "duration")
		}
		if r.required(s.PreAllocatedVUs != nil, "preAllocatedVUs", "the VUs to initialize before the test") {
			r.nonNegative(s.PreAllocatedVUs, "preAllocatedVUs")
		}
		r.nonNegative(s.MaxVUs, "maxVUs")
		r.maxVUs()
	case RampingArrivalRate:
		r.nonNegative(s.StartRate, "startRate")
		r.positiveDur(s.TimeUnit, "timeUnit")
		r.stages("iterations per timeUnit")
		if r.required(s.PreAllocatedVUs != nil, "preAllocatedVUs", "the VUs to initialize before the test") {
			r.nonNegative(s.PreAllocatedVUs, "preAllocatedVUs")
		}
		r.nonNegative(s.MaxVUs, "maxVUs")
		r.maxVUs()
	case ConstantVUs:
		r.positive(s.VUs, "vus")
		if r.required(s.Duration != nil, "duration", `how long it runs (such as "1m")`) {
			r.minDur(s.Duration, "duration")
		}
	case RampingVUs:
		r.nonNegative(s.StartVUs, "startVUs")
		r.stages("VUs")
		start := int64(DefaultStartVUs)
		if s.StartVUs != nil {
			start = *s.StartVUs
		}
		peak := start
		for _, st := range s.Stages {
			peak = max(peak, st.Target)
		}
		if len(s.Stages) > 0 && peak <= 0 {
			r.add("startVUs or the target of some stage must be greater than 0, or the scenario never runs a VU", "stages")
		}
		r.nonNegativeDur(s.GracefulRampDown, "gracefulRampDown")
	case PerVUIterations, SharedIterations:
		r.positive(s.VUs, "vus")
		r.positive(s.Iterations, "iterations")
		r.minDur(s.MaxDuration, "maxDuration")
		if s.Executor == SharedIterations {
			d := s.WithDefaults()
			if vus, its := *d.VUs, *d.Iterations; vus > 0 && its > 0 && its < vus {
				r.add(fmt.Sprintf("iterations (%d) must be at least vus (%d): the VUs share the iterations, so some would have none", its, vus), "iterations")
			}
		}
	default:
		r.add(unknownExecutor(s.Executor), "executor")
	}
	return r.ps
}
