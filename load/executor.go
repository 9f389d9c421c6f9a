package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"faultline.dev/faultline/compiler/k6opts"
)

// executor runs one k6 executor's schedule.
type executor interface {
	// run runs the schedule from start (the engine's start instant) to
	// its end, graceful stop included.
	run(ctx context.Context, e *Engine, start time.Time)
}

// newExecutor is the closed table of the six executors.
func newExecutor(sc k6opts.Scenario) (executor, error) {
	b := base{name: sc.Executor, startTime: k6opts.Dur(sc.StartTime), gracefulStop: k6opts.Dur(sc.GracefulStop)}
	var x interface {
		executor
		Validate() error
	}
	switch sc.Executor {
	case k6opts.ConstantArrivalRate:
		x = &ConstantArrivalRate{base: b, Rate: k6opts.Int(sc.Rate), TimeUnit: k6opts.Dur(sc.TimeUnit), Duration: k6opts.Dur(sc.Duration),
			PreAllocatedVUs: k6opts.Int(sc.PreAllocatedVUs), MaxVUs: k6opts.Int(sc.MaxVUs)}
	case k6opts.RampingArrivalRate:
		x = &RampingArrivalRate{base: b, StartRate: k6opts.Int(sc.StartRate), TimeUnit: k6opts.Dur(sc.TimeUnit), Stages: sc.Stages,
			PreAllocatedVUs: k6opts.Int(sc.PreAllocatedVUs), MaxVUs: k6opts.Int(sc.MaxVUs)}
	case k6opts.ConstantVUs:
		x = &ConstantVUs{base: b, VUs: k6opts.Int(sc.VUs), Duration: k6opts.Dur(sc.Duration)}
	case k6opts.RampingVUs:
		x = &RampingVUs{base: b, StartVUs: k6opts.Int(sc.StartVUs), Stages: sc.Stages, GracefulRampDown: k6opts.Dur(sc.GracefulRampDown)}
	case k6opts.PerVUIterations:
		x = &PerVUIterations{base: b, VUs: k6opts.Int(sc.VUs), Iterations: k6opts.Int(sc.Iterations), MaxDuration: k6opts.Dur(sc.MaxDuration)}
	case k6opts.SharedIterations:
		x = &SharedIterations{base: b, VUs: k6opts.Int(sc.VUs), Iterations: k6opts.Int(sc.Iterations), MaxDuration: k6opts.Dur(sc.MaxDuration)}
	default:
		return nil, fmt.Errorf("load: unknown executor %q: want one of %s", sc.Executor, strings.Join(k6opts.Executors, ", "))
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("load: %s: %w", sc.Executor, err)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("load: %s: %w", sc.Executor, err)
	}
	return x, nil
}

// Step is one point of a plan: from At on, VUs VUs (closed-model
// executors) are active.
type Step struct {
	At  time.Duration
	VUs int64
}

var errInvalid = errors.New("invalid executor parameters")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

func validateStages(stages []k6opts.Stage) error {
	if len(stages) == 0 {
		return invalid("at least one stage is needed")
	}
	for i, s := range stages {
		if s.Duration < 0 {
			return invalid("stage %d: the duration cannot be negative", i)
		}
		if s.Target < 0 {
			return invalid("stage %d: the target cannot be negative", i)
		}
	}
	return nil
}

func stagesLength(stages []k6opts.Stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.Duration.Std()
	}
	return d
}
