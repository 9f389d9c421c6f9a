package golden

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/schema"
)

// DefaultRelative is the relative tolerance, in percent of the baseline,
// when the scenario's baseline section says nothing.
const DefaultRelative = 15.0

// MetricDef describes one metric compared against the baseline.
type MetricDef struct {
	Name      string
	Unit      string
	Direction string
	// NoiseFloor: a change smaller than this (in Unit) never counts,
	// whatever the relative tolerance says: a tiny change on a tiny value.
	NoiseFloor float64
	// Tail is the share of samples above a latency quantile (0.01 for
	// p99, 1 for max as a quantile of one sample); 0 for other metrics.
	Tail  float64
	value func(p results.PhaseResult) (float64, int64)
}

// TailSamples is how many samples a latency quantile's tail must hold on
// both sides for the metric's own noise floor to apply; a thinner tail (p99
// of 160 requests rests on 1.6 of them, max always on one) is as noisy as a
// single request, and gets MaxNoiseFloor.
const TailSamples = 5.0

// MaxNoiseFloor is the noise floor, in ms, of max and of latency quantiles
// resting on fewer than TailSamples samples: one slow request (a GC pause,
// a scheduler hiccup on a shared machine) moves them by this much.
const MaxNoiseFloor = 10.0

// noiseFloor is the floor of one metric given the samples on both sides.
func (d MetricDef) noiseFloor(base, meas int64) (float64, string) {
	if d.Tail == 0 {
		return d.NoiseFloor, ""
	}
	n := float64(min(base, meas))
	if n*d.Tail >= TailSamples && d.Tail < 1 {
		return d.NoiseFloor, ""
	}
	if d.Tail >= 1 {
		return MaxNoiseFloor, ""
	}
	return MaxNoiseFloor, fmt.Sprintf(" (%s rests on %.1f samples)", d.Name, n*d.Tail)
}

func requests(p results.PhaseResult) int64 { return p.Requests }

func runtimeSamples(p results.PhaseResult) int64 { return int64(p.RuntimeSeen) }

// Metrics are the metrics of schema's #MetricName, in report order.
var Metrics = []MetricDef{
	{"p50", "ms", diff.LowerIsBetter, 2, 0.5, func(p results.PhaseResult) (float64, int64) { return p.P50, requests(p) }},
	{"p90", "ms", diff.LowerIsBetter, 2, 0.1, func(p results.PhaseResult) (float64, int64) { return p.P90, requests(p) }},
	{"p95", "ms", diff.LowerIsBetter, 2, 0.05, func(p results.PhaseResult) (float64, int64) { return p.P95, requests(p) }},
	{"p99", "ms", diff.LowerIsBetter, 2, 0.01, func(p results.PhaseResult) (float64, int64) { return p.P99, requests(p) }},
	{"avg", "ms", diff.LowerIsBetter, 2, 0, func(p results.PhaseResult) (float64, int64) { return p.Avg, requests(p) }},
	{"max", "ms", diff.LowerIsBetter, 2, 1, func(p results.PhaseResult) (float64, int64) { return p.Max, requests(p) }},
	{"errorRate", "%", diff.LowerIsBetter, 0.5, 0, func(p results.PhaseResult) (float64, int64) { return p.ErrorRate, requests(p) }},
	{"checks", "%", diff.HigherIsBetter, 0.5, 0, func(p results.PhaseResult) (float64, int64) { return p.ChecksRate, requests(p) }},
	{"throughput", "req/s", diff.HigherIsBetter, 1, 0, func(p results.PhaseResult) (float64, int64) { return p.Throughput, requests(p) }},
	{"goroutines", "", diff.LowerIsBetter, 5, 0, func(p results.PhaseResult) (float64, int64) { return p.Goroutines, runtimeSamples(p) }},
	{"heapInUse", "MB", diff.LowerIsBetter, 1, 0, func(p results.PhaseResult) (float64, int64) { return p.HeapInUse / 1e6, runtimeSamples(p) }},
	{"gcPause", "ms", diff.LowerIsBetter, 1, 0, func(p results.PhaseResult) (float64, int64) { return p.GCPauseP99, int64(p.GCPauseSeen) }},
	{"schedLatency", "ms", diff.LowerIsBetter, 1, 0, func(p results.PhaseResult) (float64, int64) { return p.SchedP99, int64(p.SchedSeen) }},
}

// NotExposed reports a runtime metric the target does not expose: its
// Go runtime was scraped in the phase, but never with that metric.
func NotExposed(p results.PhaseResult, metric string) bool {
	switch metric {
	case "gcPause":
		return p.RuntimeSeen > 0 && p.GCPauseSeen == 0
	case "schedLatency":
		return p.RuntimeSeen > 0 && p.SchedSeen == 0
	}
	return false
}

// Measure returns a phase's metrics as the baseline stores them; a metric
// without samples has Samples 0.
func Measure(p results.PhaseResult) map[string]Sample {
	out := make(map[string]Sample, len(Metrics))
	for _, m := range Metrics {
		v, n := m.value(p)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			n = 0
		}
		if n == 0 {
			v = 0
		}
		out[m.Name] = Sample{Value: v, Samples: n, Unit: m.Unit}
	}
	return out
}

// Tolerance returns the tolerance of one metric in one phase: the phase's
// own entry for the metric, else the scenario's default, else relative 15%.
func Tolerance(tol *schema.Baseline, phase, metric string) schema.Tolerance {
	if tol != nil {
		var m map[string]schema.Tolerance
		switch phase {
		case "steady":
			m = tol.Steady
		case "fault":
			m = tol.Fault
		case "recovery":
			m = tol.Recovery
		}
		if t, ok := m[metric]; ok {
			return t
		}
		if tol.Default != nil {
			return *tol.Default
		}
	}
	rel := DefaultRelative
	return schema.Tolerance{Relative: &rel}
}

// Diff compares a run with a baseline under the scenario's tolerances (its
// `baseline` section; nil for the defaults). A baseline of another scenario
// or another major version is refused with an error wrapping ErrRefused.
func Diff(res *results.Result, base *Baseline, path string, tol *schema.Baseline) (*diff.Report, error) {
	if base.Scenario != res.Scenario {
		return nil, fmt.Errorf("baseline %s is of scenario %q, not %q: %w", path, base.Scenario, res.Scenario, ErrRefused)
	}
	major, err := Major(res.Version)
	if err != nil {
		return nil, err
	}
	if major != base.Major {
		return nil, &MajorError{Path: path, Scenario: res.Scenario, Baseline: base.Version, Measured: res.Version, BaselineMaj: base.Major, MeasuredMj: major}
	}
	rep := &diff.Report{Baseline: path, Scenario: res.Scenario, BaselineVersion: base.Version, MeasuredVersion: res.Version,
		BaselineCreated: base.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), BaselineRunID: base.Environment.RunID, Status: diff.StatusOK}
	if base.Version != res.Version {
		rep.Notes = append(rep.Notes, fmt.Sprintf("baseline blessed from version %s, this run is %s: same major, compared", base.Version, res.Version))
	}
	env := base.Environment
	for _, d := range []struct{ what, base, run string }{
		{"backend", env.Backend, res.Backend},
		{"target", env.Target, res.Target},
		{"faultline version", env.FaultlineVersion, res.FaultlineVersion},
	} {
		if d.base != d.run {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s differs: baseline %s, this run %s", d.what, d.base, d.run))
		}
	}
	if env.TimeScale != res.TimeScale {
		rep.Notes = append(rep.Notes, fmt.Sprintf("time scale differs: baseline %s, this run %s (--time-scale): phases of other lengths", scale(env.TimeScale), scale(res.TimeScale)))
	}
	if env.ContentHash != "" && res.ContentHash != "" && env.ContentHash != res.ContentHash && base.Version == res.Version {
		rep.Notes = append(rep.Notes, "the scenario's content changed since the baseline was blessed, under the same version")
	}
	basePhases := map[string]Phase{}
	for _, p := range base.Phases {
		basePhases[p.Name] = p
	}
	seen := map[string]bool{}
	for _, p := range res.Phases {
		seen[p.Name] = true
		bp, ok := basePhases[p.Name]
		if !ok {
			rep.Notes = append(rep.Notes, fmt.Sprintf("phase %s is not in the baseline", p.Name))
		}
		measured := Measure(p)
		pd := diff.Phase{Phase: p.Name}
		for _, def := range Metrics {
			m := compare(def, p.Name, bp.Metrics[def.Name], measured[def.Name], Tolerance(tol, p.Name, def.Name))
			switch m.Status {
			case diff.StatusRegression:
				rep.Regressions++
			case diff.StatusImproved:
				rep.Improvements++
			}
			pd.Metrics = append(pd.Metrics, m)
		}
		rep.Phases = append(rep.Phases, pd)
	}
	for _, p := range base.Phases {
		if !seen[p.Name] {
			rep.Notes = append(rep.Notes, fmt.Sprintf("phase %s of the baseline is not in this run", p.Name))
		}
	}
	if rep.Regressions > 0 {
		rep.Status = diff.StatusRegression
	}
	return rep, nil
}

// compare judges one metric. The worse-direction change counts as a
// regression only when it exceeds every limit set: the noise floor, the
// relative tolerance (percent of the baseline) and the absolute one. An
// improvement is judged the same way, mirrored.
func compare(def MetricDef, phase string, base, meas Sample, t schema.Tolerance) diff.Metric {
	m := diff.Metric{Phase: phase, Metric: def.Name, Unit: def.Unit, Direction: def.Direction,
		Baseline: base.Value, BaselineSamples: base.Samples, Measured: meas.Value, MeasuredSamples: meas.Samples,
		Relative: t.Relative, Absolute: t.Absolute}
	floor, why := def.noiseFloor(base.Samples, meas.Samples)
	m.NoiseFloor = floor
	allowed := floor
	rule := []string{}
	if t.Relative != nil {
		r := *t.Relative / 100 * math.Abs(base.Value)
		allowed = math.Max(allowed, r)
		rule = append(rule, fmt.Sprintf("%s%% of baseline", trim(*t.Relative)))
	}
	if t.Absolute != nil {
		allowed = math.Max(allowed, *t.Absolute)
		rule = append(rule, ruleValue(*t.Absolute, def.Unit))
	}
	rule = append(rule, "floor "+ruleValue(floor, def.Unit)+why)
	m.Allowed, m.Rule = allowed, strings.Join(rule, ", ")
	if base.Samples == 0 || meas.Samples == 0 {
		m.Status = diff.StatusNoData
		return m
	}
	m.Change = meas.Value - base.Value
	if base.Value != 0 {
		pct := 100 * m.Change / math.Abs(base.Value)
		m.ChangePercent = &pct
	}
	worse := m.Change
	if def.Direction == diff.HigherIsBetter {
		worse = -worse
	}
	exceeds := func(d float64) bool {
		if d <= floor {
			return false
		}
		if t.Relative != nil && d <= *t.Relative/100*math.Abs(base.Value) {
			return false
		}
		if t.Absolute != nil && d <= *t.Absolute {
			return false
		}
		return true
	}
	switch {
	case exceeds(worse):
		m.Status = diff.StatusRegression
	case exceeds(-worse):
		m.Status = diff.StatusImproved
	default:
		m.Status = diff.StatusOK
	}
	return m
}

// FormatValue prints a value in its unit: "12.3ms", "0.50%", "40.0 req/s",
// "21", "10.5MB".
func FormatValue(v float64, unit string) string {
	switch unit {
	case "ms":
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	case "%":
		return strconv.FormatFloat(v, 'f', 2, 64) + "%"
	case "req/s":
		return strconv.FormatFloat(v, 'f', 1, 64) + " req/s"
	case "MB":
		return strconv.FormatFloat(v, 'f', 1, 64) + "MB"
	case "bytes":
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "MB"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// FormatChange prints a signed change in a unit: "+12.3ms", "-0.50%" (for
// percentages "points").
func FormatChange(v float64, unit string) string {
	s := FormatValue(v, unit)
	if unit == "%" {
		s = strings.TrimSuffix(s, "%") + " points"
	}
	if v >= 0 {
		return "+" + s
	}
	return s
}

func trim(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// ruleValue prints a limit: percentages of errorRate and checks are points.
func ruleValue(v float64, unit string) string {
	if unit == "%" {
		return trim(v) + " points"
	}
	return FormatValue(v, unit)
}

func scale(v float64) string {
	if v == 0 {
		return "1 (as written)"
	}
	return trim(v)
}
