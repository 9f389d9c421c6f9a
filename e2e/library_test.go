package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"faultline.dev/faultline/e2e/harness"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/schema"
)

// clusterLibrary lists every library scenario with target.kubernetes, with the time scale it
// runs at here (loads of 15 to 30 seconds: fault windows of 2 seconds or more, longer than
// Chaos Mesh's reconcile passes, and phases long enough for runtime scrapes on a loaded machine).
var clusterLibrary = []struct {
	file  string
	scale float64
	flags []string
}{
	{"checkout-jitter.cue", 0.25, nil}, // 60s → 15s
	{"clock-skew.cue", 0.2, nil},       // 90s → 18s
	{"cpu-starvation.cue", 0.25, nil},  // 60s → 15s
	// At 0.15 its 3 s steady phase is over before the load's connections settle: the goroutine
	// SLO (recovery ≤ 20% over steady) missed twice in a row (48 → 64) with nothing injected.
	{"dependency-partition.cue", 0.3, nil}, // 90s → 27s
	{"dns-failure.cue", 0.2, nil},          // 90s → 18s
	{"grpc-checkout.cue", 0.25, nil},       // 60s → 15s
	{"io-latency.cue", 0.2, nil},           // 90s → 18s
	{"lock-contention.cue", 0.25, nil},     // 60s → 15s
	// At 0.15 locally its 1.5 s judged recovery is shorter than the demo target's GC cycle: heap in
	// use breached 50% over steady in 2 of 10 runs. The scenario keeps its SLOs from 0.3.
	{"memory-pressure.cue", 0.3, nil}, // 60s → 18s
	// multi-stage's kill stage lasts 4 s: at 0.5 that is 2 s, the shortest Workflow deadline that outlives
	// Chaos Mesh's condition pass (at 0.2, a 1 s node deadline deleted the PodChaos before its
	// AllInjected was written: harness finding F6).
	{"multi-stage.cue", 0.5, nil},       // 60s → 30s (faultline refuses a Workflow node under 2 s)
	{"network-jitter.cue", 0.25, nil},   // 60s → 15s
	{"packet-loss.cue", 0.25, nil},      // 60s → 15s
	{"pod-kill.cue", 0.15, nil},         // 2m → 18s
	{"slow-downstream.yaml", 0.25, nil}, // 60s → 15s
}

// loadLibrary loads the scenario library.
func loadLibrary(t *testing.T) map[string]*schema.Scenario {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ls, diags, err := schema.NewLoader().Load(t.Context(), []string{filepath.Join(root, "scenarios")})
	if err != nil || len(diags) > 0 {
		t.Fatalf("loading the library: %v %v", err, diags)
	}
	out := map[string]*schema.Scenario{}
	for _, l := range ls {
		if l.Scenario.Target.Kubernetes != nil {
			out[filepath.Base(l.File)] = l.Scenario
		}
	}
	return out
}

// TestLibraryClusterCovered: every library scenario with target.kubernetes is in
// clusterLibrary, and every fault kind they use has its daemon effect (or is podKill).
func TestLibraryClusterCovered(t *testing.T) {
	lib := loadLibrary(t)
	var want, listed []string
	for f, s := range lib {
		want = append(want, f)
		for name, fault := range s.Faults {
			if _, ok := effects[fault.Kind()]; !ok && fault.Kind() != "podKill" {
				t.Errorf("%s: fault %s: kind %s has no daemon effect in effects", f, name, fault.Kind())
			}
		}
	}
	for _, sc := range clusterLibrary {
		listed = append(listed, sc.file)
	}
	slices.Sort(want)
	slices.Sort(listed)
	if !slices.Equal(want, listed) {
		t.Errorf("library scenarios with target.kubernetes: %v; TestLibraryCluster runs %v", want, listed)
	}
}

// TestLibraryCluster runs every cluster scenario of the library, shortened, with `faultline
// run --backend kubernetes` against Chaos Mesh's real controller-manager and the local load
// against a loopback demo target: the run passes; each fault's window is recorded and agrees
// with when the recording daemon saw the injection and the recovery on every target container
// (pod-kill: the selected pods are gone); nothing is left.
func TestLibraryCluster(t *testing.T) {
	lib := loadLibrary(t)
	for _, sc := range clusterLibrary {
		name := strings.TrimSuffix(sc.file, filepath.Ext(sc.file))
		t.Run(name, func(t *testing.T) {
			managerLogOnFailure(t)
			s := lib[sc.file]
			if s == nil {
				t.Fatalf("%s is not a cluster scenario of the library", sc.file)
			}
			runLibraryScenario(t, s, sc.file, sc.scale, sc.flags)
		})
	}
}

// runLibraryScenario runs one library scenario (extra flags appended) and checks the daemon saw
// every fault injected and recovered within its recorded window.
func runLibraryScenario(t *testing.T, s *schema.Scenario, file string, scale float64, extra []string) *results.Result {
	t.Helper()
	c := shared.cluster
	ctx := context.Background()
	ns := s.Target.Kubernetes.Namespace
	if err := c.ResetPods(ctx, ns, shopPods()); err != nil {
		t.Fatal(err)
	}
	url, grpcAddr := demoTargetGRPC(t)
	path := scenarioCopy(t, file, url, grpcAddr)
	before, err := c.Daemon.Last(ctx)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{path, "--time-scale", strconv.FormatFloat(scale, 'f', -1, 64), "--golden-dir", filepath.Join(t.TempDir(), "no-golden")}, extra...)
	var r run
	var calls []harness.Call
	for attempt := 1; attempt <= 2; attempt++ {
		r = faultline(t, runOpts{args: args})
		if r.res == nil {
			t.Fatalf("exit %d, no results.json:\n%s", r.code, r.out)
		}
		calls, err = c.Daemon.Since(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		// An SLO missed on this shared machine (the demo target's goroutines, a p99) is
		// retried once, as TestLibraryLocal does; an error or an abort is not.
		// "no data to judge" (a phase got no runtime scrape) is a measurement gap of a loaded
		// machine, retried likewise; any other error is not.
		noData := r.res.Verdict == results.VerdictError && strings.Contains(r.res.Reason, "no data to judge")
		if r.code == exitcode.OK && r.res.Verdict == results.VerdictPass || attempt == 2 ||
			r.res.Verdict == results.VerdictError && !noData || r.res.Verdict == results.VerdictAborted {
			break
		}
		t.Logf("attempt 1: exit %d, verdict %s (%s); retrying", r.code, r.res.Verdict, r.res.Reason)
		noLeftovers(t)
		if err := c.ResetPods(ctx, ns, shopPods()); err != nil {
			t.Fatal(err)
		}
		if before, err = c.Daemon.Last(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r.code != exitcode.OK || r.res.Verdict != results.VerdictPass {
		t.Errorf("exit %d, verdict %s (%s), want 0 and pass:\n%s", r.code, r.res.Verdict, r.res.Reason, r.out)
	}
	if len(r.res.Faults) != len(s.Faults) {
		t.Fatalf("%d fault windows, the scenario has %d faults: %+v", len(r.res.Faults), len(s.Faults), r.res.Faults)
	}
	for _, w := range r.res.Faults {
		f, ok := s.Faults[w.Fault]
		if !ok {
			t.Errorf("window of an unknown fault %q", w.Fault)
			continue
		}
		if w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start) || w.Error != "" || w.CutShort {
			t.Errorf("fault %s: window %+v", w.Fault, w)
			continue
		}
		if f.Kind() == "podKill" {
			checkPodKill(t, ns, w, &f)
			continue
		}
		checkDaemon(t, calls, w, targetContainers(t, s, &f))
	}
	noLeftovers(t)
	return r.res
}

// targetContainers are the container IDs a fault must reach: the pods its selector matches
// (the scenario's target selector unless the fault has its own), the containers it names
// (default: the first container).
func targetContainers(t *testing.T, s *schema.Scenario, f *schema.Fault) []string {
	t.Helper()
	ns := s.Target.Kubernetes.Namespace
	sel := s.Target.Kubernetes.Selector
	if f.Selector != nil && f.Selector.Labels != nil {
		sel = f.Selector.Labels
	}
	var pods []harness.PodSpec
	for _, p := range shopPods() {
		match := true
		for k, v := range sel {
			if p.Labels[k] != v {
				match = false
			}
		}
		if match {
			pods = append(pods, p)
		}
	}
	if f.Mode != "all" && f.Mode != "" {
		// fixed-percent and friends pick pods at random: any one of them counts; the check
		// below asks for as many as the mode selects.
		t.Logf("mode %s: checking that some of %d pods were reached", f.Mode, len(pods))
	}
	var ids []string
	for _, p := range pods {
		ids = append(ids, harness.ContainerID(ns, p.Name, p.Containers[0]))
	}
	return ids
}

// checkDaemon: every target container saw the injecting call and then the recovering call,
// and the recorded window agrees with them (Chaos Mesh's records have whole-second
// timestamps; the window is clamped between faultline's request and what it saw).
func checkDaemon(t *testing.T, calls []harness.Call, w results.FaultResult, ids []string) {
	t.Helper()
	e := effects[w.Kind]
	saw, err := daemonSaw(calls, e, ids)
	if err != nil {
		t.Fatal(err)
	}
	const slack = 2 * time.Second
	var first, last time.Time
	defer func() {
		t.Logf("fault %s (%s): window %s → %s; the daemon saw %s on %d containers from %s and the recovering %s until %s",
			w.Fault, w.Kind, w.Start.Format(time.StampMilli), w.End.Format(time.StampMilli), e.inject, len(ids),
			first.Format(time.StampMilli), e.recover, last.Format(time.StampMilli))
	}()
	for _, id := range ids {
		s := saw[id]
		short := id[len(id)-8:]
		switch {
		case s.injectedAt.IsZero():
			t.Errorf("fault %s (%s): the daemon never saw %s inject container …%s (calls for it: %v)", w.Fault, w.Kind, e.inject, short, s.calls)
		case s.recoveredAt.IsZero():
			t.Errorf("fault %s (%s): the daemon saw the injection of …%s at %s but no recovering %s (calls: %v)", w.Fault, w.Kind, short, s.injectedAt.Format(time.StampMilli), e.recover, s.calls)
		default:
			if first.IsZero() || s.injectedAt.Before(first) {
				first = s.injectedAt
			}
			if s.recoveredAt.After(last) {
				last = s.recoveredAt
			}
			if d := s.injectedAt.Sub(w.Start); d > slack || d < -slack {
				t.Errorf("fault %s: window starts %s, the daemon saw the injection of …%s at %s (%+v apart)", w.Fault, w.Start.Format(time.StampMilli), short, s.injectedAt.Format(time.StampMilli), d)
			}
			if d := s.recoveredAt.Sub(w.End); d > slack || d < -slack {
				t.Errorf("fault %s: window ends %s, the daemon saw the recovery of …%s at %s (%+v apart)", w.Fault, w.End.Format(time.StampMilli), short, s.recoveredAt.Format(time.StampMilli), d)
			}
		}
	}
}

// checkPodKill: as many selected pods as the mode asks for are gone.
func checkPodKill(t *testing.T, ns string, w results.FaultResult, f *schema.Fault) {
	t.Helper()
	list, err := shared.cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=checkout"})
	if err != nil {
		t.Fatal(err)
	}
	alive := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			alive++
		}
	}
	want := 5
	switch f.Mode {
	case "all":
		want = 0
	case "one":
		want = 4
	case "fixed-percent":
		want = 5 - 5*f.Value/100
	case "fixed":
		want = 5 - f.Value
	}
	if alive != want {
		t.Errorf("fault %s (pod-kill, mode %s %d): %d of 5 checkout pods alive, want %d", w.Fault, f.Mode, f.Value, alive, want)
	}
}
