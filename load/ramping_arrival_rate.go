package load

import (
	"context"
	"time"

	"faultline.dev/faultline/compiler/k6opts"
)

// RampingArrivalRate is k6's ramping-arrival-rate: the rate (iterations per
// TimeUnit) starts at StartRate and follows each stage linearly; VUs and
// dropped iterations as for ConstantArrivalRate.
type RampingArrivalRate struct {
	base
	StartRate               int64
	TimeUnit                time.Duration
	Stages                  []k6opts.Stage
	PreAllocatedVUs, MaxVUs int64
}

// Validate checks the parameters as k6 does.
func (c *RampingArrivalRate) Validate() error {
	switch {
	case c.StartRate < 0:
		return invalid("startRate cannot be negative")
	case c.TimeUnit <= 0:
		return invalid("timeUnit must be more than 0")
	case c.PreAllocatedVUs < 0:
		return invalid("preAllocatedVUs cannot be negative")
	case c.MaxVUs < c.PreAllocatedVUs:
		return invalid("maxVUs (%d) cannot be fewer than preAllocatedVUs (%d)", c.MaxVUs, c.PreAllocatedVUs)
	case c.MaxVUs <= 0:
		return invalid("maxVUs must be more than 0")
	}
	return validateStages(c.Stages)
}

// Pacer is the schedule of iteration starts.
func (c *RampingArrivalRate) Pacer() Pacer {
	return LinearPacer{StartRate: c.StartRate, TimeUnit: c.TimeUnit, Stages: c.Stages}
}

func (c *RampingArrivalRate) length() time.Duration { return stagesLength(c.Stages) }

func (c *RampingArrivalRate) run(ctx context.Context, e *Engine, start time.Time) {
	e.arrivals(ctx, c.base, start, c.length(), c.PreAllocatedVUs, c.MaxVUs, c.Pacer())
}
