package kubetestctl

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

var testRuns = schema.GroupVersionResource{Group: "k6.io", Version: "v1alpha1", Resource: "testruns"}

// K6Operator is a TEST STAND-IN for the k6-operator: it runs no k6 and starts no pods (the test
// API server has none); it only moves each TestRun's status.stage the way the operator does:
// initialization → initialized → created → started (StartAfter after the TestRun appeared) →
// stopped → finished (RunFor after started). A TestRun for which Fail returns true goes to
// "error" instead, FailAfter after it started.
type K6Operator struct {
	Dynamic    dynamic.Interface
	StartAfter time.Duration
	RunFor     time.Duration
	FailAfter  time.Duration
	Fail       func(*unstructured.Unstructured) bool

	mu   sync.Mutex
	seen map[types.UID]bool
	wg   sync.WaitGroup
}

// Start runs the stand-in until ctx ends; the returned function waits for it to stop.
func (o *K6Operator) Start(ctx context.Context) (wait func()) {
	o.seen = map[types.UID]bool{}
	o.wg.Go(func() {
		for ctx.Err() == nil {
			list, err := o.Dynamic.Resource(testRuns).List(ctx, metav1.ListOptions{})
			if err == nil {
				for _, tr := range list.Items {
					o.mu.Lock()
					isNew := !o.seen[tr.GetUID()]
					o.seen[tr.GetUID()] = true
					o.mu.Unlock()
					if isNew {
						o.wg.Go(func() { o.run(ctx, &tr) })
					}
				}
			}
			sleep(ctx, 50*time.Millisecond)
		}
	})
	return o.wg.Wait
}

func (o *K6Operator) run(ctx context.Context, tr *unstructured.Unstructured) {
	res := o.Dynamic.Resource(testRuns).Namespace(tr.GetNamespace())
	set := func(stage string) bool {
		for range 20 {
			u, err := res.Get(ctx, tr.GetName(), metav1.GetOptions{})
			if err != nil || u.GetUID() != tr.GetUID() || u.GetDeletionTimestamp() != nil {
				return false
			}
			_ = unstructured.SetNestedField(u.Object, stage, "status", "stage")
			_, err = res.UpdateStatus(ctx, u, metav1.UpdateOptions{})
			if err == nil {
				return true
			}
			if !apierrors.IsConflict(err) {
				return false
			}
		}
		return false
	}
	for _, s := range []string{"initialization", "initialized", "created"} {
		if !set(s) {
			return
		}
		sleep(ctx, o.StartAfter/3)
	}
	if !set("started") {
		return
	}
	if o.Fail != nil && o.Fail(tr) {
		sleep(ctx, o.FailAfter)
		set("error")
		return
	}
	sleep(ctx, o.RunFor)
	if set("stopped") {
		set("finished")
	}
}
