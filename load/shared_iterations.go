package load

import (
	"context"
	"sync/atomic"
	"time"
)

// SharedIterations is k6's shared-iterations: VUs VUs share Iterations
// iterations, each VU taking the next one as soon as it is free, within
// MaxDuration.
type SharedIterations struct {
	base
	VUs, Iterations int64
	MaxDuration     time.Duration
}

// Validate checks the parameters as k6 does.
func (c *SharedIterations) Validate() error {
	if c.VUs <= 0 {
		return invalid("vus must be more than 0")
	}
	if c.Iterations < c.VUs {
		return invalid("iterations (%d) cannot be fewer than vus (%d)", c.Iterations, c.VUs)
	}
	if c.MaxDuration <= 0 {
		return invalid("maxDuration must be more than 0")
	}
	return nil
}

// Steps is the plan: VUs from the start, at most until maxDuration.
func (c *SharedIterations) Steps() []Step {
	return []Step{{At: c.startTime, VUs: c.VUs}, {At: c.startTime + c.MaxDuration, VUs: 0}}
}

func (c *SharedIterations) length() time.Duration { return c.MaxDuration }

func (c *SharedIterations) run(ctx context.Context, e *Engine, start time.Time) {
	regular, hard, cancel, ok := c.window(ctx, start, c.MaxDuration)
	defer cancel()
	if ok {
		var taken atomic.Int64
		e.fixedVUs(hard, c.VUs, regular, func() func() bool {
			return func() bool { return taken.Add(1) <= c.Iterations }
		})
	}
}
