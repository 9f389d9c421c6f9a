package load

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/k6opts"
)

func i64(v int64) *int64 { return &v }

func dur(d time.Duration) *k6opts.Duration { x := k6opts.Duration(d); return &x }

func stages(s ...any) []k6opts.Stage {
	var out []k6opts.Stage
	for i := 0; i < len(s); i += 2 {
		out = append(out, k6opts.Stage{Duration: k6opts.Duration(s[i].(time.Duration)), Target: int64(s[i+1].(int))})
	}
	return out
}

// TestConstantPacer compares the iteration starts per second of
// constant-arrival-rate with k6's definition: rate per timeUnit, evenly
// spaced, the first at 0.
func TestConstantPacer(t *testing.T) {
	tests := []struct {
		name     string
		p        ConstantPacer
		perSec   []int
		firstGap time.Duration
	}{
		{"50/s for 3s", ConstantPacer{Rate: 50, TimeUnit: time.Second, Duration: 3 * time.Second}, []int{50, 50, 50}, 20 * time.Millisecond},
		{"2000/s for 2s", ConstantPacer{Rate: 2000, TimeUnit: time.Second, Duration: 2 * time.Second}, []int{2000, 2000}, 500 * time.Microsecond},
		{"30/min for 4s", ConstantPacer{Rate: 30, TimeUnit: time.Minute, Duration: 4 * time.Second}, []int{1, 0, 1, 0}, 2 * time.Second},
		{"3/s for 1500ms", ConstantPacer{Rate: 3, TimeUnit: time.Second, Duration: 1500 * time.Millisecond}, []int{3, 2}, time.Second / 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := perSecond(tt.p, len(tt.perSec))
			if !slices.Equal(got, tt.perSec) {
				t.Errorf("iterations per second = %v, want %v", got, tt.perSec)
			}
			a, _ := tt.p.At(0)
			b, _ := tt.p.At(1)
			if a != 0 || b-a != tt.firstGap {
				t.Errorf("first starts at %v, %v; want 0 and %v", a, b, tt.firstGap)
			}
		})
	}
}

// perSecond counts the iterations a pacer starts in each second.
func perSecond(p Pacer, secs int) []int {
	out := make([]int, secs)
	for i := int64(0); i < 1e7; i++ {
		at, ok := p.At(i)
		if !ok {
			break
		}
		if s := int(at / time.Second); s < secs {
			out[s]++
		}
	}
	return out
}

// TestLinearPacer compares ramping-arrival-rate's starts per second with
// the integral of the linearly interpolated rate k6's documentation
// defines: within one iteration per second, and the exact total.
func TestLinearPacer(t *testing.T) {
	tests := []struct {
		name  string
		p     LinearPacer
		rate  func(t float64) float64 // iterations per second at t seconds
		secs  int
		total int
	}{
		{"0 to 100/s over 4s", LinearPacer{StartRate: 0, TimeUnit: time.Second, Stages: stages(4*time.Second, 100)},
			func(t float64) float64 { return 25 * t }, 4, 200},
		{"ramp, hold, down", LinearPacer{StartRate: 10, TimeUnit: time.Second, Stages: stages(2*time.Second, 50, 2*time.Second, 50, 2*time.Second, 0)},
			func(t float64) float64 {
				switch {
				case t < 2:
					return 10 + 20*t
				case t < 4:
					return 50
				}
				return 50 - 25*(t-4)
			}, 6, 60 + 100 + 50},
		{"per minute", LinearPacer{StartRate: 60, TimeUnit: time.Minute, Stages: stages(10*time.Second, 60)},
			func(float64) float64 { return 1 }, 10, 10},
		{"zero-length stage jumps", LinearPacer{StartRate: 0, TimeUnit: time.Second, Stages: stages(0*time.Second, 20, 3*time.Second, 20)},
			func(float64) float64 { return 20 }, 3, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := perSecond(tt.p, tt.secs)
			sum := 0
			for s, n := range got {
				sum += n
				// Exact iterations due in [s, s+1): the integral, by
				// the trapezoid rule on a fine grid.
				want := 0.0
				for k := 0; k < 1000; k++ {
					want += tt.rate(float64(s)+(float64(k)+0.5)/1000) / 1000
				}
				if math.Abs(float64(n)-want) > 1.01 {
					t.Errorf("second %d: %d iterations, want %.2f ± 1", s, n, want)
				}
			}
			if sum != tt.total {
				t.Errorf("total %d iterations, want %d (per second %v)", sum, tt.total, got)
			}
		})
	}
}

// TestRampingVUsSteps compares the VU plan with k6's documented linear
// ramps in whole VUs.
func TestRampingVUsSteps(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		c    RampingVUs
		want []Step
	}{
		{"0 to 4 over 4s, down to 0 over 2s", RampingVUs{StartVUs: 0, Stages: stages(4*s, 4, 2*s, 0)},
			[]Step{{0, 0}, {s, 1}, {2 * s, 2}, {3 * s, 3}, {4 * s, 4}, {4*s + s/2, 3}, {5 * s, 2}, {5*s + s/2, 1}, {6 * s, 0}}},
		// 4 VUs at 3s and 0 at the end (3s too) merge into the last.
		{"start 2, hold, up by 2 over 1s", RampingVUs{StartVUs: 2, Stages: stages(2*s, 2, s, 4)},
			[]Step{{0, 2}, {2*s + 500*time.Millisecond, 3}, {3 * s, 0}}},
		{"zero-duration stage jumps", RampingVUs{StartVUs: 1, Stages: stages(0*s, 5, s, 5)},
			[]Step{{0, 5}, {s, 0}}},
		{"startTime shifts it", RampingVUs{base: base{startTime: 2 * s}, StartVUs: 1, Stages: stages(s, 1)},
			[]Step{{2 * s, 1}, {3 * s, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Steps(); !slices.Equal(got, tt.want) {
				t.Errorf("Steps() = %v, want %v", got, tt.want)
			}
		})
	}
}

// fake runs an engine whose iterations sleep for iter (or until
// interrupted) and records when each started and how many VUs were busy.
type fake struct {
	mu     sync.Mutex
	starts []time.Duration
	took   []time.Duration // of the iterations that completed
	start  time.Time
}

// meanIteration is how long a completed iteration took on average: on a
// loaded machine a 50ms timer fires late, and a closed model then runs
// fewer iterations, as k6 would.
func (f *fake) meanIteration() time.Duration {
	var sum time.Duration
	for _, d := range f.took {
		sum += d
	}
	if len(f.took) == 0 {
		return 0
	}
	return sum / time.Duration(len(f.took))
}

func runFake(t *testing.T, sc k6opts.Scenario, iter time.Duration, sample func(e *Engine, at time.Duration)) (*fake, Summary) {
	t.Helper()
	f := &fake{}
	e, err := New(&k6.Load{Scenario: sc}, withIteration(func(v *vu) bool {
		now := time.Now()
		f.mu.Lock()
		f.starts = append(f.starts, now.Sub(f.start))
		f.mu.Unlock()
		timer := time.NewTimer(iter)
		defer timer.Stop()
		select {
		case <-timer.C:
			f.mu.Lock()
			f.took = append(f.took, time.Since(now))
			f.mu.Unlock()
			return true
		case <-v.ctx.Done():
			return false
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	var startedAt time.Time
	var startMu sync.Mutex
	go func() {
		defer close(done)
		if sample == nil {
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				startMu.Lock()
				s := startedAt
				startMu.Unlock()
				if !s.IsZero() {
					sample(e, time.Since(s))
				}
			}
		}
	}()
	sum, err := e.Run(ctx, func(at time.Time) {
		f.mu.Lock()
		f.start = at
		f.mu.Unlock()
		startMu.Lock()
		startedAt = at
		startMu.Unlock()
	})
	cancel()
	<-done
	if err != nil && err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	return f, sum
}

func (f *fake) perSecond(secs int) []int {
	out := make([]int, secs)
	for _, s := range f.starts {
		if i := int(s / time.Second); i < secs {
			out[i]++
		}
	}
	return out
}

// TestExecutors runs each of the six executors for real (iterations that
// take a fixed time) and compares the iterations started per second, the
// VUs over time and the counters with what k6's documentation specifies
// for the same options. Machines here are shared: the tolerances allow for
// a late timer, not for a wrong schedule.
func TestExecutors(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	tests := []struct {
		name string
		sc   k6opts.Scenario
		iter time.Duration
		// perSec: iterations started per second (±tol each); 0-length: not checked.
		perSec []int
		tol    int
		// vuSeconds: for the closed models, the VU-seconds the plan holds
		// in each second; iterations started in it must be vuSeconds over
		// the mean iteration time, within 15%.
		vuSeconds []float64
		// vus(at) is the VU count k6 would hold at offset at; checked at
		// sampled instants away from the changes.
		vus func(at time.Duration) (int64, bool)
		// exact counters, -1 when not checked
		iterations, dropped, interrupted int64
	}{
		{
			name: "constant-vus: 4 VUs back to back for 1s",
			sc:   k6opts.Scenario{Executor: k6opts.ConstantVUs, VUs: i64(4), Duration: dur(s)},
			iter: 100 * ms, vuSeconds: []float64{4},
			vus:        func(at time.Duration) (int64, bool) { return 4, at > 50*ms && at < 950*ms },
			iterations: -1, dropped: 0, interrupted: 0,
		},
		{
			name: "ramping-vus: 0 to 4 over 2s, down to 0 over 1s",
			sc:   k6opts.Scenario{Executor: k6opts.RampingVUs, StartVUs: i64(0), Stages: stages(2*s, 4, s, 0), GracefulRampDown: dur(0)},
			// 1 VU for the second half of [0,1); 2.5 on average in [1,2) and
			// in [2,3).
			iter: 50 * ms, vuSeconds: []float64{0.5, 2.5, 2.5},
			vus: func(at time.Duration) (int64, bool) {
				steps := (&RampingVUs{StartVUs: 0, Stages: stages(2*s, 4, s, 0)}).Steps()
				var n int64
				for _, st := range steps {
					if d := at - st.At; d > -150*ms && d < 150*ms {
						return 0, false // too close to a change
					}
					if st.At <= at {
						n = st.VUs
					}
				}
				return n, at < 3*s
			},
			iterations: -1, dropped: 0, interrupted: -1,
		},
		{
			name: "per-vu-iterations: 3 VUs × 5",
			sc:   k6opts.Scenario{Executor: k6opts.PerVUIterations, VUs: i64(3), Iterations: i64(5)},
			iter: 20 * ms, iterations: 15, dropped: 0, interrupted: 0,
			vus: func(at time.Duration) (int64, bool) { return 3, at > 10*ms && at < 80*ms },
		},
		{
			name: "shared-iterations: 3 VUs share 10",
			sc:   k6opts.Scenario{Executor: k6opts.SharedIterations, VUs: i64(3), Iterations: i64(10)},
			iter: 20 * ms, iterations: 10, dropped: 0, interrupted: 0,
		},
		{
			name: "constant-arrival-rate: 50/s for 2s",
			sc: k6opts.Scenario{Executor: k6opts.ConstantArrivalRate, Rate: i64(50), Duration: dur(2 * s),
				PreAllocatedVUs: i64(5), MaxVUs: i64(10)},
			iter: 30 * ms, perSec: []int{50, 50}, tol: 1, iterations: 100, dropped: 0, interrupted: 0,
		},
		{
			name: "ramping-arrival-rate: 0 to 100/s over 2s",
			sc: k6opts.Scenario{Executor: k6opts.RampingArrivalRate, StartRate: i64(0), Stages: stages(2*s, 100),
				PreAllocatedVUs: i64(5), MaxVUs: i64(10)},
			// The 25th start falls on 1.0 s exactly and the 22nd-24th within
			// 60 ms before it, so a timer late by tens of milliseconds on a
			// loaded machine moves up to three of them into the next second
			// (seen at load average 9: [22 78]); the total stays exact.
			iter: 10 * ms, perSec: []int{25, 75}, tol: 4, iterations: 100, dropped: 0, interrupted: 0,
		},
		{
			name: "constant-arrival-rate: maxVUs too low drops",
			sc: k6opts.Scenario{Executor: k6opts.ConstantArrivalRate, Rate: i64(100), Duration: dur(s),
				PreAllocatedVUs: i64(1), MaxVUs: i64(2), GracefulStop: dur(s)},
			// Two VUs of 100ms iterations can start 20 a second; 80 are dropped.
			iter: 100 * ms, perSec: []int{20}, tol: 3, iterations: -1, dropped: 80, interrupted: 0,
			vus: func(at time.Duration) (int64, bool) { return 2, at > 100*ms && at < 900*ms },
		},
		{
			name: "gracefulStop interrupts what runs past it",
			sc:   k6opts.Scenario{Executor: k6opts.ConstantVUs, VUs: i64(3), Duration: dur(200 * ms), GracefulStop: dur(100 * ms)},
			iter: time.Hour, perSec: []int{3}, tol: 0, iterations: 0, dropped: 0, interrupted: 3,
		},
		{
			name: "startTime delays the first iteration",
			sc:   k6opts.Scenario{Executor: k6opts.PerVUIterations, VUs: i64(2), Iterations: i64(1), StartTime: dur(1200 * ms)},
			iter: 10 * ms, perSec: []int{0, 2}, tol: 0, iterations: 2, dropped: 0, interrupted: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var bad []string
			f, sum := runFake(t, tt.sc, tt.iter, func(e *Engine, at time.Duration) {
				if tt.vus == nil {
					return
				}
				want, ok := tt.vus(at)
				if !ok {
					return
				}
				if got := e.Stats().VUs; got != want {
					mu.Lock()
					bad = append(bad, at.Round(time.Millisecond).String()+": "+itoa(got)+" VUs, want "+itoa(want))
					mu.Unlock()
				}
			})
			if len(bad) > 0 {
				t.Errorf("VUs over time differ from the plan: %v", bad)
			}
			if len(tt.perSec) > 0 {
				got := f.perSecond(len(tt.perSec))
				for i := range got {
					if d := got[i] - tt.perSec[i]; d > tt.tol || d < -tt.tol {
						t.Errorf("iterations started per second = %v, want %v ± %d", got, tt.perSec, tt.tol)
						break
					}
				}
			}
			if len(tt.vuSeconds) > 0 {
				got := f.perSecond(len(tt.vuSeconds))
				mean := f.meanIteration()
				for i, vs := range tt.vuSeconds {
					want := vs / mean.Seconds()
					if math.Abs(float64(got[i])-want) > 0.15*want+1 {
						t.Errorf("second %d: %d iterations started, want %.1f (%.1f VU-seconds / %v per iteration) ± 15%%; per second %v",
							i, got[i], want, vs, mean, got)
					}
				}
			}
			if tt.iterations >= 0 && sum.Iterations != tt.iterations {
				t.Errorf("iterations = %d, want %d", sum.Iterations, tt.iterations)
			}
			if tt.dropped >= 0 && math.Abs(float64(sum.Dropped-tt.dropped)) > float64(tt.tol) {
				t.Errorf("dropped = %d, want %d ± %d", sum.Dropped, tt.dropped, tt.tol)
			}
			if tt.interrupted >= 0 && sum.Interrupted != tt.interrupted {
				t.Errorf("interrupted = %d, want %d", sum.Interrupted, tt.interrupted)
			}
			if sum.VUs != 0 || sum.Busy != 0 {
				t.Errorf("after the run: %d VUs held, %d busy; want 0", sum.VUs, sum.Busy)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
