package kube_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/kubetest"
	"faultline.dev/faultline/internal/kubetestctl"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/kube"
)

// withK6Operator installs the stand-in TestRun CRD (testdata/k6-operator-testrun-crd.yaml: the
// fields faultline uses of the k6-operator's CRD) and starts the stand-in operator.
func withK6Operator(t *testing.T, s *kubetest.Server, o *kubetestctl.K6Operator) {
	t.Helper()
	data, err := os.ReadFile("testdata/k6-operator-testrun-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.InstallCRDs(ctx, []*apiextensionsv1.CustomResourceDefinition{crd}); err != nil {
		t.Fatal(err)
	}
	o.Dynamic = s.Dynamic()
	wait := o.Start(ctx)
	t.Cleanup(func() { cancel(); wait() })
}

// TestInClusterLoad: with Load "in-cluster" the backend builds the k6-operator TestRun and its
// ConfigMap with the run's labels, applies the TestRun (the test server cannot hold the
// ConfigMap: it serves only CRDs — the ConfigMap's apply is not tested here), follows the stage
// initialization → initialized → created → started (the load's start) → stopped → finished with
// a watch, reports the outcome (the runner pods' exit codes cannot be read here: unknown, never
// a pass), and Cleanup deletes the TestRun.
func TestInClusterLoad(t *testing.T) {
	s, c := shared(t)
	withK6Operator(t, s, &kubetestctl.K6Operator{StartAfter: 900 * time.Millisecond, RunFor: 1500 * time.Millisecond})
	const ns = "t-incluster"
	p := load(t, "incluster", ns, jitter, "")
	b, _ := backend(t, c, p, kube.Config{Load: kube.LoadInCluster, LoadStartTimeout: 20 * time.Second})
	kube.SkipConfigMap(b)
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if !b.OwnsLoad() {
		t.Fatal("Load in-cluster: the backend does not own the load")
	}
	objs := b.LoadObjects()
	if len(objs) != 2 || objs[0].Kind != "TestRun" || objs[1].Kind != "ConfigMap" {
		t.Fatalf("load objects %v", objs)
	}
	for _, o := range objs {
		l := o.Obj.GetLabels()
		if l[kube.LabelRunID] != "run-testinclusterload" || l["app.kubernetes.io/managed-by"] != "faultline" || o.Obj.GetNamespace() != ns {
			t.Errorf("%s: labels %v, namespace %s", o, l, o.Obj.GetNamespace())
		}
	}
	if _, err := c.Dynamic.Resource(kube.ConfigMaps).Namespace(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the test server serves ConfigMaps (%v): test their apply too", err)
	}
	applied := time.Now()
	started, done, err := b.StartLoad(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := started.Sub(applied); d < 800*time.Millisecond {
		t.Errorf("load started %s after the apply, before the stand-in operator reported stage started (0.9s)", d)
	}
	tr, err := c.Dynamic.Resource(kube.TestRuns).Namespace(ns).Get(ctx, "incluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.GetLabels()[kube.LabelRunID] != "run-testinclusterload" {
		t.Errorf("TestRun labels %v", tr.GetLabels())
	}
	if cm, _, _ := unstructured.NestedString(tr.Object, "spec", "script", "configMap", "name"); cm != "incluster-k6" {
		t.Errorf("TestRun script configMap %q", cm)
	}
	// Every sample the runners send carries the run's id.
	if args, _, _ := unstructured.NestedString(tr.Object, "spec", "arguments"); !strings.Contains(args, "--tag faultline_run_id=run-testinclusterload") ||
		!strings.Contains(args, "--tag faultline_scenario=incluster") {
		t.Errorf("TestRun arguments %q: want the scenario's tags and the run id's", args)
	}
	var out kube.LoadOutcome
	select {
	case out = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("no outcome")
	}
	if ended := time.Since(started); ended < 1400*time.Millisecond {
		t.Errorf("load ended %s after its start, before stage finished (1.5s)", ended)
	}
	if out.Err != nil || out.Stage != "finished" || out.ThresholdsKnown {
		t.Errorf("outcome %+v (%s), want finished with thresholds unknown", out, out)
	}
	// A finished TestRun left behind would answer for the next run: refused, or deleted with --force.
	second, _ := backend(t, c, p, kube.Config{RunID: "second", Load: kube.LoadInCluster})
	kube.SkipConfigMap(second)
	_, err = second.Preflight(ctx, p)
	var re *kube.RefusedError
	if !errors.As(err, &re) || re.Refusals[0].Rule != kube.RuleLeftovers || !strings.Contains(err.Error(), "TestRun t-incluster/incluster (run run-testinclusterload)") {
		t.Errorf("Preflight with an earlier TestRun: %v, want a leftovers refusal naming it", err)
	}
	third, _ := backend(t, c, p, kube.Config{RunID: "third", Load: kube.LoadInCluster, Force: true})
	kube.SkipConfigMap(third)
	if _, err := third.Preflight(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dynamic.Resource(kube.TestRuns).Namespace(ns).Get(ctx, "incluster", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("TestRun after --force: %v", err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dynamic.Resource(kube.TestRuns).Namespace(ns).Get(ctx, "incluster", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("TestRun after Cleanup: %v", err)
	}
}

// TestInClusterLoadError: a TestRun that reaches stage error (the k6-operator sets it only while
// initializing: an invalid TestRun) fails StartLoad (the run is an infrastructure error).
func TestInClusterLoadError(t *testing.T) {
	s, c := shared(t)
	withK6Operator(t, s, &kubetestctl.K6Operator{InitError: func(u *unstructured.Unstructured) bool {
		return u.GetName() == "inclustererr"
	}})
	const ns = "t-inclustererr"
	p := load(t, "inclustererr", ns, jitter, "")
	b, log := backend(t, c, p, kube.Config{Load: kube.LoadInCluster, LoadStartTimeout: 20 * time.Second})
	kube.SkipConfigMap(b)
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.StartLoad(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "stage error") {
		t.Errorf("StartLoad: %v, want stage error", err)
	}
	if !strings.Contains(log.String(), "stage initialization") {
		t.Errorf("log lacks the stage initialization:\n%s", log)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRunnerWorkflowInCluster: runner.Run with the kubernetes backend owning both the timeline
// (--timing workflow) and the load (--load in-cluster), against the real API server with the
// stand-ins for Chaos Mesh's controller and workflow engine and for the k6-operator: the fault's
// window in results.json comes from the WorkflowNode, the load from the TestRun's stages; with
// no samples every phase SLO is no-data (the verdict is an error, never a pass) and results.json
// says why; a TestRun that ends in stage error is an infrastructure error; nothing is left.
func TestRunnerWorkflowInCluster(t *testing.T) {
	s, c := shared(t)
	const ns = "t-owned"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1)})
	engine(t, s, &kubetestctl.WorkflowEngine{})
	withK6Operator(t, s, &kubetestctl.K6Operator{StartAfter: 300 * time.Millisecond, RunFor: 6 * time.Second,
		InitError: func(u *unstructured.Unstructured) bool { return u.GetLabels()[kube.LabelRunID] == "fail" }})
	p := load(t, "owned", ns, jitter, "")
	scaled, err := plan.Scale(p.Source, 0.1) // 6s of load; the fault at 0.1s for 2s
	if err != nil {
		t.Fatal(err)
	}
	if p, err = plan.New(scaled); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ runID, verdict, reason string }{
		{"ok", results.VerdictError, "no data to judge"},
		{"fail", results.VerdictError, "stage error"},
	} {
		t.Run(tc.runID, func(t *testing.T) {
			b, log := backend(t, c, p, kube.Config{RunID: tc.runID, Timing: kube.TimingWorkflow, Load: kube.LoadInCluster, LoadStartTimeout: 20 * time.Second})
			kube.SkipConfigMap(b)
			res, err := runner.Run(context.Background(), p, b, runner.Options{ReportDir: t.TempDir(), RunID: tc.runID})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("verdict %s (%s), want %s (%s)\n%s", res.Verdict, res.Reason, tc.verdict, tc.reason, log)
			}
			if tc.runID == "ok" && (res.Load != "in-cluster" || res.LoadOutcome == nil) {
				t.Errorf("load %q, outcome %+v", res.Load, res.LoadOutcome)
			}
			if tc.runID == "ok" {
				if res.LoadOutcome.Stage != "finished" || !strings.Contains(res.Reason, "per-phase numbers are not available") {
					t.Errorf("outcome %+v, reason %s", res.LoadOutcome, res.Reason)
				}
				// The engine stand-in creates the entry, the Serial track, its Suspend, the chaos
				// node and its child one reconcile (one write) after the other, as Chaos Mesh's
				// engine does; on this loaded 2-core machine that takes up to about 2s. The node's
				// deadline is a whole-second timestamp (up to 1s early), and the child is injected a
				// reconcile pass after the node is made: the 2s window may last only about half a
				// second (0.82s seen in a fresh-clone CI run).
				if len(res.Faults) != 1 || res.Faults[0].StartOffset < 0.05 || res.Faults[0].StartOffset > 3 ||
					d(res.Faults[0]) < 0.5 || d(res.Faults[0]) > 3.5 {
					t.Errorf("fault windows %+v, planned 0.1s-2.1s\n%s", res.Faults, log)
				}
				for _, s := range res.SLOs {
					if s.Status != results.StatusNoData {
						t.Errorf("SLO %s %s: %s, want no-data", s.Phase, s.SLO, s.Status)
					}
				}
			}
			if left := leftAfterWorkflow(t, s, tc.runID, "owned"); len(left) > 0 {
				t.Errorf("left: %v", left)
			}
			if _, err := c.Dynamic.Resource(kube.TestRuns).Namespace(ns).Get(context.Background(), "owned", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("TestRun after the run: %v", err)
			}
		})
	}
}

func d(f results.FaultResult) float64 { return f.EndOffset - f.StartOffset }
