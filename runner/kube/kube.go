// Package kube is the runner's kubernetes backend: each fault is a Chaos Mesh object, created
// (server-side apply, field manager "faultline") at the fault's offset and deleted at its end.
//
// Before a run (Prepare, or Preflight on its own for --dry-run) it checks, in this order, without
// creating anything: the guardrails (protected namespaces, guardrails.allowedNamespaces,
// guardrails.maxBlastRadius; see Guardrails), that Chaos Mesh is installed (discovery serves its
// kinds), that the caller may create and delete each kind in each namespace, and create it in every
// namespace its selectors select, as Chaos Mesh's auth webhook demands (SelfSubjectAccessReview
// per namespace; a server without the authorization API is noted and not checked), that
// no object of an earlier run of the scenario is left (refused unless Force, which deletes them
// first), and finally a server-side dry run of every object.
//
// Inject applies the fault's object with the run's label (faultline.dev/run-id) and WATCHES it
// until Chaos Mesh reports it injected (conditions Selected=True and AllInjected=True), or the
// injection timeout passes: no pod matched leaves Selected, AllInjected and AllRecovered False
// forever with the reason only in an Event, and the error names every selector (a network peer's
// too) and quotes the Events. The injection instant comes from the object's records
// (status.experiment.containerRecords[].events, the last "Apply Succeeded" over all targets; Chaos
// Mesh writes whole seconds, so it is clamped between the apply request and the moment faultline saw
// AllInjected), else the moment faultline saw AllInjected (Chaos Mesh's conditions carry no
// transition time). Recover deletes the object (background propagation) and watches until it is
// gone: Chaos Mesh's finalizer chaos-mesh/records recovers every target first; the recovery
// instant is when the records were seen all Not Injected (the records, the conditions and the
// finalizer removal come on separate reconcile passes). One-shot kinds (pod-kill,
// container-kill) take the same path: Inject waits for AllInjected, Recover deletes. While a
// fault is active, its object is watched: losing the API server or the object, the pause
// annotation, or the object's duration running out well before the planned end on Chaos Mesh's
// clock (creation + duration: the targets recovered, the object kept), is reported on Failures,
// so such a run is never judged a pass. Every object also carries its own duration: a runner
// that dies leaves nothing running past the fault's window (a Workflow's chaos objects have
// none: see Cleanup).
//
// Cleanup deletes every object with the run's label, retrying with backoff while the API server
// is unreachable, for up to CleanupTimeout; what it could not confirm deleted is listed in its
// error (*LeftoverError).
//
// The load is sent from the runner's machine with the embedded k6 to target.url (Prepare returns
// it unchanged).
//
// Two alternatives (Config.Timing, Config.Load): with Timing "workflow" the backend is a
// runner.TimelineOwner: instead of Inject and Recover on the runner's clock, RunTimeline applies
// the compiled Workflow and follows Chaos Mesh's workflow engine (workflow.go). With Load
// "in-cluster" it is a runner.LoadOwner: StartLoad applies the compiled k6-operator TestRun and
// its ConfigMap and follows the TestRun's stage (load.go); no samples reach faultline then.
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/plan"
	fschema "faultline.dev/faultline/schema"
)

// Defaults of Config.
const (
	DefaultInjectionTimeout = 30 * time.Second
	DefaultRecoverTimeout   = 60 * time.Second
	DefaultCleanupTimeout   = 2 * time.Minute
)

// Config configures a Backend.
type Config struct {
	// RunID is put on every object as the label faultline.dev/run-id. Required.
	RunID string
	// Namespace, when set, is where the Chaos Mesh objects are created instead of the scenario's
	// namespace (target.kubernetes.namespace); the pod selectors keep the scenario's namespaces.
	Namespace string
	// InjectionTimeout bounds the wait for Selected and AllInjected (default 30s).
	InjectionTimeout time.Duration
	// RecoverTimeout bounds the wait for a deleted object to be gone (default 60s).
	RecoverTimeout time.Duration
	// CleanupTimeout bounds Cleanup's retries (default 2m). Cleanup takes it from the moment it is
	// called, whatever the deadline of the context it is given: the runner's own is shorter.
	CleanupTimeout time.Duration
	// AllowNamespaces lifts the protected-namespace rule for these namespaces.
	AllowNamespaces []string
	// AllowBlastRadius lifts guardrails.maxBlastRadius.
	AllowBlastRadius bool
	// Force deletes the objects an earlier run of the scenario left, instead of refusing to run.
	Force bool
	// Timing is TimingRunner ("" too: the runner's clock creates and deletes each fault's
	// object) or TimingWorkflow (the compiled Workflow is applied and Chaos Mesh's workflow
	// engine keeps the clock: see RunTimeline).
	Timing string
	// Load is LoadLocal ("" too) or LoadInCluster (the compiled k6-operator TestRun and its
	// ConfigMap are applied: see StartLoad).
	Load string
	// LoadStartTimeout bounds the wait for an in-cluster TestRun to start (default 5m).
	LoadStartTimeout time.Duration
	// Log receives notes and events (nil: none).
	Log io.Writer
}

// Object is the Chaos Mesh object of one fault, ready to apply.
type Object struct {
	Fault    plan.Fault
	Kind     string
	Resource schema.GroupVersionResource
	Obj      *unstructured.Unstructured
}

// Ref names the object.
func (o *Object) Ref() Ref {
	return Ref{Kind: o.Kind, Resource: o.Resource, Namespace: o.Obj.GetNamespace(), Name: o.Obj.GetName()}
}

func (o *Object) String() string { return o.Ref().String() }

// Backend is the kubernetes backend (runner.Backend).
type Backend struct {
	c   *Clients
	cfg Config
	s   *fschema.Scenario

	objects       []*Object
	byFault       map[string]*Object
	prepared      bool
	failures      chan error
	workflow      *Object         // Timing "workflow": the Workflow to apply
	served        map[string]Kind // what the API server serves, by kind
	testRun       *Object         // Load "in-cluster"
	configMap     *Object
	skipConfigMap bool                        // tests only: the test API server serves no ConfigMaps
	pods          schema.GroupVersionResource // core/v1 pods; tests: a stand-in (the test server has none)

	mu       sync.Mutex
	applied  map[string]*Object            // by fault: applied (or maybe applied) and not yet recovered
	watching map[string]context.CancelFunc // by fault: supervision of an injected object
	stopped  map[string]time.Time          // by fault: when Chaos Mesh was seen to have stopped it (duration ran out)
	cleaned  bool
	seenPods map[string]bool // the target's pods, as listed at Prepare and since (TargetPods)
}

// New returns a kubernetes backend for a scenario.
func New(c *Clients, s *fschema.Scenario, cfg Config) *Backend {
	if cfg.InjectionTimeout <= 0 {
		cfg.InjectionTimeout = DefaultInjectionTimeout
	}
	if cfg.RecoverTimeout <= 0 {
		cfg.RecoverTimeout = DefaultRecoverTimeout
	}
	if cfg.LoadStartTimeout <= 0 {
		cfg.LoadStartTimeout = DefaultLoadStartTimeout
	}
	if cfg.CleanupTimeout <= 0 {
		cfg.CleanupTimeout = DefaultCleanupTimeout
	}
	return &Backend{c: c, cfg: cfg, s: s, failures: make(chan error, 1), pods: Pods,
		applied: map[string]*Object{}, watching: map[string]context.CancelFunc{}, stopped: map[string]time.Time{}}
}

// Name is "kubernetes".
func (b *Backend) Name() string { return "kubernetes" }

// Failures reports losing the API server, or an active fault's object, during the run.
func (b *Backend) Failures() <-chan error { return b.failures }

// Objects are the objects Preflight prepared, in plan order.
func (b *Backend) Objects() []*Object { return b.objects }

func (b *Backend) logf(format string, args ...any) {
	if b.cfg.Log != nil {
		fmt.Fprintf(b.cfg.Log, format+"\n", args...)
	}
}

// Prepare runs Preflight (unless it already ran) and returns target.url: the load is sent from
// this machine.
func (b *Backend) Prepare(ctx context.Context, p *plan.Plan) (string, error) {
	if !b.prepared {
		if _, err := b.Preflight(ctx, p); err != nil {
			return "", err
		}
	}
	// The pods before any fault: a pod a fault kills is still the target's
	// (TargetPods). A cluster where pods cannot be listed is told later.
	_, _ = b.TargetPods(ctx)
	return p.Source.Target.URL, nil
}

// Preflight compiles the plan's objects and checks them against the guardrails and the cluster
// without creating anything (see the package documentation for the order). Errors: a
// *chaosmesh.ScenarioError (the scenario cannot be compiled), a *RefusedError (guardrails,
// permissions, leftovers), an error wrapping ErrChaosMeshMissing, a *DryRunError, or an error
// reaching the API server.
func (b *Backend) Preflight(ctx context.Context, p *plan.Plan) ([]*Object, error) {
	if b.cfg.RunID == "" {
		return nil, errors.New("kube: Config.RunID is empty")
	}
	if b.cfg.Timing != "" && b.cfg.Timing != TimingRunner && b.cfg.Timing != TimingWorkflow {
		return nil, fmt.Errorf("kube: timing %q: want %s or %s", b.cfg.Timing, TimingRunner, TimingWorkflow)
	}
	objs, err := b.build(p)
	if err != nil {
		return nil, err
	}
	if b.cfg.Load != "" && b.cfg.Load != LoadLocal && b.cfg.Load != LoadInCluster {
		return nil, fmt.Errorf("kube: load %q: want %s or %s", b.cfg.Load, LoadLocal, LoadInCluster)
	}
	var testRun, configMap *Object
	if b.cfg.Load == LoadInCluster {
		if testRun, configMap, err = b.buildLoad(p); err != nil {
			return nil, err
		}
	}
	var wf *Object
	if b.cfg.Timing == TimingWorkflow {
		if wf, err = b.buildWorkflow(p); err != nil {
			return nil, err
		}
	}
	// Every fault of the plan has its object: a fault that compiled to
	// nothing would start the load and fail only at its injection.
	for _, f := range p.Faults {
		if !slices.ContainsFunc(objs, func(o *Object) bool { return o.Fault.Name == f.Name }) {
			return nil, fmt.Errorf("faultline bug: fault %s compiled to no Chaos Mesh object; please report it", f.Name)
		}
	}
	r := Guardrails(b.s, objs, b.cfg.AllowNamespaces, b.cfg.AllowBlastRadius)
	if wf != nil {
		r = append(r, shortWorkflowNodes(p)...)
	}
	if len(r) > 0 {
		return nil, &RefusedError{Scenario: b.s.Name, Refusals: r}
	}
	served, err := b.c.ServedKinds(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, o := range objs {
		k, ok := served[o.Kind]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (fault %s)", o.Kind, o.Fault.Name))
			continue
		}
		o.Resource = k.Resource
	}
	if wf != nil {
		for _, kind := range []string{"Workflow", "WorkflowNode"} {
			if _, ok := served[kind]; !ok {
				missing = append(missing, kind+" (--timing workflow)")
			}
		}
		wf.Resource = served["Workflow"].Resource
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the API server at %s does not serve %s; install (or upgrade) Chaos Mesh",
			ErrChaosMeshMissing, b.c.Host, strings.Join(missing, ", "))
	}
	if testRun != nil {
		if err := b.checkK6Operator(ctx); err != nil {
			return nil, err
		}
		if err := b.loadLeftover(ctx, testRun, configMap); err != nil {
			return nil, err
		}
	}
	checked := objs
	if wf != nil {
		checked = append(slices.Clone(objs), wf)
	}
	refusals, err := b.checkAccess(ctx, checked)
	if err != nil {
		return nil, err
	}
	if len(refusals) > 0 {
		return nil, &RefusedError{Scenario: b.s.Name, Refusals: refusals}
	}
	if err := b.leftovers(ctx, objs, served); err != nil {
		return nil, err
	}
	if err := b.dryRun(ctx, checked); err != nil {
		return nil, err
	}
	if testRun != nil {
		load := []*Object{testRun}
		if !b.skipConfigMap {
			load = append(load, configMap)
		}
		if err := b.dryRun(ctx, load); err != nil {
			return nil, err
		}
	}
	b.testRun, b.configMap = testRun, configMap
	b.objects = objs
	b.workflow = wf
	b.served = served
	b.byFault = map[string]*Object{}
	for _, o := range objs {
		b.byFault[o.Fault.Name] = o
	}
	b.prepared = true
	return objs, nil
}

// build compiles the plan into unstructured objects carrying the run's label.
func (b *Backend) build(p *plan.Plan) ([]*Object, error) {
	m, err := chaosmesh.Emit(p)
	if err != nil {
		return nil, err
	}
	var out []*Object
	for _, c := range m.Chaos {
		data, err := chaosmesh.Marshal(c.Object)
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("fault %s: %w", c.Fault.Name, err)
		}
		if b.cfg.Namespace != "" {
			u.SetNamespace(b.cfg.Namespace)
		}
		l := u.GetLabels()
		l[LabelRunID] = chaosmesh.LabelValue(b.cfg.RunID)
		u.SetLabels(l)
		out = append(out, &Object{Fault: c.Fault, Kind: c.Kind, Obj: u})
	}
	return out, nil
}

// checkAccess asks the API server (SelfSubjectAccessReview) whether the caller may create and delete
// each kind in each namespace. A server without the authorization API cannot tell: that is noted in
// the log and the run goes on (the dry run still catches a refused create).
func (b *Backend) checkAccess(ctx context.Context, objs []*Object) ([]Refusal, error) {
	ssar := schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews"}
	type key struct{ res, ns, verb string }
	seen := map[key]bool{}
	type review struct {
		key
		group, version string
		webhook        bool
	}
	var reviews []review
	var faultOf []string
	add := func(fault string, r review) {
		if !seen[r.key] {
			seen[r.key] = true
			reviews = append(reviews, r)
			faultOf = append(faultOf, fault)
		}
	}
	for _, o := range objs {
		for _, verb := range []string{"create", "delete"} {
			add(o.Fault.Name, review{key: key{o.Resource.Resource, o.Obj.GetNamespace(), verb}, group: o.Resource.Group, version: o.Resource.Version})
		}
		// Chaos Mesh's auth webhook (pkg/webhook/validate_auth.go) admits a create only if the
		// user may `create` the object's kind (resource: the kind in lower case) in every
		// namespace its pod selectors select (affected_namespaces.go walks every PodSelector:
		// a NetworkChaos peer's too, every template of a Workflow).
		nss := selectorNamespaces(o.Obj)
		if o.Kind == "Workflow" {
			nss = nil
			for _, c := range objs {
				if c.Kind != "Workflow" {
					for _, ns := range selectorNamespaces(c.Obj) {
						if !slices.Contains(nss, ns) {
							nss = append(nss, ns)
						}
					}
				}
			}
		}
		for _, ns := range nss {
			add(o.Fault.Name, review{key: key{strings.ToLower(o.Kind), ns, "create"}, group: "chaos-mesh.org", version: o.Resource.Version, webhook: true})
		}
	}
	var out []Refusal
	for i, r := range reviews {
		k, verb := r.key, r.verb
		{
			review := &unstructured.Unstructured{Object: map[string]any{
				// No metadata: kube-apiserver refuses a review with any (422 "must be empty").
				"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
				"spec": map[string]any{"resourceAttributes": map[string]any{
					"namespace": k.ns, "verb": verb, "group": r.group, "version": r.version, "resource": k.res,
				}},
			}}
			var got *unstructured.Unstructured
			err := retryUnreachable(ctx, 5*time.Second, func() error {
				var err error
				got, err = b.c.Dynamic.Resource(ssar).Create(ctx, review, metav1.CreateOptions{})
				return err
			})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				b.logf("note: the API server at %s has no authorization API (SelfSubjectAccessReview): permissions not checked; the server-side dry run still tries every create", b.c.Host)
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("checking permissions (SelfSubjectAccessReview %s %s in %s): %w", verb, k.res, k.ns, err)
			}
			allowed, _, _ := unstructured.NestedBool(got.Object, "status", "allowed")
			if !allowed {
				reason, _, _ := unstructured.NestedString(got.Object, "status", "reason")
				if reason == "" {
					reason = "no reason given"
				}
				why := "ask for a Role that allows create, delete, get, list and watch on Chaos Mesh's kinds there"
				if r.webhook {
					why = "Chaos Mesh's admission webhook refuses an object unless you may create its kind in every namespace it selects pods in; ask for a Role there"
				}
				out = append(out, Refusal{Fault: faultOf[i], Rule: RulePermission, Message: fmt.Sprintf(
					"you may not %s %s.%s in namespace %s (%s); %s", verb, k.res, r.group, k.ns, reason, why)})
			}
		}
	}
	return out, nil
}

// leftovers finds objects of an earlier run of this scenario in the run's namespaces. They are a
// refusal, unless Force: then they are deleted (and waited for) before the run.
func (b *Backend) leftovers(ctx context.Context, objs []*Object, served map[string]Kind) error {
	sel := labels.SelectorFromSet(labels.Set{chaosmesh.LabelManagedBy: chaosmesh.ManagedByValue, chaosmesh.LabelScenario: b.s.Name}).String()
	cl := &Cleaner{Clients: b.c, Kinds: CleanupKinds(served), Namespaces: namespaces(objs), Selector: sel, Log: b.cfg.Log}
	found, err := cl.List(ctx)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return nil
	}
	var names []string
	for _, r := range found {
		names = append(names, r.String()+runIDOf(r))
	}
	if !b.cfg.Force {
		return &RefusedError{Scenario: b.s.Name, Refusals: []Refusal{{Rule: RuleLeftovers, Message: fmt.Sprintf(
			"an earlier run of scenario %s left %d object(s): %s; remove them with `faultline cleanup --run-id ID` (or --all), or pass --force to delete them before this run",
			b.s.Name, len(found), strings.Join(names, ", "))}}}
	}
	b.logf("--force: deleting %d object(s) left by an earlier run: %s", len(found), strings.Join(names, ", "))
	cctx, cancel := context.WithTimeout(ctx, b.cfg.CleanupTimeout)
	defer cancel()
	cl.Known = found
	_, err = cl.Run(cctx)
	return err
}

func runIDOf(r Ref) string {
	if r.RunID == "" {
		return ""
	}
	return " (run " + r.RunID + ")"
}

func namespaces(objs []*Object) []string {
	var out []string
	for _, o := range objs {
		if !slices.Contains(out, o.Obj.GetNamespace()) {
			out = append(out, o.Obj.GetNamespace())
		}
	}
	sort.Strings(out)
	return out
}

// DryRunError lists the objects the API server rejected in the server-side dry run.
type DryRunError struct {
	Problems []string
}

func (e *DryRunError) Error() string {
	return "the API server rejects the run's objects (server-side dry run, nothing was created):\n  " + strings.Join(e.Problems, "\n  ")
}

// dryRun applies every object with dryRun=All.
func (b *Backend) dryRun(ctx context.Context, objs []*Object) error {
	var problems []string
	for _, o := range objs {
		got, err := b.apply(ctx, o, true)
		if err != nil {
			if Unreachable(err) {
				return fmt.Errorf("server-side dry run of %s: %w", o, err)
			}
			if o.Fault.Name == "" {
				problems = append(problems, fmt.Sprintf("%s: %v", o, err))
			} else {
				problems = append(problems, fmt.Sprintf("fault %s: %s: %v", o.Fault.Name, o, err))
			}
			continue
		}
		_ = got
	}
	if len(problems) > 0 {
		return &DryRunError{Problems: problems}
	}
	return nil
}

func (b *Backend) resource(o *Object) dynamic.ResourceInterface {
	return b.c.Dynamic.Resource(o.Resource).Namespace(o.Obj.GetNamespace())
}

// apply server-side applies the object: field manager faultline, force, strict field validation.
func (b *Backend) apply(ctx context.Context, o *Object, dry bool) (*unstructured.Unstructured, error) {
	data, err := o.Obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force, FieldValidation: "Strict"}
	if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var got *unstructured.Unstructured
	err = retryUnreachable(ctx, 5*time.Second, func() error {
		var err error
		got, err = b.resource(o).Patch(ctx, o.Obj.GetName(), types.ApplyPatchType, data, opts)
		return err
	})
	return got, err
}

// Inject applies the fault's object and waits until Chaos Mesh reports it injected.
func (b *Backend) Inject(ctx context.Context, f plan.Fault) (time.Time, error) {
	o := b.byFault[f.Name]
	if o == nil {
		return time.Time{}, fmt.Errorf("fault %s: no object prepared (Prepare not called?)", f.Name)
	}
	b.mu.Lock()
	b.applied[f.Name] = o // from now on Cleanup deletes it, whatever the apply's outcome
	b.mu.Unlock()
	sent := time.Now()
	wctx, cancel := context.WithTimeout(ctx, b.cfg.InjectionTimeout)
	defer cancel()
	got, err := b.apply(wctx, o, false)
	if err != nil {
		return time.Time{}, fmt.Errorf("creating %s: %w", o, err)
	}
	last, seen, err := b.waitFor(wctx, o, got, injected)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return time.Time{}, b.injectTimeout(ctx, o, last)
		}
		return time.Time{}, fmt.Errorf("waiting for %s to be injected: %w", o, err)
	}
	at := InjectedAt(last, sent, seen)
	b.supervise(o, last.GetResourceVersion(), sent.Add((f.End - f.Start).Std()))
	return at, nil
}

// stopState reads whether Chaos Mesh stopped an object's fault while the object stays: paused
// (the annotation experiment.chaos-mesh.org/pause, or the condition Paused), or every record back
// to Not Injected on an object not being deleted — its spec.duration ran out on the controller's
// clock (desiredphase: creation + duration). Records are read, not AllRecovered: the condition
// controller writes that a pass later.
func stopState(u *unstructured.Unstructured) (paused, stopped bool) {
	if u == nil {
		return false, false
	}
	paused = u.GetAnnotations()[AnnotationPause] == "true" || condition(u, "Paused") == "True"
	return paused, u.GetDeletionTimestamp() == nil && recordsRecovered(u)
}

// recordsRecovered: the object has records and every one is Not Injected.
func recordsRecovered(u *unstructured.Unstructured) bool {
	recs, _, _ := unstructured.NestedSlice(u.Object, "status", "experiment", "containerRecords")
	if len(recs) == 0 {
		return false
	}
	for _, r := range recs {
		if m, _ := r.(map[string]any); m["phase"] != "Not Injected" {
			return false
		}
	}
	return true
}

// AnnotationPause with the value "true" pauses a chaos object: Chaos Mesh recovers its targets and
// keeps it.
const AnnotationPause = "experiment.chaos-mesh.org/pause"

// stopSlack is how much earlier than planned a fault may stop without failing the run: Chaos
// Mesh's times are whole seconds, and its duration counts from the object's creation.
const stopSlack = 2 * time.Second

// stoppedError explains a fault Chaos Mesh stopped while its object stays; nil when it stopped
// within stopSlack of its planned end (its own duration ran out: an ordinary end).
func stoppedError(fault, what string, u *unstructured.Unstructured, plannedEnd time.Time) error {
	paused, stopped := stopState(u)
	switch {
	case paused:
		return fmt.Errorf("fault %s: %s was paused (%s) while the fault was planned to be active: Chaos Mesh recovered its targets and keeps the object", fault, what, AnnotationPause)
	case stopped && !plannedEnd.IsZero() && time.Until(plannedEnd) > stopSlack:
		return fmt.Errorf("fault %s: %s stopped %s before its planned end: its duration ran out on Chaos Mesh's clock (the object's creation + duration; is the controller's clock ahead?) and Chaos Mesh recovered its targets, keeping the object",
			fault, what, time.Until(plannedEnd).Round(100*time.Millisecond))
	}
	return nil
}

// injected: Selected=True and AllInjected=True.
func injected(u *unstructured.Unstructured) bool {
	return condition(u, "Selected") == "True" && condition(u, "AllInjected") == "True"
}

// condition returns the status of a Chaos Mesh condition ("True", "False", "" when absent).
func condition(u *unstructured.Unstructured, typ string) string {
	if u == nil {
		return ""
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// InjectedAt is the instant a fault took effect: the latest "Apply Succeeded" event over the
// object's records (every target injected), clamped to [sent, seen] because Chaos Mesh writes
// whole seconds; seen when there is no such event.
func InjectedAt(u *unstructured.Unstructured, sent, seen time.Time) time.Time {
	var latest time.Time
	for _, ev := range recordEvents(u) {
		if ev.op == "Apply" && ev.typ == "Succeeded" && ev.at.After(latest) {
			latest = ev.at
		}
	}
	if latest.IsZero() {
		return seen
	}
	if latest.Before(sent) {
		latest = sent
	}
	if latest.After(seen) {
		latest = seen
	}
	return latest
}

type recordEvent struct {
	target, op, typ, msg string
	at                   time.Time
}

func recordEvents(u *unstructured.Unstructured) []recordEvent {
	if u == nil {
		return nil
	}
	recs, _, _ := unstructured.NestedSlice(u.Object, "status", "experiment", "containerRecords")
	var out []recordEvent
	for _, r := range recs {
		rm, ok := r.(map[string]any)
		if !ok {
			continue
		}
		id, _ := rm["id"].(string)
		evs, _ := rm["events"].([]any)
		for _, e := range evs {
			em, ok := e.(map[string]any)
			if !ok {
				continue
			}
			ev := recordEvent{target: id}
			ev.op, _ = em["operation"].(string)
			ev.typ, _ = em["type"].(string)
			ev.msg, _ = em["message"].(string)
			if ts, ok := em["timestamp"].(string); ok {
				ev.at, _ = time.Parse(time.RFC3339Nano, ts)
			}
			out = append(out, ev)
		}
	}
	return out
}

// injectTimeout explains why an object was not injected in time. With no pod matched, Chaos
// Mesh's records controller writes no records, tries no more (controllers/common/records: it
// returns without a requeue) and says why only in an Event ("Failed to select targets: ..."),
// while the condition controller keeps Selected, AllInjected and AllRecovered False: the Events
// are read and quoted, and every selector of the object named (a NetworkChaos peer's too: any of
// them matching nothing stops the whole object).
func (b *Backend) injectTimeout(ctx context.Context, o *Object, last *unstructured.Unstructured) error {
	sel := describeSelector(o.Obj)
	notes := b.objectEvents(ctx, o.Kind, o.Obj.GetNamespace(), o.Obj.GetName())
	said := ""
	if len(notes) > 0 {
		said = "; Chaos Mesh's Events: " + strings.Join(notes, "; ")
	}
	return injectError(o.Fault.Name, o.String(), o.Obj, last, sel, said, b.cfg.InjectionTimeout)
}

// injectError is injectTimeout's message, for an object of the runner's or a Workflow's.
func injectError(fault, what string, obj, last *unstructured.Unstructured, sel, said string, timeout time.Duration) error {
	switch {
	case last == nil || condition(last, "Selected") == "":
		return fmt.Errorf("fault %s: %s was not acted on within %s (no status conditions)%s: is Chaos Mesh's controller (chaos-controller-manager) running, and does it watch namespace %s?",
			fault, what, timeout, said, obj.GetNamespace())
	case condition(last, "Selected") != "True":
		which := "the selector " + sel
		hint := fmt.Sprintf("kubectl get pods -n %s -l %s", firstNamespace(obj), labelArg(obj))
		if peer := describePeer(obj); peer != "" {
			which = fmt.Sprintf("the selector %s or the peer selector %s", sel, peer)
			hint += fmt.Sprintf("; kubectl get pods -n %s -l %s", peerNamespace(obj), peerLabelArg(obj))
		}
		return fmt.Errorf("fault %s: no pod matched %s within %s (%s stays Selected=False, AllInjected=False, AllRecovered=False; Chaos Mesh does not retry the selection)%s; check the labels and namespaces of the pods (%s)",
			fault, which, timeout, what, said, hint)
	default:
		var failed []string
		for _, ev := range recordEvents(last) {
			if ev.typ == "Failed" {
				failed = append(failed, fmt.Sprintf("%s: %s", ev.target, ev.msg))
			}
		}
		msg := ""
		if len(failed) > 0 {
			msg = "; failures: " + strings.Join(failed, "; ")
		}
		return fmt.Errorf("fault %s: %s selected its targets (%s) but was not injected into all of them within %s (AllInjected=%s)%s%s",
			fault, what, sel, timeout, condition(last, "AllInjected"), msg, said)
	}
}

// EventsResource is where the backend reads Kubernetes Events (Chaos Mesh writes core/v1 Events;
// the API server serves them as events.k8s.io/v1 too, with the field selector regarding.name).
var EventsResource = schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}

// objectEvents returns the notes of the Warning Events about one object, oldest first, without
// repeats (at most 5); none when they cannot be read.
func (b *Backend) objectEvents(ctx context.Context, kind, ns, name string) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	list, err := b.c.Dynamic.Resource(EventsResource).Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=" + name, Limit: 100})
	if err != nil {
		return nil
	}
	items := list.Items
	sort.SliceStable(items, func(i, j int) bool { return items[i].GetName() < items[j].GetName() })
	var out []string
	for _, ev := range items {
		k, _, _ := unstructured.NestedString(ev.Object, "regarding", "kind")
		typ, _, _ := unstructured.NestedString(ev.Object, "type")
		note, _, _ := unstructured.NestedString(ev.Object, "note")
		if k != kind || typ != "Warning" || note == "" || slices.Contains(out, note) {
			continue
		}
		out = append(out, note)
		if len(out) == 5 {
			break
		}
	}
	return out
}

// describePeer renders a NetworkChaos peer's selector (spec.target), "" without one.
func describePeer(u *unstructured.Unstructured) string {
	if _, found, _ := unstructured.NestedMap(u.Object, "spec", "target", "selector"); !found {
		return ""
	}
	s := peerLabelArg(u)
	if s == "" {
		s = "(every pod)"
	}
	return fmt.Sprintf("%s in namespace %s", s, peerNamespace(u))
}

func peerLabelArg(u *unstructured.Unstructured) string {
	ls, _, _ := unstructured.NestedStringMap(u.Object, "spec", "target", "selector", "labelSelectors")
	return labels.SelectorFromSet(ls).String()
}

func peerNamespace(u *unstructured.Unstructured) string {
	nss, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "target", "selector", "namespaces")
	if len(nss) == 0 {
		return u.GetNamespace()
	}
	return strings.Join(nss, ", ")
}

// describeSelector renders spec.selector: "app=checkout in namespace shop (mode all)".
func describeSelector(u *unstructured.Unstructured) string {
	mode, _, _ := unstructured.NestedString(u.Object, "spec", "mode")
	nss := selectorNamespaces(u)
	s := labelArg(u)
	if s == "" {
		s = "(every pod)"
	}
	out := fmt.Sprintf("%s in namespace %s", s, strings.Join(nss, ", "))
	if mode != "" {
		out += " (mode " + mode + ")"
	}
	return out
}

func labelArg(u *unstructured.Unstructured) string {
	ls, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "labelSelectors")
	return labels.SelectorFromSet(ls).String()
}

func firstNamespace(u *unstructured.Unstructured) string {
	if nss := selectorNamespaces(u); len(nss) > 0 {
		return nss[0]
	}
	return u.GetNamespace()
}

// waitFor watches one object until cond holds (cond nil: until it is gone). It re-reads the object
// and re-establishes the watch when the watch ends or the server is unreachable, with backoff, until
// ctx ends. It returns the last version seen and when cond was seen to hold.
func (b *Backend) waitFor(ctx context.Context, o *Object, initial *unstructured.Unstructured, cond func(*unstructured.Unstructured) bool) (*unstructured.Unstructured, time.Time, error) {
	return waitObject(ctx, b.resource(o), o.Obj.GetName(), initial, cond, nil)
}

// waitObject is waitFor for any object. onEvent, if set, sees every version observed.
func waitObject(ctx context.Context, res dynamic.ResourceInterface, name string, initial *unstructured.Unstructured,
	cond func(*unstructured.Unstructured) bool, onEvent func(*unstructured.Unstructured)) (*unstructured.Unstructured, time.Time, error) {
	last := initial
	rv := ""
	if initial != nil {
		if onEvent != nil {
			onEvent(initial)
		}
		if cond != nil && cond(initial) {
			return initial, time.Now(), nil
		}
		rv = initial.GetResourceVersion()
	}
	bo := newBackoff()
	for {
		if rv == "" {
			got, err := res.Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				if cond == nil {
					return last, time.Now(), nil
				}
				return last, time.Time{}, fmt.Errorf("%s was deleted (not by this run) while faultline waited for it", name)
			case err != nil:
				if ctx.Err() != nil {
					return last, time.Time{}, ctx.Err()
				}
				if !Unreachable(err) {
					return last, time.Time{}, err
				}
				if err := bo.sleep(ctx); err != nil {
					return last, time.Time{}, err
				}
				continue
			}
			last = got
			if onEvent != nil {
				onEvent(got)
			}
			if cond != nil && cond(got) {
				return got, time.Now(), nil
			}
			rv = got.GetResourceVersion()
		}
		w, err := res.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return last, time.Time{}, ctx.Err()
			}
			rv = ""
			if err := bo.sleep(ctx); err != nil {
				return last, time.Time{}, err
			}
			continue
		}
		done, at, err := func() (bool, time.Time, error) {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return true, time.Time{}, ctx.Err()
				case ev, ok := <-w.ResultChan():
					if !ok {
						return false, time.Time{}, nil
					}
					switch ev.Type {
					case "ADDED", "MODIFIED":
						u, ok := ev.Object.(*unstructured.Unstructured)
						if !ok {
							continue
						}
						last, rv = u, u.GetResourceVersion()
						if onEvent != nil {
							onEvent(u)
						}
						if cond != nil && cond(u) {
							return true, time.Now(), nil
						}
					case "DELETED":
						if cond == nil {
							return true, time.Now(), nil
						}
						return true, time.Time{}, fmt.Errorf("%s was deleted (not by this run) while faultline waited for it", name)
					case "BOOKMARK":
						if u, ok := ev.Object.(*unstructured.Unstructured); ok {
							rv = u.GetResourceVersion()
						}
					case "ERROR":
						rv = "" // expired resource version (410) or a server error: read again
						return false, time.Time{}, nil
					}
				}
			}
		}()
		if done {
			return last, at, err
		}
		if rv == "" {
			if err := bo.sleep(ctx); err != nil {
				return last, time.Time{}, err
			}
		}
	}
}

// supervise watches an injected object until Recover or Cleanup: if the API server cannot be
// reached for a while, the object disappears, or Chaos Mesh stops the fault while the object
// stays (paused, or its duration ran out on the controller's clock well before plannedEnd), the
// run learns it on Failures. An ordinary stop at the end of its duration is remembered: Recover
// reports that instant.
func (b *Backend) supervise(o *Object, rv string, plannedEnd time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	b.mu.Lock()
	b.watching[o.Fault.Name] = cancel
	b.mu.Unlock()
	lost := func(err error) {
		b.fail(fmt.Errorf("lost the API server while fault %s is active (%s): %v; the object expires by itself at the end of its duration", o.Fault.Name, o, err))
	}
	go func() {
		res := b.resource(o)
		check := func(u *unstructured.Unstructured) bool {
			if err := stoppedError(o.Fault.Name, o.String(), u, plannedEnd); err != nil {
				b.fail(err)
				return true
			}
			if _, stopped := stopState(u); stopped {
				b.mu.Lock()
				if _, ok := b.stopped[o.Fault.Name]; !ok {
					b.stopped[o.Fault.Name] = time.Now()
				}
				b.mu.Unlock()
			}
			return false
		}
		for ctx.Err() == nil {
			w, err := res.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + o.Obj.GetName(), ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if Unreachable(err) {
					lost(err)
					return
				}
				rv = ""
				time.Sleep(time.Second)
				continue
			}
			gone, done := false, false
			for ev := range w.ResultChan() {
				switch ev.Type {
				case "DELETED":
					gone = true
				case "ADDED", "MODIFIED", "BOOKMARK":
					if u, ok := ev.Object.(*unstructured.Unstructured); ok {
						rv = u.GetResourceVersion()
						if ev.Type != "BOOKMARK" && ctx.Err() == nil && check(u) {
							done = true
						}
					}
				case "ERROR":
					rv = ""
				}
				if done {
					break
				}
			}
			w.Stop()
			if ctx.Err() != nil || done {
				return
			}
			if gone {
				b.fail(fmt.Errorf("fault %s: %s was deleted outside faultline while the fault was planned to be active", o.Fault.Name, o))
				return
			}
			// The watch ended: a normal timeout, or the server went away. Ask.
			u, err := res.Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if apierrors.IsNotFound(err) {
					b.fail(fmt.Errorf("fault %s: %s was deleted outside faultline while the fault was planned to be active", o.Fault.Name, o))
					return
				}
				if Unreachable(err) {
					lost(err)
					return
				}
				continue
			}
			if check(u) {
				return
			}
		}
	}()
}

func (b *Backend) fail(err error) {
	b.logf("%v", err)
	select {
	case b.failures <- err:
	default:
	}
}

func (b *Backend) unsupervise(fault string) {
	b.mu.Lock()
	cancel := b.watching[fault]
	delete(b.watching, fault)
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Recover deletes the fault's object and waits until it is gone (Chaos Mesh recovers every target
// before it removes its finalizer). The instant returned is when faultline first saw the object
// report AllRecovered=True while being deleted, else when it saw it gone.
func (b *Backend) Recover(ctx context.Context, f plan.Fault) (time.Time, error) {
	o := b.byFault[f.Name]
	if o == nil {
		return time.Time{}, fmt.Errorf("fault %s: no object prepared", f.Name)
	}
	b.unsupervise(f.Name)
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RecoverTimeout)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	err := retryUnreachable(rctx, b.cfg.RecoverTimeout, func() error {
		return b.resource(o).Delete(rctx, o.Obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
	})
	if apierrors.IsNotFound(err) {
		b.forget(f.Name)
		return time.Now(), fmt.Errorf("fault %s: %s was already gone when its window ended (deleted outside faultline, or expired early)", f.Name, o)
	}
	if err != nil {
		return time.Now(), fmt.Errorf("deleting %s: %w", o, err)
	}
	b.mu.Lock()
	recovered, early := b.stopped[f.Name]
	delete(b.stopped, f.Name)
	b.mu.Unlock()
	last, gone, err := b.waitForGone(rctx, o, &recovered)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			fins := []string{}
			if last != nil {
				fins = last.GetFinalizers()
			}
			return time.Now(), fmt.Errorf("fault %s: %s is still there %s after its deletion (finalizers %v): Chaos Mesh has not recovered its targets; look at `kubectl describe %s -n %s %s`, or remove it with `faultline cleanup --run-id %s --force-finalizers`",
				f.Name, o, b.cfg.RecoverTimeout, fins, strings.ToLower(o.Kind), o.Obj.GetNamespace(), o.Obj.GetName(), b.cfg.RunID)
		}
		return time.Now(), fmt.Errorf("waiting for %s to be gone: %w", o, err)
	}
	b.forget(f.Name)
	if early {
		b.logf("fault %s: Chaos Mesh had recovered its targets before the deletion (its duration ran out)", f.Name)
	}
	if !recovered.IsZero() {
		return recovered, nil
	}
	return gone, nil
}

// waitForGone waits for a deleted object to be gone and sets *recovered (when zero) to the moment
// faultline first saw its targets recovered: every record Not Injected — Chaos Mesh's records
// controller writes that a pass before the condition controller turns AllRecovered True and
// another before the finalizer goes — else AllRecovered=True on the object being deleted.
func (b *Backend) waitForGone(ctx context.Context, o *Object, recovered *time.Time) (*unstructured.Unstructured, time.Time, error) {
	return waitObject(ctx, b.resource(o), o.Obj.GetName(), nil, nil, func(u *unstructured.Unstructured) {
		if recovered.IsZero() && u.GetDeletionTimestamp() != nil && (recordsRecovered(u) || condition(u, "AllRecovered") == "True") {
			*recovered = time.Now()
		}
	})
}

func (b *Backend) forget(fault string) {
	b.mu.Lock()
	delete(b.applied, fault)
	b.mu.Unlock()
}

// Cleanup deletes every object carrying the run's label (and any object this run applied), waits
// until they are gone, and retries with backoff while the API server is unreachable, for up to
// CleanupTimeout from now (ctx's own deadline is not used: see Config.CleanupTimeout; cancelling
// ctx still stops it). A *LeftoverError lists what may be left.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.mu.Lock()
	if b.cleaned {
		b.mu.Unlock()
		return nil
	}
	b.cleaned = true
	var known []Ref
	for _, o := range b.applied {
		known = append(known, o.Ref())
	}
	faults := make([]string, 0, len(b.watching))
	for f := range b.watching {
		faults = append(faults, f)
	}
	b.mu.Unlock()
	for _, f := range faults {
		b.unsupervise(f)
	}
	if !b.prepared {
		return nil
	}
	base := context.WithoutCancel(ctx)
	cctx, cancel := context.WithTimeout(base, b.cfg.CleanupTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel() // cancelled on purpose; a deadline of the caller's is not ours
		}
	})
	defer stop()
	kinds := map[string]Kind{}
	for _, o := range b.objects {
		kinds[o.Kind] = Kind{Kind: o.Kind, Resource: o.Resource, Namespaced: true}
	}
	if wf := b.workflow; wf != nil {
		kinds[wf.Kind] = Kind{Kind: wf.Kind, Resource: wf.Resource, Namespaced: true}
	}
	if b.testRun != nil {
		kinds["TestRun"] = Kind{Kind: "TestRun", Resource: TestRuns, Namespaced: true}
		if !b.skipConfigMap {
			kinds["ConfigMap"] = Kind{Kind: "ConfigMap", Resource: ConfigMaps, Namespaced: true}
		}
	}
	var kl []Kind
	for _, k := range kinds {
		kl = append(kl, k)
	}
	sort.Slice(kl, func(i, j int) bool { return kl[i].Kind < kl[j].Kind })
	cl := &Cleaner{Clients: b.c, Kinds: kl, Namespaces: namespaces(b.objects), Selector: LabelSelectorRun(b.cfg.RunID), Known: known, Log: b.cfg.Log, RunID: b.cfg.RunID}
	deleted, err := cl.Run(cctx)
	for _, r := range deleted {
		b.logf("cleanup: deleted %s", r)
	}
	return err
}

// minWorkflowNode is the shortest chaos node --timing workflow runs: on
// the real controller (e2e), a 1 s node's object was deleted by the
// workflow engine at its deadline before Chaos Mesh had written
// AllInjected, though the pod was killed, so the run could not tell
// whether the fault took effect.
const minWorkflowNode = 2 * time.Second

// shortWorkflowNodes refuses, under --timing workflow, faults whose window
// is shorter than minWorkflowNode.
func shortWorkflowNodes(p *plan.Plan) []Refusal {
	var out []Refusal
	for _, f := range p.Faults {
		if d := f.End.Std() - f.Start.Std(); d < minWorkflowNode {
			out = append(out, Refusal{Fault: f.Name, Rule: "--timing workflow",
				Message: fmt.Sprintf("the fault lasts %s; with --timing workflow its chaos node needs at least %s (Chaos Mesh's workflow engine deletes a shorter node's object before the controller reports it injected): lengthen the fault (or the --time-scale), or use the default timing", d, minWorkflowNode)})
		}
	}
	return out
}
