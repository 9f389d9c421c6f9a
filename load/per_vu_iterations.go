package load

import (
	"context"
	"time"
)

// PerVUIterations is k6's per-vu-iterations: each of VUs VUs runs
// Iterations iterations, within MaxDuration.
type PerVUIterations struct {
	base
	VUs, Iterations int64
	MaxDuration     time.Duration
}

// Validate checks the parameters as k6 does.
func (c *PerVUIterations) Validate() error {
	if c.VUs <= 0 {
		return invalid("vus must be more than 0")
	}
	if c.Iterations <= 0 {
		return invalid("iterations must be more than 0")
	}
	if c.MaxDuration <= 0 {
		return invalid("maxDuration must be more than 0")
	}
	return nil
}

// Steps is the plan: VUs from the start, at most until maxDuration.
func (c *PerVUIterations) Steps() []Step {
	return []Step{{At: c.startTime, VUs: c.VUs}, {At: c.startTime + c.MaxDuration, VUs: 0}}
}

func (c *PerVUIterations) length() time.Duration { return c.MaxDuration }

func (c *PerVUIterations) run(ctx context.Context, e *Engine, start time.Time) {
	regular, hard, cancel, ok := c.window(ctx, start, c.MaxDuration)
	defer cancel()
	if ok {
		e.fixedVUs(hard, c.VUs, regular, func() func() bool {
			left := c.Iterations
			return func() bool { left--; return left >= 0 }
		})
	}
}
