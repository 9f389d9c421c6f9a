package load

import (
	"context"
	"time"
)

// ConstantArrivalRate is k6's constant-arrival-rate: Rate iterations per
// TimeUnit for Duration, whatever the latency, on a pool of
// PreAllocatedVUs growing up to MaxVUs; an iteration with no free VU is
// dropped.
type ConstantArrivalRate struct {
	base
	Rate                    int64
	TimeUnit, Duration      time.Duration
	PreAllocatedVUs, MaxVUs int64
}

// Validate checks the parameters as k6 does.
func (c *ConstantArrivalRate) Validate() error {
	switch {
	case c.Rate <= 0:
		return invalid("rate must be more than 0")
	case c.TimeUnit <= 0:
		return invalid("timeUnit must be more than 0")
	case c.Duration <= 0:
		return invalid("duration must be more than 0")
	case c.PreAllocatedVUs < 0:
		return invalid("preAllocatedVUs cannot be negative")
	case c.MaxVUs < c.PreAllocatedVUs:
		return invalid("maxVUs (%d) cannot be fewer than preAllocatedVUs (%d)", c.MaxVUs, c.PreAllocatedVUs)
	case c.MaxVUs <= 0:
		return invalid("maxVUs must be more than 0")
	}
	return nil
}

// Pacer is the schedule of iteration starts.
func (c *ConstantArrivalRate) Pacer() Pacer {
	return ConstantPacer{Rate: c.Rate, TimeUnit: c.TimeUnit, Duration: c.Duration}
}

func (c *ConstantArrivalRate) length() time.Duration { return c.Duration }

func (c *ConstantArrivalRate) run(ctx context.Context, e *Engine, start time.Time) {
	e.arrivals(ctx, c.base, start, c.Duration, c.PreAllocatedVUs, c.MaxVUs, c.Pacer())
}
