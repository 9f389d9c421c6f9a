package kube_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"faultline.dev/faultline/internal/kubetestctl"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/kube"
)

// The runner reads the Go runtime SLIs of exactly these pods.
var _ runner.PodLister = (*kube.Backend)(nil)

// TestTargetPods: the pods the Prometheus source reads are the selected
// pods of the target's namespace — not another app's — including one that
// was there at Prepare and is gone (killed) by the end, and its replacement.
// Where pods cannot be listed, the error says which.
func TestTargetPods(t *testing.T) {
	_, c := shared(t)
	ctx := context.Background()
	ns := "t-targetpods"
	pods := c.Dynamic.Resource(kubetestctl.Pods).Namespace(ns)
	create := func(name, app string) {
		t.Helper()
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": kubetestctl.Pods.Group + "/" + kubetestctl.Pods.Version, "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app": app}},
		}}
		if _, err := pods.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pods.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	create("checkout-a", "checkout")
	create("checkout-b", "checkout")
	create("payments-a", "payments")

	p := load(t, "targetpods", ns, jitter, "")
	b, _ := backend(t, c, p, kube.Config{})
	kube.UsePods(b, kubetestctl.Pods)
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	// checkout-a is killed; checkout-c replaces it.
	if err := pods.Delete(ctx, "checkout-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	create("checkout-c", "checkout")
	got, err := b.TargetPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"checkout-a", "checkout-b", "checkout-c"}; !slices.Equal(got, want) {
		t.Errorf("target pods %v, want %v", got, want)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}

	// The test server serves no core/v1 pods: listing fails, and says what.
	b2, _ := backend(t, c, load(t, "nopods", ns, jitter, ""), kube.Config{})
	if _, err := b2.TargetPods(ctx); err == nil || !strings.Contains(err.Error(), "listing pods app=checkout in namespace "+ns) {
		t.Errorf("without a pods API: %v, want an error naming the selector and namespace", err)
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
