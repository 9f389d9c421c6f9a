package load

import (
	"context"
	"sync"
	"time"
)

// arrivals is the loop both arrival-rate executors share: start each
// iteration at the time its pacer gives, on a free VU of the pool, or drop
// it; then let the running ones finish within gracefulStop.
func (e *Engine) arrivals(ctx context.Context, b base, start time.Time, length time.Duration, pre, maxVUs int64, pacer Pacer) {
	// preAllocatedVUs exist when the first iteration is due (a VU costs a
	// goroutine-free struct until its first request dials); VUs are
	// interrupted when the hard end passes.
	regular, hard, cancel, ok := b.window(ctx, start, length)
	defer cancel()
	if !ok {
		return
	}
	pool := newVUPool(hard, e, pre, maxVUs)
	defer pool.close()
	at := start.Add(b.startTime)
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		off, ok := pacer.At(i)
		if !ok {
			break
		}
		due := at.Add(off)
		if !due.Before(regular) {
			break
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-hard.Done():
				wg.Wait()
				return
			}
		} else if hard.Err() != nil {
			break
		}
		v := pool.get()
		if v == nil {
			e.dropped.Add(1)
			continue
		}
		wg.Go(func() {
			if e.run(v) {
				pool.put(v)
				return
			}
			// Interrupted: its context is gone; a new VU takes its place
			// (its id stays) unless the hard end has passed.
			pool.replace(v)
		})
	}
	wg.Wait()
}
