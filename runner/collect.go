package runner

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
)

// FinalizeLag is how long a slot stays open for late samples: a request is
// counted in the slot of its START, and it may take up to k6's request
// timeout (60s) to finish. Older slots are folded into the phase aggregates
// and dropped, so memory stays flat whatever the run length.
const FinalizeLag = 65 * time.Second

// Collector receives aggregates from the k6 output and folds them into
// phases by the actual fault windows.
type Collector struct {
	ln       net.Listener
	timeline *Timeline

	mu      sync.Mutex
	open    map[aggregate.Key]*aggregate.Agg // slots not final yet
	final   int64                            // slots before this are final
	seconds map[int64]*aggregate.Agg         // seconds (since load start) not reduced yet
	phases  map[string]*aggregate.Agg
	grace   *aggregate.Agg
	// transition holds requests that started before the first fault and
	// ended after it was injected: neither clean steady nor fault.
	transition *aggregate.Agg
	perFault   map[string]*aggregate.Agg
	series     []results.Point
	late       int64
	received   int64
	errs       []error
	done       chan struct{}
}

// NewCollector listens on a free loopback port.
func NewCollector(t *Timeline) (*Collector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	return &Collector{ln: ln, timeline: t, open: map[aggregate.Key]*aggregate.Agg{}, seconds: map[int64]*aggregate.Agg{},
		phases: map[string]*aggregate.Agg{}, grace: aggregate.New(), transition: aggregate.New(), perFault: map[string]*aggregate.Agg{}, done: make(chan struct{})}, nil
}

// Addr is the address the k6 output connects to.
func (c *Collector) Addr() string { return c.ln.Addr().String() }

// Serve accepts the k6 output's connection and reads until it closes or ctx
// ends. It returns when the stream ends.
func (c *Collector) Serve(ctx context.Context) error {
	defer close(c.done)
	go func() {
		<-ctx.Done()
		_ = c.ln.Close()
	}()
	conn, err := c.ln.Accept()
	_ = c.ln.Close() // one k6 process, one connection
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("collector: %w", err)
	}
	defer conn.Close()
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var m struct {
			Slots []aggregate.Wire `json:"slots"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.fail(fmt.Errorf("collector: bad message from k6: %w", err))
			continue
		}
		for _, w := range m.Slots {
			a, err := aggregate.FromWire(w)
			if err != nil {
				c.fail(err)
				continue
			}
			c.add(aggregate.Key{Start: w.Slot, End: w.End}, a)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("collector: %w", err)
	}
	return nil
}

// Done is closed when Serve has returned.
func (c *Collector) Done() <-chan struct{} { return c.done }

func (c *Collector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
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
	for sec, a := range c.seconds {
		end := start.Add(time.Duration(sec+1) * time.Second)
		if !end.After(before) {
			c.series = append(c.series, c.point(sec, a))
			delete(c.seconds, sec)
		}
	}
}

// FinalizeAll folds everything: the run is over.
func (c *Collector) FinalizeAll() { c.Finalize(time.Now().Add(24 * time.Hour)) }

func (c *Collector) fold(k aggregate.Key, a *aggregate.Agg, series bool) {
	at := time.UnixMilli(k.Start)
	cl := c.timeline.Classify(at)
	switch {
	case cl.Phase == plan.Steady && k.End != 0 && c.timeline.Classify(time.UnixMilli(k.End+aggregate.SlotWidth-1)).Phase != plan.Steady:
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
	for _, f := range cl.Faults {
		p := c.perFault[f]
		if p == nil {
			p = aggregate.New()
			c.perFault[f] = p
		}
		p.Merge(a)
	}
	if series {
		start := c.timeline.LoadStart()
		if !start.IsZero() && !at.Before(start) {
			sec := int64(at.Sub(start) / time.Second)
			s := c.seconds[sec]
			if s == nil {
				s = aggregate.New()
				c.seconds[sec] = s
			}
			s.Merge(a)
		}
	}
}

func (c *Collector) point(sec int64, a *aggregate.Agg) results.Point {
	start := c.timeline.LoadStart()
	cl := c.timeline.Classify(start.Add(time.Duration(sec)*time.Second + 500*time.Millisecond))
	return results.Point{Offset: float64(sec), Requests: a.Requests, Failed: a.Failed,
		P50: nan0(a.Quantile(0.5)), P95: nan0(a.Quantile(0.95)), P99: nan0(a.Quantile(0.99)), Max: a.MaxMS, Phase: cl.Phase}
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

// Snapshot returns copies of the phase aggregates, the per-fault aggregates,
// the recovery grace aggregate and the series. Call after FinalizeAll.
func (c *Collector) Snapshot() (phases map[string]*aggregate.Agg, perFault map[string]*aggregate.Agg, grace *aggregate.Agg, series []results.Point, late int64, errs []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	phases, perFault = map[string]*aggregate.Agg{}, map[string]*aggregate.Agg{}
	for k, v := range c.phases {
		phases[k] = v
	}
	for k, v := range c.perFault {
		perFault[k] = v
	}
	series = append([]results.Point(nil), c.series...)
	slices.SortFunc(series, func(a, b results.Point) int { return cmp.Compare(a.Offset, b.Offset) })
	return phases, perFault, c.grace, series, c.late, append([]error(nil), c.errs...)
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
