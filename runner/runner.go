// Package runner executes a compiled scenario: it starts the load with
// faultline's own engine (package load, in-process), injects and recovers
// each fault at its offset through a Backend, records the ACTUAL fault
// windows, aggregates the engine's samples and the target's Go runtime
// metrics per phase, and judges the result against the SLOs. Whatever
// happens — signal, target crash, scrape failure, a breach with
// abortOnBreach — every fault is recovered, the load stopped and the
// verdict is never "pass".
//
// A run is a fixed pipeline of steps (execute): prepare the backend, start
// the load, drive the faults, drain the load; cleanup always runs, and
// finish judges what was collected.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/buildinfo"
	"faultline.dev/faultline/load"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/scrape"
)

// Backend injects and recovers faults. The local backend does it on the
// load engine's own connections and on local processes, the kubernetes
// backend with Chaos Mesh objects.
type Backend interface {
	// Name is "local" or "kubernetes".
	Name() string
	// Prepare checks that every fault of the plan can run on this backend
	// (refusing up front what it cannot do) and starts what the backend
	// needs. It returns the base URL the load must be sent to.
	Prepare(ctx context.Context, p *plan.Plan) (loadURL string, err error)
	// Inject starts a fault and returns the instant it took effect.
	Inject(ctx context.Context, f plan.Fault) (time.Time, error)
	// Recover ends a fault and returns the instant it stopped.
	Recover(ctx context.Context, f plan.Fault) (time.Time, error)
	// Cleanup recovers every fault still active and stops what Prepare
	// started. It is called exactly once, also after errors and signals,
	// with a context of its own.
	Cleanup(ctx context.Context) error
	// Failures reports failures of what the backend runs (the target
	// process died) while the run goes on.
	Failures() <-chan error
}

// EngineShaper is a Backend whose faults act on the load engine itself
// (the local backend: its network faults on the engine's connections, its
// HTTP faults on its requests). Run passes EngineOptions to the engine.
type EngineShaper interface {
	EngineOptions() []load.Option
}

// Noter is a Backend with things to say about how it ran (the local
// backend: stress could not be isolated from the load generator). Run adds
// Notes to results.json's warnings and prints them as events.
type Noter interface {
	Notes() []string
}

// TimelineOwner is a Backend that can keep the faults' clock itself (the kubernetes backend
// with --timing workflow: Chaos Mesh's Workflow engine starts and ends each fault). When the
// Backend implements it and OwnsTimeline reports true, Run calls RunTimeline once the load has
// started, instead of calling Inject and Recover on its own clock; everything else (Prepare,
// the load, samples, verdict, Cleanup) is unchanged.
type TimelineOwner interface {
	OwnsTimeline() bool
	// RunTimeline runs every fault of the plan, calls onInjected and onRecovered with the
	// actual instants as the engine reports them (never after it returns), and returns when the
	// fault part is over. An error wrapping ErrTimelineAborted means the engine aborted the
	// faults: the run is aborted. Any other error is an infrastructure error.
	RunTimeline(ctx context.Context, p *plan.Plan, onInjected func(plan.Fault, time.Time), onRecovered func(plan.Fault, time.Time)) error
}

// LoadOwner is a Backend that can run the load itself (the kubernetes backend with --load
// in-cluster: a k6-operator TestRun). When the Backend implements it and OwnsLoad reports true,
// Run calls StartLoad instead of starting faultline's engine: no samples reach the runner, so
// per-phase numbers are not available; the verdict comes from the load's outcome (any runner's
// threshold failure is a breach) and every phase SLO is "no-data", never a pass.
type LoadOwner interface {
	OwnsLoad() bool
	// StartLoad starts the load and returns when it has started (its instant) with a channel
	// that receives the outcome once, when the load ends.
	StartLoad(ctx context.Context, p *plan.Plan) (time.Time, <-chan results.LoadOutcome, error)
}

// NoSamplesNote is results.json's loadNote when a LoadOwner ran the load.
const NoSamplesNote = "in-cluster load: the k6 runners' samples do not reach faultline, so per-phase latency and error numbers are not available; the SLOs k6 enforces as per-phase thresholds (latency, errorRate, checks, throughput) are judged from the TestRun's outcome — met when every runner's thresholds passed (per runner, on the planned phase windows), no-data when the outcome is unknown; Go runtime SLOs are judged from /metrics as usual"

// ErrTimelineAborted marks a fault timeline the engine that owns it aborted.
var ErrTimelineAborted = errors.New("the fault timeline was aborted")

// ErrUnsupported marks a fault a backend cannot run.
var ErrUnsupported = errors.New("unsupported on this backend")

// Options configure a run.
type Options struct {
	// ReportDir receives results.json and pprof snapshots.
	ReportDir string
	// Progress receives live progress lines (a TTY); nil for none.
	Progress io.Writer
	// Log receives event lines (injected, recovered, ...); nil for none.
	Log io.Writer
	// RunID labels the run.
	RunID string
	// ScrapeFailures is how many scrapes in a row may fail before the run
	// is aborted (default 5).
	ScrapeFailures int
	// DrainTimeout bounds the wait for the load to end after its planned
	// end, beyond its gracefulStop (default 30s).
	DrainTimeout time.Duration
	// PromWrite is a Prometheus remote-write endpoint the engine's
	// samples are written to as k6's remote-write series (empty: none).
	PromWrite string
}

// Run executes the plan through the backend and returns the judged result.
// The error is non-nil only when no result could be made at all.
func Run(ctx context.Context, p *plan.Plan, b Backend, o Options) (*results.Result, error) {
	if o.ScrapeFailures == 0 {
		o.ScrapeFailures = 5
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(o.ReportDir, 0o755); err != nil {
		return nil, err
	}
	r := &run{p: p, b: b, o: o, tl: NewTimeline(p), runtime: map[string]*scrape.Phase{}}
	r.res = &results.Result{Scenario: p.Scenario, Version: p.Version, RunID: o.RunID, Backend: b.Name(),
		Target: p.Source.Target.URL, FaultlineVersion: buildinfo.Version(), StartedAt: time.Now().UTC(), ContentHash: p.ContentHash,
		PlannedLoad: p.LoadEnd.Std().Seconds(), TimeScale: p.TimeScale}
	r.execute(ctx)
	r.finish()
	if err := r.res.Write(o.ReportDir); err != nil {
		return r.res, err
	}
	return r.res, nil
}

type run struct {
	p   *plan.Plan
	b   Backend
	o   Options
	tl  *Timeline
	res *results.Result
	col *Collector // nil when a LoadOwner ran the load
	src loadSource

	mu       sync.Mutex
	runtime  map[string]*scrape.Phase // by phase; "grace" for recovery's allowance
	rtSeries []results.RuntimePoint
	scrapeOK bool

	abortReason string
	infraReason string
	stoppedAt   time.Time       // when the run was first aborted or broken
	interrupted context.Context // the caller's context: done after a signal
}

func (r *run) logf(format string, args ...any) {
	if r.o.Log != nil {
		if r.o.Progress != nil {
			fmt.Fprint(r.o.Progress, "\r\033[K") // the live line goes; it comes back at the next tick
		}
		fmt.Fprintf(r.o.Log, format+"\n", args...)
	}
}

func (r *run) abort(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abortReason == "" && r.infraReason == "" {
		r.abortReason, r.stoppedAt = reason, time.Now()
	}
}

// infra records an infrastructure failure. After the user interrupted the
// run, whatever fails next is a consequence of the interruption: the run
// is aborted, not broken.
func (r *run) infra(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abortReason != "" || r.infraReason != "" {
		return
	}
	r.stoppedAt = time.Now()
	if r.interrupted != nil && r.interrupted.Err() != nil {
		r.abortReason = "interrupted (signal); then " + reason
		return
	}
	r.infraReason = reason
}

// failed reports whether the run has been aborted or broken.
func (r *run) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.abortReason != "" || r.infraReason != ""
}

// execute runs the pipeline: prepare, start the load, drive the faults,
// drain; whatever it returns through, the load is stopped and the backend
// cleaned up.
func (r *run) execute(parent context.Context) {
	r.interrupted = parent
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	defer r.cleanup()

	loadURL, err := r.b.Prepare(ctx, r.p)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			r.res.Unsupported = err.Error()
		}
		r.infra("preparing the " + r.b.Name() + " backend: " + err.Error())
		return
	}
	r.res.LoadURL = loadURL
	if r.src, err = r.newSource(loadURL); err != nil {
		r.infra(err.Error())
		return
	}
	if u := r.p.Source.Target.Metrics; u != "" {
		scrapeCtx, scrapeCancel := context.WithCancel(ctx)
		defer scrapeCancel()
		go r.scrape(scrapeCtx, cancel, u)
	}
	r.snapshot(ctx, "before-load")
	start, err := r.src.start(ctx)
	if err != nil {
		if parent.Err() != nil {
			r.abort("interrupted before the load started")
		} else {
			r.infra("starting the load: " + err.Error())
		}
		return
	}
	r.tl.SetLoadStart(start)
	r.res.LoadStart = start.UTC()
	r.logf("load started (%s); %d fault(s) planned over %s", r.src.describe(), len(r.p.Faults), r.p.LoadEnd)
	r.driveFaults(ctx, parent, start)
	r.drain(parent)
	r.snapshot(context.Background(), "after-load")
}

// drain waits for the load to end by itself (its graceful stop included),
// or stops it when the run failed or it does not end in time.
func (r *run) drain(parent context.Context) {
	if r.failed() {
		r.src.stop()
		return
	}
	grace := r.o.DrainTimeout + r.src.gracefulStop()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-r.src.done():
	case <-timer.C:
		r.infra(fmt.Sprintf("the load did not end within %s of its planned end: stopped it", grace))
	case <-parent.Done():
		r.abort("interrupted while the load was finishing")
	}
	r.src.stop()
}

// cleanup stops the load and recovers every fault, on a context of its
// own. A fault still active ends at the instant the run stopped (the abort,
// or now).
func (r *run) cleanup() {
	r.mu.Lock()
	cut := r.stoppedAt
	r.mu.Unlock()
	if cut.IsZero() {
		cut = time.Now()
	}
	if r.src != nil {
		r.src.stop()
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer ccancel()
	if err := r.b.Cleanup(cctx); err != nil {
		// Faults may be left behind: that outranks any other outcome, but
		// what went wrong first (a fault that was never injected, an
		// interrupt) stays in the reason, ahead of the cleanup's state.
		r.mu.Lock()
		r.infraReason, r.abortReason = cleanupReason(r.infraReason, r.abortReason, err), ""
		r.mu.Unlock()
		r.res.CleanupError = err.Error()
	}
	if !r.tl.LoadStart().IsZero() {
		r.tl.CutShort(cut)
	}
}

// cleanupReason is the run's reason when its cleanup failed: the reason it
// already had, if any, then the cleanup's error.
func cleanupReason(infra, abort string, err error) string {
	msg := "cleanup failed, faults may be left: " + err.Error()
	switch {
	case infra != "":
		return infra + "; then " + msg
	case abort != "":
		return abort + "; then " + msg
	}
	return msg
}
