package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"faultline.dev/faultline/e2e/harness"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/results"
)

// TestLibraryClusterWorkflow: the same runs with --timing workflow (Chaos Mesh's real workflow
// engine keeps the faults' clock).
func TestLibraryClusterWorkflow(t *testing.T) {
	lib := loadLibrary(t)
	for _, sc := range clusterLibrary {
		name := strings.TrimSuffix(sc.file, filepath.Ext(sc.file))
		t.Run(name, func(t *testing.T) {
			managerLogOnFailure(t)
			runLibraryScenario(t, lib[sc.file], sc.file, sc.scale, append([]string{"--timing", "workflow"}, sc.flags...))
		})
	}
}

// freshShop is the shared cluster with namespace shop's target pods as shopPods lists them (a
// test before may have killed or relabelled some), and the manager's log printed if the test
// fails.
func freshShop(t *testing.T) (*harness.Cluster, context.Context) {
	t.Helper()
	managerLogOnFailure(t)
	c, ctx := shared.cluster, context.Background()
	if err := c.ResetPods(ctx, "shop", shopPods()); err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

// jitterScenario is a NetworkChaos delay on every checkout pod, fault from 2s for dur.
func jitterScenario(t *testing.T, url, selector, dur, load string) string {
	return writeScenario(t, "jitter", fmt.Sprintf(`name: e2e-jitter
version: 1.0.0
target:
  url: %s
  kubernetes: {namespace: shop, selector: {app: %s}}
load:
  executor: constant-arrival-rate
  rate: 20
  duration: %s
  preAllocatedVUs: 5
  maxVUs: 10
  requests:
    - {name: catalog, path: /catalog, expect: {status: 200}}
faults:
  jitter:
    start: 2s
    duration: %s
    mode: all
    networkDelay: {latency: 100ms}
slos:
  steady: {errorRate: 1}
  fault: {errorRate: 1}
  recovery: {errorRate: 1}
`, url, selector, load, dur))
}

func checkoutIDs() []string {
	var ids []string
	for _, p := range shopPods() {
		if p.Labels["app"] == "checkout" {
			ids = append(ids, harness.ContainerID("shop", p.Name, p.Containers[0]))
		}
	}
	return ids
}

// TestInterrupt: SIGINT while a fault is active ends the run as aborted (exit 6, never pass),
// the daemon sees every target recovered, and nothing is left; the same with --timing workflow.
func TestInterrupt(t *testing.T) {
	for _, timing := range []string{"runner", "workflow"} {
		t.Run(timing, func(t *testing.T) {
			c, ctx := freshShop(t)
			path := jitterScenario(t, demoTarget(t), "checkout", "20s", "30s")
			before, err := c.Daemon.Last(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var sent time.Time
			r := faultline(t, runOpts{args: []string{path, "--timing", timing}, during: func(p *os.Process, out *lockedBuffer) {
				// Interrupt once the daemon has seen the injection on every target.
				deadline := time.Now().Add(60 * time.Second)
				for time.Now().Before(deadline) {
					calls, err := c.Daemon.Since(ctx, before)
					if err == nil {
						saw, _ := daemonSaw(calls, effects["networkDelay"], checkoutIDs())
						all := true
						for _, s := range saw {
							all = all && !s.injectedAt.IsZero()
						}
						if all {
							time.Sleep(time.Second)
							sent = time.Now()
							_ = p.Signal(syscall.SIGINT)
							return
						}
					}
					time.Sleep(200 * time.Millisecond)
				}
				t.Errorf("the daemon never saw every checkout pod injected:\n%s", out.String())
				_ = p.Signal(syscall.SIGINT)
			}})
			if r.code != exitcode.Aborted {
				t.Errorf("exit %d, want %d (aborted):\n%s", r.code, exitcode.Aborted, r.out)
			}
			if r.res != nil && r.res.Verdict == results.VerdictPass {
				t.Errorf("an interrupted run passed")
			}
			if r.res != nil && (len(r.res.Faults) != 1 || !r.res.Faults[0].CutShort) {
				t.Errorf("fault windows %+v, want one cut short", r.res.Faults)
			}
			t.Logf("SIGINT at %s: exit %d, verdict %s", sent.Format(time.StampMilli), r.code, verdict(r))
			calls, err := c.Daemon.Since(ctx, before)
			if err != nil {
				t.Fatal(err)
			}
			saw, err := daemonSaw(calls, effects["networkDelay"], checkoutIDs())
			if err != nil {
				t.Fatal(err)
			}
			for id, s := range saw {
				if s.recoveredAt.IsZero() {
					t.Errorf("container …%s: no recovery after SIGINT (calls %v)", id[len(id)-8:], s.calls)
				} else if s.recoveredAt.Before(sent) {
					t.Errorf("container …%s: recovered at %s, before the SIGINT at %s", id[len(id)-8:], s.recoveredAt.Format(time.StampMilli), sent.Format(time.StampMilli))
				}
			}
			noLeftovers(t)
		})
	}
}

// TestDaemonFailsInjection: the daemon answers every injecting SetTcs with an error. Chaos
// Mesh never reports the fault injected, and the run is never a pass; the user is told the
// fault was not injected. Real Chaos Mesh keeps such an object in deletion (its records wait
// for the apply) for as long as the daemon refuses, so faultline's cleanup must say what may be
// left; once the daemon accepts again, Chaos Mesh applies, recovers and lets the object go, and
// nothing is left.
func TestDaemonFailsInjection(t *testing.T) {
	for _, timing := range []string{"runner", "workflow"} {
		t.Run(timing, func(t *testing.T) {
			c, ctx := freshShop(t)
			// Only an injecting request carries "tcs" (the recovering one has none).
			if err := c.Daemon.SetRules(ctx, []harness.Rule{{Method: "SetTcs", Match: `"tcs":`, Fail: "e2e: tc refused (recorder rule)"}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Daemon.SetRules(context.Background(), nil) })
			before, _ := c.Daemon.Last(ctx)
			path := jitterScenario(t, demoTarget(t), "checkout", "6s", "12s")
			r := faultline(t, runOpts{args: []string{path, "--timing", timing, "--injection-timeout", "8s", "--cleanup-timeout", "20s"}})
			if r.code == exitcode.OK || (r.res != nil && r.res.Verdict == results.VerdictPass) {
				t.Errorf("a run whose injection the daemon refused: exit %d, verdict %v:\n%s", r.code, verdict(r), r.out)
			}
			if !strings.Contains(r.out, "not injected") && !strings.Contains(r.out, "never injected") && !strings.Contains(r.out, "unable to set tcs") {
				t.Errorf("the output does not say that fault jitter was not injected (Chaos Mesh's records say \"unable to set tcs\"):\n%s", r.out)
			}
			if r.res != nil && len(r.res.Faults) == 1 && r.res.Faults[0].Error == "" {
				t.Errorf("results.json's fault window has no error: %+v", r.res.Faults[0])
			}
			calls, _ := c.Daemon.Since(ctx, before)
			failed := 0
			for _, call := range calls {
				if call.Method == "SetTcs" && call.Error != "" {
					failed++
				}
			}
			if failed == 0 {
				t.Errorf("the daemon refused no SetTcs: the rule did not apply")
			}
			t.Logf("exit %d, verdict %s; %d refused SetTcs calls", r.code, verdict(r), failed)
			// The daemon accepts again: Chaos Mesh's pending apply goes through, then its
			// finalizer recovers the targets (kick its PodNetworkChaos objects out of backoff).
			if err := c.Daemon.SetRules(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Kick(ctx, "podnetworkchaos", "shop"); err != nil {
				t.Fatal(err)
			}
			noLeftoversWithin(t, 90*time.Second)
		})
	}
}

func verdict(r run) string {
	if r.res == nil {
		return "(no results.json)"
	}
	return r.res.Verdict + ": " + r.res.Reason
}

// TestNoMatchingPod: a selector that matches no pod fails the run (never a pass) with an
// error that names the selector; the same for the peer selector of a partition.
func TestNoMatchingPod(t *testing.T) {
	freshShop(t)
	url := demoTarget(t)
	for _, tc := range []struct {
		name, scenario, want string
	}{
		{"target", jitterScenario(t, url, "nobody", "6s", "12s"), "app=nobody"},
		{"peer", writeScenario(t, "partition", fmt.Sprintf(`name: e2e-partition
version: 1.0.0
target:
  url: %s
  kubernetes: {namespace: shop, selector: {app: checkout}}
load:
  executor: constant-arrival-rate
  rate: 20
  duration: 12s
  preAllocatedVUs: 5
  maxVUs: 10
  requests:
    - {name: catalog, path: /catalog, expect: {status: 200}}
faults:
  cut:
    start: 2s
    duration: 6s
    mode: all
    networkPartition:
      direction: both
      peer: {selector: {labels: {app: ghost}}}
slos:
  steady: {errorRate: 1}
`, url)), "app=ghost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			managerLogOnFailure(t)
			r := faultline(t, runOpts{args: []string{tc.scenario, "--injection-timeout", "8s"}})
			if r.code == exitcode.OK || (r.res != nil && r.res.Verdict == results.VerdictPass) {
				t.Errorf("no pod matched: exit %d, verdict %s:\n%s", r.code, verdict(r), r.out)
			}
			if !strings.Contains(r.out, tc.want) {
				t.Errorf("the error does not name the selector %s:\n%s", tc.want, r.out)
			}
			noLeftovers(t)
		})
	}
}

// TestDryRunLibrary: every compiled object of every cluster scenario of the library (one
// object per fault, and the Workflow of --timing workflow) passes a server-side dry run
// through Chaos Mesh's real mutating, validating and auth webhooks; and the objects faultline
// prints with -o yaml come back from the webhooks defaulted.
func TestDryRunLibrary(t *testing.T) {
	c := shared.cluster
	if err := c.ResetPods(context.Background(), "shop", shopPods()); err != nil {
		t.Fatal(err)
	}
	for _, sc := range clusterLibrary {
		for _, timing := range []string{"runner", "workflow"} {
			t.Run(strings.TrimSuffix(sc.file, filepath.Ext(sc.file))+"/"+timing, func(t *testing.T) {
				path := scenarioCopy(t, sc.file, "http://127.0.0.1:9")
				r := faultline(t, runOpts{args: append([]string{path, "--timing", timing, "--dry-run"}, sc.flags...), timeout: time.Minute})
				if r.code != exitcode.OK || !strings.Contains(r.out, "would be created") {
					t.Fatalf("exit %d:\n%s", r.code, r.out)
				}
				y := faultline(t, runOpts{args: append([]string{path, "--timing", timing, "--dry-run", "-o", "yaml"}, sc.flags...), timeout: time.Minute})
				if y.code != exitcode.OK {
					t.Fatalf("-o yaml: exit %d:\n%s", y.code, y.out)
				}
				n := 0
				for _, doc := range strings.Split(y.out, "\n---\n") {
					if strings.TrimSpace(doc) == "" {
						continue
					}
					var obj map[string]any
					if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
						t.Fatalf("-o yaml: %v:\n%s", err, doc)
					}
					u := &unstructured.Unstructured{Object: obj}
					if u.GetAPIVersion() != "chaos-mesh.org/v1alpha1" {
						continue
					}
					n++
					gvr := schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: strings.ToLower(u.GetKind())}
					if u.GetKind() == "Workflow" {
						gvr.Resource = "workflows"
					}
					got, err := c.Dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					if err != nil {
						t.Errorf("%s %s: server-side dry run refused: %v", u.GetKind(), u.GetName(), err)
						continue
					}
					if got.GetUID() == "" {
						t.Errorf("%s %s: the dry run answered no object", u.GetKind(), u.GetName())
					}
				}
				if n == 0 {
					t.Errorf("-o yaml printed no Chaos Mesh object:\n%s", y.out)
				}
			})
		}
	}
	noLeftovers(t)
}

// TestPauseMidRun (issue 12, item 5): someone pauses the fault's object while it is active
// (the annotation experiment.chaos-mesh.org/pause): Chaos Mesh recovers the targets and keeps
// the object; the run must not pass as if the fault had lasted, it must say the fault stopped,
// and nothing is left.
func TestPauseMidRun(t *testing.T) {
	c, ctx := freshShop(t)
	path := jitterScenario(t, demoTarget(t), "checkout", "15s", "25s")
	before, err := c.Daemon.Last(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nc := c.Dyn.Resource(schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: "networkchaos"}).Namespace("shop")
	var paused time.Time
	r := faultline(t, runOpts{args: []string{path}, during: func(_ *os.Process, out *lockedBuffer) {
		if !out.waitFor("injected", 60*time.Second) {
			t.Errorf("no injection reported:\n%s", out.String())
			return
		}
		time.Sleep(2 * time.Second)
		list, err := nc.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			t.Errorf("NetworkChaos objects: %v %v", list, err)
			return
		}
		patch := []byte(`{"metadata":{"annotations":{"experiment.chaos-mesh.org/pause":"true"}}}`)
		paused = time.Now()
		if _, err := nc.Patch(ctx, list.Items[0].GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("pausing: %v", err)
		}
	}})
	if r.code == exitcode.OK || (r.res != nil && r.res.Verdict == results.VerdictPass) {
		t.Errorf("a run whose fault was paused mid-way: exit %d, verdict %s:\n%s", r.code, verdict(r), r.out)
	}
	if !strings.Contains(r.out, "paused") {
		t.Errorf("the output does not say the fault was paused:\n%s", r.out)
	}
	calls, err := c.Daemon.Since(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	saw, err := daemonSaw(calls, effects["networkDelay"], checkoutIDs())
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range saw {
		if s.recoveredAt.IsZero() || (!paused.IsZero() && s.recoveredAt.Before(paused)) {
			t.Errorf("container …%s: recovered at %v, paused at %v (calls %v)", id[len(id)-8:], s.recoveredAt, paused, s.calls)
		}
	}
	t.Logf("exit %d, verdict %s", r.code, verdict(r))
	noLeftovers(t)
}
