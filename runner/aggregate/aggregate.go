// Package aggregate holds the mergeable request aggregates the runner judges
// SLOs with: counts, errors, checks and a DDSketch of latencies, per time
// slot and per phase. Slots are keyed by request START time, so a slow
// request counts in the phase it was sent in, not the one it finished in.
package aggregate

import (
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// SlotWidth is the width of one time slot in milliseconds.
const SlotWidth = 100

// RelativeAccuracy of the latency sketches: quantiles within 1%.
const RelativeAccuracy = 0.01

// Agg aggregates requests: mergeable, with latency quantiles within 1%.
type Agg struct {
	Requests    int64
	Failed      int64
	ChecksPass  int64
	ChecksTotal int64
	// Latency of every request in milliseconds.
	Latency *ddsketch.DDSketch
	MaxMS   float64
	SumMS   float64
	// Statuses counts the requests by status; nil until the first.
	Statuses map[Status]int64
	// Quantiles, when set, answers Quantile in place of the sketch: for an
	// aggregate read from a histogram with buckets finer than the sketch's
	// (a Prometheus native histogram), whose quantile would otherwise be
	// rounded twice, to its bucket and then to the sketch's (which can put
	// it one sketch bucket, 2%, from the in-process sketch's). Merge drops
	// it: a merged aggregate answers from the sketch.
	Quantiles func(q float64) float64
}

// Status is a request's status: an HTTP status code (0: no response) or,
// with GRPC, a gRPC status code (google.golang.org/grpc/codes).
type Status struct {
	GRPC bool
	Code int
}

// AddStatus counts one request's status.
func (a *Agg) AddStatus(s Status) {
	if a.Statuses == nil {
		a.Statuses = map[Status]int64{}
	}
	a.Statuses[s]++
}

// New returns an empty aggregate.
func New() *Agg {
	m, _ := mapping.NewLogarithmicMapping(RelativeAccuracy)
	return &Agg{Latency: ddsketch.NewDDSketch(m, store.NewDenseStore(), store.NewDenseStore())}
}

// AddRequest records one request's latency and outcome.
func (a *Agg) AddRequest(ms float64, failed bool) {
	a.Requests++
	if failed {
		a.Failed++
	}
	if ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
		ms = 0
	}
	_ = a.Latency.Add(ms)
	a.SumMS += ms
	a.MaxMS = max(a.MaxMS, ms)
}

// AddCheck records one check's outcome.
func (a *Agg) AddCheck(pass bool) {
	a.ChecksTotal++
	if pass {
		a.ChecksPass++
	}
}

// AddChecks records passed of total checks.
func (a *Agg) AddChecks(passed, total int) {
	a.ChecksTotal += int64(total)
	a.ChecksPass += int64(passed)
}

// Merge adds b into a.
func (a *Agg) Merge(b *Agg) {
	if b == nil {
		return
	}
	a.Requests += b.Requests
	a.Failed += b.Failed
	a.ChecksPass += b.ChecksPass
	a.ChecksTotal += b.ChecksTotal
	a.SumMS += b.SumMS
	a.MaxMS = max(a.MaxMS, b.MaxMS)
	_ = a.Latency.MergeWith(b.Latency)
	if !b.Latency.IsEmpty() {
		a.Quantiles = nil
	}
	for s, n := range b.Statuses {
		if a.Statuses == nil {
			a.Statuses = make(map[Status]int64, len(b.Statuses))
		}
		a.Statuses[s] += n
	}
}

// Quantile returns the latency quantile q (0..1) in milliseconds, or NaN
// without requests.
func (a *Agg) Quantile(q float64) float64 {
	if a.Latency.IsEmpty() {
		return math.NaN()
	}
	if a.Quantiles != nil {
		return min(a.Quantiles(q), a.MaxMS)
	}
	v, err := a.Latency.GetValueAtQuantile(q)
	if err != nil {
		return math.NaN()
	}
	return min(v, a.MaxMS)
}

// AvgMS is the mean latency, or NaN without requests.
func (a *Agg) AvgMS() float64 {
	if a.Requests == 0 {
		return math.NaN()
	}
	return a.SumMS / float64(a.Requests)
}

// ErrorRate is the percentage of failed requests, or NaN without requests.
func (a *Agg) ErrorRate() float64 {
	if a.Requests == 0 {
		return math.NaN()
	}
	return 100 * float64(a.Failed) / float64(a.Requests)
}

// ChecksRate is the percentage of passed checks, or NaN without checks.
func (a *Agg) ChecksRate() float64 {
	if a.ChecksTotal == 0 {
		return math.NaN()
	}
	return 100 * float64(a.ChecksPass) / float64(a.ChecksTotal)
}

// Key identifies a group of requests: the slot they started in and, when
// different, the slot they ended in; and the timeline segments (the
// number of fault events marked before) their start and end fell in, so
// that a slot holding an injection is split at it.
type Key struct {
	Start, End          int64
	Segment, EndSegment int32
}

// SlotFrom returns the slot a Unix millisecond time falls in on a grid of
// SlotWidth that starts at origin (the load's start), so that slots tile
// each second of the run exactly.
func SlotFrom(origin, unixMS int64) int64 {
	return unixMS - (((unixMS-origin)%SlotWidth)+SlotWidth)%SlotWidth
}

// SlotOf returns the slot a Unix millisecond time falls in.
func SlotOf(unixMS int64) int64 {
	return unixMS - ((unixMS%SlotWidth)+SlotWidth)%SlotWidth
}
