package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"faultline.dev/faultline/compiler/plan"
)

// driveFaults runs the faults on the runner's clock, or lets a
// TimelineOwner run them, until the planned load end.
func (r *run) driveFaults(ctx, parent context.Context, start time.Time) {
	if to, ok := r.b.(TimelineOwner); ok && to.OwnsTimeline() {
		r.driveOwned(ctx, parent, start, to)
	} else {
		r.drive(ctx, parent, start)
	}
}

// event is one step of the timeline.
type event struct {
	at      time.Duration
	inject  bool
	fault   plan.Fault
	recover bool
}

// events lists the plan's injections and recoveries in time order, a
// recovery before an injection at the same instant.
func events(p *plan.Plan) []event {
	var evs []event
	for _, f := range p.Faults {
		evs = append(evs, event{at: f.Start.Std(), inject: true, fault: f}, event{at: f.End.Std(), recover: true, fault: f})
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return int((a.at - b.at) / time.Microsecond)
		}
		switch {
		case a.recover == b.recover:
			return 0
		case a.recover:
			return -1
		}
		return 1
	})
	return evs
}

// stopReason records why driving stops: the user's signal, the target
// failing (err), the load ending before its planned end (loadDone); a
// cancelled ctx means another part of the run already said why. It
// reports false when none of these holds.
func (r *run) stopReason(parent, ctx context.Context, err error, loadDone bool, end time.Time) bool {
	switch {
	case r.failed():
		// Another part of the run (a breach, a scrape failure) said why.
	case parent.Err() != nil:
		r.abort("interrupted (signal)")
	case ctx.Err() != nil:
		// A scrape failure, a breach or another abort cancelled the run.
	case err != nil:
		r.abort("the target failed: " + err.Error())
	case loadDone:
		if time.Now().Before(end.Add(-time.Second)) {
			r.src.endedEarly(r, end)
		}
	default:
		return false
	}
	return true
}

// drive injects and recovers the faults on the plan's clock until the load
// ends, the backend fails or the run is interrupted.
func (r *run) drive(ctx, parent context.Context, start time.Time) {
	evs := events(r.p)
	end := start.Add(r.p.LoadEnd.Std())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	injected := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := end
		if len(evs) > 0 {
			next = start.Add(evs[0].at)
		}
		timer.Reset(time.Until(next))
		select {
		case <-parent.Done():
			r.stopReason(parent, ctx, nil, false, end)
			return
		case <-ctx.Done():
			return
		case err := <-r.b.Failures():
			r.stopReason(parent, ctx, err, false, end)
			return
		case <-r.src.done():
			r.stopReason(parent, ctx, nil, true, end)
			return
		case now := <-tick.C:
			r.onTick(ctx, now, start, end)
			continue
		case <-timer.C:
		}
		if len(evs) == 0 {
			return // the planned load end
		}
		ev := evs[0]
		evs = evs[1:]
		if ev.inject {
			if !r.inject(ctx, start, ev.fault) {
				return
			}
			injected[ev.fault.Name] = true
		} else if injected[ev.fault.Name] {
			if !r.recover(ctx, start, ev.fault, len(evs) == 0) {
				return
			}
		}
	}
}

func (r *run) inject(ctx context.Context, start time.Time, f plan.Fault) bool {
	m := r.tl.Mark(time.Now())
	at, err := r.b.Inject(ctx, f)
	r.tl.Settle(m, at)
	if err != nil {
		r.infra(fmt.Sprintf("injecting %s: %v", f.Name, err))
		return false
	}
	r.tl.Injected(f, at)
	r.logf("%7.2fs  injected  %s (%s), planned %s", at.Sub(start).Seconds(), f.Name, f.Kind, f.Start)
	if r.tl.isFirstInjection() {
		r.snapshot(ctx, "fault-start")
	}
	return true
}

func (r *run) recover(ctx context.Context, start time.Time, f plan.Fault, last bool) bool {
	m := r.tl.Mark(time.Now())
	at, err := r.b.Recover(ctx, f)
	r.tl.Settle(m, at)
	r.tl.Recovered(f.Name, at, err)
	if err != nil {
		r.infra(fmt.Sprintf("recovering %s: %v", f.Name, err))
		return false
	}
	r.logf("%7.2fs  recovered %s, planned %s", at.Sub(start).Seconds(), f.Name, f.End)
	if last && len(r.tl.Active()) == 0 && !r.tl.LastFaultEnd().IsZero() {
		r.snapshot(ctx, "recovery-start")
	}
	return true
}

// onTick is the once-a-second work while faults are driven: fold old
// slots, sample the engine, judge abortOnBreach, redraw the live line.
func (r *run) onTick(ctx context.Context, now, start, end time.Time) {
	if r.col != nil {
		r.col.Finalize(now.Add(-FinalizeLag))
	}
	r.src.tick(now)
	r.checkBreach(now)
	r.progress(now, start, end)
}

// driveOwned lets a TimelineOwner run the faults and records what it reports, until the load
// ends, the backend fails or the run is interrupted (as drive).
func (r *run) driveOwned(ctx, parent context.Context, start time.Time, to TimelineOwner) {
	tctx, tcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- to.RunTimeline(tctx, r.p, func(f plan.Fault, at time.Time) {
			r.tl.Injected(f, at)
			r.logf("%7.2fs  injected  %s (%s), planned %s", at.Sub(start).Seconds(), f.Name, f.Kind, f.Start)
			if r.tl.isFirstInjection() {
				r.snapshot(tctx, "fault-start")
			}
		}, func(f plan.Fault, at time.Time) {
			r.tl.Recovered(f.Name, at, nil)
			r.logf("%7.2fs  recovered %s, planned %s", at.Sub(start).Seconds(), f.Name, f.End)
		})
	}()
	running := true
	defer func() {
		tcancel()
		if running {
			<-done // no callback after driveOwned returns
		}
	}()
	end := start.Add(r.p.LoadEnd.Std())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
	for {
		select {
		case <-parent.Done():
			r.stopReason(parent, ctx, nil, false, end)
			return
		case <-ctx.Done():
			return
		case err := <-r.b.Failures():
			r.stopReason(parent, ctx, err, false, end)
			return
		case err := <-done:
			running = false
			if !r.timelineEnded(parent, err) {
				return
			}
			r.snapshot(ctx, "recovery-start")
			done = nil // the fault part is over; the load goes on to its end
		case <-r.src.done():
			r.stopReason(parent, ctx, nil, true, end)
			return
		case now := <-tick.C:
			r.onTick(ctx, now, start, end)
		case <-timer.C:
			if running {
				// The load ended before the engine finished the faults: what is still
				// active is recovered by Cleanup, and its window stays open to the load end.
				r.logf("the load ended before the fault timeline finished")
			}
			return
		}
	}
}

// timelineEnded judges how a TimelineOwner's timeline ended; false when
// the run must stop.
func (r *run) timelineEnded(parent context.Context, err error) bool {
	switch {
	case errors.Is(err, ErrTimelineAborted):
		r.abort(err.Error())
	case err != nil && parent.Err() != nil:
		r.abort("interrupted (signal)")
	case err != nil:
		r.infra("running the fault timeline: " + err.Error())
	default:
		return true
	}
	return false
}
