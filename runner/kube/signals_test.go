package kube_test

// Issue 12: the nine places where the backend trusted the wrong signal. Each test here failed
// before its fix, against the stand-ins made faithful to Chaos Mesh's and the k6-operator's
// sources (internal/kubetestctl).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/kubetest"
	"faultline.dev/faultline/internal/kubetestctl"
	"faultline.dev/faultline/runner/kube"
)

// Item 1: with --timing workflow a fault counts as injected when its child chaos object reports
// Selected and AllInjected (and its records say when), not when the WorkflowNode says
// ChaosInjected=True — which only means the child was created.
func TestWorkflowInjectedFromChild(t *testing.T) {
	s, c := shared(t)
	t.Run("slow", func(t *testing.T) {
		const ns = "t-wfslow"
		controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), InjectAfter: 2 * time.Second})
		engine(t, s, &kubetestctl.WorkflowEngine{})
		p := load(t, "wfslow", ns, "  jitter: {start: 1s, duration: 4s, mode: all, networkDelay: {latency: 100ms}}\n", "")
		b, log := backend(t, c, p, kube.Config{Timing: kube.TimingWorkflow})
		ctx := context.Background()
		if _, err := b.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		// When the engine created the child chaos object (the test's own watch).
		var mu sync.Mutex
		var created time.Time
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		w, err := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Watch(wctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ev := range w.ResultChan() {
				mu.Lock()
				if ev.Type == "ADDED" && created.IsZero() {
					created = time.Now()
				}
				mu.Unlock()
			}
		}()
		rec := newRecorder()
		if err := b.RunTimeline(ctx, p, rec.onInjected, rec.onRecovered); err != nil {
			t.Fatalf("RunTimeline: %v\n%s", err, log)
		}
		mu.Lock()
		defer mu.Unlock()
		// The daemon's apply ends 2s after the child's creation; the record's time has whole
		// seconds (up to 1s early).
		if d := rec.injected["jitter"].Sub(created); created.IsZero() || d < 950*time.Millisecond {
			t.Errorf("injected %s after the chaos object was created: before its apply ended (2s, the record's time up to 1s early)", d)
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nomatch", func(t *testing.T) {
		const ns = "t-wfnomatch"
		controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1)})
		engine(t, s, &kubetestctl.WorkflowEngine{})
		p := load(t, "wfnomatch", ns, "  ghost: {start: 1s, duration: 4s, mode: all, selector: {labels: {app: nothing}}, networkDelay: {latency: 100ms}}\n", "")
		b, log := backend(t, c, p, kube.Config{Timing: kube.TimingWorkflow, InjectionTimeout: 2 * time.Second})
		ctx := context.Background()
		if _, err := b.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		err := b.RunTimeline(ctx, p, rec.onInjected, rec.onRecovered)
		if err == nil || !strings.Contains(err.Error(), "no pod matched") || !strings.Contains(err.Error(), "app=nothing") {
			t.Errorf("RunTimeline with a selector that matches nothing: %v, want an error naming the selector\n%s", err, log)
		}
		if len(rec.injected) > 0 {
			t.Errorf("reported injected %v: the child chaos object was only created", rec.injected)
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Item 2: the k6-operator ends a TestRun stopped → finished even when runner pods failed; any
// non-zero runner exit other than 99 fails the load, and the runners that ran must number
// spec.parallelism.
func TestInClusterLoadFailedRunners(t *testing.T) {
	s, c := shared(t)
	exits := map[string]int{"exit107": 107, "exit137": 137, "exit105": 105, "exit99": 99, "exit0": 0}
	withK6Operator(t, s, &kubetestctl.K6Operator{StartAfter: 300 * time.Millisecond, RunFor: time.Second,
		Runners: func(u *unstructured.Unstructured) int {
			if u.GetName() == "norunner" {
				return 0
			}
			return 1
		},
		RunnerExit: func(u *unstructured.Unstructured, i int) int { return exits[u.GetName()] }})
	for _, tc := range []struct {
		name, err string
		crossed   int
	}{
		{"exit107", "exited 107 (k6: script error)", 0},
		{"exit137", "exited 137 (OOMKilled)", 0},
		{"exit105", "exited 105", 0},
		{"exit99", "", 1},
		{"exit0", "", 0},
		{"norunner", "0 of 1 runner pod(s)", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "t-runners-" + tc.name
			p := load(t, tc.name, ns, jitter, "")
			b, _ := backend(t, c, p, kube.Config{Load: kube.LoadInCluster, LoadStartTimeout: 20 * time.Second})
			kube.SkipConfigMap(b)
			kube.UsePods(b, kubetestctl.Pods)
			ctx := context.Background()
			if _, err := b.Prepare(ctx, p); err != nil {
				t.Fatal(err)
			}
			_, done, err := b.StartLoad(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			var out kube.LoadOutcome
			select {
			case out = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("no outcome")
			}
			if out.Stage != "finished" {
				t.Errorf("stage %q: the stand-in operator finishes failed runs too", out.Stage)
			}
			switch {
			case tc.err == "" && out.Err != nil:
				t.Errorf("outcome error %v", out.Err)
			case tc.err != "" && (out.Err == nil || !strings.Contains(out.Err.Error(), tc.err)):
				t.Errorf("outcome %+v: want an error saying %q", out, tc.err)
			}
			if tc.err == "" && (!out.ThresholdsKnown || len(out.ThresholdsCrossed) != tc.crossed) {
				t.Errorf("thresholds known %v, crossed %v; want known, %d crossed", out.ThresholdsKnown, out.ThresholdsCrossed, tc.crossed)
			}
			if err := b.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Item 3: stage "started" is written when the starter Job is created; the runners unpause only
// when its pod runs. The load's start is when the starter pod ran; a starter that never runs
// is a load that never started.
func TestInClusterLoadStartFromStarter(t *testing.T) {
	s, c := shared(t)
	t.Run("late", func(t *testing.T) {
		withK6Operator(t, s, &kubetestctl.K6Operator{StartAfter: 300 * time.Millisecond, StarterAfter: 2500 * time.Millisecond, RunFor: time.Second})
		p := load(t, "starterlate", "t-starter", jitter, "")
		b, log := backend(t, c, p, kube.Config{Load: kube.LoadInCluster, LoadStartTimeout: 20 * time.Second})
		kube.SkipConfigMap(b)
		kube.UsePods(b, kubetestctl.Pods)
		ctx := context.Background()
		if _, err := b.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		started, done, err := b.StartLoad(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		returned := time.Since(applied)
		// stage started at +0.3s; the starter pod runs at +2.8s (its startedAt has whole seconds).
		if d := started.Sub(applied); d < 1700*time.Millisecond {
			t.Errorf("load start +%s after the apply: before the starter pod ran (+2.8s)\n%s", d, log)
		}
		if returned < 2700*time.Millisecond {
			t.Errorf("StartLoad returned +%s after the apply, before the starter pod ran (+2.8s)", returned)
		}
		<-done
		if err := b.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("never", func(t *testing.T) {
		withK6Operator(t, s, &kubetestctl.K6Operator{StartAfter: 300 * time.Millisecond, StarterAfter: -1})
		p := load(t, "starternever", "t-starter", jitter, "")
		b, _ := backend(t, c, p, kube.Config{Load: kube.LoadInCluster, LoadStartTimeout: 3 * time.Second})
		kube.SkipConfigMap(b)
		kube.UsePods(b, kubetestctl.Pods)
		ctx := context.Background()
		if _, err := b.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		_, _, err := b.StartLoad(ctx, p)
		if err == nil || !strings.Contains(err.Error(), "starter") {
			t.Errorf("StartLoad with a starter pod that never runs: %v, want an error naming the starter", err)
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Item 4: a chaos node gets DeadlineExceed first; its child is deleted afterwards and the
// finalizer recovers the targets later. Recovery is when the child's records say so (or it is
// gone), and RunTimeline waits for it.
func TestWorkflowRecoveryFromChild(t *testing.T) {
	s, c := shared(t)
	const ns = "t-wfrecover"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), RecoverAfter: 2 * time.Second})
	engine(t, s, &kubetestctl.WorkflowEngine{})
	p := load(t, "wfrecover", ns, "  jitter: {start: 1s, duration: 2s, mode: all, networkDelay: {latency: 100ms}}\n", "")
	b, log := backend(t, c, p, kube.Config{Timing: kube.TimingWorkflow})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if err := b.RunTimeline(ctx, p, rec.onInjected, rec.onRecovered); err != nil {
		t.Fatalf("RunTimeline: %v\n%s", err, log)
	}
	returned := time.Now()
	in, out := rec.injected["jitter"], rec.recovered["jitter"]
	// The node's deadline passes 1-2s after the injection (whole seconds); the recovery takes 2s.
	if d := out.Sub(in); d < 2800*time.Millisecond {
		t.Errorf("recovered %s after the injection: at the node's deadline, before the child's records recovered (+2s)\n%s", d, log)
	}
	if returned.Before(out) {
		t.Errorf("RunTimeline returned before the recovery")
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

// Item 5: the pause annotation, or spec.duration running out on the controller's clock
// (creation + duration), recovers the targets and KEEPS the object: supervision reads the
// records and conditions, not only deletion.
func TestFaultStoppedWhileObjectStays(t *testing.T) {
	s, c := shared(t)
	for _, tc := range []struct {
		name string
		skew time.Duration
		want string
	}{
		{"paused", 0, "paused"},
		{"expired", 4 * time.Second, "duration ran out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "t-stopped-" + tc.name
			controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), Skew: tc.skew})
			p := load(t, "stopped-"+tc.name, ns, "  jitter: {start: 1s, duration: 8s, mode: all, networkDelay: {latency: 100ms}}\n", "")
			b, _ := backend(t, c, p, kube.Config{})
			ctx := context.Background()
			if _, err := b.Prepare(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Inject(ctx, fault(p, "jitter")); err != nil {
				t.Fatal(err)
			}
			if tc.name == "paused" {
				patch := []byte(`{"metadata":{"annotations":{"experiment.chaos-mesh.org/pause":"true"}}}`)
				if _, err := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Patch(ctx, "stopped-paused-01-jitter", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-b.Failures():
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fault jitter") {
					t.Errorf("failure %v, want it to say %q", err, tc.want)
				}
			case <-time.After(7 * time.Second):
				t.Fatalf("no failure reported: the fault stopped (%s) while its object stayed", tc.name)
			}
			if err := b.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Item 6: with no matching pod all three conditions stay False forever and the reason is only
// in an Event; the timeout names the selector that matched nothing — a network fault's peer
// selector included — and quotes the Event.
func TestInjectNoMatchPeer(t *testing.T) {
	s, c := shared(t)
	const ns = "t-nopeer"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 2)})
	p := load(t, "nopeer", ns, "  jitter: {start: 1s, duration: 8s, mode: all, networkDelay: {latency: 100ms, peer: {selector: {labels: {app: db}}}}}\n", "")
	b, _ := backend(t, c, p, kube.Config{InjectionTimeout: 2 * time.Second})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err := b.Inject(ctx, fault(p, "jitter"))
	if err == nil {
		t.Fatal("Inject succeeded with a peer selector that matches nothing")
	}
	for _, want := range []string{"app=db", "peer", "Failed to select targets: no target has been selected", "does not retry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

// Item 7: Chaos Mesh writes the records, then the conditions, then removes the finalizer, each on
// its own pass: AllRecovered turns True while the object is being deleted, a pass after the
// records say recovered. Recover reports the records' moment.
func TestRecoverWhileDeleting(t *testing.T) {
	s, c := shared(t)
	const ns = "t-passes"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), RecoverAfter: time.Second, PassGap: 1500 * time.Millisecond})
	p := load(t, "passes", ns, jitter, "")
	b, _ := backend(t, c, p, kube.Config{})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Inject(ctx, fault(p, "jitter")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sawRecoveredDeleting := false
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=passes-01-jitter"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && u.GetDeletionTimestamp() != nil && conditionOf(u, "AllRecovered") == "True" {
				mu.Lock()
				sawRecoveredDeleting = true
				mu.Unlock()
			}
		}
	}()
	sent := time.Now()
	rec, err := b.Recover(ctx, fault(p, "jitter"))
	if err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	// records recovered at +1s, AllRecovered at +2.5s, finalizer removed at +4s.
	if d := rec.Sub(sent); d < 900*time.Millisecond || d > 2200*time.Millisecond {
		t.Errorf("recovered +%s after the delete, want the records' recovery (+1s), not AllRecovered's pass (+2.5s) nor the removal (+%s)", d, gone.Sub(sent))
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !sawRecoveredDeleting {
		t.Error("the stand-in never showed AllRecovered=True on the object being deleted")
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}

func conditionOf(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return fmt.Sprint(m["status"])
		}
	}
	return ""
}

// Item 8: workflow nodes have generated names, owner references and the foregroundDeletion
// finalizer, and the engine recreates a missing child of an unfinished node: Cleanup deletes the
// Workflow first, then its nodes, then their children; children have no duration, so a leftover
// one does not "expire by itself".
func TestWorkflowCleanupOrder(t *testing.T) {
	s, c := shared(t)
	const ns = "t-wforder"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), RecoverAfter: 500 * time.Millisecond,
		Stuck: func(u *unstructured.Unstructured) bool {
			return u.GetNamespace() == ns && u.GetLabels()["stuck"] == "yes"
		}})
	engine(t, s, &kubetestctl.WorkflowEngine{})
	p := load(t, "wforder", ns, "  jitter: {start: 1s, duration: 20s, mode: all, networkDelay: {latency: 100ms}}\n", "")
	ctx := context.Background()

	// When each object was first written as being deleted (or gone): the
	// resourceVersion of that write. Three watches deliver their events
	// each on its own, so the time an event arrives can put two writes a
	// millisecond apart in the wrong order (a CI run saw a node 1ms before
	// its Workflow); one etcd numbers every write in order.
	var mu sync.Mutex
	deleting := map[string]int64{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, r := range []schema.GroupVersionResource{workflowsGVR, workflowNodesGVR, gvr("networkchaos")} {
		w, err := s.Dynamic().Resource(r).Namespace(ns).Watch(wctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ev := range w.ResultChan() {
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || (ev.Type != "DELETED" && u.GetDeletionTimestamp() == nil) {
					continue
				}
				rv, err := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
				if err != nil {
					t.Errorf("%s %s: resourceVersion %q", u.GetKind(), u.GetName(), u.GetResourceVersion())
					continue
				}
				mu.Lock()
				if at, seen := deleting[u.GetKind()+" "+u.GetName()]; !seen || rv < at {
					deleting[u.GetKind()+" "+u.GetName()] = rv
				}
				mu.Unlock()
			}
		}()
	}
	run := func(name string, cfg kube.Config) (*kube.Backend, error) {
		cfg.Timing = kube.TimingWorkflow
		b, _ := backend(t, c, p, cfg)
		if _, err := b.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		var once sync.Once
		err := b.RunTimeline(rctx, p, func(plan.Fault, time.Time) {
			once.Do(func() { time.AfterFunc(500*time.Millisecond, rcancel) }) // SIGINT mid-fault
		}, func(plan.Fault, time.Time) {})
		rcancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RunTimeline: %v, want canceled", err)
		}
		nodes, err := s.Dynamic().Resource(workflowNodesGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelWorkflow + "=wforder"})
		if err != nil || len(nodes.Items) == 0 {
			t.Fatalf("nodes: %v", err)
		}
		for _, n := range nodes.Items {
			tmpl, _, _ := unstructured.NestedString(n.Object, "spec", "templateName")
			if n.GetName() == tmpl || len(n.GetOwnerReferences()) != 1 || len(n.GetFinalizers()) != 1 || n.GetFinalizers()[0] != "foregroundDeletion" {
				t.Errorf("node %s: owners %v, finalizers %v: the stand-in is not the engine", n.GetName(), n.GetOwnerReferences(), n.GetFinalizers())
			}
		}
		return b, b.Cleanup(ctx)
	}

	if _, err := run("order", kube.Config{RunID: "order"}); err != nil {
		t.Fatal(err)
	}
	if left := leftAfterWorkflow(t, s, "order", "wforder"); len(left) > 0 {
		t.Errorf("left after Cleanup: %v", left)
	}
	mu.Lock()
	var wfAt, lastNode, firstNode, firstChaos int64
	for k, at := range deleting {
		switch {
		case strings.HasPrefix(k, "Workflow "):
			wfAt = at
		case strings.HasPrefix(k, "WorkflowNode "):
			if firstNode == 0 || at < firstNode {
				firstNode = at
			}
			lastNode = max(lastNode, at)
		default:
			if firstChaos == 0 || at < firstChaos {
				firstChaos = at
			}
		}
	}
	mu.Unlock()
	if wfAt == 0 || firstNode == 0 || firstChaos == 0 {
		t.Fatalf("deletions seen: %v", deleting)
	}
	if wfAt >= firstNode || lastNode >= firstChaos {
		t.Errorf("deletion order (resourceVersions): Workflow %d, nodes %d – %d, chaos objects from %d; want the Workflow, then the nodes, then their children (%v)",
			wfAt, firstNode, lastNode, firstChaos, deleting)
	}

	// A child whose recovery never ends is left: the error must not promise it expires.
	stuckLabel := func() {
		for range 100 {
			list, _ := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelWorkflow + "=wforder"})
			if list != nil && len(list.Items) > 0 {
				for _, it := range list.Items {
					patch := []byte(`{"metadata":{"labels":{"stuck":"yes"}}}`)
					_, _ = s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Patch(ctx, it.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	go stuckLabel()
	_, err := run("stuck", kube.Config{RunID: "stuck", CleanupTimeout: 4 * time.Second})
	var le *kube.LeftoverError
	if !errors.As(err, &le) {
		t.Fatalf("Cleanup with a stuck child: %v, want a LeftoverError", err)
	}
	if strings.Contains(err.Error(), "each expires by itself") || !strings.Contains(err.Error(), "no duration") {
		t.Errorf("leftover error %q: a Workflow's chaos object has no duration and does not expire by itself", err)
	}
	if _, err := (&kube.Cleaner{Clients: c, Namespaces: []string{ns}, Selector: kube.LabelSelectorAll(), StuckAfter: time.Second, ForceFinalizers: true,
		Known: le.Objects}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftAfterWorkflow(t, s, "stuck", "wforder"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// Item 9: Chaos Mesh's auth webhook asks for `create` on the chaos kind in EVERY namespace the
// object selects (pkg/webhook/validate_auth.go, affected_namespaces.go); the access check asks
// the same (SelfSubjectAccessReview per namespace). The reviews go to the stand-in of a real
// server's authorization API, which also refuses a review with metadata (harness finding F1:
// kube-apiserver answers 422 to the generateName faultline sent).
func TestAccessCheckSelectedNamespaces(t *testing.T) {
	s := kubetest.Start(t)
	ctx := context.Background()
	if err := s.InstallCRDs(ctx, crdsNamed(t, "podchaos", "networkchaos")); err != nil {
		t.Fatal(err)
	}
	ar := &kubetestctl.AccessReviews{Allow: func(a map[string]string) (bool, string) {
		if a["namespace"] == "payments" {
			return false, "test: no RoleBinding in payments"
		}
		return true, ""
	}}
	cfg, stop, err := ar.Start(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := kube.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, "authns", "t-auth", "  jitter: {start: 1s, duration: 5s, mode: all, networkDelay: {latency: 100ms, peer: {selector: {namespace: payments, labels: {app: pay}}}}}\n",
		"guardrails:\n  allowedNamespaces: [t-auth, payments]\n")
	b, _ := backend(t, c, p, kube.Config{})
	_, err = b.Preflight(ctx, p)
	var re *kube.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Preflight: %v, want a refusal", err)
	}
	if len(re.Refusals) != 1 || !strings.Contains(err.Error(), "may not create networkchaos.chaos-mesh.org in namespace payments (test: no RoleBinding in payments)") ||
		!strings.Contains(err.Error(), "every namespace it selects pods in") {
		t.Errorf("refusals %v, want one: create networkchaos in payments, the webhook's rule", err)
	}
	asked := false
	for _, ra := range ar.Reviews() {
		if ra["namespace"] == "payments" && ra["verb"] == "create" && ra["resource"] == "networkchaos" && ra["group"] == "chaos-mesh.org" {
			asked = true
		}
	}
	if !asked {
		t.Errorf("no SelfSubjectAccessReview for create networkchaos in namespace payments among %v", ar.Reviews())
	}
}

// Items 5 and 8 for a Workflow's chaos objects: one paused, or deleted (the engine creates a
// missing child of an unfinished node again, after a gap), before its node's deadline stopped the
// fault early: RunTimeline fails instead of reporting the planned window.
func TestWorkflowChildStopped(t *testing.T) {
	s, c := shared(t)
	for _, tc := range []struct{ name, want string }{{"paused", "paused"}, {"deleted", "deleted"}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "t-wfchild-" + tc.name
			controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1)})
			engine(t, s, &kubetestctl.WorkflowEngine{})
			p := load(t, "wfchild", ns, "  jitter: {start: 1s, duration: 20s, mode: all, networkDelay: {latency: 100ms}}\n", "")
			b, log := backend(t, c, p, kube.Config{Timing: kube.TimingWorkflow})
			ctx := context.Background()
			if _, err := b.Prepare(ctx, p); err != nil {
				t.Fatal(err)
			}
			res := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns)
			err := b.RunTimeline(ctx, p, func(plan.Fault, time.Time) {
				go func() {
					list, err := res.List(ctx, metav1.ListOptions{LabelSelector: kube.LabelWorkflow + "=wfchild"})
					if err != nil || len(list.Items) != 1 {
						t.Errorf("children: %v", err)
						return
					}
					name := list.Items[0].GetName()
					if tc.name == "paused" {
						_, err = res.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"experiment.chaos-mesh.org/pause":"true"}}}`), metav1.PatchOptions{})
					} else {
						err = res.Delete(ctx, name, metav1.DeleteOptions{})
					}
					if err != nil {
						t.Error(err)
					}
				}()
			}, func(plan.Fault, time.Time) {})
			if err == nil || !strings.Contains(err.Error(), "fault jitter") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RunTimeline: %v, want an error saying the fault's chaos object was %s\n%s", err, tc.want, log)
			}
			if err := b.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			if left := leftAfterWorkflow(t, s, "run-testworkflowchildstopped-"+tc.name, "wfchild"); len(left) > 0 {
				t.Errorf("left: %v", left)
			}
		})
	}
}

// Harness finding F4 against the stand-in: a daemon that refuses the apply leaves the records
// "Not Injected/Wait" with "Apply Failed" events; Inject's timeout names the fault and quotes the
// daemon's error; after the deletion Chaos Mesh keeps retrying the pending apply, so the object
// stays in deletion — the cleanup says so (it does not "expire by itself") — and goes once the
// daemon accepts (applied, then recovered).
func TestInjectDaemonFails(t *testing.T) {
	s, c := shared(t)
	const ns = "t-daemonfails"
	var mu sync.Mutex
	refuse := true
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), FailApply: func(u *unstructured.Unstructured, target string) string {
		mu.Lock()
		defer mu.Unlock()
		if refuse && u.GetNamespace() == ns {
			return "unable to set tcs for pod " + target
		}
		return ""
	}})
	p := load(t, "daemonfails", ns, jitter, "")
	b, _ := backend(t, c, p, kube.Config{InjectionTimeout: 2 * time.Second, CleanupTimeout: 3 * time.Second})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err := b.Inject(ctx, fault(p, "jitter"))
	if err == nil {
		t.Fatal("Inject succeeded with a daemon that refuses")
	}
	for _, want := range []string{"fault jitter", "was not injected into all of them", "unable to set tcs for pod t-daemonfails/checkout-0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if t.Failed() {
		u, _ := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Get(ctx, "daemonfails-01-jitter", metav1.GetOptions{})
		t.Logf("object: %v %v", u.Object["status"], u.GetFinalizers())
	}
	err = b.Cleanup(ctx)
	var le *kube.LeftoverError
	if !errors.As(err, &le) || len(le.Deleting) != 1 || strings.Contains(err.Error(), "expires by itself") {
		t.Fatalf("Cleanup while the daemon refuses: %v, want a LeftoverError saying the object is being deleted", err)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if _, err := (&kube.Cleaner{Clients: c, Namespaces: []string{ns}, Selector: kube.LabelSelectorAll(), Known: le.Objects}).Run(ctx); err != nil {
		t.Fatalf("cleanup once the daemon accepts: %v", err)
	}
	if left := byRunID(t, s, "run-testinjectdaemonfails"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}
