package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/prom"
)

// Load values of Config.Load.
const (
	// LoadLocal: the embedded k6 sends the load from the runner's machine (the default).
	LoadLocal = "local"
	// LoadInCluster: faultline applies the compiled k6-operator TestRun and its ConfigMap and
	// follows the TestRun's stage (see StartLoad).
	LoadInCluster = "in-cluster"
)

// DefaultLoadStartTimeout bounds the wait for a TestRun to reach stage "started" (runner pods
// pull k6's image and start paused first).
const DefaultLoadStartTimeout = 5 * time.Minute

// Resources of in-cluster load.
var (
	TestRuns   = schema.GroupVersionResource{Group: "k6.io", Version: "v1alpha1", Resource: "testruns"}
	ConfigMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	Pods       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// ErrK6OperatorMissing means the API server does not serve k6-operator's TestRun.
var ErrK6OperatorMissing = errors.New("k6-operator is not installed in this cluster")

// LoadOutcome is how an in-cluster load ended (results.LoadOutcome): Stage is the TestRun's
// last stage; Err is set for stage "error", the TestRun deleted or the API server lost; the
// thresholds come from the runner pods' exit codes (label k6_cr=<TestRun>, runner=true; k6 exits
// 99 when a threshold is crossed), unknown when they cannot be read.
type LoadOutcome = results.LoadOutcome

var _ runner.LoadOwner = (*Backend)(nil)

// OwnsLoad is true with Config.Load "in-cluster".
func (b *Backend) OwnsLoad() bool { return b.cfg.Load == LoadInCluster }

// TestRun is the TestRun Preflight prepared (Load "in-cluster"), else nil.
func (b *Backend) TestRun() *Object { return b.testRun }

// buildLoad compiles the plan's k6-operator TestRun and ConfigMap with the run's label.
func (b *Backend) buildLoad(p *plan.Plan) (testRun, configMap *Object, err error) {
	files, err := k6.Emit(p)
	if err != nil {
		return nil, nil, err
	}
	obj := func(path, kind string, res schema.GroupVersionResource) (*Object, error) {
		js, err := yaml.YAMLToJSON(files.Get(path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if b.cfg.Namespace != "" {
			u.SetNamespace(b.cfg.Namespace)
		}
		if u.GetNamespace() == "" {
			return nil, fmt.Errorf("in-cluster load needs a namespace: set target.kubernetes.namespace or -n")
		}
		l := u.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[LabelRunID] = chaosmesh.LabelValue(b.cfg.RunID)
		u.SetLabels(l)
		return &Object{Kind: kind, Resource: res, Obj: u}, nil
	}
	if testRun, err = obj(k6.TestRunPath, "TestRun", TestRuns); err != nil {
		return nil, nil, err
	}
	// Every sample carries the run's id (a tag, so a label in Prometheus):
	// faultline reads this run's series back, not an earlier run's.
	args, _, _ := unstructured.NestedString(testRun.Obj.Object, "spec", "arguments")
	args += " --tag " + prom.LabelRunID + "=" + chaosmesh.LabelValue(b.cfg.RunID)
	if err := unstructured.SetNestedField(testRun.Obj.Object, args, "spec", "arguments"); err != nil {
		return nil, nil, err
	}
	if configMap, err = obj(k6.ConfigMapPath, "ConfigMap", ConfigMaps); err != nil {
		return nil, nil, err
	}
	return testRun, configMap, nil
}

// checkK6Operator asks discovery whether k6.io/v1alpha1 TestRun is served.
func (b *Backend) checkK6Operator(ctx context.Context) error {
	var list *metav1.APIResourceList
	err := retryUnreachable(ctx, 5*time.Second, func() error {
		var err error
		list, err = b.c.Discovery.ServerResourcesForGroupVersion(TestRuns.GroupVersion().String())
		return err
	})
	if err == nil {
		for _, r := range list.APIResources {
			if r.Name == TestRuns.Resource {
				return nil
			}
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("asking the API server at %s whether it serves k6-operator's TestRun: %w", b.c.Host, err)
	}
	return fmt.Errorf("%w: the API server at %s does not serve k6.io/v1alpha1 testruns; install the k6-operator (https://grafana.com/docs/k6/latest/testing-guides/running-distributed-tests/), or run with --load local",
		ErrK6OperatorMissing, b.c.Host)
}

// stage is a TestRun's status.stage.
func stage(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	s, _, _ := unstructured.NestedString(u.Object, "status", "stage")
	return s
}

// StartLoad applies the ConfigMap with the script and the TestRun (server-side apply, the
// run's label), and watches the TestRun until its stage is "started", then waits for its
// starter pod to run: the k6-operator writes "started" when it CREATES the starter Job, and the
// paused runners start only when that pod runs (k6_start.go), so the load's start — the instant
// the script's phase clock and the faults' clock share — is the starter container's start
// (whole seconds, clamped between "started" and when faultline saw it run). Stage "error" (set
// only while initializing), a starter that fails, or no start within LoadStartTimeout, is an
// error. Where pods cannot be read (no permission) the start falls back to stage "started", with
// a note. The channel then receives the outcome once, when the TestRun reaches "finished" (its
// runner pods' exits decide it: see runnerExits) or "error" (or ctx ends, or the TestRun
// disappears).
func (b *Backend) StartLoad(ctx context.Context, p *plan.Plan) (time.Time, <-chan LoadOutcome, error) {
	tr := b.testRun
	if tr == nil {
		return time.Time{}, nil, errors.New("kube: no TestRun prepared (Prepare not called with Load \"in-cluster\"?)")
	}
	b.mu.Lock()
	b.applied["testrun"] = tr
	if !b.skipConfigMap {
		b.applied["configmap"] = b.configMap
	}
	b.mu.Unlock()
	if !b.skipConfigMap {
		if _, err := b.apply(ctx, b.configMap, false); err != nil {
			return time.Time{}, nil, fmt.Errorf("creating %s (the k6 script): %w", b.configMap, err)
		}
	}
	got, err := b.apply(ctx, tr, false)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("creating %s: %w", tr, err)
	}
	b.logf("applied %s: the k6-operator runs the load in the cluster (parallelism %d)", tr, parallelism(tr))
	res := b.resource(tr)
	name := tr.Obj.GetName()
	logged := ""
	sctx, cancel := context.WithTimeout(ctx, b.cfg.LoadStartTimeout)
	last, seen, err := waitObject(sctx, res, name, got, func(u *unstructured.Unstructured) bool {
		return slices.Contains([]string{"started", "stopped", "finished", "error"}, stage(u))
	}, func(u *unstructured.Unstructured) {
		if s := stage(u); s != "" && s != logged {
			logged = s
			b.logf("%s: stage %s", tr, s)
		}
	})
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return time.Time{}, nil, fmt.Errorf("%s did not start within %s (stage %q): is the k6-operator running, and can its runner pods start (image, resources)? see `kubectl describe testrun -n %s %s`",
				tr, b.cfg.LoadStartTimeout, stage(last), tr.Obj.GetNamespace(), name)
		}
		return time.Time{}, nil, fmt.Errorf("waiting for %s to start: %w", tr, err)
	}
	if stage(last) == "error" {
		return time.Time{}, nil, fmt.Errorf("%s reached stage error before the load started: see `kubectl describe testrun -n %s %s` and the k6-operator's log", tr, tr.Obj.GetNamespace(), name)
	}
	if stage(last) == "started" {
		// k6_start.go writes "started" right after CREATING the starter Job; the runners stay
		// paused until its pod runs (it curls each runner's /v1/status to unpause it).
		sctx, cancel := context.WithDeadline(ctx, seen.Add(b.cfg.LoadStartTimeout))
		at, err := b.starterRan(sctx, tr, seen)
		cancel()
		switch {
		case err == nil:
			seen = at
		case ctx.Err() != nil:
			return time.Time{}, nil, ctx.Err()
		case errors.Is(err, errNoPods):
			b.logf("note: %s: the starter pod cannot be read (%v): the load's start is taken from stage started, which the operator writes before the runners unpause", tr, err)
		default:
			return time.Time{}, nil, err
		}
	}
	done := make(chan LoadOutcome, 1)
	go func() {
		last, _, err := waitObject(ctx, res, name, last, func(u *unstructured.Unstructured) bool {
			return stage(u) == "finished" || stage(u) == "error"
		}, nil)
		out := LoadOutcome{Stage: stage(last)}
		switch {
		case err != nil:
			out.Err = fmt.Errorf("following %s: %w", tr, err)
		case out.Stage == "error":
			out.Err = fmt.Errorf("%s ended in stage error: the k6 runners failed; see `kubectl describe testrun -n %s %s` and the runner pods' logs", tr, tr.Obj.GetNamespace(), name)
		default:
			out.ThresholdsKnown, out.ThresholdsCrossed, out.Err = b.runnerExits(context.WithoutCancel(ctx), tr)
		}
		b.logf("%s: load ended (stage %s)", tr, out.Stage)
		done <- out
	}()
	return seen, done, nil
}

var errNoPods = errors.New("pods cannot be listed")

// starterRan waits until the starter pod (label k6_cr=<TestRun>, job-name=<TestRun>-starter) has
// run: its container running or terminated with exit 0. The instant is the container's
// startedAt (whole seconds) clamped between started (stage started seen) and when faultline saw it
// run. A starter that fails, or does not run before ctx ends, is an error naming it.
func (b *Backend) starterRan(ctx context.Context, tr *Object, started time.Time) (time.Time, error) {
	ns, name := tr.Obj.GetNamespace(), tr.Obj.GetName()
	starter := name + "-starter"
	sel := "k6_cr=" + name + ",job-name=" + starter
	res := b.c.Dynamic.Resource(b.pods).Namespace(ns)
	state := "not created"
	for {
		list, err := res.List(ctx, metav1.ListOptions{LabelSelector: sel})
		switch {
		case err != nil && ctx.Err() == nil && (apierrors.IsNotFound(err) || apierrors.IsForbidden(err)):
			return time.Time{}, fmt.Errorf("%w: %v", errNoPods, err)
		case err != nil && ctx.Err() == nil && !Unreachable(err):
			return time.Time{}, fmt.Errorf("reading the starter pod of %s: %w", tr, err)
		case err == nil:
			for _, pod := range list.Items {
				statuses, _, _ := unstructured.NestedSlice(pod.Object, "status", "containerStatuses")
				for _, st := range statuses {
					m, _ := st.(map[string]any)
					if code, found, _ := unstructured.NestedInt64(m, "state", "terminated", "exitCode"); found && code != 0 {
						return time.Time{}, fmt.Errorf("%s: its starter pod %s exited %d: the runners were never unpaused; see `kubectl logs -n %s %s`", tr, pod.GetName(), code, ns, pod.GetName())
					}
					for _, k := range []string{"running", "terminated"} {
						if ts, found, _ := unstructured.NestedString(m, "state", k, "startedAt"); found {
							now := time.Now()
							at, _ := time.Parse(time.RFC3339, ts)
							if at.Before(started) {
								at = started
							}
							if at.After(now) {
								at = now
							}
							return at, nil
						}
					}
				}
				phase, _, _ := unstructured.NestedString(pod.Object, "status", "phase")
				state = "phase " + phase
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return time.Time{}, fmt.Errorf("%s reached stage started but its starter pod %s did not run within %s (%s): the runners stay paused until it does; see `kubectl describe pod -n %s -l job-name=%s`",
					tr, starter, b.cfg.LoadStartTimeout, state, ns, starter)
			}
			return time.Time{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func parallelism(tr *Object) int64 {
	n, _, _ := unstructured.NestedInt64(tr.Obj.Object, "spec", "parallelism")
	return n
}

// k6's exit codes (k6 docs; 137 is the kernel's SIGKILL, an OOM-killed container).
var exitMeaning = map[int64]string{99: "thresholds crossed", 104: "k6: invalid config", 105: "k6: external abort, a signal",
	107: "k6: script error", 108: "k6: test.abort()", 137: "OOMKilled"}

// runnerExits reads the runner pods' exit codes (label k6_cr=<TestRun>, runner=true). The
// k6-operator ends a TestRun stopped → finished whatever its runners' exits (StoppedJobs only
// asks whether they still run; stage error is set only while initializing), so this is where a
// failed load shows: 99 is a crossed threshold (crossed names the pod); any other non-zero exit
// fails the load (err); so do fewer runner pods than spec.parallelism. known is false when the
// pods cannot be read or a runner has not terminated.
func (b *Backend) runnerExits(ctx context.Context, tr *Object) (known bool, crossed []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, lerr := b.c.Dynamic.Resource(b.pods).Namespace(tr.Obj.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: "k6_cr=" + tr.Obj.GetName() + ",runner=true"})
	if lerr != nil {
		return false, nil, nil
	}
	want := parallelism(tr)
	if want < 1 {
		want = 1
	}
	if int64(len(list.Items)) != want {
		return false, nil, fmt.Errorf("%s: %d of %d runner pod(s) ran (spec.parallelism %d): the load was not the planned one; see `kubectl get jobs,pods -n %s -l k6_cr=%s`",
			tr, len(list.Items), want, want, tr.Obj.GetNamespace(), tr.Obj.GetName())
	}
	var failed []string
	known = true
	for _, pod := range list.Items {
		statuses, _, _ := unstructured.NestedSlice(pod.Object, "status", "containerStatuses")
		if len(statuses) == 0 {
			known = false
		}
		for _, st := range statuses {
			m, _ := st.(map[string]any)
			code, found, _ := unstructured.NestedInt64(m, "state", "terminated", "exitCode")
			if !found {
				known = false // still running
				continue
			}
			switch code {
			case 0:
			case 99:
				crossed = append(crossed, pod.GetName())
			default:
				meaning := exitMeaning[code]
				if reason, _, _ := unstructured.NestedString(m, "state", "terminated", "reason"); meaning == "" && reason != "" {
					meaning = reason
				}
				if meaning == "" {
					meaning = "k6 failed"
				}
				failed = append(failed, fmt.Sprintf("%s exited %d (%s)", pod.GetName(), code, meaning))
			}
		}
	}
	if len(failed) > 0 {
		return known, crossed, fmt.Errorf("%s: runner pod %s: the load failed although the TestRun ended %q; see the runner pods' logs", tr, strings.Join(failed, ", "), "finished")
	}
	return known, crossed, nil
}

// LoadObjects are the TestRun and its ConfigMap Preflight prepared (Load "in-cluster").
func (b *Backend) LoadObjects() []*Object {
	if b.testRun == nil {
		return nil
	}
	return []*Object{b.testRun, b.configMap}
}

// LoadKinds are the kinds of in-cluster load (TestRun, ConfigMap) the API server serves, for
// `faultline cleanup` (a server without them has none to clean).
func (c *Clients) LoadKinds(ctx context.Context) []Kind {
	var out []Kind
	for _, k := range []Kind{{Kind: "TestRun", Resource: TestRuns, Namespaced: true}, {Kind: "ConfigMap", Resource: ConfigMaps, Namespaced: true}} {
		list, err := c.Discovery.ServerResourcesForGroupVersion(k.Resource.GroupVersion().String())
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if r.Name == k.Resource.Resource {
				out = append(out, k)
			}
		}
	}
	return out
}

// loadLeftover refuses a TestRun of the same name left by an earlier run (its status would
// answer for the new one: a finished TestRun is not run again), unless Force: then it is
// deleted first, with its ConfigMap.
func (b *Backend) loadLeftover(ctx context.Context, tr, cm *Object) error {
	res := b.resource(tr)
	old, err := res.Get(ctx, tr.Obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking for an earlier %s: %w", tr, err)
	}
	ref := Ref{Kind: tr.Kind, Resource: tr.Resource, Namespace: tr.Obj.GetNamespace(), Name: tr.Obj.GetName(), RunID: old.GetLabels()[LabelRunID]}
	if !b.cfg.Force {
		return &RefusedError{Scenario: b.s.Name, Refusals: []Refusal{{Rule: RuleLeftovers, Message: fmt.Sprintf(
			"an earlier run of scenario %s left %s%s (stage %q); remove it with `faultline cleanup --run-id ID` (or --all), or pass --force to delete it before this run",
			b.s.Name, ref, runIDOf(ref), stage(old))}}}
	}
	b.logf("--force: deleting %s left by an earlier run", ref)
	known := []Ref{ref}
	if !b.skipConfigMap {
		known = append(known, Ref{Kind: cm.Kind, Resource: cm.Resource, Namespace: cm.Obj.GetNamespace(), Name: cm.Obj.GetName()})
	}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.CleanupTimeout)
	defer cancel()
	_, err = (&Cleaner{Clients: b.c, Kinds: []Kind{}, Known: known, Log: b.cfg.Log}).Run(cctx)
	return err
}
