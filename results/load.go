package results

import "strings"

// LoadOutcome is how a load the backend ran ended (runner.LoadOwner: an
// in-cluster k6-operator TestRun).
type LoadOutcome struct {
	// Stage is the load's last state as its engine reports it (a TestRun's "finished", "error").
	Stage string `json:"stage"`
	// Err is set when the load did not run to its end: an infrastructure error.
	Err error `json:"-"`
	// ThresholdsKnown says whether the runners' threshold results could be read.
	ThresholdsKnown bool `json:"thresholdsKnown"`
	// ThresholdsCrossed names the runners whose thresholds failed (k6 exit code 99).
	ThresholdsCrossed []string `json:"thresholdsCrossed,omitempty"`
}

func (o LoadOutcome) String() string {
	switch {
	case o.Err != nil:
		return o.Err.Error()
	case !o.ThresholdsKnown:
		return "stage " + o.Stage + "; the runners' threshold results could not be read"
	case len(o.ThresholdsCrossed) > 0:
		return "stage " + o.Stage + "; thresholds crossed on " + strings.Join(o.ThresholdsCrossed, ", ")
	}
	return "stage " + o.Stage + "; every runner's thresholds passed"
}
