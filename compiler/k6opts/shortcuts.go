package k6opts

// DefaultScenarioName names the scenario the shortcut options stand for.
const DefaultScenarioName = "default"

// Shortcuts returns the scenario the shortcut options (vus, duration,
// iterations, stages) stand for when no scenarios are given:
//
//   - iterations: shared-iterations with vus VUs sharing the iterations,
//     and duration, when given, as its maxDuration;
//   - duration: constant-vus with vus VUs for the duration;
//   - stages: ramping-vus from vus (as startVUs) through the stages;
//   - none of them: per-vu-iterations, one VU running one iteration.
//
// Unset fields stay nil (WithDefaults fills them). It does not check the
// combinations; Validate does.
func (o *Options) Shortcuts() Scenario {
	switch {
	case o.Iterations != nil:
		return Scenario{Executor: SharedIterations, VUs: o.VUs, Iterations: o.Iterations, MaxDuration: o.Duration}
	case o.Duration != nil:
		return Scenario{Executor: ConstantVUs, VUs: o.VUs, Duration: o.Duration}
	case len(o.Stages) > 0:
		return Scenario{Executor: RampingVUs, StartVUs: o.VUs, Stages: o.Stages}
	}
	return Scenario{Executor: PerVUIterations}
}

// shortcuts checks the shortcut options against each other and against
// scenarios, and returns the scenario they stand for (nil when scenarios
// are given or the shortcuts conflict), with its problems reported at the
// shortcut options.
func (v *validator) shortcuts(o *Options, scenariosGiven bool) *Scenario {
	hasStages := len(o.Stages) > 0 // an empty list is no stages, as in k6
	if scenariosGiven {
		for _, c := range []struct {
			key string
			set bool
		}{{"duration", o.Duration != nil}, {"iterations", o.Iterations != nil}, {"stages", hasStages}} {
			if c.set {
				v.add([]string{c.key}, nil, "%s is a shortcut for a single scenario and cannot be used together with scenarios: move it into the scenario it belongs to", c.key)
			}
		}
		if o.VUs != nil {
			v.add([]string{"vus"}, nil, "vus does not apply when scenarios are given (k6 ignores it): set vus or preAllocatedVUs in each scenario")
		}
		return nil
	}
	conflict := false
	if o.Iterations != nil && hasStages {
		v.add([]string{"iterations"}, nil, "iterations and stages cannot be used together: iterations stands for a shared-iterations scenario, stages for a ramping-vus one")
		conflict = true
	}
	if o.Duration != nil && hasStages {
		v.add([]string{"duration"}, nil, "duration and stages cannot be used together: the stages' durations already give the length of the test")
		conflict = true
	}
	if conflict {
		return nil
	}
	if o.Iterations == nil && o.Duration != nil && *o.Duration <= 0 {
		v.add([]string{"duration"}, nil, "duration must be greater than 0, not %s", o.Duration)
		return nil
	}
	if o.VUs != nil && o.Iterations == nil && o.Duration == nil && !hasStages {
		v.add([]string{"vus"}, nil, "vus alone starts no load: it sizes the scenario that duration, iterations or stages describe; add one of them, or use scenarios")
	}
	sc := o.Shortcuts()
	for _, p := range sc.problems() {
		keys := p.Keys
		if len(keys) > 0 {
			switch keys[0] {
			case "maxDuration": // duration is the maxDuration of iterations
				keys = join([]string{"duration"}, keys[1:]...)
			case "startVUs": // vus is the startVUs of stages
				keys = join([]string{"vus"}, keys[1:]...)
			}
		}
		v.add(keys, p.Err, "%s", p.Message)
	}
	return &sc
}
