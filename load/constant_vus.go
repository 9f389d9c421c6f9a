package load

import (
	"context"
	"time"
)

// ConstantVUs is k6's constant-vus: VUs VUs loop iterations for Duration.
type ConstantVUs struct {
	base
	VUs      int64
	Duration time.Duration
}

// Validate checks the parameters as k6 does.
func (c *ConstantVUs) Validate() error {
	if c.VUs <= 0 {
		return invalid("vus must be more than 0")
	}
	if c.Duration <= 0 {
		return invalid("duration must be more than 0")
	}
	return nil
}

// Steps is the plan: VUs from the start to the end.
func (c *ConstantVUs) Steps() []Step {
	return []Step{{At: c.startTime, VUs: c.VUs}, {At: c.startTime + c.Duration, VUs: 0}}
}

func (c *ConstantVUs) length() time.Duration { return c.Duration }

func (c *ConstantVUs) run(ctx context.Context, e *Engine, start time.Time) {
	regular, hard, cancel, ok := c.window(ctx, start, c.Duration)
	defer cancel()
	if ok {
		e.fixedVUs(hard, c.VUs, regular, always)
	}
}
