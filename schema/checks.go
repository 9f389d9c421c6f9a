package schema

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// check runs the rules the schema cannot state well in CUE on a decoded,
// schema-valid scenario: fields an executor or mode does not use, empty
// phases that SLOs are stated for, HTTP faults that do nothing.
func check(l *Loaded) Diagnostics {
	s := l.Scenario
	var ds Diagnostics
	add := func(path, format string, args ...any) {
		ds = append(ds, l.Pos(path, fmt.Sprintf(format, args...)))
	}

	// Load parameters the executor does not use: k6 rejects them.
	uses := map[string][]string{
		ConstantArrivalRate: {"rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"},
		RampingArrivalRate:  {"startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"},
		ConstantVUs:         {"vus", "duration"},
		RampingVUs:          {"startVUs", "stages", "gracefulRampDown"},
		PerVUIterations:     {"vus", "iterations", "maxDuration"},
		SharedIterations:    {"vus", "iterations", "maxDuration"},
	}[s.Load.Executor]
	ld := s.Load
	for _, p := range []struct {
		name string
		set  bool
	}{
		{"rate", ld.Rate != 0}, {"startRate", ld.StartRate != nil}, {"timeUnit", ld.TimeUnit != 0},
		{"duration", ld.Duration != 0}, {"stages", ld.Stages != nil}, {"preAllocatedVUs", ld.PreAllocatedVUs != 0},
		{"maxVUs", ld.MaxVUs != 0}, {"vus", ld.VUs != 0}, {"startVUs", ld.StartVUs != nil},
		{"iterations", ld.Iterations != 0}, {"maxDuration", ld.MaxDuration != 0}, {"gracefulRampDown", ld.GracefulRampDown != nil},
	} {
		if p.set && !slices.Contains(uses, p.name) {
			add("load."+p.name, "executor %s does not use %s; it takes %s", ld.Executor, p.name, strings.Join(uses, ", "))
		}
	}

	// Faults: value only where the mode uses it; HTTP faults must act.
	names := sortedKeys(s.Faults)
	for _, n := range names {
		f := s.Faults[n]
		mode := f.Mode
		if mode == "" {
			mode = ModeOne
		}
		if f.Value != 0 && (mode == ModeOne || mode == ModeAll) {
			add("faults."+n+".value", "mode %s does not use value; set mode to fixed, fixed-percent or random-max-percent, or remove value", mode)
		}
		if h := f.HTTPFault; h != nil {
			if !h.Abort && h.Delay == 0 && h.Replace == nil {
				add("faults."+n+".httpFault", "an httpFault does nothing without abort, delay or replace")
			}
			if h.Target == "request" && h.Code != 0 {
				add("faults."+n+".httpFault.code", "code selects responses; it needs target \"response\"")
			}
			if h.Target == "request" && h.Replace != nil && h.Replace.Code != 0 {
				add("faults."+n+".httpFault.replace.code", "a request has no status code; replace.code needs target \"response\"")
			}
		}
		if f.NetworkDelay != nil && f.NetworkDelay.Jitter > f.NetworkDelay.Latency {
			add("faults."+n+".networkDelay.jitter", "jitter %s is larger than latency %s: delays would be clipped at zero", f.NetworkDelay.Jitter, f.NetworkDelay.Latency)
		}
	}

	// SLOs for phases the timeline does not have.
	total := loadLength(s.Load)
	if s.SLOs != nil {
		if len(s.Faults) == 0 {
			if s.SLOs.Fault != nil {
				add("slos.fault", "the scenario has no faults, so no fault phase: remove slos.fault or add a fault")
			}
			if s.SLOs.Recovery != nil {
				add("slos.recovery", "the scenario has no faults, so no recovery phase: remove slos.recovery or add a fault")
			}
		} else {
			first, last := time.Duration(1<<62), time.Duration(0)
			for _, f := range s.Faults {
				first = min(first, f.Start.Std())
				last = max(last, f.End().Std())
			}
			if s.SLOs.Steady != nil && first == 0 {
				add("slos.steady", "the first fault starts at 0s, so there is no steady phase: start it later or remove slos.steady")
			}
			if s.SLOs.Recovery != nil {
				rest := total - last
				if rest <= 0 {
					add("slos.recovery", "the last fault ends when the load ends (%s), so there is no recovery phase: end it earlier or lengthen the load", Duration(total))
				} else if w := s.SLOs.Recovery.Within.Std(); w >= rest {
					add("slos.recovery.within", "within %s leaves nothing to judge: the recovery phase lasts %s (load end %s minus last fault end %s)", Duration(w), Duration(rest), Duration(total), Duration(last))
				}
			}
		}
	}
	return ds
}

// loadLength is the planned length of the load, as the schema computes it.
func loadLength(l Load) time.Duration {
	switch {
	case l.Duration != 0:
		return l.Duration.Std()
	case len(l.Stages) > 0:
		var t time.Duration
		for _, s := range l.Stages {
			t += s.Duration.Std()
		}
		return t
	case l.MaxDuration != 0:
		return l.MaxDuration.Std()
	}
	return 10 * time.Minute
}

// LoadLength is the planned length of the scenario's load: its duration, the
// sum of its stages, or an iteration executor's maxDuration (default 10m).
func (s *Scenario) LoadLength() time.Duration { return loadLength(s.Load) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
