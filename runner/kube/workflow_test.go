package kube_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/kubetest"
	"faultline.dev/faultline/internal/kubetestctl"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/kube"
)

var (
	workflowsGVR     = gvr("workflows")
	workflowNodesGVR = gvr("workflownodes")
)

// engine starts the test stand-in for Chaos Mesh's workflow engine until the test ends.
func engine(t *testing.T, s *kubetest.Server, e *kubetestctl.WorkflowEngine) *kubetestctl.WorkflowEngine {
	t.Helper()
	e.Dynamic = s.Dynamic()
	e.Chaos = map[string]schema.GroupVersionResource{"NetworkChaos": gvr("networkchaos"), "PodChaos": gvr("podchaos"), "StressChaos": gvr("stresschaos")}
	ctx, cancel := context.WithCancel(context.Background())
	wait := e.Start(ctx)
	t.Cleanup(func() { cancel(); wait() })
	return e
}

// recorder collects what RunTimeline reports.
type recorder struct {
	mu        sync.Mutex
	injected  map[string]time.Time
	recovered map[string]time.Time
}

func newRecorder() *recorder {
	return &recorder{injected: map[string]time.Time{}, recovered: map[string]time.Time{}}
}

func (r *recorder) onInjected(f plan.Fault, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.injected[f.Name] = at
}

func (r *recorder) onRecovered(f plan.Fault, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recovered[f.Name] = at
}

// leftAfterWorkflow lists the run's objects, the Workflow's nodes and its chaos children.
func leftAfterWorkflow(t *testing.T, s *kubetest.Server, runID, workflow string) []string {
	t.Helper()
	out := byRunID(t, s, runID)
	for _, r := range append([]schema.GroupVersionResource{workflowsGVR, workflowNodesGVR}, chaosResources...) {
		for _, sel := range []string{kube.LabelRunID + "=" + runID, kube.LabelWorkflow + "=" + workflow} {
			list, err := s.Dynamic().Resource(r).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range list.Items {
				out = append(out, it.GetKind()+" "+it.GetNamespace()+"/"+it.GetName())
			}
		}
	}
	return out
}

const wfFaults = `  jitter:
    start: 1s
    duration: 2s
    mode: all
    networkDelay: {latency: 100ms}
  cpu:
    start: 2s
    duration: 2s
    mode: one
    cpuStress: {workers: 1}
`

// TestWorkflowTimeline: with Timing "workflow" the backend owns the timeline: it applies the
// compiled Workflow with the run's label, follows the workflow engine's WorkflowNodes and reports
// each fault's actual window (injection from the chaos object's records, never before the
// object was seen; recovery when its records say so, after the node's deadline), ends when the
// Workflow is Accomplished and every fault recovered,
// and Cleanup deletes the Workflow, its nodes and their chaos objects.
func TestWorkflowTimeline(t *testing.T) {
	s, c := shared(t)
	const ns = "t-wf"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 2)})
	engine(t, s, &kubetestctl.WorkflowEngine{})
	p := load(t, "wf", ns, wfFaults, "")
	b, log := backend(t, c, p, kube.Config{Timing: kube.TimingWorkflow})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if !b.OwnsTimeline() || b.Workflow() == nil {
		t.Fatal("Timing workflow: the backend does not own the timeline")
	}
	if left := leftAfterWorkflow(t, s, "run-testworkflowtimeline", "wf"); len(left) > 0 {
		t.Fatalf("Prepare created %v", left)
	}
	rec := newRecorder()
	start := time.Now()
	if err := b.RunTimeline(ctx, p, rec.onInjected, rec.onRecovered); err != nil {
		t.Fatalf("RunTimeline: %v\n%s", err, log)
	}
	took := time.Since(start)
	// Chaos Mesh writes a node's deadline in whole seconds (metav1.Time): a Suspend or a chaos
	// node may end up to 1s early.
	if took < 2900*time.Millisecond || took > 10*time.Second {
		t.Errorf("RunTimeline took %s; the Workflow's last fault ends at 4s (whole-second deadlines: 3s at the earliest)", took)
	}
	wf, err := s.Dynamic().Resource(workflowsGVR).Namespace(ns).Get(ctx, "wf", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if wf.GetLabels()[kube.LabelRunID] != "run-testworkflowtimeline" {
		t.Errorf("Workflow labels %v", wf.GetLabels())
	}
	if !strings.Contains(log.String(), "accomplished") {
		t.Errorf("log does not say the Workflow was accomplished:\n%s", log)
	}
	for _, f := range p.Faults {
		in, out := rec.injected[f.Name], rec.recovered[f.Name]
		if in.IsZero() || out.IsZero() {
			t.Fatalf("fault %s: window %s – %s not recorded", f.Name, in, out)
		}
		off := in.Sub(start)
		if off < f.Start.Std()-time.Second || off > f.Start.Std()+2*time.Second {
			t.Errorf("fault %s injected at +%s, planned +%s", f.Name, off, f.Start)
		}
		if d := out.Sub(in); d < f.End.Std()-f.Start.Std()-time.Second || d > f.End.Std()-f.Start.Std()+2*time.Second {
			t.Errorf("fault %s active for %s, planned %s", f.Name, d, f.End-f.Start)
		}
		t.Logf("fault %s: +%.2fs – +%.2fs (planned %s – %s)", f.Name, off.Seconds(), out.Sub(start).Seconds(), f.Start, f.End)
	}
	nodes, err := s.Dynamic().Resource(workflowNodesGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelWorkflow + "=wf"})
	if err != nil {
		t.Fatal(err)
	}
	chaosNodes := 0
	for _, n := range nodes.Items {
		if typ, _, _ := unstructured.NestedString(n.Object, "spec", "type"); strings.HasSuffix(typ, "Chaos") {
			chaosNodes++
		}
	}
	if chaosNodes != 2 {
		t.Fatalf("%d chaos WorkflowNodes, want 2", chaosNodes)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftAfterWorkflow(t, s, "run-testworkflowtimeline", "wf"); len(left) > 0 {
		t.Errorf("left after Cleanup: %v", left)
	}
}

// TestWorkflowAborted: the abort annotation on the Workflow (a failed StatusCheck, or a person)
// ends RunTimeline with an error the runner counts as an aborted run (runner.ErrTimelineAborted);
// a cleanup by run id alone (what `faultline cleanup --run-id` does after a runner died) then
// removes the Workflow, its nodes and their chaos objects, which carry no faultline label.
func TestWorkflowAborted(t *testing.T) {
	s, c := shared(t)
	const ns = "t-wfabort"
	// Recovery takes 2s: the aborted chaos object is still being deleted when the cleanup looks.
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), RecoverAfter: 2 * time.Second})
	e := engine(t, s, &kubetestctl.WorkflowEngine{})
	p := load(t, "wfabort", ns, wfFaults, "")
	b, _ := backend(t, c, p, kube.Config{Timing: kube.TimingWorkflow})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	var once sync.Once
	err := b.RunTimeline(ctx, p, func(f plan.Fault, at time.Time) {
		rec.onInjected(f, at)
		once.Do(func() {
			go func() {
				if err := e.Abort(ctx, ns, "wfabort"); err != nil {
					t.Error(err)
				}
			}()
		})
	}, rec.onRecovered)
	var ae *kube.WorkflowAbortedError
	if !errors.Is(err, runner.ErrTimelineAborted) || !errors.As(err, &ae) {
		t.Fatalf("RunTimeline after the abort: %v, want a WorkflowAbortedError", err)
	}
	if len(rec.injected) == 0 {
		t.Error("no injection reported before the abort")
	}
	if len(rec.recovered) != 0 {
		t.Errorf("recovered %v: an aborted fault's window is not closed by the engine's deadline", rec.recovered)
	}
	deleted, err := (&kube.Cleaner{Clients: c, Selector: kube.LabelSelectorRun("run-testworkflowaborted")}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range deleted {
		kinds = append(kinds, r.Kind)
	}
	if !slices.Contains(kinds, "Workflow") || !slices.Contains(kinds, "WorkflowNode") || !slices.Contains(kinds, "NetworkChaos") {
		t.Errorf("cleanup by run id deleted %v, want the Workflow, its node and its NetworkChaos", deleted)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftAfterWorkflow(t, s, "run-testworkflowaborted", "wfabort"); len(left) > 0 {
		t.Errorf("left after Cleanup: %v", left)
	}
}

// TestWorkflowShortNodeRefused: under --timing workflow a fault shorter
// than 2 s is refused before anything is created (on the real controller a
// 1 s node's object was gone before Chaos Mesh reported it injected: e2e
// finding F6); the default timing runs it, and a 2 s fault runs either way.
func TestWorkflowShortNodeRefused(t *testing.T) {
	_, c := shared(t)
	ctx := context.Background()
	short := strings.Replace(jitter, "duration: 20s", "duration: 1500ms", 1)
	two := strings.Replace(jitter, "duration: 20s", "duration: 2s", 1)
	for _, tc := range []struct {
		name, faults string
		timing       string
		refused      bool
	}{
		{"short-workflow", short, kube.TimingWorkflow, true},
		{"short-runner", short, kube.TimingRunner, false},
		{"two-workflow", two, kube.TimingWorkflow, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, tc.name, "t-shortnode", tc.faults, "")
			b, _ := backend(t, c, p, kube.Config{Timing: tc.timing})
			_, err := b.Preflight(ctx, p)
			var re *kube.RefusedError
			switch {
			case tc.refused && (!errors.As(err, &re) || !strings.Contains(err.Error(), "the fault lasts 1.5s; with --timing workflow its chaos node needs at least 2s")):
				t.Errorf("Preflight: %v, want a refusal naming the 1.5s fault", err)
			case !tc.refused && err != nil:
				t.Errorf("Preflight: %v", err)
			}
		})
	}
}
