package prom

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// FaultActive is the gauge faultline writes beside the load series: 1
// while a fault is active, 0 otherwise, labelled fault and kind (and the
// faultline_* labels). The dashboard draws its fault windows from it.
const FaultActive = "faultline_fault_active"

// K6 system tag values the engine's series carry as k6's do.
const (
	// K6Scenario is k6's scenario tag: the compiled script's only
	// scenario is options.scenarios.load.
	K6Scenario = "load"
	K6Proto    = "HTTP/1.1"
)

// EngineWriter writes faultline's load engine's requests to Prometheus as
// the series k6's experimental-prometheus-rw output writes running the
// compiled script (k6_http_reqs_total, k6_http_req_duration_seconds and
// k6_grpc_req_duration_seconds as native histograms, the script's Counters
// k6_faultline_grpc_reqs_total and k6_faultline_checks_total, k6's tags as
// labels, cumulative per series, pushed every second), so a local run and
// an in-cluster one share one metric contract. Each series is described by
// a Desc: its labels, the Counter an observation adds to, the Histogram its
// duration goes into.
//
// Unlike k6, which stamps a series with the time of its latest sample
// when it pushes, the engine's writer counts a request at its START (or
// the instant At puts it at: the one the in-process collector classifies
// it by): the series' sample stamped at cut c's millisecond minus 1 holds
// every request that started before c (to the nanosecond). It cuts at each
// flush (Lag after the requests it cuts began, so that nearly all have
// ended) and at every instant Cuts returns (the faults' actual starts and
// ends, recovery's judgeFrom), so a reader windowing at those instants'
// milliseconds (prom.Delta: samples before the bound) gets each phase's
// requests by their start. A request that ends later than Lag after its
// start counts at the next cut.
type EngineWriter struct {
	URL  string
	HTTP *http.Client
	// Lag is how long after a request's start it is cut (default 2s).
	Lag time.Duration
	// Cuts returns extra instants (Unix ns) to cut at, in any order.
	Cuts func() []int64
	// At maps a request's start (Unix ns) and the tag it was added with
	// to the instant (Unix ns) it counts at, at most AtWithin from its
	// start; nil: its start. It is asked once Lag-AtWithin has passed.
	At       func(start int64, tag int32) int64
	AtWithin time.Duration
	// Gauges returns the gauges' points at an instant (Unix ms), asked
	// at every cut: the faults' faultline_fault_active.
	Gauges func(t int64) []Point

	shards [16]engShard

	mu      sync.Mutex // flushing
	descs   [][]Desc
	cum     map[[2]int32]*cumSeries
	carry   []obs
	cut     int64
	queue   []Point
	dropped int
	late    int64
	// unanswered: the queue's first batch was sent and got no answer.
	unanswered bool
	resent     int
}

type engShard struct {
	mu      sync.Mutex
	ids     map[any]int32
	descs   []Desc
	pending []obs
}

type obs struct {
	shard, series, tag int32
	start              int64 // Unix ns
	at                 int64 // the instant it counts at (Unix ns); 0 until known
	n, seconds         float64
}

// Desc describes one series of the writer's: its labels (all but
// __name__), the Counter each observation adds its n to (none when empty)
// and the Histogram its duration is observed in (none when empty).
type Desc struct {
	Labels             map[string]string
	Counter, Histogram string
}

// HTTPDesc is an HTTP request's series as k6 writes it: the request counts
// in k6_http_reqs_total, its duration in k6_http_req_duration_seconds.
func HTTPDesc(labels map[string]string) Desc {
	return Desc{Labels: labels, Counter: HTTPReqs, Histogram: HTTPReqDuration}
}

// key identifies a Desc's series among all (as Prometheus sees them).
func (d Desc) key() string { return d.Counter + "\x00" + d.Histogram + "\x00" + labelKey(d.Labels) }

type cumSeries struct {
	desc  Desc
	count float64
	hist  *Hist // nil without a Histogram
	dirty bool
}

// maxQueue bounds the points kept for a Prometheus that does not answer
// (about ten minutes of a busy run); older ones are dropped and counted.
const maxQueue = 1 << 20

// Add records one observation of shard (any int; callers pass their VU)
// that started at start, adds n to its series' Counter and, when it has a
// Histogram, observes seconds there; tag is passed to At. key identifies
// its series among the caller's (comparable); desc is called once per key
// and shard, the first time.
func (w *EngineWriter) Add(shard int, key any, desc func() Desc, start time.Time, tag int32, n, seconds float64) {
	si := int32(uint(shard) % uint(len(w.shards)))
	sh := &w.shards[si]
	sh.mu.Lock()
	id, ok := sh.ids[key]
	if !ok {
		if sh.ids == nil {
			sh.ids = map[any]int32{}
		}
		id = int32(len(sh.descs))
		sh.ids[key] = id
		sh.descs = append(sh.descs, desc())
	}
	sh.pending = append(sh.pending, obs{shard: si, series: id, tag: tag, start: start.UnixNano(), n: n, seconds: seconds})
	sh.mu.Unlock()
}

// Late is how many requests were cut after their start's cut had been
// pushed (they count at the next cut).
func (w *EngineWriter) Late() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.late
}

// Dropped is how many points were dropped unsent (Prometheus did not
// answer for too long).
func (w *EngineWriter) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Flush cuts every request that started before now-Lag (every request
// when final) and pushes the points not sent yet. A failed push keeps
// them for the next flush.
func (w *EngineWriter) Flush(ctx context.Context, now time.Time, final bool) error {
	w.mu.Lock()
	lag := w.Lag
	if lag == 0 {
		lag = 2 * time.Second
	}
	cut := now.Add(-lag).UnixNano()
	obsv := w.carry
	w.carry = nil
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		obsv = append(obsv, sh.pending...)
		sh.pending = sh.pending[:0]
		for len(w.descs) <= i {
			w.descs = append(w.descs, nil)
		}
		w.descs[i] = append(w.descs[i], sh.descs[len(w.descs[i]):]...)
		sh.mu.Unlock()
	}
	for i := range obsv {
		o := &obsv[i]
		if o.at == 0 && (final || o.start < cut+int64(w.AtWithin)) {
			o.at = o.start
			if w.At != nil {
				o.at = w.At(o.start, o.tag)
			}
		}
	}
	if final {
		for _, o := range obsv {
			cut = max(cut, o.at+1)
		}
		cut = max(cut, (w.cut/1e6+1)*1e6)
	}
	// A stamp is the cut's millisecond minus 1: one cut a millisecond.
	stamp := func(c int64) int64 { return c/1e6 - 1 }
	if stamp(cut) <= stamp(w.cut) {
		w.carry = obsv
		w.mu.Unlock()
		return w.push(ctx)
	}
	// Requests started before the last cut (slow ones) count at the next.
	for i := range obsv {
		if o := &obsv[i]; o.at != 0 && o.at < w.cut {
			o.at = w.cut
			w.late++
		}
	}
	// Not yet placed (at 0) sort last, and stay.
	slices.SortFunc(obsv, func(a, b obs) int {
		if (a.at == 0) != (b.at == 0) {
			return cmp.Compare(b.at, a.at)
		}
		return cmp.Compare(a.at, b.at)
	})
	var extra []int64
	if w.Cuts != nil {
		extra = w.Cuts()
	}
	// An instant in the regular cut's millisecond moves it: to that
	// instant, or (final) past its millisecond, so it keeps a stamp.
	for _, c := range extra {
		if stamp(c) == stamp(cut) && c != cut {
			if final {
				cut = (c/1e6 + 1) * 1e6
			} else {
				cut = min(cut, c)
			}
		}
	}
	cuts := []int64{cut}
	for _, c := range extra {
		if stamp(c) > stamp(w.cut) && stamp(c) < stamp(cut) {
			cuts = append(cuts, c)
		}
	}
	slices.Sort(cuts)
	// Of cuts in one millisecond the first stands: a request at an
	// instant counts after it (a fault's start is its first instant).
	cuts = slices.CompactFunc(cuts, func(a, b int64) bool { return stamp(a) == stamp(b) })
	if w.cum == nil {
		w.cum = map[[2]int32]*cumSeries{}
	}
	var pts []Point
	k := 0
	for _, c := range cuts {
		for ; k < len(obsv) && obsv[k].at != 0 && obsv[k].at < c; k++ {
			o := obsv[k]
			s := w.cum[[2]int32{o.shard, o.series}]
			if s == nil {
				s = &cumSeries{desc: w.descs[o.shard][o.series]}
				if s.desc.Histogram != "" {
					s.hist = NewHist(WriterSchema)
					s.hist.ZeroThreshold = math.Ldexp(1, -128)
				}
				w.cum[[2]int32{o.shard, o.series}] = s
			}
			s.count += o.n
			if s.hist != nil {
				s.hist.Observe(o.seconds)
			}
			s.dirty = true
		}
		pts = append(pts, w.points(stamp(c))...)
		if w.Gauges != nil {
			// The gauges' state AT the cut: a fault's first instant reads 1,
			// its end 0.
			pts = append(pts, w.Gauges(c/1e6)...)
		}
	}
	w.carry = append(w.carry, obsv[k:]...)
	w.cut = cut
	w.queue = append(w.queue, pts...)
	if n := len(w.queue) - maxQueue; n > 0 {
		w.queue = slices.Delete(w.queue, 0, n)
		w.dropped += n
	}
	w.mu.Unlock()
	return w.push(ctx)
}

// points merges the shards' changed series with the same Desc (one series
// per name and label set, as Prometheus sees it) into points at t.
func (w *EngineWriter) points(t int64) []Point {
	type merged struct {
		desc  Desc
		count float64
		hist  *Hist
		dirty bool
	}
	by := map[string]*merged{}
	for _, s := range w.cum {
		key := s.desc.key()
		m := by[key]
		if m == nil {
			m = &merged{desc: s.desc}
			by[key] = m
		}
		m.count += s.count
		switch {
		case s.hist == nil:
		case m.hist == nil:
			m.hist = s.hist.Clone()
		default:
			m.hist = m.hist.Add(s.hist)
		}
		m.dirty = m.dirty || s.dirty
	}
	for _, s := range w.cum {
		s.dirty = false
	}
	var pts []Point
	for _, key := range slices.Sorted(maps.Keys(by)) {
		m := by[key]
		if !m.dirty {
			continue
		}
		if m.desc.Counter != "" {
			l := maps.Clone(m.desc.Labels)
			l["__name__"] = m.desc.Counter
			pts = append(pts, Point{Labels: l, T: t, V: m.count})
		}
		if m.desc.Histogram != "" {
			l := maps.Clone(m.desc.Labels)
			l["__name__"] = m.desc.Histogram
			pts = append(pts, Point{Labels: l, T: t, Hist: m.hist})
		}
	}
	return pts
}

// push sends the queued points, oldest first, in batches.
func (w *EngineWriter) push(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	const batch = 5000
	for len(w.queue) > 0 {
		n := min(batch, len(w.queue))
		err := Push(ctx, w.HTTP, w.URL, w.queue[:n])
		pe, answered := errors.AsType[*PushError](err)
		switch {
		case err == nil:
		case answered && pe.Permanent() && w.unanswered && pe.AlreadyStored():
			// The batch went out before without an answer (a timeout, a
			// cancelled request): Prometheus stored it then, and refuses
			// its samples now as older than those. Nothing is lost.
			w.resent += n
		case answered && pe.Permanent():
			w.dropped += n
			w.queue = w.queue[n:]
			w.unanswered = false
			return err
		default:
			w.unanswered = !answered
			return err
		}
		w.queue = w.queue[n:]
		w.unanswered = false
	}
	w.queue = nil
	return nil
}

// Unsent is how many points are queued, not yet accepted by Prometheus.
func (w *EngineWriter) Unsent() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// Run flushes every interval until ctx ends, then once more with every
// request (final); fn, when set, is told about each failed push. Each
// push is bounded by 10s and never cut short by ctx (a request cancelled
// in flight may have been stored). It returns the final flush's error.
func (w *EngineWriter) Run(ctx context.Context, interval time.Duration, fn func(error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	flush := func(now time.Time, final bool) error {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return w.Flush(fctx, now, final)
	}
	for {
		select {
		case <-ctx.Done():
			if err := flush(time.Now(), true); err != nil {
				return fmt.Errorf("the last push (%d points unsent): %w", w.Unsent(), err)
			}
			return nil
		case now := <-t.C:
			if err := flush(now, false); err != nil && fn != nil {
				fn(err)
			}
		}
	}
}

// Resent is how many points were sent again after a push without an
// answer and found already stored.
func (w *EngineWriter) Resent() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resent
}
