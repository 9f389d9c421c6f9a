package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/schema"
)

// fakeOwner is a FAKE Backend standing in for the kubernetes backend with
// --timing workflow and --load in-cluster, which needs a cluster with Chaos
// Mesh's workflow engine and the k6-operator — neither can run here. It
// exercises only the runner core's paths for a Backend that owns the
// timeline and the load (no k6 child runs); the real kubernetes
// implementation is tested against a real API server in runner/kube.
type fakeOwner struct {
	outcome  results.LoadOutcome
	abortAt  time.Duration // RunTimeline aborts after this (0: never)
	cleanups atomic.Int32
	// injectErr, if set, is RunTimeline's error at the fault's start (a
	// fault Chaos Mesh never injected); cleanupErr is Cleanup's.
	injectErr, cleanupErr error
}

func (o *fakeOwner) Name() string { return "fake" }
func (o *fakeOwner) Prepare(context.Context, *plan.Plan) (string, error) {
	return "http://127.0.0.1:1", nil
}
func (o *fakeOwner) Inject(context.Context, plan.Fault) (time.Time, error) {
	return time.Time{}, errors.New("Inject called on a timeline owner")
}
func (o *fakeOwner) Recover(context.Context, plan.Fault) (time.Time, error) {
	return time.Time{}, errors.New("Recover called on a timeline owner")
}
func (o *fakeOwner) Cleanup(context.Context) error { o.cleanups.Add(1); return o.cleanupErr }
func (o *fakeOwner) Failures() <-chan error        { return nil }
func (o *fakeOwner) OwnsTimeline() bool            { return true }
func (o *fakeOwner) OwnsLoad() bool                { return true }

func (o *fakeOwner) RunTimeline(ctx context.Context, p *plan.Plan, onInjected func(plan.Fault, time.Time), onRecovered func(plan.Fault, time.Time)) error {
	start := time.Now()
	f := p.Faults[0]
	sleep := func(until time.Duration) error {
		select {
		case <-time.After(time.Until(start.Add(until))):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(f.Start.Std()); err != nil {
		return err
	}
	if o.injectErr != nil {
		return o.injectErr
	}
	onInjected(f, time.Now())
	if o.abortAt > 0 {
		if err := sleep(o.abortAt); err != nil {
			return err
		}
		return fmt.Errorf("Workflow w was aborted: test: %w", ErrTimelineAborted)
	}
	if err := sleep(f.End.Std()); err != nil {
		return err
	}
	onRecovered(f, time.Now())
	return nil
}

func (o *fakeOwner) StartLoad(ctx context.Context, p *plan.Plan) (time.Time, <-chan results.LoadOutcome, error) {
	done := make(chan results.LoadOutcome, 1)
	time.AfterFunc(p.LoadEnd.Std(), func() { done <- o.outcome })
	return time.Now(), done, nil
}

func ownedPlan(t *testing.T) *plan.Plan {
	t.Helper()
	s := &schema.Scenario{Name: "owned", Version: "1.0.0", Target: schema.Target{URL: "http://127.0.0.1:1"},
		Load:   schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: sd("3s"), Requests: []schema.Request{{Path: "/"}}},
		Faults: map[string]schema.Fault{"a": {Start: sd("500ms"), Duration: sd("1s"), NetworkDelay: &schema.NetworkDelay{Latency: sd("100ms")}}},
		SLOs:   &schema.SLOs{Steady: &schema.PhaseSLO{ErrorRate: ptr(1.0)}, Fault: &schema.PhaseSLO{ErrorRate: ptr(5.0)}},
	}
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOwnedTimelineAndLoad: a Backend that owns the timeline and the load (the kubernetes
// backend with --timing workflow and --load in-cluster) replaces the runner's clock and the
// embedded k6; results.json still shows the actual fault windows, says per-phase numbers are not
// available, never judges a phase SLO a pass, and takes the verdict from the load's outcome and
// the timeline's end.
func TestOwnedTimelineAndLoad(t *testing.T) {
	finished := results.LoadOutcome{Stage: "finished", ThresholdsKnown: true}
	cases := []struct {
		name    string
		b       *fakeOwner
		verdict string
		reason  string
	}{
		{"thresholds passed", &fakeOwner{outcome: finished}, results.VerdictPass, "every SLO met"},
		{"thresholds unknown", &fakeOwner{outcome: results.LoadOutcome{Stage: "finished"}}, results.VerdictError, "in-cluster load: per-phase numbers are not available"},
		{"thresholds crossed", &fakeOwner{outcome: results.LoadOutcome{Stage: "finished", ThresholdsKnown: true, ThresholdsCrossed: []string{"owned-1"}}}, results.VerdictSLOBreach, "k6 thresholds crossed on runner(s) owned-1"},
		{"stage error", &fakeOwner{outcome: results.LoadOutcome{Stage: "error", Err: errors.New("TestRun x ended in stage error")}}, results.VerdictError, "the in-cluster load failed: TestRun x ended in stage error"},
		{"workflow aborted", &fakeOwner{outcome: finished, abortAt: time.Second}, results.VerdictAborted, "Workflow w was aborted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Run(context.Background(), ownedPlan(t), tc.b, Options{ReportDir: dir, RunID: "r"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("verdict %s (%s), want %s (%s)", res.Verdict, res.Reason, tc.verdict, tc.reason)
			}
			if tc.b.cleanups.Load() != 1 {
				t.Errorf("Cleanup called %d times", tc.b.cleanups.Load())
			}
			if res.Load != "in-cluster" || res.LoadNote != NoSamplesNote {
				t.Errorf("load %q, note %q", res.Load, res.LoadNote)
			}
			// Without samples an SLO is only ever met on the runners' own
			// word (every threshold passed), never on a number faultline made up.
			for _, s := range res.SLOs {
				want := results.StatusNoData
				if tc.verdict == results.VerdictPass {
					want = results.StatusPass
				}
				if s.Status != want || s.Measured != 0 {
					t.Errorf("SLO %s %s: %s (measured %v), want %s", s.Phase, s.SLO, s.Status, s.Measured, want)
				}
			}
			if len(res.Faults) != 1 || res.Faults[0].StartOffset < 0.45 || res.Faults[0].StartOffset > 0.8 {
				t.Fatalf("fault windows %+v", res.Faults)
			}
			if tc.b.abortAt == 0 && (res.Faults[0].EndOffset < 1.45 || res.Faults[0].EndOffset > 1.8) {
				t.Errorf("fault window %.2f-%.2f, planned 0.5-1.5", res.Faults[0].StartOffset, res.Faults[0].EndOffset)
			}
			data, err := os.ReadFile(filepath.Join(dir, results.ResultsFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"load": "in-cluster"`, `"loadNote"`} {
				if !strings.Contains(string(data), want) {
					t.Errorf("results.json lacks %s", want)
				}
			}
			var table strings.Builder
			res.WriteTable(&table)
			if !strings.Contains(table.String(), "per-phase latency and error numbers are not available") {
				t.Errorf("terminal output does not say per-phase numbers are missing:\n%s", table.String())
			}
		})
	}
}

// TestCleanupFailureKeepsFirstReason: when a fault was never injected and
// the cleanup then fails (Chaos Mesh keeps an object whose daemon refused
// the apply in deletion), the run's reason says both, the first failure
// first; the cleanup's failure still decides the verdict (faults may be
// left). Before, the reason said only "cleanup failed".
func TestCleanupFailureKeepsFirstReason(t *testing.T) {
	b := &fakeOwner{
		outcome:    results.LoadOutcome{Stage: "finished", ThresholdsKnown: true},
		injectErr:  errors.New("fault a (NetworkChaos shop/a) not injected after 8s: Chaos Mesh says: unable to set tcs for pod checkout-4"),
		cleanupErr: errors.New("waiting for NetworkChaos shop/a to be gone: context deadline exceeded"),
	}
	res, err := Run(context.Background(), ownedPlan(t), b, Options{ReportDir: t.TempDir(), RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != results.VerdictError {
		t.Errorf("verdict %s, want %s", res.Verdict, results.VerdictError)
	}
	inj := strings.Index(res.Reason, "unable to set tcs")
	cl := strings.Index(res.Reason, "cleanup failed, faults may be left: waiting for NetworkChaos")
	if inj < 0 || cl < 0 || inj > cl {
		t.Errorf("reason %q: want the injection failure, then the cleanup failure", res.Reason)
	}
	if res.CleanupError == "" {
		t.Error("results.json has no cleanup error")
	}
}
