package kube_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/internal/kubetest"
	"faultline.dev/faultline/internal/kubetestctl"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/kube"
	fschema "faultline.dev/faultline/schema"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

var _ runner.Backend = (*kube.Backend)(nil)

func gvr(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: resource}
}

var chaosResources = []schema.GroupVersionResource{gvr("networkchaos"), gvr("podchaos"), gvr("stresschaos")}

// shared returns the package's API server with every Chaos Mesh CRD installed, and clients.
func shared(t *testing.T) (*kubetest.Server, *kube.Clients) {
	t.Helper()
	s := kubetest.Shared(t)
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	crds = append(crds, kubetestctl.EventsCRD(), kubetestctl.PodsCRD())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.InstallCRDs(ctx, crds); err != nil {
		t.Fatal(err)
	}
	c, err := kube.NewClients(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// crdsNamed returns the generated CRDs with these plural names.
func crdsNamed(t *testing.T, plurals ...string) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	all, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, c := range all {
		if slices.Contains(plurals, c.Spec.Names.Plural) {
			out = append(out, c)
		}
	}
	return out
}

// controller starts the test controller (kubetestctl: it stands in for Chaos Mesh's) until the test ends.
func controller(t *testing.T, s *kubetest.Server, c *kubetestctl.Controller) *kubetestctl.Controller {
	t.Helper()
	c.Dynamic = s.Dynamic()
	if c.Resources == nil {
		c.Resources = chaosResources
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := c.Start(ctx)
	t.Cleanup(func() { cancel(); wait() })
	return c
}

func pods(ns string, n int) []kubetestctl.Pod {
	var out []kubetestctl.Pod
	for i := range n {
		out = append(out, kubetestctl.Pod{Namespace: ns, Name: fmt.Sprintf("checkout-%d", i), Labels: map[string]string{"app": "checkout"}})
	}
	return out
}

const jitter = `  jitter:
    start: 1s
    duration: 20s
    mode: all
    networkDelay: {latency: 100ms, jitter: 10ms, correlation: 25}
`

const kill = `  kill:
    start: 2s
    duration: 10s
    mode: fixed-percent
    value: 20
    podKill: {gracePeriod: 0}
`

// load writes a scenario targeting pods app=checkout in namespace ns and returns its plan.
func load(t *testing.T, name, ns, faults, guardrails string) *plan.Plan {
	t.Helper()
	src := fmt.Sprintf(`name: %s
version: 1.0.0
target:
  url: http://checkout.%s.svc:8080
  kubernetes:
    namespace: %s
    selector: {app: checkout}
load:
  executor: constant-vus
  vus: 1
  duration: 60s
  requests:
    - {name: home, path: /}
faults:
%s
slos:
  steady:
    errorRate: 1
%s`, name, ns, ns, faults, guardrails)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, diags, err := fschema.NewLoader().Load(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) > 0 {
		t.Fatalf("scenario:\n%s\n%s", src, diags.Error())
	}
	p, err := plan.New(loaded[0].Scenario)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func backend(t *testing.T, c *kube.Clients, p *plan.Plan, cfg kube.Config) (*kube.Backend, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	cfg.Log = &log
	if cfg.RunID == "" {
		cfg.RunID = "run-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	}
	return kube.New(c, p.Source, cfg), &log
}

func fault(p *plan.Plan, name string) plan.Fault {
	for _, f := range p.Faults {
		if f.Name == name {
			return f
		}
	}
	panic("no fault " + name)
}

// byRunID lists every chaos object of the given kinds carrying the run's label.
func byRunID(t *testing.T, s *kubetest.Server, runID string) []string {
	t.Helper()
	var out []string
	for _, r := range chaosResources {
		list, err := s.Dynamic().Resource(r).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelRunID + "=" + runID})
		if apierrors.IsNotFound(err) {
			continue // a kind this server does not serve
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range list.Items {
			out = append(out, it.GetKind()+" "+it.GetNamespace()+"/"+it.GetName())
		}
	}
	return out
}

// TestInjectRecover: Inject applies the object (field manager faultline, run label) and watches it
// until Selected and AllInjected; the instant comes from the records, not from when AllInjected was
// seen; Recover deletes and waits until Chaos Mesh's finalizer is gone; one-shot pod-kill takes the
// same path; Cleanup then finds nothing left.
func TestInjectRecover(t *testing.T) {
	s, c := shared(t)
	const ns = "t-inject"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 3), InjectAfter: time.Second, PassGap: 2500 * time.Millisecond, RecoverAfter: 1500 * time.Millisecond})
	p := load(t, "inject", ns, jitter+kill, "")
	b, _ := backend(t, c, p, kube.Config{})
	ctx := context.Background()
	url, err := b.Prepare(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if url != "http://checkout.t-inject.svc:8080" {
		t.Errorf("load URL %q, want target.url", url)
	}

	sent := time.Now()
	at, err := b.Inject(ctx, fault(p, "jitter"))
	returned := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if took := returned.Sub(sent); took < 3400*time.Millisecond {
		t.Errorf("Inject returned after %s, before the controller reported AllInjected (≥ 3.5s)", took)
	}
	obj, err := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Get(ctx, "inject-01-jitter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, _ := unstructured.NestedSlice(obj.Object, "status", "experiment", "containerRecords")
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (one per matching pod)", len(recs))
	}
	ts := recs[0].(map[string]any)["events"].([]any)[0].(map[string]any)["timestamp"].(string)
	recorded, _ := time.Parse(time.RFC3339, ts)
	want := recorded
	if want.Before(sent) {
		want = sent
	}
	if !at.Equal(want) {
		t.Errorf("injection instant %s, want the record's %s clamped to the apply (%s)", at.Format(time.StampMicro), recorded, sent.Format(time.StampMicro))
	}
	if returned.Sub(at) < 2*time.Second {
		t.Errorf("injection instant %s is when AllInjected was seen (%s), not the record's", at, returned)
	}
	if got := obj.GetLabels()[kube.LabelRunID]; got != "run-testinjectrecover" {
		t.Errorf("run-id label %q", got)
	}
	if !slices.Contains(obj.GetFinalizers(), kube.FinalizerRecords) {
		t.Errorf("finalizers %v", obj.GetFinalizers())
	}
	managers := map[string]string{}
	for _, m := range obj.GetManagedFields() {
		managers[m.Manager] = string(m.Operation)
	}
	if managers[kube.FieldManager] != "Apply" {
		t.Errorf("managed fields %v: want faultline as the Apply manager", managers)
	}
	if d, _, _ := unstructured.NestedString(obj.Object, "spec", "duration"); d != "20s" {
		t.Errorf("spec.duration %q: every object carries its own window", d)
	}

	at2, err := b.Inject(ctx, fault(p, "kill")) // one-shot: same path
	if err != nil {
		t.Fatal(err)
	}
	if at2.Before(at) {
		t.Errorf("second injection at %s before the first %s", at2, at)
	}

	start := time.Now()
	rec, err := b.Recover(ctx, fault(p, "jitter"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1400*time.Millisecond {
		t.Errorf("Recover returned after %s, before the finalizer was removed (≥ 1.5s)", took)
	}
	if rec.Before(start) {
		t.Errorf("recovered at %s, before the delete", rec)
	}
	if _, err := s.Dynamic().Resource(gvr("networkchaos")).Namespace(ns).Get(ctx, "inject-01-jitter", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Recover: %v, want NotFound", err)
	}
	if _, err := b.Recover(ctx, fault(p, "kill")); err != nil {
		t.Fatal(err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := byRunID(t, s, "run-testinjectrecover"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// TestInjectNoMatch: no pod matches → Selected stays False → Inject fails after the timeout,
// naming the selector and the namespace; Cleanup deletes the object.
func TestInjectNoMatch(t *testing.T) {
	s, c := shared(t)
	const ns = "t-nomatch"
	controller(t, s, &kubetestctl.Controller{Pods: []kubetestctl.Pod{{Namespace: ns, Name: "other", Labels: map[string]string{"app": "other"}}}})
	p := load(t, "nomatch", ns, jitter, "")
	b, _ := backend(t, c, p, kube.Config{InjectionTimeout: 1500 * time.Millisecond})
	ctx := context.Background()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := b.Inject(ctx, fault(p, "jitter"))
	if err == nil {
		t.Fatal("Inject succeeded with no matching pod")
	}
	if took := time.Since(start); took < 1400*time.Millisecond || took > 5*time.Second {
		t.Errorf("Inject failed after %s, want about the 1.5s timeout", took)
	}
	for _, want := range []string{"no pod matched", "app=checkout", "namespace t-nomatch", "Selected=False", "fault jitter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := byRunID(t, s, "run-testinjectnomatch"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// TestCancelCleanup: a run with N faults is cancelled (the SIGINT path: the runner cancels its
// context, then calls Cleanup) while one injection waits; Cleanup deletes all N objects. It logs
// the time the cleanup took.
func TestCancelCleanup(t *testing.T) {
	s, c := shared(t)
	const ns = "t-cancel"
	const n = 20
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 2), RecoverAfter: 100 * time.Millisecond})
	var faults strings.Builder
	for i := range n - 1 {
		fmt.Fprintf(&faults, "  f%02d: {start: %ds, duration: 30s, mode: one, cpuStress: {workers: 1}}\n", i, i+1)
	}
	// The last one selects nothing: its injection waits until the cancel.
	fmt.Fprintf(&faults, "  f%02d: {start: 30s, duration: 10s, mode: one, selector: {labels: {app: nothing}}, cpuStress: {workers: 1}}\n", n-1)
	p := load(t, "cancel", ns, faults.String(), "")
	b, _ := backend(t, c, p, kube.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Faults[:n-1] {
		if _, err := b.Inject(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(300*time.Millisecond, cancel)
	if _, err := b.Inject(ctx, p.Faults[n-1]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Inject after cancel: %v, want context.Canceled", err)
	}
	if got := len(byRunID(t, s, "run-testcancelcleanup")); got != n {
		t.Fatalf("%d objects before cleanup, want %d", got, n)
	}
	start := time.Now()
	cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer ccancel()
	if err := b.Cleanup(cctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("cleanup of %d objects after cancel: %s (finalizer removal 100ms each, in parallel)", n, took.Round(time.Millisecond))
	if left := byRunID(t, s, "run-testcancelcleanup"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	if err := b.Cleanup(cctx); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

// TestCleaner: cleanup by run id leaves other runs alone; --all removes every managed object;
// a stuck finalizer is reported (naming the object and --force-finalizers) and, with
// ForceFinalizers, forced off through Chaos Mesh's annotation.
func TestCleaner(t *testing.T) {
	s, c := shared(t)
	const ns = "t-cleaner"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), Stuck: func(u *unstructured.Unstructured) bool {
		return u.GetLabels()[kube.LabelRunID] == "stuck"
	}})
	ctx := context.Background()
	inject := func(name, runID string) {
		p := load(t, name, ns, jitter, "")
		b, _ := backend(t, c, p, kube.Config{RunID: runID})
		if _, err := b.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Inject(ctx, fault(p, "jitter")); err != nil {
			t.Fatal(err)
		}
	}
	inject("clean-a", "run-a")
	inject("clean-b", "run-b")
	inject("clean-stuck", "stuck")

	cl := &kube.Cleaner{Clients: c, Namespaces: []string{ns}, Selector: kube.LabelRunID + "=run-a"}
	deleted, err := cl.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].String() != "NetworkChaos t-cleaner/clean-a-01-jitter" {
		t.Errorf("deleted %v", deleted)
	}
	if left := byRunID(t, s, "run-b"); len(left) != 1 {
		t.Errorf("run-b's objects: %v (cleanup by run id must leave other runs alone)", left)
	}

	all := kube.LabelSelectorAll()
	cctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	cl = &kube.Cleaner{Clients: c, Namespaces: []string{ns}, Selector: all, StuckAfter: time.Second}
	deleted, err = cl.Run(cctx)
	var le *kube.LeftoverError
	if !errors.As(err, &le) {
		t.Fatalf("cleanup with a stuck object: %v, want a LeftoverError", err)
	}
	if len(le.Objects) != 1 || le.Objects[0].Name != "clean-stuck-01-jitter" || !strings.Contains(err.Error(), "--force-finalizers") ||
		!strings.Contains(err.Error(), "NetworkChaos t-cleaner/clean-stuck-01-jitter") {
		t.Errorf("leftover error: %v", err)
	}
	// Being deleted, it no longer expires at the end of its duration (harness finding F4).
	if !strings.Contains(err.Error(), "it is being deleted") || strings.Contains(err.Error(), "expires by itself") {
		t.Errorf("leftover error %q: an object stuck in deletion does not expire by itself", err)
	}
	if len(deleted) != 1 || deleted[0].Name != "clean-b-01-jitter" {
		t.Errorf("deleted %v", deleted)
	}

	cl = &kube.Cleaner{Clients: c, Namespaces: []string{ns}, Selector: all, StuckAfter: time.Second, ForceFinalizers: true}
	deleted, err = cl.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].Name != "clean-stuck-01-jitter" {
		t.Errorf("deleted %v", deleted)
	}
	if left := byRunID(t, s, "stuck"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// TestGuardrails: each refusal names the fault and the rule, creates nothing, and maps to exit
// code 2; the flags lift them.
func TestGuardrails(t *testing.T) {
	s, c := shared(t)
	ctx := context.Background()
	cases := []struct {
		name, ns, faults, guardrails string
		cfg                          kube.Config
		rule, fault, mention         string
	}{
		{name: "g-system", ns: "kube-system", faults: jitter, rule: kube.RuleProtectedNamespace, fault: "jitter", mention: "--allow-namespace kube-system"},
		{name: "g-chaosmesh", ns: "chaos-mesh", faults: kill, rule: kube.RuleProtectedNamespace, fault: "kill", mention: "--allow-namespace chaos-mesh"},
		{name: "g-allowed", ns: "kube-system", faults: jitter, cfg: kube.Config{AllowNamespaces: []string{"kube-system"}}},
		{name: "g-outside", ns: "t-guard", faults: "  other:\n    start: 1s\n    duration: 5s\n    selector: {namespace: payments, labels: {app: pay}}\n    podKill: {}\n",
			guardrails: "guardrails:\n  allowedNamespaces: [t-guard]\n", rule: kube.RuleAllowedNamespaces, fault: "other", mention: "namespace payments"},
		{name: "g-default-allowed", ns: "t-guard", faults: "  other:\n    start: 1s\n    duration: 5s\n    selector: {namespace: payments, labels: {app: pay}}\n    podKill: {}\n",
			rule: kube.RuleAllowedNamespaces, fault: "other", mention: "[t-guard]"},
		{name: "g-blast-all", ns: "t-guard", faults: jitter, guardrails: "guardrails:\n  maxBlastRadius: 50\n",
			rule: kube.RuleMaxBlastRadius, fault: "jitter", mention: "100% of the selected pods (mode all"},
		{name: "g-blast-percent", ns: "t-guard", faults: kill, guardrails: "guardrails:\n  maxBlastRadius: 10\n",
			rule: kube.RuleMaxBlastRadius, fault: "kill", mention: "--allow-blast-radius"},
		{name: "g-blast-ok", ns: "t-guard", faults: kill, guardrails: "guardrails:\n  maxBlastRadius: 25\n"},
		{name: "g-blast-lifted", ns: "t-guard", faults: jitter, guardrails: "guardrails:\n  maxBlastRadius: 50\n", cfg: kube.Config{AllowBlastRadius: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, tc.name, tc.ns, tc.faults, tc.guardrails)
			b, _ := backend(t, c, p, tc.cfg)
			objs, err := b.Preflight(ctx, p)
			if tc.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != 1 {
					t.Errorf("%d objects", len(objs))
				}
				return
			}
			var re *kube.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Preflight: %v, want a refusal", err)
			}
			if kube.ExitCode(err) != exitcode.Usage {
				t.Errorf("exit code %d, want %d", kube.ExitCode(err), exitcode.Usage)
			}
			if len(re.Refusals) == 0 || re.Refusals[0].Rule != tc.rule || re.Refusals[0].Fault != tc.fault {
				t.Errorf("refusals %+v, want rule %s for fault %s", re.Refusals, tc.rule, tc.fault)
			}
			for _, want := range []string{"fault " + tc.fault, tc.rule, tc.mention} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	if left := byRunID(t, s, "run-testguardrails-g-allowed"); len(left) > 0 {
		t.Errorf("a preflight created %v", left)
	}
}

// TestLeftovers: objects of an earlier run of the scenario refuse a new run (exit 2), naming them;
// --force deletes them first.
func TestLeftovers(t *testing.T) {
	s, c := shared(t)
	const ns = "t-leftover"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1)})
	ctx := context.Background()
	p := load(t, "leftover", ns, jitter, "")
	first, _ := backend(t, c, p, kube.Config{RunID: "first"})
	if _, err := first.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Inject(ctx, fault(p, "jitter")); err != nil {
		t.Fatal(err)
	}
	// The first runner died here: no Recover, no Cleanup.

	second, _ := backend(t, c, p, kube.Config{RunID: "second"})
	_, err := second.Preflight(ctx, p)
	var re *kube.RefusedError
	if !errors.As(err, &re) || re.Refusals[0].Rule != kube.RuleLeftovers {
		t.Fatalf("Preflight: %v, want a leftovers refusal", err)
	}
	for _, want := range []string{"NetworkChaos t-leftover/leftover-01-jitter (run first)", "--force", "faultline cleanup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	third, log := backend(t, c, p, kube.Config{RunID: "third", Force: true})
	if _, err := third.Preflight(ctx, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "--force: deleting 1 object(s)") {
		t.Errorf("log: %s", log)
	}
	if left := byRunID(t, s, "first"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// TestPreflightCreatesNothing: the dry run checks every object with the server and creates none;
// WriteObjects prints kind, namespace and name per line, or the objects as YAML.
func TestPreflightCreatesNothing(t *testing.T) {
	s, c := shared(t)
	p := load(t, "dry", "t-dry", jitter+kill, "")
	b, _ := backend(t, c, p, kube.Config{RunID: "dry"})
	objs, err := b.Preflight(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if left := byRunID(t, s, "dry"); len(left) > 0 {
		t.Errorf("the dry run created %v", left)
	}
	var out bytes.Buffer
	if err := kube.WriteObjects(&out, objs, "table"); err != nil {
		t.Fatal(err)
	}
	want := "NetworkChaos t-dry/dry-01-jitter (fault jitter): would be created (server dry run passed)\n" +
		"PodChaos t-dry/dry-02-kill (fault kill): would be created (server dry run passed)\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := kube.WriteObjects(&out, objs, "yaml"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: NetworkChaos", "---\n", "kind: PodChaos", "faultline.dev/run-id: dry", "duration: 20s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("yaml lacks %q:\n%s", want, out.String())
		}
	}
}

// TestStopRestart: the API server stops while a fault is active. The backend reports it on
// Failures (the runner aborts: the run is never a pass), Recover fails, a Cleanup with a short
// deadline lists exactly what may be left, and a Cleanup that outlasts the outage completes once
// the server is back.
func TestStopRestart(t *testing.T) {
	s := kubetest.Start(t)
	ctx := context.Background()
	if err := s.InstallCRDs(ctx, crdsNamed(t, "networkchaos", "podchaos")); err != nil {
		t.Fatal(err)
	}
	c, err := kube.NewClients(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "t-restart"
	controller(t, s, &kubetestctl.Controller{Pods: pods(ns, 1), Resources: []schema.GroupVersionResource{gvr("networkchaos"), gvr("podchaos")}})
	p := load(t, "restart", ns, jitter+kill, "")

	// 1. Down for longer than the cleanup deadline: the leftovers are named.
	b1, _ := backend(t, c, p, kube.Config{RunID: "down", CleanupTimeout: 2 * time.Second})
	if _, err := b1.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.Inject(ctx, fault(p, "jitter")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	select {
	case err := <-b1.Failures():
		if !strings.Contains(err.Error(), "lost the API server while fault jitter is active") {
			t.Errorf("failure: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no failure reported after the API server stopped")
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := b1.Recover(rctx, fault(p, "jitter")); err == nil {
		t.Error("Recover succeeded with the API server down")
	}
	rcancel()
	start := time.Now()
	err = b1.Cleanup(ctx)
	var le *kube.LeftoverError
	if !errors.As(err, &le) {
		t.Fatalf("Cleanup with the server down: %v, want a LeftoverError", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Cleanup took %s with a 2s deadline", took)
	}
	if len(le.Objects) != 1 || le.Objects[0].String() != "NetworkChaos t-restart/restart-01-jitter" ||
		!strings.Contains(err.Error(), "faultline cleanup --run-id down") {
		t.Errorf("leftover error: %v", err)
	}
	s.Restart(t)
	if _, err := (&kube.Cleaner{Clients: c, Selector: kube.LabelRunID + "=down"}).Run(ctx); err != nil {
		t.Fatal(err)
	}

	// 2. Down for a few seconds: Cleanup retries and completes once the server is back.
	b2, log := backend(t, c, p, kube.Config{RunID: "back"})
	if _, err := b2.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Faults {
		if _, err := b2.Inject(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	s.Stop()
	done := make(chan error, 1)
	go func() { done <- b2.Cleanup(ctx) }()
	time.Sleep(3 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("Cleanup returned while the server was down: %v", err)
	default:
	}
	s.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Cleanup did not finish after the server came back")
	}
	if left := byRunID(t, s, "back"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	if !strings.Contains(log.String(), "cleanup: deleted NetworkChaos t-restart/restart-01-jitter") {
		t.Errorf("log:\n%s", log)
	}
}

// TestChaosMeshMissingAndPermissionDenied: on a server without Chaos Mesh's CRDs the preflight
// says so (exit 7); on a server whose authorization API denies (kubetestctl.AccessReviews stands
// in for it: the test server has no RBAC) the run is refused naming the fault, the verb and the
// namespace (exit 2).
func TestChaosMeshMissingAndPermissionDenied(t *testing.T) {
	s := kubetest.Start(t)
	ctx := context.Background()
	c, err := kube.NewClients(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, "denied", "t-denied", kill, "")
	b, _ := backend(t, c, p, kube.Config{})
	_, err = b.Preflight(ctx, p)
	if !errors.Is(err, kube.ErrChaosMeshMissing) || kube.ExitCode(err) != exitcode.Infrastructure {
		t.Fatalf("Preflight without Chaos Mesh: %v (exit %d)", err, kube.ExitCode(err))
	}
	if !strings.Contains(err.Error(), "install Chaos Mesh") {
		t.Errorf("error %q does not say how to fix it", err)
	}

	if err := s.InstallCRDs(ctx, crdsNamed(t, "podchaos")); err != nil {
		t.Fatal(err)
	}
	ar := &kubetestctl.AccessReviews{Allow: func(map[string]string) (bool, string) { return false, "test: no RBAC grants this" }}
	cfg, stop, err := ar.Start(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if c, err = kube.NewClients(cfg); err != nil {
		t.Fatal(err)
	}
	b, _ = backend(t, c, p, kube.Config{})
	_, err = b.Preflight(ctx, p)
	var re *kube.RefusedError
	if !errors.As(err, &re) || kube.ExitCode(err) != exitcode.Usage {
		t.Fatalf("Preflight with permissions denied: %v", err)
	}
	if len(re.Refusals) != 2 || re.Refusals[0].Rule != kube.RulePermission {
		t.Errorf("refusals %+v", re.Refusals)
	}
	for _, want := range []string{"fault kill", "may not create podchaos.chaos-mesh.org in namespace t-denied", "may not delete", "test: no RBAC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
