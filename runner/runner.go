// Package runner executes a compiled scenario: it starts the load with the
// embedded k6 (as a child of faultline itself), injects and recovers each
// fault at its offset through a Backend, records the ACTUAL fault windows,
// aggregates k6's samples and the target's Go runtime metrics per phase, and
// judges the result against the SLOs. Whatever happens — signal, k6 crash,
// target crash, scrape failure — every fault is recovered, every child
// reaped and the verdict is never "pass".
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/buildinfo"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/scrape"
)

// Backend injects and recovers faults. The local backend does it with a
// proxy and local processes, the kubernetes backend with Chaos Mesh objects.
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
// Run calls StartLoad instead of starting the embedded k6: no samples reach the runner, so
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
	// Script is the compiled k6 script.
	Script string
	// ReportDir receives results.json, the k6 log and pprof snapshots.
	ReportDir string
	// Self is the faultline binary that runs k6 (default: os.Executable).
	Self string
	// Progress receives live progress lines (a TTY); nil for none.
	Progress io.Writer
	// Log receives event lines (injected, recovered, ...); nil for none.
	Log io.Writer
	// RunID labels the run.
	RunID string
	// K6StartTimeout bounds the wait for k6's API (default 30s).
	K6StartTimeout time.Duration
	// ScrapeFailures is how many scrapes in a row may fail before the run
	// is aborted (default 5).
	ScrapeFailures int
}

// Run executes the plan through the backend and returns the judged result.
// The error is non-nil only when no result could be made at all.
func Run(ctx context.Context, p *plan.Plan, b Backend, o Options) (*results.Result, error) {
	if o.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Self = self
	}
	if o.K6StartTimeout == 0 {
		o.K6StartTimeout = 30 * time.Second
	}
	if o.ScrapeFailures == 0 {
		o.ScrapeFailures = 5
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
	col *Collector
	k6  *k6Proc

	mu       sync.Mutex
	runtime  map[string]*scrape.Phase // by phase; "grace" for recovery's allowance
	rtSeries []results.RuntimePoint
	scrapeOK bool

	loadDone <-chan struct{}      // closed when the load ended (k6 exited, or the owned load ended)
	outcome  *results.LoadOutcome // the owned load's outcome

	abortReason string
	infraReason string
	interrupted context.Context // the caller's context: done after a signal
}

func (r *run) logf(format string, args ...any) {
	if r.o.Log != nil {
		fmt.Fprintf(r.o.Log, format+"\n", args...)
	}
}

func (r *run) abort(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abortReason == "" && r.infraReason == "" {
		r.abortReason = reason
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
	if r.interrupted != nil && r.interrupted.Err() != nil {
		r.abortReason = "interrupted (signal); then " + reason
		return
	}
	r.infraReason = reason
}

// execute runs everything; whatever it returns through, the backend is
// cleaned up and k6 is stopped.
func (r *run) execute(parent context.Context) {
	r.interrupted = parent
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer ccancel()
		if err := r.b.Cleanup(cctx); err != nil {
			// Faults may be left behind: that outranks any other outcome.
			r.mu.Lock()
			r.infraReason, r.abortReason = "cleanup failed, faults may be left: "+err.Error(), ""
			r.mu.Unlock()
			r.res.CleanupError = err.Error()
		}
		if r.k6 != nil {
			r.k6.stop(10 * time.Second)
		}
	}()

	loadURL, err := r.b.Prepare(ctx, r.p)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			r.res.Unsupported = err.Error()
		}
		r.infra("preparing the " + r.b.Name() + " backend: " + err.Error())
		return
	}
	r.res.LoadURL = loadURL
	if lo, ok := r.b.(LoadOwner); ok && lo.OwnsLoad() {
		r.executeOwnedLoad(ctx, parent, cancel, lo)
		return
	}

	r.col, err = NewCollector(r.tl)
	if err != nil {
		r.infra(err.Error())
		return
	}
	colCtx, colCancel := context.WithCancel(context.Background())
	defer colCancel()
	go func() {
		if err := r.col.Serve(colCtx); err != nil && colCtx.Err() == nil {
			r.infra("receiving k6 samples: " + err.Error())
		}
	}()

	k6log, err := os.Create(filepath.Join(r.o.ReportDir, "k6.log"))
	if err != nil {
		r.infra(err.Error())
		return
	}
	defer k6log.Close()
	r.k6, err = startK6(ctx, r.o.Self, r.o.Script, r.col.Addr(), []string{"FAULTLINE_TARGET_URL=" + loadURL}, k6log, r.o.K6StartTimeout)
	if err != nil {
		if parent.Err() != nil {
			r.abort("interrupted before the load started")
		} else {
			r.infra(err.Error())
		}
		return
	}

	scrapeCtx, scrapeCancel := context.WithCancel(ctx)
	defer scrapeCancel()
	if u := r.p.Source.Target.Metrics; u != "" {
		go r.scrape(scrapeCtx, cancel, u)
	}

	r.snapshot(ctx, "before-load")
	start, err := r.k6.resume(ctx)
	if err != nil {
		r.infra(err.Error())
		return
	}
	r.tl.SetLoadStart(start)
	r.res.LoadStart = start.UTC()
	r.logf("load started (k6 resumed); %d fault(s) planned over %s", len(r.p.Faults), r.p.LoadEnd)
	r.loadDone = r.k6.done

	r.driveFaults(ctx, parent, start)
	scrapeCancel()

	// Wait for k6 to end by itself (graceful stop included), then for the
	// last samples.
	if r.abortReason == "" && r.infraReason == "" {
		grace := 30*time.Second + gracefulStop(r.p)
		select {
		case <-r.k6.done:
		case <-time.After(grace):
			r.infra(fmt.Sprintf("k6 did not end within %s of the planned load end: stopped it", grace))
			r.k6.stop(10 * time.Second)
		case <-parent.Done():
			r.abort("interrupted while the load was finishing")
		}
	}
	r.k6.stop(10 * time.Second)
	select {
	case <-r.col.Done():
	case <-time.After(10 * time.Second):
		colCancel()
	}
	r.snapshot(context.Background(), "after-load")
	code, _ := r.k6.exit()
	r.res.K6ExitCode = code
	if code != 0 && code != k6ThresholdsCrossed && code != k6ExternalAbort && r.abortReason == "" && r.infraReason == "" {
		if code == k6ScriptAbort {
			r.abort("the k6 script called test.abort()")
		} else {
			r.infra(fmt.Sprintf("k6 exited with code %d (see %s)", code, filepath.Join(r.o.ReportDir, "k6.log")))
		}
	}
}

// driveFaults runs the faults on the runner's clock, or lets a TimelineOwner run them.
func (r *run) driveFaults(ctx, parent context.Context, start time.Time) {
	if to, ok := r.b.(TimelineOwner); ok && to.OwnsTimeline() {
		r.driveOwned(ctx, parent, start, to)
	} else {
		r.drive(ctx, parent, start)
	}
}

// executeOwnedLoad is execute's second half when a LoadOwner runs the load: no k6 child, no
// collector; faults as usual; the load's outcome instead of k6's exit code.
func (r *run) executeOwnedLoad(ctx, parent context.Context, cancel context.CancelFunc, lo LoadOwner) {
	r.res.Load = "in-cluster"
	r.res.LoadNote = NoSamplesNote
	scrapeCtx, scrapeCancel := context.WithCancel(ctx)
	defer scrapeCancel()
	if u := r.p.Source.Target.Metrics; u != "" {
		go r.scrape(scrapeCtx, cancel, u)
	}
	start, done, err := lo.StartLoad(ctx, r.p)
	if err != nil {
		if parent.Err() != nil {
			r.abort("interrupted before the load started")
		} else {
			r.infra("starting the in-cluster load: " + err.Error())
		}
		return
	}
	ended := make(chan struct{})
	go func() {
		out := <-done
		r.mu.Lock()
		r.outcome = &out
		r.mu.Unlock()
		close(ended)
	}()
	r.loadDone = ended
	r.tl.SetLoadStart(start)
	r.res.LoadStart = start.UTC()
	r.logf("load started (in-cluster TestRun started); %d fault(s) planned over %s", len(r.p.Faults), r.p.LoadEnd)
	r.driveFaults(ctx, parent, start)
	scrapeCancel()
	if r.abortReason == "" && r.infraReason == "" {
		grace := 2*time.Minute + gracefulStop(r.p)
		select {
		case <-ended:
		case <-time.After(grace):
			r.infra(fmt.Sprintf("the in-cluster load did not finish within %s of the planned load end", grace))
		case <-parent.Done():
			r.abort("interrupted while the load was finishing")
		}
	}
	r.mu.Lock()
	out := r.outcome
	r.mu.Unlock()
	if out != nil {
		r.res.LoadOutcome = out
		r.logf("in-cluster load ended: %s", out)
		if out.Err != nil {
			r.infra("the in-cluster load failed: " + out.Err.Error())
		}
	}
}

// event is one step of the timeline.
type event struct {
	at      time.Duration
	inject  bool
	fault   plan.Fault
	recover bool
}

// drive injects and recovers the faults on the plan's clock until the load
// ends, k6 exits early, the backend fails or the run is interrupted.
func (r *run) drive(ctx, parent context.Context, start time.Time) {
	var events []event
	for _, f := range r.p.Faults {
		events = append(events, event{at: f.Start.Std(), inject: true, fault: f}, event{at: f.End.Std(), recover: true, fault: f})
	}
	slices.SortStableFunc(events, func(a, b event) int {
		if a.at != b.at {
			return int((a.at - b.at) / time.Microsecond)
		}
		if a.recover != b.recover { // recover before inject at the same instant
			if a.recover {
				return -1
			}
			return 1
		}
		return 0
	})
	end := start.Add(r.p.LoadEnd.Std())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	injected := map[string]bool{}
	for {
		next := end
		if len(events) > 0 {
			next = start.Add(events[0].at)
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-parent.Done():
			timer.Stop()
			r.abort("interrupted (signal)")
			return
		case <-ctx.Done():
			timer.Stop()
			return // a scrape failure or another abort cancelled the run
		case err := <-r.b.Failures():
			timer.Stop()
			r.abort("the target failed: " + err.Error())
			return
		case <-r.loadDone:
			timer.Stop()
			r.loadEndedEarly(end)
			return
		case now := <-tick.C:
			timer.Stop()
			if r.col != nil {
				r.col.Finalize(now.Add(-FinalizeLag))
			}
			r.progress(now, start, end)
			continue
		case <-timer.C:
		}
		if len(events) == 0 {
			return // the planned load end
		}
		ev := events[0]
		events = events[1:]
		if ev.inject {
			at, err := r.b.Inject(ctx, ev.fault)
			if err != nil {
				r.infra(fmt.Sprintf("injecting %s: %v", ev.fault.Name, err))
				return
			}
			injected[ev.fault.Name] = true
			r.tl.Injected(ev.fault, at)
			r.logf("%7.2fs  injected  %s (%s), planned %s", at.Sub(start).Seconds(), ev.fault.Name, ev.fault.Kind, ev.fault.Start)
			if r.tl.isFirstInjection() {
				r.snapshot(ctx, "fault-start")
			}
		} else if injected[ev.fault.Name] {
			at, err := r.b.Recover(ctx, ev.fault)
			r.tl.Recovered(ev.fault.Name, at, err)
			if err != nil {
				r.infra(fmt.Sprintf("recovering %s: %v", ev.fault.Name, err))
				return
			}
			r.logf("%7.2fs  recovered %s, planned %s", at.Sub(start).Seconds(), ev.fault.Name, ev.fault.End)
			if len(r.tl.Active()) == 0 && !r.tl.LastFaultEnd().IsZero() && len(events) == 0 {
				r.snapshot(ctx, "recovery-start")
			}
		}
	}
}

// driveOwned lets a TimelineOwner run the faults and records what it reports, until the load
// ends, k6 exits early, the backend fails or the run is interrupted (as drive).
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
			r.abort("interrupted (signal)")
			return
		case <-ctx.Done():
			return
		case err := <-r.b.Failures():
			r.abort("the target failed: " + err.Error())
			return
		case err := <-done:
			running = false
			switch {
			case errors.Is(err, ErrTimelineAborted):
				r.abort(err.Error())
				return
			case err != nil && parent.Err() != nil:
				r.abort("interrupted (signal)")
				return
			case err != nil:
				r.infra("running the fault timeline: " + err.Error())
				return
			}
			r.snapshot(ctx, "recovery-start")
			done = nil // the fault part is over; the load goes on to its end
		case <-r.loadDone:
			r.loadEndedEarly(end)
			return
		case now := <-tick.C:
			if r.col != nil {
				r.col.Finalize(now.Add(-FinalizeLag))
			}
			r.progress(now, start, end)
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

// loadEndedEarly judges the load ending before the planned load end.
func (r *run) loadEndedEarly(end time.Time) {
	if r.k6 == nil { // an owned load
		r.mu.Lock()
		out := r.outcome
		r.mu.Unlock()
		switch {
		case out != nil && out.Err != nil:
			r.infra("the in-cluster load failed: " + out.Err.Error())
		case time.Now().Before(end.Add(-time.Second)):
			r.infra(fmt.Sprintf("the in-cluster load ended early (%v)", out))
		}
		return
	}
	code, _ := r.k6.exit()
	if time.Now().Before(end.Add(-time.Second)) {
		switch code {
		case k6ThresholdsCrossed:
			r.res.AbortedOnBreach = true
			r.abort("k6 stopped the load early: a threshold with abortOnBreach was crossed")
		default:
			r.infra(fmt.Sprintf("k6 exited early with code %d (see %s)", code, filepath.Join(r.o.ReportDir, "k6.log")))
		}
	}
}

func (t *Timeline) isFirstInjection() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.windows) == 1
}

// scrape polls the target's /metrics and folds samples into phases; too
// many failures in a row abort the run.
func (r *run) scrape(ctx context.Context, cancel context.CancelFunc, url string) {
	s := &scrape.Scraper{URL: url, Interval: time.Second}
	fails := 0
	s.Run(ctx, func(smp scrape.Sample, err error) {
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
			r.logf("scrape: %v", err)
			if fails >= r.o.ScrapeFailures {
				r.abort(fmt.Sprintf("scraping %s failed %d times in a row: %v", url, fails, err))
				cancel()
			}
			return
		}
		fails = 0
		start := r.tl.LoadStart()
		if start.IsZero() || smp.Time.Before(start) {
			return
		}
		cl := r.tl.Classify(smp.Time)
		key := cl.Phase
		if cl.Grace {
			key = "grace"
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.scrapeOK = true
		ph := r.runtime[key]
		if ph == nil {
			ph = &scrape.Phase{}
			r.runtime[key] = ph
		}
		ph.Add(smp)
		r.rtSeries = append(r.rtSeries, results.RuntimePoint{Offset: smp.Time.Sub(start).Seconds(), Goroutines: smp.Goroutines, HeapInUse: smp.HeapInUse, RSS: smp.RSS})
		if len(r.rtSeries) > 4*3600 { // bounded: one point a second, four hours
			r.rtSeries = r.rtSeries[1:]
		}
	})
}

// snapshot saves goroutine and heap profiles of the target when it serves
// /debug/pprof; best effort.
func (r *run) snapshot(ctx context.Context, name string) {
	base := strings.TrimSuffix(r.p.Source.Target.URL, "/")
	if r.p.Source.Target.Metrics != "" {
		if i := strings.Index(r.p.Source.Target.Metrics[8:], "/"); i >= 0 {
			base = r.p.Source.Target.Metrics[:8+i]
		}
	}
	c := &http.Client{Timeout: 3 * time.Second}
	for _, prof := range []string{"goroutine", "heap"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/"+prof, nil)
		if err != nil {
			return
		}
		resp, err := c.Do(req)
		if err != nil {
			return
		}
		if resp.StatusCode == http.StatusOK {
			f := filepath.Join(r.o.ReportDir, "pprof", name+"."+prof+".pb.gz")
			if os.MkdirAll(filepath.Dir(f), 0o755) == nil {
				if out, err := os.Create(f); err == nil {
					_, _ = io.Copy(out, resp.Body)
					_ = out.Close()
					r.mu.Lock()
					r.res.Profiles = append(r.res.Profiles, filepath.Join("pprof", name+"."+prof+".pb.gz"))
					r.mu.Unlock()
				}
			}
		}
		resp.Body.Close()
	}
}

// progress prints one live line: phase, elapsed / total, RPS, p99, errors,
// active faults.
func (r *run) progress(now, start, end time.Time) {
	if r.o.Progress == nil {
		return
	}
	if r.col == nil {
		active := strings.Join(r.tl.Active(), ",")
		if active == "" {
			active = "-"
		}
		fmt.Fprintf(r.o.Progress, "\r\033[K%-8s %s/%s  in-cluster load (no samples)  faults: %s", r.tl.Classify(now).Phase, fmtDur(now.Sub(start)), fmtDur(end.Sub(start)), active)
		return
	}
	rps, p99, errRate := r.col.Recent(now)
	cl := r.tl.Classify(now)
	active := strings.Join(r.tl.Active(), ",")
	if active == "" {
		active = "-"
	}
	fmt.Fprintf(r.o.Progress, "\r\033[K%-8s %s/%s  %6.0f req/s  p99 %7.1fms  errors %5.2f%%  faults: %s",
		cl.Phase, fmtDur(now.Sub(start)), fmtDur(end.Sub(start)), rps, p99, errRate, active)
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func gracefulStop(p *plan.Plan) time.Duration {
	if g := p.Source.Load.GracefulStop; g != nil {
		return g.Std()
	}
	return 30 * time.Second
}

// finish judges what was collected.
func (r *run) finish() {
	res := r.res
	res.EndedAt = time.Now().UTC()
	res.Faults = nil
	if r.col != nil {
		r.col.FinalizeAll()
	}
	windows := r.tl.Windows()
	data := map[string]phaseData{}
	var series []results.Point
	if r.col != nil {
		phases, perFault, grace, s, late, errs := r.col.Snapshot()
		series = s
		res.LateRequests = late
		for _, e := range errs {
			res.Warnings = append(res.Warnings, e.Error())
		}
		start := r.tl.LoadStart()
		loadEnd := r.p.LoadEnd.Std().Seconds()
		ended := res.EndedAt.Sub(start).Seconds()
		if !start.IsZero() && ended < loadEnd {
			loadEnd = ended
		}
		bounds := phaseBounds(r.p, windows, loadEnd)
		for _, b := range bounds {
			agg := phases[b.Name]
			r.mu.Lock()
			rt := r.runtime[b.Name]
			r.mu.Unlock()
			data[b.Name] = phaseData{agg: agg, runtime: rt, seconds: b.End - b.JudgedFrom}
			res.Phases = append(res.Phases, summarize(b, agg, rt))
		}
		if grace != nil && grace.Requests > 0 {
			res.RecoveryGraceRequests = grace.Requests
		}
		res.TransitionRequests = r.col.Transition()
		for _, w := range windows {
			fr := results.FaultResult{Window: w}
			if a := perFault[w.Fault]; a != nil {
				fr.Requests, fr.P50, fr.P99, fr.ErrorRate = a.Requests, nan0(a.Quantile(0.5)), nan0(a.Quantile(0.99)), nan0(a.ErrorRate())
				fr.Effective, fr.Evidence = efficacy(r.p.Source.Faults[w.Fault], a, phases[plan.Steady])
			} else {
				fr.Effective, fr.Evidence = "unknown", "no requests during the fault"
			}
			res.Faults = append(res.Faults, fr)
		}
		if last := r.tl.LastFaultEnd(); !last.IsZero() && !start.IsZero() {
			secs, ok := recoveryTime(series, last.Sub(start).Seconds(), phases[plan.Steady])
			res.Recovery = &results.Recovery{Recovered: ok, Seconds: secs}
		}
	}
	if r.col == nil && res.Load != "" && !r.tl.LoadStart().IsZero() {
		// No samples: the phases' actual windows and the faults' windows, no numbers.
		loadEnd := math.Min(r.p.LoadEnd.Std().Seconds(), res.EndedAt.Sub(r.tl.LoadStart()).Seconds())
		for _, b := range phaseBounds(r.p, windows, loadEnd) {
			r.mu.Lock()
			rt := r.runtime[b.Name]
			r.mu.Unlock()
			res.Phases = append(res.Phases, summarize(b, nil, rt))
		}
		for _, w := range windows {
			res.Faults = append(res.Faults, results.FaultResult{Window: w, Effective: "unknown", Evidence: "in-cluster load: no samples"})
		}
	}
	res.Series = series
	r.mu.Lock()
	res.Runtime = r.rtSeries
	r.mu.Unlock()
	res.SLOs = judge(r.p.Source, data)
	judgeFromThresholds(res)

	// The verdict.
	switch {
	case r.infraReason != "":
		res.Verdict, res.Reason = results.VerdictError, r.infraReason
	case r.abortReason != "" && res.AbortedOnBreach && anyFailed(res.SLOs):
		res.Verdict, res.Reason = results.VerdictSLOBreach, r.abortReason
	case r.abortReason != "":
		res.Verdict, res.Reason = results.VerdictAborted, r.abortReason
	case res.LoadOutcome != nil && len(res.LoadOutcome.ThresholdsCrossed) > 0:
		res.Verdict = results.VerdictSLOBreach
		res.Reason = "k6 thresholds crossed on runner(s) " + strings.Join(res.LoadOutcome.ThresholdsCrossed, ", ") +
			" (in-cluster load: judged per runner from the TestRun's outcome; per-phase numbers are not available)"
	default:
		var empty []string
		for _, s := range res.SLOs {
			if s.Status == results.StatusNoData && !slices.Contains(empty, s.Phase+" "+s.SLO) {
				empty = append(empty, s.Phase+" "+s.SLO)
			}
		}
		switch {
		case len(empty) > 0:
			res.Verdict = results.VerdictError
			res.Reason = "no data to judge: " + strings.Join(empty, ", ") + " (a phase without samples is an error, not a pass)"
			if res.Load != "" && res.LoadOutcome != nil {
				res.Reason += "; in-cluster load: per-phase numbers are not available; the TestRun's outcome: " + res.LoadOutcome.String()
			}
		case anyFailed(res.SLOs):
			res.Verdict = results.VerdictSLOBreach
			var failed []string
			for _, s := range res.SLOs {
				if s.Status == results.StatusFail {
					failed = append(failed, s.Phase+" "+s.SLO)
				}
			}
			res.Reason = "SLO breached: " + strings.Join(failed, ", ")
		default:
			res.Verdict, res.Reason = results.VerdictPass, "every SLO met"
		}
	}
	res.ExitCode = results.ExitCode(res.Verdict)
}

// k6Judged reports whether the compiled k6 script enforces an SLO as a
// per-phase threshold (compiler/k6): latency, errors, checks, throughput.
func k6Judged(slo string) bool {
	return strings.HasPrefix(slo, "latency.") || slo == "errorRate" || slo == "checks" || slo == "throughput"
}

// judgeFromThresholds fills, for an in-cluster load, the SLOs k6 enforced:
// met when every runner's thresholds passed. A crossed threshold does not
// say which SLO it was, so those stay no-data and the verdict is a breach
// (see finish); an unknown outcome leaves them no-data.
func judgeFromThresholds(res *results.Result) {
	out := res.LoadOutcome
	if res.Load == "" || out == nil || out.Err != nil || !out.ThresholdsKnown || len(out.ThresholdsCrossed) > 0 {
		return
	}
	for i := range res.SLOs {
		if s := &res.SLOs[i]; s.Status == results.StatusNoData && k6Judged(s.SLO) {
			s.Status = results.StatusPass
			s.Note = "k6 threshold passed on every runner (per runner, planned phase window); no measured value in-cluster"
		}
	}
}

func anyFailed(ss []results.SLOResult) bool {
	for _, s := range ss {
		if s.Status == results.StatusFail {
			return true
		}
	}
	return false
}

// phaseBounds computes the actual phase windows (seconds since load start).
func phaseBounds(p *plan.Plan, windows []results.Window, loadEnd float64) []results.PhaseResult {
	if len(windows) == 0 {
		return []results.PhaseResult{{Name: plan.Steady, Start: 0, End: loadEnd, JudgedFrom: 0}}
	}
	first, last := math.Inf(1), 0.0
	for _, w := range windows {
		first = math.Min(first, w.StartOffset)
		end := w.EndOffset
		if w.End.IsZero() {
			end = loadEnd
		}
		last = math.Max(last, end)
	}
	var out []results.PhaseResult
	if first > 0 {
		out = append(out, results.PhaseResult{Name: plan.Steady, Start: 0, End: first})
	}
	out = append(out, results.PhaseResult{Name: plan.FaultPhase, Start: first, End: last, JudgedFrom: first})
	if last < loadEnd {
		judge := last
		if rec, ok := p.Phase(plan.Recovery); ok {
			judge = math.Min(last+time.Duration(rec.JudgeFrom-rec.Start).Seconds(), loadEnd)
		}
		out = append(out, results.PhaseResult{Name: plan.Recovery, Start: last, End: loadEnd, JudgedFrom: judge})
	}
	return out
}
