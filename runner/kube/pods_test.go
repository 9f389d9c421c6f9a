package kube_test

import (
	"context"
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
