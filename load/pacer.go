package load

import (
	"math"
	"time"

	"faultline.dev/faultline/compiler/k6opts"
)

// Pacer says when each iteration of an arrival-rate executor starts.
//
// It is a schedule — iteration i → its start offset, in closed form —
// rather than vegeta's kind of pacer (given the time elapsed and the hits
// sent, how long to wait), because k6's executors are defined by exact
// starts: i·timeUnit/rate, the integral of piecewise-linear stages, and
// the counts those give per second (TestConstantPacer, TestLinearPacer).
// vegeta's linear pacer has one slope and no stages. At costs 3 ns
// (constant) and 16 ns (three stages) per iteration (BenchmarkPacer).
type Pacer interface {
	// At returns the offset from the executor's start of iteration i
	// (0, 1, 2, ...), and false when i starts at or after the end.
	At(i int64) (time.Duration, bool)
}

// ConstantPacer starts Rate iterations per TimeUnit, evenly spaced, for
// Duration: iteration i at i·TimeUnit/Rate.
type ConstantPacer struct {
	Rate     int64
	TimeUnit time.Duration
	Duration time.Duration
}

// At implements Pacer.
func (p ConstantPacer) At(i int64) (time.Duration, bool) {
	if p.Rate <= 0 {
		return 0, false
	}
	// i·TimeUnit/Rate without overflow for any realistic i.
	q, r := i/p.Rate, i%p.Rate
	at := time.Duration(q)*p.TimeUnit + time.Duration(float64(r)*float64(p.TimeUnit)/float64(p.Rate))
	return at, at < p.Duration
}

// LinearPacer follows a rate that starts at StartRate (iterations per
// TimeUnit) and moves linearly to each stage's target over the stage:
// iteration i starts where the integral of the rate from 0 reaches i.
type LinearPacer struct {
	StartRate int64
	TimeUnit  time.Duration
	Stages    []k6opts.Stage
}

// At implements Pacer.
func (p LinearPacer) At(i int64) (time.Duration, bool) {
	unit := float64(p.TimeUnit)
	from := float64(p.StartRate)
	var t, done float64 // offset (ns) and iterations due at the stage's start
	n := float64(i)
	for _, st := range p.Stages {
		d := float64(st.Duration)
		to := float64(st.Target)
		// Iterations due over this stage: the area under the rate.
		area := (from + to) / 2 * d / unit
		if d > 0 && done+area > n {
			// Solve done + (from·τ + (to-from)·τ²/(2d))/unit = n for τ:
			// a·τ² + b·τ = k with a = (to-from)/(2d·unit), b = from/unit.
			a, b, k := (to-from)/(2*d*unit), from/unit, n-done
			var tau float64
			switch {
			case k <= 0:
				tau = 0
			case a == 0:
				tau = k / b
			default:
				// The stable root of a quadratic with a positive k.
				tau = 2 * k / (b + math.Sqrt(math.Max(b*b+4*a*k, 0)))
			}
			return time.Duration(t + math.Min(tau, d)), true
		}
		done += area
		t += d
		from = to
	}
	return 0, false
}
