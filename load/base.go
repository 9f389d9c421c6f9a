package load

import (
	"context"
	"time"
)

// base is what every executor has: its name, its start offset and its
// graceful stop, and the two deadlines they make.
type base struct {
	name         string
	startTime    time.Duration
	gracefulStop time.Duration
}

func (b base) validate() error {
	if b.startTime < 0 {
		return invalid("startTime cannot be negative")
	}
	if b.gracefulStop < 0 {
		return invalid("gracefulStop cannot be negative")
	}
	return nil
}

// window waits for the executor's start and returns its regular end (no
// new iteration after it) and a context that ends at the hard end
// (regular end + gracefulStop): what still runs then is interrupted.
func (b base) window(ctx context.Context, start time.Time, length time.Duration) (time.Time, context.Context, context.CancelFunc, bool) {
	at := start.Add(b.startTime)
	if !sleepUntil(ctx, at) {
		return time.Time{}, ctx, func() {}, false
	}
	regular := at.Add(length)
	hard, cancel := context.WithDeadline(ctx, regular.Add(b.gracefulStop))
	return regular, hard, cancel, true
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
