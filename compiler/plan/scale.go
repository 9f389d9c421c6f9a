package plan

import (
	"fmt"
	"maps"
	"math"
	"time"

	"faultline.dev/faultline/schema"
)

// MaxTimeScale is the largest time scale Scale accepts.
const MaxTimeScale = 100

// Scale returns a copy of a scenario with every duration of its timeline
// multiplied by f: the load's length (duration, each stage, maxDuration),
// each fault's start and duration, and slos.recovery.within. 0.1 turns a
// 60s scenario into a 6s one with the same shape. Scaled durations are
// rounded to the millisecond; one that was positive stays at least 1ms.
//
// What is not part of the timeline is left alone: rates and their timeUnit
// (the load keeps its intensity), latencies of faults and SLOs, graceful
// stop and ramp-down times, guardrail intervals. The scenario itself is
// not modified. f must be in (0, MaxTimeScale]; 1 returns the scenario as
// is.
func Scale(s *schema.Scenario, f float64) (*schema.Scenario, error) {
	if math.IsNaN(f) || f <= 0 || f > MaxTimeScale {
		return nil, fmt.Errorf("time scale %v: must be a number above 0 and at most %d", f, MaxTimeScale)
	}
	if f == 1 {
		return s, nil
	}
	scale := func(d schema.Duration) schema.Duration {
		if d <= 0 {
			return d
		}
		v := time.Duration(math.Round(float64(d)*f/float64(time.Millisecond))) * time.Millisecond
		return schema.Duration(max(v, time.Millisecond))
	}
	c := *s
	c.Load.Duration = scale(s.Load.Duration)
	c.Load.MaxDuration = scale(s.Load.MaxDuration)
	if s.Load.Stages != nil {
		c.Load.Stages = make([]schema.Stage, len(s.Load.Stages))
		for i, st := range s.Load.Stages {
			st.Duration = scale(st.Duration)
			c.Load.Stages[i] = st
		}
	}
	if s.Faults != nil {
		c.Faults = maps.Clone(s.Faults)
		for name, flt := range c.Faults {
			// An instant one-shot fault's judged window (OneShotWindow)
			// is scaled too: the scaled fault gets it as its duration
			// (Chaos Mesh ignores a duration on pod-kill and
			// container-kill: the kill still happens once, at start).
			end := scale(flt.End())
			flt.Start = scale(flt.Start)
			// Scale the end rather than the duration, so that a fault that
			// ends with the load still ends with it after rounding.
			flt.Duration = max(end-flt.Start, schema.Duration(time.Millisecond))
			c.Faults[name] = flt
		}
	}
	if s.SLOs != nil && s.SLOs.Recovery != nil {
		slos := *s.SLOs
		rec := *s.SLOs.Recovery
		rec.Within = scale(rec.Within)
		slos.Recovery = &rec
		c.SLOs = &slos
	}
	return &c, nil
}
