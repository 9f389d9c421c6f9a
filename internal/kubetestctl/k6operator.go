package kubetestctl

import (
	"context"
	"fmt"
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

// K6Operator is a TEST STAND-IN for the k6-operator (internal/controller/testrun_controller.go and
// k6_*.go): it runs no k6 and starts no containers; it moves each TestRun's status.stage and
// writes the pods the operator's Jobs would make into the stand-in Pods resource (when PodsCRD is
// installed), the way the operator's source does:
//
//   - "initialization" → "initialized" → "created" (CreateJobs: one runner pod per
//     spec.parallelism — Runners overrides how many actually appear — labelled
//     app=k6,k6_cr=<name>,runner=true, Running, k6 paused) → "started", written right when the
//     starter Job is CREATED (StartJobs), StartAfter after the TestRun appeared. The starter pod
//     (app=k6,k6_cr=<name>,job-name=<name>-starter) runs StarterAfter later (never, with
//     StarterAfter < 0): only then do the runners unpause and the load begins;
//   - the runners run RunFor from the unpause and terminate with RunnerExit's code (default 0;
//     k6 exits 99 for crossed thresholds, 107 script error, 105 signal; 137 is OOMKilled);
//     failed runners STILL end the TestRun "stopped" → "finished" (StoppedJobs only asks whether
//     a runner still runs);
//   - stage "error" is set only during initialization (an invalid TestRun): InitError makes that
//     happen.
type K6Operator struct {
	Dynamic      dynamic.Interface
	StartAfter   time.Duration
	StarterAfter time.Duration
	RunFor       time.Duration
	// Runners, if set, is how many runner pods appear (default spec.parallelism).
	Runners func(*unstructured.Unstructured) int
	// RunnerExit, if set, is runner i's exit code.
	RunnerExit func(tr *unstructured.Unstructured, i int) int
	// InitError, if set, says which TestRuns fail their initialization (stage error).
	InitError func(*unstructured.Unstructured) bool

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
	if !set("initialization") {
		return
	}
	if o.InitError != nil && o.InitError(tr) {
		sleep(ctx, o.StartAfter/3)
		set("error")
		return
	}
	sleep(ctx, o.StartAfter/3)
	if !set("initialized") {
		return
	}
	sleep(ctx, o.StartAfter/3)
	n, _, _ := unstructured.NestedInt64(tr.Object, "spec", "parallelism")
	if n < 1 {
		n = 1
	}
	runners := int(n)
	if o.Runners != nil {
		runners = o.Runners(tr)
	}
	created := time.Now()
	for i := range runners {
		o.pod(ctx, tr, fmt.Sprintf("%s-%d", tr.GetName(), i+1), map[string]any{"runner": "true", "job-name": fmt.Sprintf("%s-%d", tr.GetName(), i+1)},
			running(created))
	}
	if !set("created") {
		return
	}
	sleep(ctx, o.StartAfter/3)
	starter := tr.GetName() + "-starter"
	o.pod(ctx, tr, starter, map[string]any{"job-name": starter}, waiting())
	if !set("started") { // k6_start.go: right after the starter Job's creation
		return
	}
	if o.StarterAfter < 0 {
		return // the starter pod never runs: the runners stay paused
	}
	sleep(ctx, o.StarterAfter)
	unpaused := time.Now()
	o.pod(ctx, tr, starter, map[string]any{"job-name": starter}, running(unpaused))
	sleep(ctx, 100*time.Millisecond)
	o.pod(ctx, tr, starter, map[string]any{"job-name": starter}, terminated(unpaused, time.Now(), 0))
	sleep(ctx, o.RunFor)
	for i := range runners {
		code := 0
		if o.RunnerExit != nil {
			code = o.RunnerExit(tr, i)
		}
		o.pod(ctx, tr, fmt.Sprintf("%s-%d", tr.GetName(), i+1), map[string]any{"runner": "true", "job-name": fmt.Sprintf("%s-%d", tr.GetName(), i+1)},
			terminated(created, time.Now(), code))
	}
	if set("stopped") {
		set("finished")
	}
}

type podState struct {
	phase string
	state map[string]any
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func waiting() podState {
	return podState{"Pending", map[string]any{"waiting": map[string]any{"reason": "ContainerCreating"}}}
}

func running(since time.Time) podState {
	return podState{"Running", map[string]any{"running": map[string]any{"startedAt": stamp(since)}}}
}

func terminated(start, end time.Time, code int) podState {
	reason, phase := "Completed", "Succeeded"
	if code != 0 {
		reason, phase = "Error", "Failed"
	}
	if code == 137 {
		reason = "OOMKilled"
	}
	return podState{phase, map[string]any{"terminated": map[string]any{"exitCode": int64(code), "reason": reason,
		"startedAt": stamp(start), "finishedAt": stamp(end)}}}
}

// pod creates or replaces one stand-in pod (nothing when the Pods resource is not served).
func (o *K6Operator) pod(ctx context.Context, tr *unstructured.Unstructured, name string, labels map[string]any, s podState) {
	l := map[string]any{"app": "k6", "k6_cr": tr.GetName()}
	for k, v := range labels {
		l[k] = v
	}
	res := o.Dynamic.Resource(Pods).Namespace(tr.GetNamespace())
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Pods.Group + "/" + Pods.Version, "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": tr.GetNamespace(), "labels": l},
		"status": map[string]any{"phase": s.phase, "containerStatuses": []any{
			map[string]any{"name": "k6", "state": s.state},
		}},
	}}
	old, err := res.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		u.SetResourceVersion(old.GetResourceVersion())
		_, _ = res.Update(ctx, u, metav1.UpdateOptions{})
		return
	}
	_, _ = res.Create(ctx, u, metav1.CreateOptions{})
}
