package k6opts

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Executor names, as k6 spells them.
const (
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	PerVUIterations     = "per-vu-iterations"
	SharedIterations    = "shared-iterations"
)

// Executors lists every executor this model knows, in k6's documentation order.
var Executors = []string{SharedIterations, PerVUIterations, ConstantVUs, RampingVUs, ConstantArrivalRate, RampingArrivalRate}

// Defaults k6's documentation gives for the executor parameters.
const (
	DefaultTimeUnit         = time.Second
	DefaultGracefulStop     = 30 * time.Second
	DefaultGracefulRampDown = 30 * time.Second
	DefaultMaxDuration      = 10 * time.Minute
	DefaultVUs              = 1
	DefaultStartVUs         = 1
	DefaultIterations       = 1
	DefaultExec             = "default"
)

// Duration is a k6 duration: in JSON a Go duration string ("30s", "1m30s")
// or a number of milliseconds, as k6 accepts both. It marshals as the
// shortest duration string.
type Duration time.Duration

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String writes the duration the way k6 parses it: Go syntax, without
// zero units ("1m0s" is "1m").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			// A bare number in a string is milliseconds, as k6 reads it.
			if ms, nerr := strconv.ParseFloat(x, 64); nerr == nil {
				*d = Duration(ms * float64(time.Millisecond))
				return nil
			}
			return fmt.Errorf("%q is not a duration: want a number and a unit, such as \"30s\", \"1m30s\" or \"250ms\"", x)
		}
		*d = Duration(p)
	case float64:
		*d = Duration(x * float64(time.Millisecond))
	default:
		return fmt.Errorf("a duration must be a string such as \"30s\" or a number of milliseconds, not %s", string(b))
	}
	return nil
}

// Stage is one step of a ramping executor: ramp linearly to Target over
// Duration.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   int64    `json:"target"`
}

// Scenario is one entry of the options' `scenarios`: the fields of every
// executor; which of them apply depends on Executor (see Fields). Unset
// optional fields are nil; WithDefaults fills them as k6 would.
type Scenario struct {
	Executor  string    `json:"executor"`
	StartTime *Duration `json:"startTime,omitempty"`
	// Arrival-rate executors.
	Rate      *int64    `json:"rate,omitempty"`
	StartRate *int64    `json:"startRate,omitempty"`
	TimeUnit  *Duration `json:"timeUnit,omitempty"`
	// Duration of constant-arrival-rate and constant-vus.
	Duration *Duration `json:"duration,omitempty"`
	// Stages of the ramping executors.
	Stages          []Stage `json:"stages,omitempty"`
	PreAllocatedVUs *int64  `json:"preAllocatedVUs,omitempty"`
	MaxVUs          *int64  `json:"maxVUs,omitempty"`
	// VU executors.
	VUs              *int64    `json:"vus,omitempty"`
	StartVUs         *int64    `json:"startVUs,omitempty"`
	Iterations       *int64    `json:"iterations,omitempty"`
	MaxDuration      *Duration `json:"maxDuration,omitempty"`
	GracefulRampDown *Duration `json:"gracefulRampDown,omitempty"`
	// Common to every executor.
	GracefulStop *Duration         `json:"gracefulStop,omitempty"`
	Exec         string            `json:"exec,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
}

// Fields lists the JSON names of the fields an executor accepts, besides
// the common ones (executor, startTime, gracefulStop, exec, env, tags).
// Nil for an unknown executor.
func Fields(executor string) []string {
	switch executor {
	case ConstantArrivalRate:
		return []string{"rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"}
	case RampingArrivalRate:
		return []string{"startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"}
	case ConstantVUs:
		return []string{"vus", "duration"}
	case RampingVUs:
		return []string{"startVUs", "stages", "gracefulRampDown"}
	case PerVUIterations, SharedIterations:
		return []string{"vus", "iterations", "maxDuration"}
	}
	return nil
}

// CommonFields are the fields every executor accepts.
var CommonFields = []string{"executor", "startTime", "gracefulStop", "exec", "env", "tags"}

func ptr[T any](v T) *T { return &v }

// WithDefaults returns a copy of the scenario with every optional field
// its executor uses set to k6's default where it was unset: startTime 0,
// gracefulStop 30s, exec "default", timeUnit 1s, startRate 0, maxVUs =
// preAllocatedVUs, vus 1, startVUs 1, iterations 1, maxDuration 10m,
// gracefulRampDown 30s. Required fields (rate, duration, stages,
// preAllocatedVUs) stay as they are.
func (s Scenario) WithDefaults() Scenario {
	if s.StartTime == nil {
		s.StartTime = ptr(Duration(0))
	}
	if s.GracefulStop == nil {
		s.GracefulStop = ptr(Duration(DefaultGracefulStop))
	}
	if s.Exec == "" {
		s.Exec = DefaultExec
	}
	switch s.Executor {
	case ConstantArrivalRate, RampingArrivalRate:
		if s.TimeUnit == nil {
			s.TimeUnit = ptr(Duration(DefaultTimeUnit))
		}
		if s.Executor == RampingArrivalRate && s.StartRate == nil {
			s.StartRate = ptr(int64(0))
		}
		if s.MaxVUs == nil && s.PreAllocatedVUs != nil {
			s.MaxVUs = ptr(*s.PreAllocatedVUs)
		}
	case ConstantVUs:
		if s.VUs == nil {
			s.VUs = ptr(int64(DefaultVUs))
		}
	case RampingVUs:
		if s.StartVUs == nil {
			s.StartVUs = ptr(int64(DefaultStartVUs))
		}
		if s.GracefulRampDown == nil {
			s.GracefulRampDown = ptr(Duration(DefaultGracefulRampDown))
		}
	case PerVUIterations, SharedIterations:
		if s.VUs == nil {
			s.VUs = ptr(int64(DefaultVUs))
		}
		if s.Iterations == nil {
			s.Iterations = ptr(int64(DefaultIterations))
		}
		if s.MaxDuration == nil {
			s.MaxDuration = ptr(Duration(DefaultMaxDuration))
		}
	}
	return s
}

// Int returns *p, or 0 when p is nil.
func Int(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// Dur returns *p as a time.Duration, or 0 when p is nil.
func Dur(p *Duration) time.Duration {
	if p == nil {
		return 0
	}
	return time.Duration(*p)
}
