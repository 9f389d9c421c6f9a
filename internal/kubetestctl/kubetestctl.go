// Package kubetestctl is a stand-in, used only by tests, for the three controllers faultline's
// kubernetes backend talks to: the Chaos Mesh controller (chaos-controller-manager: Controller),
// Chaos Mesh's workflow engine (WorkflowEngine, workflow.go) and the k6-operator (K6Operator,
// k6operator.go). None of them can run against the test API server of internal/kubetest — there
// are no pods, no nodes and no chaos daemons there. It is not Chaos Mesh, runs no k6 and injects
// nothing; it only writes to the objects what those controllers write, so that the kubernetes
// backend can be tested against a real API server. No production code imports it.
//
// For chaos objects (Controller):
//
//   - on a new object it adds the finalizer chaos-mesh/records and sets the conditions: when the
//     object's pod selector matches one of the test's Pods (namespaces and labels), Selected=True,
//     then, InjectAfter later, a container record per matched pod with an "Apply Succeeded" event
//     and, ReportAfter after that, AllInjected=True and AllRecovered=False; when nothing matches,
//     Selected=False, AllInjected=False, AllRecovered=True, forever (as Chaos Mesh does);
//   - on deletion, after RecoverAfter, it adds "Recover Succeeded" events, sets AllRecovered=True and
//     AllInjected=False, then removes the finalizer; an object Stuck says so keeps its finalizer
//     until it is annotated chaos-mesh.chaos-mesh.org/cleanFinalizer=forced.
//
// Timestamps are written with whole seconds, as Chaos Mesh's metav1.Time fields are. Status is
// written with a normal update: Chaos Mesh's CRDs have no status subresource.
package kubetestctl

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

const (
	finalizer                = "chaos-mesh/records"
	annotationCleanFinalizer = "chaos-mesh.chaos-mesh.org/cleanFinalizer"
)

// Pod is a pod the test pretends exists.
type Pod struct {
	Namespace string
	Name      string
	Labels    map[string]string
}

// Controller is the test controller. Set its fields before Start.
type Controller struct {
	Dynamic dynamic.Interface
	// Resources are the chaos kinds to watch (e.g. chaos-mesh.org/v1alpha1 podchaos).
	Resources []schema.GroupVersionResource
	// Pods are what selectors can match.
	Pods []Pod
	// InjectAfter is the delay between Selected and the records' injection (default 0).
	InjectAfter time.Duration
	// ReportAfter is the delay between the records' injection and AllInjected=True (default 0).
	ReportAfter time.Duration
	// RecoverAfter is the delay between the deletion and the finalizer's removal (default 0).
	RecoverAfter time.Duration
	// Stuck, if set, says which objects keep their finalizer until forced.
	Stuck func(*unstructured.Unstructured) bool

	queue chan item
	mu    sync.Mutex
	seen  map[types.UID]time.Time // first seen (or deletion first seen), for the delays
	wg    sync.WaitGroup
}

type item struct {
	res       schema.GroupVersionResource
	namespace string
	name      string
}

// Start runs the controller until ctx ends; the returned function waits for it to stop.
func (c *Controller) Start(ctx context.Context) (wait func()) {
	c.queue = make(chan item, 1024)
	c.seen = map[types.UID]time.Time{}
	for _, r := range c.Resources {
		c.wg.Go(func() { c.watch(ctx, r) })
	}
	c.wg.Go(func() { c.work(ctx) })
	return c.wg.Wait
}

func (c *Controller) enqueue(ctx context.Context, it item, after time.Duration) {
	if after <= 0 {
		select {
		case c.queue <- it:
		case <-ctx.Done():
		}
		return
	}
	time.AfterFunc(after, func() { c.enqueue(ctx, it, 0) })
}

// watch lists and watches one kind, re-listing after errors (the API server may be stopped and
// restarted under it).
func (c *Controller) watch(ctx context.Context, r schema.GroupVersionResource) {
	for ctx.Err() == nil {
		list, err := c.Dynamic.Resource(r).List(ctx, metav1.ListOptions{})
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		for _, it := range list.Items {
			c.enqueue(ctx, item{r, it.GetNamespace(), it.GetName()}, 0)
		}
		w, err := c.Dynamic.Resource(r).Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && (ev.Type == "ADDED" || ev.Type == "MODIFIED") {
				c.enqueue(ctx, item{r, u.GetNamespace(), u.GetName()}, 0)
			}
		}
		w.Stop()
	}
}

func (c *Controller) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-c.queue:
			if again, err := c.reconcile(ctx, it); err != nil || again > 0 {
				if err != nil {
					again = 100 * time.Millisecond
				}
				c.enqueue(ctx, it, again)
			}
		}
	}
}

// reconcile moves one object one step; it returns when to look again.
func (c *Controller) reconcile(ctx context.Context, it item) (time.Duration, error) {
	res := c.Dynamic.Resource(it.res).Namespace(it.namespace)
	u, err := res.Get(ctx, it.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := time.Now()
	if u.GetDeletionTimestamp() != nil {
		if !hasFinalizer(u) {
			return 0, nil
		}
		since := c.since(u.GetUID()+"-deleted", now)
		forced := u.GetAnnotations()[annotationCleanFinalizer] == "forced"
		if c.Stuck != nil && c.Stuck(u) && !forced {
			return 0, nil
		}
		if wait := since.Add(c.RecoverAfter).Sub(now); wait > 0 && !forced {
			return wait, nil
		}
		recs := records(u)
		for _, r := range recs {
			r["phase"] = "Not Injected"
			r["recoveredCount"] = toInt(r["recoveredCount"]) + 1
			r["events"] = append(events(r), event("Recover", now))
		}
		setRecords(u, recs)
		setConditions(u, len(recs) > 0, false, true)
		var fins []string
		for _, f := range u.GetFinalizers() {
			if f != finalizer {
				fins = append(fins, f)
			}
		}
		u.SetFinalizers(fins)
		_, err := res.Update(ctx, u, metav1.UpdateOptions{})
		return 0, ignoreGone(err)
	}
	since := c.since(u.GetUID(), now)
	changed := false
	if !hasFinalizer(u) {
		u.SetFinalizers(append(u.GetFinalizers(), finalizer))
		changed = true
	}
	matched := c.match(u)
	var again time.Duration
	switch {
	case len(matched) == 0:
		if conditionStatus(u, "Selected") != "False" {
			setConditions(u, false, false, true)
			changed = true
		}
	case conditionStatus(u, "AllInjected") == "True":
	default:
		recs := records(u)
		if conditionStatus(u, "Selected") != "True" {
			setConditions(u, true, false, true)
			changed = true
		}
		injectAt := since.Add(c.InjectAfter)
		switch {
		case now.Before(injectAt):
			again = injectAt.Sub(now)
		case len(recs) == 0:
			for _, p := range matched {
				recs = append(recs, map[string]any{
					"id": p.Namespace + "/" + p.Name, "selectorKey": ".", "phase": "Injected",
					"injectedCount": int64(1), "recoveredCount": int64(0),
					"events": []any{event("Apply", now)},
				})
			}
			setRecords(u, recs)
			c.since(u.GetUID()+"-injected", now)
			changed = true
			again = c.ReportAfter
			if again == 0 {
				setConditions(u, true, true, false)
			}
		default:
			reportAt := c.since(u.GetUID()+"-injected", now).Add(c.ReportAfter)
			if now.Before(reportAt) {
				again = reportAt.Sub(now)
			} else {
				setConditions(u, true, true, false)
				changed = true
			}
		}
	}
	if changed {
		if _, err := res.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			return 0, ignoreGone(err)
		}
	}
	return again, nil
}

func (c *Controller) since(uid types.UID, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.seen[uid]
	if !ok {
		c.seen[uid] = now
		return now
	}
	return t
}

// match returns the Pods the object's selector (namespaces and labelSelectors) selects.
func (c *Controller) match(u *unstructured.Unstructured) []Pod {
	nss, found, _ := unstructured.NestedStringSlice(u.Object, "spec", "selector", "namespaces")
	if !found || len(nss) == 0 {
		nss = []string{u.GetNamespace()}
	}
	ls, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "labelSelectors")
	var out []Pod
	for _, p := range c.Pods {
		in := false
		for _, ns := range nss {
			in = in || ns == p.Namespace
		}
		if !in {
			continue
		}
		ok := true
		for k, v := range ls {
			if p.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

func hasFinalizer(u *unstructured.Unstructured) bool {
	for _, f := range u.GetFinalizers() {
		if f == finalizer {
			return true
		}
	}
	return false
}

func conditionStatus(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

func setConditions(u *unstructured.Unstructured, selected, allInjected, allRecovered bool) {
	b := func(v bool) string {
		if v {
			return "True"
		}
		return "False"
	}
	conds := []any{
		map[string]any{"type": "Selected", "status": b(selected)},
		map[string]any{"type": "AllInjected", "status": b(allInjected)},
		map[string]any{"type": "AllRecovered", "status": b(allRecovered)},
		map[string]any{"type": "Paused", "status": "False"},
	}
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	status["conditions"] = conds
	if _, ok := status["experiment"]; !ok {
		status["experiment"] = map[string]any{"desiredPhase": "Run"}
	}
	u.Object["status"] = status
}

func records(u *unstructured.Unstructured) []map[string]any {
	recs, _, _ := unstructured.NestedSlice(u.Object, "status", "experiment", "containerRecords")
	var out []map[string]any
	for _, r := range recs {
		if m, ok := r.(map[string]any); ok {
			out = append(out, maps.Clone(m))
		}
	}
	return out
}

func setRecords(u *unstructured.Unstructured, recs []map[string]any) {
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	exp, _ := status["experiment"].(map[string]any)
	if exp == nil {
		exp = map[string]any{"desiredPhase": "Run"}
	}
	list := make([]any, len(recs))
	for i, r := range recs {
		list[i] = r
	}
	exp["containerRecords"] = list
	status["experiment"] = exp
	u.Object["status"] = status
}

func events(r map[string]any) []any {
	evs, _ := r["events"].([]any)
	return evs
}

func event(op string, at time.Time) map[string]any {
	return map[string]any{"type": "Succeeded", "operation": op, "timestamp": at.UTC().Truncate(time.Second).Format(time.RFC3339)}
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) {
		return fmt.Errorf("conflict, retry: %w", err)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
