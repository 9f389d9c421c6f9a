// Package diff holds the result of comparing a run with its golden baseline:
// the types only, so that results.Result can carry a diff (in results.json)
// without importing the golden package, which reads results.Result.
package diff

// Statuses of one metric.
const (
	StatusOK         = "ok"
	StatusRegression = "regression"
	StatusImproved   = "improved"
	StatusNoData     = "no-data"
)

// Directions: which way a metric gets better.
const (
	LowerIsBetter  = "lower-is-better"
	HigherIsBetter = "higher-is-better"
)

// Report is a run compared with its golden baseline.
type Report struct {
	// Baseline is the baseline file compared with.
	Baseline string `json:"baseline"`
	Scenario string `json:"scenario"`
	// BaselineVersion is the scenario version the baseline was blessed
	// from; MeasuredVersion the version of this run. Same major always.
	BaselineVersion string `json:"baselineVersion"`
	MeasuredVersion string `json:"measuredVersion"`
	// BaselineCreated is when the baseline was blessed (RFC 3339).
	BaselineCreated string `json:"baselineCreated"`
	BaselineRunID   string `json:"baselineRunId,omitempty"`
	// Status is "regression" when any metric regressed, else "ok".
	Status       string `json:"status"`
	Regressions  int    `json:"regressions"`
	Improvements int    `json:"improvements"`
	// Notes say what differs between the baseline's environment and this
	// run's (minor/patch version, backend, target, faultline version).
	Notes  []string `json:"notes,omitempty"`
	Phases []Phase  `json:"phases"`
	// Updated is set when this run re-blessed the baseline (--update-golden).
	Updated bool `json:"updated,omitempty"`
}

// Phase is one phase's metrics, compared.
type Phase struct {
	Phase   string   `json:"phase"`
	Metrics []Metric `json:"metrics"`
}

// Metric is one metric of one phase, compared with the baseline.
type Metric struct {
	Phase  string `json:"phase"`
	Metric string `json:"metric"`
	// Unit of Baseline, Measured, Change, Allowed: ms, %, req/s, MB or ""
	// (a count).
	Unit      string `json:"unit"`
	Direction string `json:"direction"`

	Baseline        float64 `json:"baseline"`
	BaselineSamples int64   `json:"baselineSamples"`
	Measured        float64 `json:"measured"`
	MeasuredSamples int64   `json:"measuredSamples"`
	// Change is measured minus baseline, in the metric's unit.
	Change float64 `json:"change"`
	// ChangePercent is the change relative to the baseline; absent when
	// the baseline is zero.
	ChangePercent *float64 `json:"changePercent,omitempty"`
	// Allowed is how far the metric may move in its worse direction before
	// it is a regression: the largest of the limits set (a change counts
	// only when it exceeds every one of them).
	Allowed float64 `json:"allowed"`
	// Rule spells the limits out, e.g. "15% of baseline, floor 2ms".
	Rule string `json:"rule"`
	// Relative (percent of the baseline) and Absolute (in the unit) are the
	// tolerances applied; NoiseFloor is the metric's floor.
	Relative   *float64 `json:"relative,omitempty"`
	Absolute   *float64 `json:"absolute,omitempty"`
	NoiseFloor float64  `json:"noiseFloor"`
	Status     string   `json:"status"`
}

// RegressedMetrics returns every regressed metric, in phase order.
func (r *Report) RegressedMetrics() []Metric {
	var out []Metric
	if r == nil {
		return out
	}
	for _, p := range r.Phases {
		for _, m := range p.Metrics {
			if m.Status == StatusRegression {
				out = append(out, m)
			}
		}
	}
	return out
}
