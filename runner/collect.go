package runner

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
)

// FinalizeLag is how long a slot stays open for late samples: a request is
// counted in the slot of its START, and it may take up to the request
// timeout (60s) to finish. Older slots are folded into the phase aggregates
// and dropped, so memory stays flat whatever the run length, from the
// lag on. A request slower than the lag still counts in its phase and its
// faults' evidence (LateRequests); only the per-second series misses it.
const FinalizeLag = 15 * time.Second

// Collector folds request aggregates, keyed by the slot each request
// started in (and ended in, when later), into phases by the actual fault
// windows. The load engine's samples reach it through a sink (sink.go).
type Collector struct {
	timeline *Timeline

	mu      sync.Mutex
	open    map[aggregate.Key]*aggregate.Agg // slots not final yet
	final   int64                            // slots before this are final
	seconds map[int64]*aggregate.Agg         // seconds (since load start) not reduced yet, by request start
	ended   map[int64]*[2]int64              // the same seconds by request END: requests, failed
	phases  map[string]*aggregate.Agg
	grace   *aggregate.Agg
	// transition holds requests that started before the first fault and
	// ended after it was injected: neither clean steady nor fault.
	transition *aggregate.Agg
	perFault   map[string]*aggregate.Agg
	series     []results.Point
	late       int64
	received   int64
}

// NewCollector returns a collector for a timeline.
func NewCollector(t *Timeline) *Collector {
	return &Collector{timeline: t, open: map[aggregate.Key]*aggregate.Agg{}, seconds: map[int64]*aggregate.Agg{}, ended: map[int64]*[2]int64{},
		phases: map[string]*aggregate.Agg{}, grace: aggregate.New(), transition: aggregate.New(), perFault: map[string]*aggregate.Agg{}}
}

func (c *Collector) add(k aggregate.Key, a *aggregate.Agg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received += a.Requests
	if k.Start < c.final {
		// Finalized already: count it in its phase, not in the series.
		c.late += a.Requests
		c.fold(k, a, false)
		return
	}
	if o := c.open[k]; o != nil {
		o.Merge(a)
	} else {
		c.open[k] = a
	}
}

// Finalize folds every slot older than `before` into the phases.
func (c *Collector) Finalize(before time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := aggregate.SlotOf(before.UnixMilli())
	for k, a := range c.open {
		if k.Start < limit {
			c.fold(k, a, true)
			delete(c.open, k)
		}
	}
	c.final = max(c.final, limit)
	// Reduce whole seconds that are complete.
	start := c.timeline.LoadStart()
	done := func(sec int64) bool { return !start.Add(time.Duration(sec+1) * time.Second).After(before) }
	for sec, a := range c.seconds {
		if done(sec) {
			c.series = append(c.series, c.point(sec, a, c.ended[sec]))
			delete(c.seconds, sec)
			delete(c.ended, sec)
		}
	}
	for sec, e := range c.ended { // seconds in which requests only ended
		if done(sec) {
			c.series = append(c.series, c.point(sec, aggregate.New(), e))
			delete(c.ended, sec)
		}
	}
}

// FinalizeAll folds everything: the run is over.
func (c *Collector) FinalizeAll() { c.Finalize(time.Now().Add(24 * time.Hour)) }

// slotWidth is a slot's width as a duration.
const slotWidth = aggregate.SlotWidth * time.Millisecond

// classify says where a group of requests started and ended: the phase and
// faults at their start, and at their end.
func (c *Collector) classify(k aggregate.Key) (start, end Classification) {
	start = c.timeline.Classify(c.timeline.startPoint(time.UnixMilli(k.Start), slotWidth, k.Segment))
	endSlot := k.End
	if endSlot == 0 {
		endSlot = k.Start
	}
	end = c.timeline.Classify(c.timeline.endPoint(time.UnixMilli(endSlot), slotWidth, k.EndSegment))
	return start, end
}

func (c *Collector) fold(k aggregate.Key, a *aggregate.Agg, series bool) {
	cl, clEnd := c.classify(k)
	switch {
	case straddles(cl, clEnd):
		c.transition.Merge(a)
	case cl.Grace:
		c.grace.Merge(a)
	default:
		p := c.phases[cl.Phase]
		if p == nil {
			p = aggregate.New()
			c.phases[cl.Phase] = p
		}
		p.Merge(a)
	}
	// A fault's evidence holds the requests sent while it was active and
	// those in flight when it began (started before, ended after): a kill
	// that fails the requests in flight did something.
	faults := cl.Faults
	for _, f := range clEnd.Faults {
		if !slices.Contains(faults, f) {
			faults = append(slices.Clip(faults), f)
		}
	}
	for _, f := range faults {
		p := c.perFault[f]
		if p == nil {
			p = aggregate.New()
			c.perFault[f] = p
		}
		p.Merge(a)
	}
	if series {
		c.toSeries(k, a)
	}
}

// toSeries adds a slot to the second it started in, and its requests and
// failures to the second they ended in.
func (c *Collector) toSeries(k aggregate.Key, a *aggregate.Agg) {
	start := c.timeline.LoadStart().Truncate(time.Millisecond) // the sink's slot origin
	at := time.UnixMilli(k.Start)
	if start.IsZero() || at.Before(start) {
		return
	}
	sec := int64(at.Sub(start) / time.Second)
	s := c.seconds[sec]
	if s == nil {
		s = aggregate.New()
		c.seconds[sec] = s
	}
	s.Merge(a)
	endSec := sec
	if k.End != 0 {
		endSec = int64(time.UnixMilli(k.End).Sub(start) / time.Second)
	}
	e := c.ended[endSec]
	if e == nil {
		e = &[2]int64{}
		c.ended[endSec] = e
	}
	e[0] += a.Requests
	e[1] += a.Failed
}

// straddles reports requests that started in steady and ended after the
// first fault was injected.
func straddles(start, end Classification) bool {
	return start.Phase == plan.Steady && end.Phase != plan.Steady
}

func (c *Collector) point(sec int64, a *aggregate.Agg, ended *[2]int64) results.Point {
	start := c.timeline.LoadStart()
	cl := c.timeline.Classify(start.Add(time.Duration(sec)*time.Second + 500*time.Millisecond))
	p := results.Point{Offset: float64(sec), Requests: a.Requests, Failed: a.Failed,
		P50: nan0(a.Quantile(0.5)), P95: nan0(a.Quantile(0.95)), P99: nan0(a.Quantile(0.99)), Max: a.MaxMS, Phase: cl.Phase}
	if ended != nil {
		p.Ended, p.FailedEnded = ended[0], ended[1]
	}
	return p
}

// Recent summarizes the last complete second among the open slots, for live
// progress: requests per second, p99 and error rate.
func (c *Collector) Recent(now time.Time) (rps, p99, errRate float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := aggregate.New()
	from, to := aggregate.SlotOf(now.Add(-2*time.Second).UnixMilli()), aggregate.SlotOf(now.Add(-time.Second).UnixMilli())
	for k, s := range c.open {
		if k.Start >= from && k.Start < to {
			a.Merge(s)
		}
	}
	return float64(a.Requests), nan0(a.Quantile(0.99)), nan0(a.ErrorRate())
}

// Snapshot is what the collector holds once the run is over.
type Snapshot struct {
	Phases, PerFault map[string]*aggregate.Agg
	// Grace holds recovery's `within` allowance, which no SLO judges.
	Grace  *aggregate.Agg
	Series []results.Point
	// Late requests arrived after their slot was final: counted in their
	// phase, not in the series.
	Late int64
}

// Snapshot returns copies of what was collected. Call after FinalizeAll.
func (c *Collector) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{Phases: map[string]*aggregate.Agg{}, PerFault: map[string]*aggregate.Agg{}, Grace: c.grace, Late: c.late}
	for k, v := range c.phases {
		s.Phases[k] = v
	}
	for k, v := range c.perFault {
		s.PerFault[k] = v
	}
	s.Series = append([]results.Point(nil), c.series...)
	slices.SortFunc(s.Series, func(a, b results.Point) int { return cmp.Compare(a.Offset, b.Offset) })
	return s
}

// SoFar is the aggregate of a phase up to now: what is final plus the open
// slots whose requests started in it (for abortOnBreach).
func (c *Collector) SoFar(phase string) *aggregate.Agg {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := aggregate.New()
	a.Merge(c.phases[phase])
	for k, s := range c.open {
		cl, clEnd := c.classify(k)
		if cl.Phase == phase && !cl.Grace && !straddles(cl, clEnd) {
			a.Merge(s)
		}
	}
	return a
}

// Transition is the number of requests left out because they started before
// the first fault and ended after it was injected.
func (c *Collector) Transition() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transition.Requests
}

// Received is the number of requests seen so far.
func (c *Collector) Received() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

// OpenSlots is the number of slots held in memory (for the memory benchmark).
func (c *Collector) OpenSlots() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open) + len(c.seconds)
}

func nan0(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
