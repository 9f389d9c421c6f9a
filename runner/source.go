package runner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/load"
	"faultline.dev/faultline/results"
)

// loadSource is where the load comes from: faultline's engine in-process,
// or a backend that runs it (a k6-operator TestRun in the cluster).
type loadSource interface {
	// start starts the load and returns the instant it started.
	start(ctx context.Context) (time.Time, error)
	// done is closed when the load has ended.
	done() <-chan struct{}
	// stop ends the load at once (it may be called more than once).
	stop()
	// gracefulStop is how long the load may go on after its planned end.
	gracefulStop() time.Duration
	// tick is called once a second while faults are driven.
	tick(now time.Time)
	// endedEarly judges the load ending before its planned end.
	endedEarly(r *run, end time.Time)
	// record puts what the source knows into the result, once it is over.
	record(r *run)
	describe() string
}

// newSource picks the load source: the backend's own load, or the engine.
func (r *run) newSource(loadURL string) (loadSource, error) {
	if lo, ok := r.b.(LoadOwner); ok && lo.OwnsLoad() {
		return &ownedSource{lo: lo, p: r.p, ended: make(chan struct{})}, nil
	}
	compiled, err := k6.CompileLoad(r.p)
	if err != nil {
		return nil, fmt.Errorf("compiling the load: %w", err)
	}
	r.col = NewCollector(r.tl)
	s := &engineSource{sink: newSink(r.tl), col: r.col, ended: make(chan struct{}), gs: k6opts.Dur(compiled.Scenario.GracefulStop)}
	if r.o.PromWrite != "" {
		s.sink.pw = r.newPromTee(r.o.PromWrite, compiled, loadURL, s.sink.origin.Load)
	}
	opts := []load.Option{load.WithSink(s.sink), load.WithBaseURL(loadURL)}
	if es, ok := r.b.(EngineShaper); ok {
		opts = append(opts, es.EngineOptions()...)
	}
	if s.e, err = load.New(compiled, opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// engineSource is faultline's load engine, in-process: samples go from
// the VUs into the sink, and every FlushInterval into the collector.
type engineSource struct {
	e     *load.Engine
	sink  *sink
	col   *Collector
	gs    time.Duration
	ended chan struct{}

	mu      sync.Mutex
	cancel  context.CancelFunc
	start0  time.Time
	sum     load.Summary
	err     error
	vus     []results.VUPoint
	dropped int64
}

func (s *engineSource) describe() string { return "faultline's engine, " + s.e.Executor() }

func (s *engineSource) start(ctx context.Context) (time.Time, error) {
	ectx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	started := make(chan time.Time, 1)
	go func() {
		defer close(s.ended)
		sum, err := s.e.Run(ectx, func(t time.Time) {
			s.sink.origin.Store(t.UnixMilli())
			started <- t
		})
		s.mu.Lock()
		s.sum, s.err = sum, err
		s.mu.Unlock()
	}()
	go s.flushLoop()
	select {
	case t := <-started:
		s.mu.Lock()
		s.start0 = t
		s.mu.Unlock()
		return t, nil
	case <-s.ended:
		return time.Time{}, fmt.Errorf("the load engine ended before it started: %v", s.err)
	}
}

// flushLoop hands the sink's slots to the collector until the load ends,
// then once more.
func (s *engineSource) flushLoop() {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.sink.flush(s.col)
		case <-s.ended:
			s.sink.flush(s.col)
			return
		}
	}
}

func (s *engineSource) done() <-chan struct{} { return s.ended }

func (s *engineSource) stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-s.ended
	s.sink.flush(s.col)
}

func (s *engineSource) gracefulStop() time.Duration { return s.gs }

func (s *engineSource) tick(now time.Time) {
	st := s.e.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start0.IsZero() || len(s.vus) >= 4*3600 { // one point a second, four hours at most
		return
	}
	s.vus = append(s.vus, results.VUPoint{Offset: now.Sub(s.start0).Seconds(), VUs: st.VUs, Busy: st.Busy, Dropped: st.Dropped - s.dropped})
	s.dropped = st.Dropped
}

// endedEarly: an iteration executor that has done all its iterations ends
// before maxDuration, as k6 does; faults not yet injected never are.
func (s *engineSource) endedEarly(r *run, end time.Time) {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil && r.interrupted.Err() == nil {
		r.infra("the load engine failed: " + err.Error())
		return
	}
	r.logf("the load ended %.1fs before its planned end (%s: every iteration done)", time.Until(end).Seconds(), s.e.Executor())
}

func (s *engineSource) record(r *run) {
	if s.sink.pw != nil {
		s.sink.pw.finish(r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sum.Stats
	r.res.Engine = &results.Engine{Executor: s.e.Executor(), Iterations: st.Iterations, DroppedIterations: st.Dropped,
		InterruptedIterations: st.Interrupted, MaxVUs: st.MaxVUs, VUs: s.vus}
	if st.Dropped > 0 {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("%d iterations were dropped: every VU up to maxVUs (%d) was busy when they were due, so the target got less load than planned; raise load.maxVUs", st.Dropped, st.MaxVUs))
	}
}

// ownedSource is a load a LoadOwner runs (no samples reach the runner).
type ownedSource struct {
	lo    LoadOwner
	p     *plan.Plan
	ended chan struct{}

	mu      sync.Mutex
	outcome *results.LoadOutcome
}

func (s *ownedSource) describe() string { return "in-cluster TestRun started" }

func (s *ownedSource) start(ctx context.Context) (time.Time, error) {
	start, done, err := s.lo.StartLoad(ctx, s.p)
	if err != nil {
		return time.Time{}, fmt.Errorf("starting the in-cluster load: %w", err)
	}
	go func() {
		out := <-done
		s.mu.Lock()
		s.outcome = &out
		s.mu.Unlock()
		close(s.ended)
	}()
	return start, nil
}

func (s *ownedSource) done() <-chan struct{} { return s.ended }

// stop leaves the TestRun to the backend's Cleanup.
func (s *ownedSource) stop() {}

// gracefulStop allows the runners 90s more than the script's own graceful
// stop (two minutes with the drain timeout): pods end on the cluster's
// clock.
func (s *ownedSource) gracefulStop() time.Duration {
	g := k6opts.DefaultGracefulStop
	if v := s.p.Source.Load.GracefulStop; v != nil {
		g = v.Std()
	}
	return 90*time.Second + g
}

func (s *ownedSource) tick(time.Time) {}

func (s *ownedSource) endedEarly(r *run, end time.Time) {
	s.mu.Lock()
	out := s.outcome
	s.mu.Unlock()
	switch {
	case out != nil && out.Err != nil:
		r.infra("the in-cluster load failed: " + out.Err.Error())
	case time.Now().Before(end.Add(-time.Second)):
		r.infra(fmt.Sprintf("the in-cluster load ended early (%v)", out))
	}
}

func (s *ownedSource) record(r *run) {
	r.res.Load = "in-cluster"
	r.res.LoadNote = NoSamplesNote
	s.mu.Lock()
	out := s.outcome
	s.mu.Unlock()
	if out != nil {
		r.res.LoadOutcome = out
		r.logf("in-cluster load ended: %s", out)
		if out.Err != nil {
			r.infra("the in-cluster load failed: " + out.Err.Error())
		}
	}
}
