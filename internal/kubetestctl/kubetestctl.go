// Package kubetestctl is a TEST STAND-IN, used only by tests, for the three controllers faultline's
// kubernetes backend talks to: the Chaos Mesh controller (chaos-controller-manager: Controller),
// Chaos Mesh's workflow engine (WorkflowEngine, workflow.go) and the k6-operator (K6Operator,
// k6operator.go). None of them can run against the test API server of internal/kubetest — there
// are no pods, no nodes and no chaos daemons there. It is not Chaos Mesh, runs no k6 and injects
// nothing; it only writes to the objects what those controllers write, read from their sources
// (Chaos Mesh controllers/common, pkg/workflow/controllers; k6-operator internal/controller), so
// that the kubernetes backend can be tested against a real API server. No production code
// imports it. The real controller-manager runs against a real kube-apiserver in the nested
// module e2e/ (its own harness); where the two disagree, the real one is right.
//
// For chaos objects (Controller), one reconcile pass per write, as Chaos Mesh's separate
// controllers do (controllers/common/{finalizers,desiredphase,records,condition}), at least
// PassGap apart:
//
//  1. finalizers.InitReconciler: a new object gets the finalizer chaos-mesh/records;
//  2. desiredphase: status.experiment.desiredPhase is Stop when the object is deleted, when
//     its spec.duration ran out on the controller's clock (creation + duration; Skew moves that
//     clock), or when it carries the pause annotation experiment.chaos-mesh.org/pause=true;
//     Run otherwise (one-shot pod-kill and container-kill stay Run until deleted);
//  3. records: with no records yet, the selectors (spec.selector and, for a NetworkChaos with a
//     peer, spec.target.selector: namespaces and labels over Pods) are resolved; when one of them
//     selects nothing, no record is written, an Event (reason Failed, "Failed to select targets:
//     no target has been selected") is, and nothing is retried — the conditions then stay False
//     forever. Otherwise each record is applied while desiredPhase is Run ("Apply Succeeded"
//     event, phase Injected) and recovered while it is Stop ("Recover Succeeded", phase Not
//     Injected). The chaos daemon's call takes InjectAfter (RecoverAfter): the records are
//     written once, after it, as the real controller blocks in the call. Stuck objects are never
//     recovered (a daemon that fails its recovery);
//  4. condition: Selected = records exist; AllInjected / AllRecovered = every record Injected /
//     Not Injected (both False without records); Paused = the pause annotation;
//  5. finalizers.CleanReconciler: a deleted object loses its finalizers once every record is
//     Not Injected, or at once when annotated chaos-mesh.chaos-mesh.org/cleanFinalizer=forced.
//
// Timestamps are written with whole seconds, as Chaos Mesh's metav1.Time fields are. Status is
// written with a normal update: Chaos Mesh's CRDs have no status subresource. Events go to
// events.k8s.io/v1 (EventsCRD serves it on the test server; a real API server shows Chaos
// Mesh's core/v1 Events there too).
//
// What the test server lacks, and what stands in for it here: Events (EventsCRD), pods (PodsCRD:
// a stand-in group, kubetest.faultline.dev, the backend pointed at it by its tests), and the
// authorization API (AccessReviews: a loopback proxy answering SelfSubjectAccessReviews as
// kube-apiserver does). Not played at all: the chaos daemon (nothing is injected; records only
// say so), pods' own lifecycle, RBAC beyond AccessReviews' policy, the garbage collector (owner
// references are written, nobody acts on them), Chaos Mesh's webhooks, Schedule, Task and
// StatusCheck behaviour (a StatusCheck node only reaches its deadline).
package kubetestctl

import (
	"context"
	"fmt"
	"maps"
	"strings"
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
	annotationPause          = "experiment.chaos-mesh.org/pause"
)

// Events is where the stand-ins write Kubernetes Events.
var Events = schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}

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
	// InjectAfter is how long the daemon's apply takes (default 0).
	InjectAfter time.Duration
	// RecoverAfter is how long the daemon's recovery takes (default 0).
	RecoverAfter time.Duration
	// PassGap is how long after a write of the records, and of the conditions, the next pass
	// comes (the condition and finalizer controllers' lag; default 0).
	PassGap time.Duration
	// Skew puts the controller's clock ahead of the test's (duration expiry, record times).
	Skew time.Duration
	// Stuck, if set, says which objects are never recovered (they keep their finalizer until
	// forced).
	Stuck func(*unstructured.Unstructured) bool
	// FailApply, if set, is the daemon's answer to applying the object to one target ("" for
	// success): a failed apply leaves the record "Not Injected/Wait" with an "Apply Failed"
	// event, and is retried — also after the deletion, which then waits for it.
	FailApply func(u *unstructured.Unstructured, target string) string

	queue    chan item
	mu       sync.Mutex
	due      map[string]time.Time // per object and operation: when the daemon's call ends
	attempts map[string]int       // per record: failed applies so far
	next     map[types.UID]time.Time
	wg       sync.WaitGroup
}

type item struct {
	res       schema.GroupVersionResource
	namespace string
	name      string
}

// Start runs the controller until ctx ends; the returned function waits for it to stop.
func (c *Controller) Start(ctx context.Context) (wait func()) {
	c.queue = make(chan item, 4096)
	c.due = map[string]time.Time{}
	c.attempts = map[string]int{}
	c.next = map[types.UID]time.Time{}
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
		default: // full: the object is queued many times already
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

// reconcile runs the first pass that has something to write, writes, and returns when to look
// again.
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
	c.mu.Lock()
	next := c.next[u.GetUID()]
	c.mu.Unlock()
	write, gap, again := c.pass(ctx, u, now.Add(c.Skew), next.Sub(now))
	if !write {
		return again, nil
	}
	if _, err := res.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		return 0, ignoreGone(err)
	}
	if !gap {
		return again, nil
	}
	c.mu.Lock()
	c.next[u.GetUID()] = time.Now().Add(c.PassGap)
	c.mu.Unlock()
	return max(again, c.PassGap, time.Millisecond), nil
}

// pass changes u as the first pass with work to do would; now is the controller's clock.
// gap says whether the next pass waits PassGap (after records and conditions).
// lag > 0 holds back the condition and finalizer passes (PassGap after the last records or
// conditions write).
func (c *Controller) pass(ctx context.Context, u *unstructured.Unstructured, now time.Time, lag time.Duration) (write, gap bool, again time.Duration) {
	deleted := u.GetDeletionTimestamp() != nil
	forced := u.GetAnnotations()[annotationCleanFinalizer] == "forced"
	// 1. finalizers.InitReconciler
	if !deleted && !hasFinalizer(u) {
		u.SetFinalizers(append(u.GetFinalizers(), finalizer))
		return true, false, 0
	}
	// 2. desiredphase
	desired, until := c.desiredPhase(u, now)
	if phase := desiredPhaseOf(u); phase != desired {
		exp := experiment(u)
		exp["desiredPhase"] = desired
		setExperiment(u, exp)
		return true, false, until
	}
	// 3. records
	var pending time.Duration // a daemon call still running: the other passes go on meanwhile
	recs, found, _ := unstructured.NestedSlice(u.Object, "status", "experiment", "containerRecords")
	if !found || recs == nil {
		if deleted {
			goto conditions
		}
		var fresh []any
		for _, key := range selectorKeys(u) {
			matched := c.match(u, key)
			if len(matched) == 0 {
				// records/controller.go: an Event, no records, no requeue; the condition
				// controller still writes its (False) conditions.
				c.event(ctx, u, "Warning", "Failed", "Failed to select targets: no target has been selected")
				recs = nil
				goto conditions
			}
			for _, p := range matched {
				fresh = append(fresh, map[string]any{"id": p.Namespace + "/" + p.Name, "selectorKey": key,
					"phase": "Not Injected", "injectedCount": int64(0), "recoveredCount": int64(0)})
			}
		}
		recs = fresh
	}
	{
		changed, wait := false, time.Duration(0)
		for i, r := range recs {
			rec := maps.Clone(r.(map[string]any))
			phase, _ := rec["phase"].(string)
			// records/controller.go: Not Injected -> Not Injected/* -> Injected -> Injected/* ->
			// Not Injected; a record in "Not Injected/*" is applied even when the desired phase
			// is Stop (a pending apply first completes, then is recovered).
			var op string
			var took time.Duration
			if (desired == "Run" && phase != "Injected") || (desired == "Stop" && phase != "Not Injected") {
				if strings.HasPrefix(phase, "Not Injected") {
					op, took = "Apply", c.InjectAfter
				} else {
					if c.Stuck != nil && c.Stuck(u) && !forced {
						continue
					}
					op, took = "Recover", c.RecoverAfter
				}
			} else {
				continue
			}
			c.mu.Lock()
			attempt := c.attempts[fmt.Sprintf("%s/%d", u.GetUID(), i)]
			c.mu.Unlock()
			key := fmt.Sprintf("%s/%d/%s/%d/%d", u.GetUID(), i, op, toInt(rec["injectedCount"])+toInt(rec["recoveredCount"]), attempt)
			if d := c.dueIn(key, took); d > 0 {
				wait = max(wait, d)
				continue
			}
			if op == "Apply" && c.FailApply != nil {
				if msg := c.FailApply(u, fmt.Sprint(rec["id"])); msg != "" {
					// An apply error: the phase the impl returns, a Failed record event, an
					// Event, and a retry.
					rec["phase"] = "Not Injected/Wait"
					evs := events(rec)
					if len(evs) >= 10 { // config.ControllerCfg.MaxEvents' default
						evs = evs[1:]
					}
					rec["events"] = append(evs, map[string]any{"type": "Failed", "operation": "Apply", "message": msg,
						"timestamp": now.UTC().Truncate(time.Second).Format(time.RFC3339)})
					recs[i] = rec
					changed = true
					wait = max(wait, time.Second)
					c.event(ctx, u, "Warning", "Failed", "Failed to apply chaos: "+msg)
					// The retry comes a second later (controller-runtime's backoff), the
					// condition controller's pass in between.
					c.mu.Lock()
					c.attempts[fmt.Sprintf("%s/%d", u.GetUID(), i)]++
					c.due[fmt.Sprintf("%s/%d/%s/%d/%d", u.GetUID(), i, op, toInt(rec["injectedCount"])+toInt(rec["recoveredCount"]), attempt+1)] = time.Now().Add(time.Second)
					c.mu.Unlock()
					continue
				}
			}
			if op == "Apply" {
				rec["phase"] = "Injected"
				rec["injectedCount"] = toInt(rec["injectedCount"]) + 1
			} else {
				rec["phase"] = "Not Injected"
				rec["recoveredCount"] = toInt(rec["recoveredCount"]) + 1
			}
			rec["events"] = append(events(rec), event(op, now))
			recs[i] = rec
			changed = true
		}
		if wait > 0 && !changed {
			pending = wait
			if !found {
				recs = nil // nothing written yet
			}
			goto conditions
		}
		if changed || !found {
			exp := experiment(u)
			exp["containerRecords"] = recs
			setExperiment(u, exp)
			return true, true, max(wait, until)
		}
	}
conditions:
	if pending > 0 && (until == 0 || pending < until) {
		until = pending
	}
	if lag > 0 {
		return false, false, lag
	}
	// 4. condition
	if setConditions(u, recs, found && recs != nil) {
		return true, true, until
	}
	// 5. finalizers.CleanReconciler
	if deleted && len(u.GetFinalizers()) > 0 {
		resumed := true
		for _, r := range recs {
			if m, _ := r.(map[string]any); m["phase"] != "Not Injected" {
				resumed = false
			}
		}
		if forced || resumed {
			u.SetFinalizers([]string{})
			return true, false, 0
		}
	}
	return false, false, until
}

// dueIn starts the daemon's call named key (when not started) and returns how long it still takes.
func (c *Controller) dueIn(key string, took time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.due[key]
	if !ok && took <= 0 {
		return 0
	}
	if !ok {
		at = time.Now().Add(took)
		c.due[key] = at
	}
	return time.Until(at)
}

// desiredPhase is desiredphase.CalcDesiredPhase; until is when the duration runs out (0: no
// duration, or it has).
func (c *Controller) desiredPhase(u *unstructured.Unstructured, now time.Time) (string, time.Duration) {
	if u.GetDeletionTimestamp() != nil {
		return "Stop", 0
	}
	if oneShot(u) {
		return "Run", 0
	}
	var until time.Duration
	if d, _, _ := unstructured.NestedString(u.Object, "spec", "duration"); d != "" {
		if dur, err := time.ParseDuration(d); err == nil {
			end := u.GetCreationTimestamp().Add(dur)
			if !now.Before(end) {
				return "Stop", 0
			}
			until = end.Sub(now)
		}
	}
	if u.GetAnnotations()[annotationPause] == "true" {
		return "Stop", until
	}
	return "Run", until
}

func oneShot(u *unstructured.Unstructured) bool {
	if u.GetKind() != "PodChaos" {
		return false
	}
	a, _, _ := unstructured.NestedString(u.Object, "spec", "action")
	return a == "pod-kill" || a == "container-kill"
}

func desiredPhaseOf(u *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(u.Object, "status", "experiment", "desiredPhase")
	return s
}

func experiment(u *unstructured.Unstructured) map[string]any {
	exp, _, _ := unstructured.NestedMap(u.Object, "status", "experiment")
	if exp == nil {
		exp = map[string]any{}
	}
	return exp
}

func setExperiment(u *unstructured.Unstructured, exp map[string]any) {
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	status["experiment"] = exp
	u.Object["status"] = status
}

// selectorKeys are the object's selectors as GetSelectorSpecs names them.
func selectorKeys(u *unstructured.Unstructured) []string {
	keys := []string{"."}
	if _, found, _ := unstructured.NestedMap(u.Object, "spec", "target", "selector"); found && u.GetKind() == "NetworkChaos" {
		keys = append(keys, ".Target")
	}
	return keys
}

// match returns the Pods one selector (namespaces and labelSelectors) selects.
func (c *Controller) match(u *unstructured.Unstructured, key string) []Pod {
	path := []string{"spec", "selector"}
	if key == ".Target" {
		path = []string{"spec", "target", "selector"}
	}
	nss, found, _ := unstructured.NestedStringSlice(u.Object, append(path, "namespaces")...)
	if !found || len(nss) == 0 {
		nss = []string{u.GetNamespace()}
	}
	ls, _, _ := unstructured.NestedStringMap(u.Object, append(path, "labelSelectors")...)
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

// event writes an Event about u (as Chaos Mesh's recorder does, named <object>.<hex nanos>).
func (c *Controller) event(ctx context.Context, u *unstructured.Unstructured, typ, reason, note string) {
	writeEvent(ctx, c.Dynamic, u, typ, reason, note, "chaos-controller-manager")
}

func writeEvent(ctx context.Context, d dynamic.Interface, u *unstructured.Unstructured, typ, reason, note, component string) {
	now := time.Now()
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event",
		"metadata": map[string]any{"name": fmt.Sprintf("%s.%x", u.GetName(), now.UnixNano()), "namespace": u.GetNamespace()},
		"regarding": map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "name": u.GetName(),
			"namespace": u.GetNamespace(), "uid": string(u.GetUID())},
		"reason": reason, "note": note, "type": typ, "reportingController": component,
		"eventTime": now.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
	}}
	_, _ = d.Resource(Events).Namespace(u.GetNamespace()).Create(ctx, ev, metav1.CreateOptions{})
}

func hasFinalizer(u *unstructured.Unstructured) bool {
	for _, f := range u.GetFinalizers() {
		if f == finalizer {
			return true
		}
	}
	return false
}

// setConditions writes condition.diffConditions' result into u; false when nothing changed.
func setConditions(u *unstructured.Unstructured, recs []any, have bool) bool {
	b := func(v bool) string {
		if v {
			return "True"
		}
		return "False"
	}
	every := func(phase string) bool {
		if !have {
			return false
		}
		for _, r := range recs {
			if m, _ := r.(map[string]any); m["phase"] != phase {
				return false
			}
		}
		return true
	}
	want := map[string]string{
		"Selected":     b(have),
		"AllInjected":  b(every("Injected")),
		"AllRecovered": b(every("Not Injected")),
		"Paused":       b(u.GetAnnotations()[annotationPause] == "true"),
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	got := map[string]string{}
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			got[fmt.Sprint(m["type"])] = fmt.Sprint(m["status"])
		}
	}
	if maps.Equal(got, want) {
		return false
	}
	var out []any
	for _, t := range []string{"Selected", "AllInjected", "AllRecovered", "Paused"} {
		out = append(out, map[string]any{"type": t, "status": want[t]})
	}
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	status["conditions"] = out
	u.Object["status"] = status
	return true
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

// lower is strings.ToLower of a kind's first letter (the embed field of a Workflow template).
func lower(kind string) string {
	if kind == "" {
		return ""
	}
	return strings.ToLower(kind[:1]) + kind[1:]
}
