package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/runner"
)

// Timing values of Config.Timing.
const (
	// TimingRunner: the runner's clock creates and deletes each fault's object (the default).
	TimingRunner = "runner"
	// TimingWorkflow: faultline applies the compiled Workflow and Chaos Mesh's workflow engine
	// keeps the clock; faultline follows it (see RunTimeline).
	TimingWorkflow = "workflow"
)

// Names of Chaos Mesh's workflow engine (api/v1alpha1).
const (
	// LabelWorkflow is on every WorkflowNode (and the chaos objects the nodes create): the
	// Workflow's name.
	LabelWorkflow = "chaos-mesh.org/workflow"
	// AnnotationWorkflowAbort with the value "true" aborts a Workflow.
	AnnotationWorkflowAbort = "workflow.chaos-mesh.org/abort"
)

// WorkflowNodes is the resource of Chaos Mesh's WorkflowNode kind.
var WorkflowNodes = schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: "workflownodes"}

var _ runner.TimelineOwner = (*Backend)(nil)

// OwnsTimeline is true with Config.Timing "workflow": the runner then calls RunTimeline instead
// of Inject and Recover.
func (b *Backend) OwnsTimeline() bool { return b.cfg.Timing == TimingWorkflow }

// Workflow is the Workflow object Preflight prepared (Timing "workflow"), else nil.
func (b *Backend) Workflow() *Object { return b.workflow }

// buildWorkflow compiles the plan's Workflow with the run's label.
func (b *Backend) buildWorkflow(p *plan.Plan) (*Object, error) {
	m, err := chaosmesh.Emit(p)
	if err != nil {
		return nil, err
	}
	if m.Workflow == nil {
		return nil, errors.New("the scenario has no faults: there is no Workflow to run")
	}
	data, err := chaosmesh.Marshal(m.Workflow)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("workflow: %w", err)
	}
	if b.cfg.Namespace != "" {
		u.SetNamespace(b.cfg.Namespace)
	}
	l := u.GetLabels()
	l[LabelRunID] = chaosmesh.LabelValue(b.cfg.RunID)
	u.SetLabels(l)
	return &Object{Kind: "Workflow", Obj: u}, nil
}

// WorkflowAbortedError is a Workflow Chaos Mesh aborted (the abort annotation, or a node's
// Aborted or ParentNodeDeadlineExceed condition). It wraps runner.ErrTimelineAborted.
type WorkflowAbortedError struct {
	Workflow string
	Why      string
}

func (e *WorkflowAbortedError) Error() string {
	return fmt.Sprintf("Workflow %s was aborted: %s", e.Workflow, e.Why)
}

func (e *WorkflowAbortedError) Unwrap() error { return runner.ErrTimelineAborted }

// RunTimeline applies the Workflow (with the run's label) and follows it with watches until
// Chaos Mesh marks it Accomplished and every fault's targets are recovered. Each fault's window
// comes from the chaos object its WorkflowNode creates (spec.templateName names the template,
// label chaos-mesh.org/workflow; the object is status.chaosResource), never from the node alone:
//
//   - the node's ChaosInjected=True (reason ChaosCRCreated) only means the child object EXISTS
//     (chaos_node_reconciler sets it on creation), so the fault is injected when the child
//     reports Selected and AllInjected, at its latest "Apply Succeeded" record clamped between
//     the moment faultline saw the child created and the moment it saw it injected — as Inject
//     judges a fault on the runner's clock. A child not injected within InjectionTimeout of the
//     fault's planned start fails the run with the reason (no pod matched: the selectors and
//     Chaos Mesh's Events);
//   - the node's DeadlineExceed comes FIRST; the engine deletes the child afterwards and its
//     finalizer recovers the targets later (chaos nodes never become Accomplished): the fault is
//     recovered when the child's records are all Not Injected (or AllRecovered on the object
//     being deleted, or it is gone), waited for up to RecoverTimeout;
//   - a child that is paused, stops (its records recovered) or disappears before its node's
//     deadline stopped the fault early: an error (the engine would create the child again,
//     after a gap).
//
// The abort annotation workflow.chaos-mesh.org/abort=true, or a node's Aborted (or
// ParentNodeDeadlineExceed) condition, ends it with a *WorkflowAbortedError.
func (b *Backend) RunTimeline(ctx context.Context, p *plan.Plan, onInjected func(plan.Fault, time.Time), onRecovered func(plan.Fault, time.Time)) error {
	wf := b.workflow
	if wf == nil {
		return errors.New("kube: no Workflow prepared (Prepare not called with Timing \"workflow\"?)")
	}
	b.mu.Lock()
	b.applied["workflow"] = wf
	b.mu.Unlock()
	name, ns := wf.Obj.GetName(), wf.Obj.GetNamespace()
	byTemplate := map[string]plan.Fault{}
	for _, f := range p.Faults {
		byTemplate[chaosmesh.ChaosTemplateName(f)] = f
	}
	type state struct {
		child                         string // the chaos object followed
		created                       time.Time
		injected, exceeded, recovered bool
		stop                          context.CancelFunc
	}
	st := map[string]*state{}
	for _, f := range p.Faults {
		st[f.Name] = &state{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		for _, s := range st {
			if s.stop != nil {
				s.stop()
			}
		}
	}()

	// Watch the nodes before the Workflow exists: a first list can take a while to answer.
	nodeRes := b.c.Dynamic.Resource(WorkflowNodes).Namespace(ns)
	sel := LabelWorkflow + "=" + name
	nodeCh := make(chan *unstructured.Unstructured, 64)
	go watchList(ctx, nodeRes, sel, nodeCh)
	applied := time.Now()
	got, err := b.apply(ctx, wf, false)
	if err != nil {
		return fmt.Errorf("creating %s: %w", wf, err)
	}
	b.logf("applied %s: Chaos Mesh's workflow engine keeps the faults' clock", wf)

	wfCh := make(chan *unstructured.Unstructured, 16)
	wfErr := make(chan error, 1)
	go func() {
		_, _, err := waitObject(ctx, b.resource(wf), name, got, func(u *unstructured.Unstructured) bool {
			select {
			case wfCh <- u.DeepCopy():
			case <-ctx.Done():
			}
			return false
		}, nil)
		wfErr <- err
	}()
	childCh := make(chan childEvent, 16)

	node := func(u *unstructured.Unstructured) error {
		tmpl, _, _ := unstructured.NestedString(u.Object, "spec", "templateName")
		f, ok := byTemplate[tmpl]
		if !ok {
			return nil // Serial, Parallel, Suspend, StatusCheck nodes
		}
		s := st[f.Name]
		if condition(u, "Aborted") == "True" {
			return &WorkflowAbortedError{Workflow: name, Why: fmt.Sprintf("WorkflowNode %s (fault %s) is Aborted (%s)", u.GetName(), f.Name, conditionReason(u, "Aborted"))}
		}
		exceeded := condition(u, "DeadlineExceed") == "True"
		if exceeded && conditionReason(u, "DeadlineExceed") == "ParentNodeDeadlineExceed" {
			return &WorkflowAbortedError{Workflow: name, Why: fmt.Sprintf("WorkflowNode %s (fault %s) was cut short: its parent's deadline passed", u.GetName(), f.Name)}
		}
		if exceeded {
			// Not an error yet when the child has not reported its injection: its follower
			// may be a moment behind; it reports the child's end (or its injection timeout).
			s.exceeded = true
		}
		child, _, _ := unstructured.NestedString(u.Object, "status", "chaosResource", "name")
		kind, _, _ := unstructured.NestedString(u.Object, "status", "chaosResource", "kind")
		if child == "" || child == s.child || condition(u, "ChaosInjected") != "True" {
			return nil
		}
		if s.injected {
			return fmt.Errorf("fault %s: the chaos object %s of WorkflowNode %s was replaced by %s while the fault was active: it was deleted outside faultline (the workflow engine creates a missing one again), so the fault stopped for a while", f.Name, s.child, u.GetName(), child)
		}
		k, ok := b.served[kind]
		if !ok {
			return fmt.Errorf("fault %s: WorkflowNode %s created a %s, a kind this API server does not serve", f.Name, u.GetName(), kind)
		}
		if s.stop != nil {
			s.stop()
		}
		s.child, s.created = child, time.Now()
		cctx, stop := context.WithCancel(ctx)
		s.stop = stop
		go b.followChild(cctx, f, k.Resource, ns, child, s.created, applied.Add(f.Start.Std()+b.cfg.InjectionTimeout), childCh)
		return nil
	}
	// child handles what a child's follower saw.
	child := func(ev childEvent) error {
		s := st[ev.fault.Name]
		if ev.child != s.child {
			return nil // an earlier child
		}
		switch ev.what {
		case childFailed:
			return ev.err
		case childInjected:
			s.injected = true
			onInjected(ev.fault, ev.at)
		case childEnded:
			if !s.injected {
				return fmt.Errorf("fault %s: the chaos object %s of the Workflow %s ended before Chaos Mesh reported it injected (Selected and AllInjected): %s", ev.fault.Name, s.child, name, ev.why)
			}
			if !s.exceeded {
				// The engine sets DeadlineExceed before it deletes the child: ask the node.
				if n := b.nodeOf(ctx, nodeRes, sel, chaosmesh.ChaosTemplateName(ev.fault)); n != nil && condition(n, "DeadlineExceed") == "True" {
					s.exceeded = true
				}
			}
			if !s.exceeded {
				why := ev.why
				if why == "" {
					why = "it stopped before its WorkflowNode's deadline"
				}
				return fmt.Errorf("fault %s: the chaos object %s of the Workflow %s: %s; the fault was planned to be active", ev.fault.Name, s.child, name, why)
			}
			s.recovered = true
			onRecovered(ev.fault, ev.at)
		}
		return nil
	}
	allRecovered := func() bool {
		for _, s := range st {
			if !s.recovered {
				return false
			}
		}
		return true
	}
	var accomplished time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if !accomplished.IsZero() && allRecovered() {
			b.logf("%s accomplished", wf)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-wfErr:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("following %s: %w", wf, err)
		case u := <-nodeCh:
			if err := node(u); err != nil {
				return err
			}
		case ev := <-childCh:
			if err := child(ev); err != nil {
				return err
			}
		case u := <-wfCh:
			if u.GetAnnotations()[AnnotationWorkflowAbort] == "true" {
				return &WorkflowAbortedError{Workflow: name, Why: "annotated " + AnnotationWorkflowAbort + "=true (a StatusCheck with abortWithStatusCheck failed, or someone aborted it)"}
			}
			if condition(u, "Accomplished") != "True" || !accomplished.IsZero() {
				continue
			}
			accomplished = time.Now()
			// The node watch may lag behind: read the nodes once more.
			list, err := nodeRes.List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return fmt.Errorf("listing the WorkflowNodes of %s: %w", wf, err)
			}
			for i := range list.Items {
				if err := node(&list.Items[i]); err != nil {
					return err
				}
			}
			for _, f := range p.Faults {
				if s := st[f.Name]; s.child == "" {
					return fmt.Errorf("fault %s: Workflow %s was accomplished without creating the fault's chaos object", f.Name, name)
				}
			}
		case now := <-tick.C:
			for _, f := range p.Faults {
				if s := st[f.Name]; s.child == "" && now.After(applied.Add(f.Start.Std()+b.cfg.InjectionTimeout)) {
					return fmt.Errorf("fault %s: Chaos Mesh's workflow engine did not create its chaos object within %s of its planned start (%s): is chaos-controller-manager running? see `kubectl get workflownodes -n %s -l %s`",
						f.Name, b.cfg.InjectionTimeout, f.Start, ns, sel)
				}
			}
			if !accomplished.IsZero() && now.Sub(accomplished) > b.cfg.RecoverTimeout {
				var left []string
				for _, f := range p.Faults {
					if s := st[f.Name]; !s.recovered {
						left = append(left, fmt.Sprintf("fault %s (%s)", f.Name, s.child))
					}
				}
				return fmt.Errorf("%s was accomplished but Chaos Mesh has not recovered the targets of %s within %s", wf, strings.Join(left, ", "), b.cfg.RecoverTimeout)
			}
		}
	}
}

type childWhat int

const (
	childInjected childWhat = iota
	childEnded              // recovered, paused, or gone
	childFailed
)

type childEvent struct {
	fault plan.Fault
	child string
	what  childWhat
	at    time.Time
	why   string // childEnded before the deadline: why
	err   error  // childFailed
}

// followChild follows one chaos object a WorkflowNode created: until it is injected (Selected and
// AllInjected; by injectBy), then until its targets are recovered (its records all Not Injected,
// AllRecovered on the object being deleted, or the object gone) or it is paused.
func (b *Backend) followChild(ctx context.Context, f plan.Fault, r schema.GroupVersionResource, ns, name string, created, injectBy time.Time, out chan<- childEvent) {
	send := func(ev childEvent) {
		ev.fault, ev.child = f, name
		select {
		case out <- ev:
		case <-ctx.Done():
		}
	}
	res := b.c.Dynamic.Resource(r).Namespace(ns)
	ictx, cancel := context.WithDeadline(ctx, injectBy)
	last, seen, err := waitObject(ictx, res, name, nil, injected, nil)
	cancel()
	what := fmt.Sprintf("%s %s/%s (the chaos object of its WorkflowNode)", r.Resource, ns, name)
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, context.DeadlineExceeded):
		var obj *unstructured.Unstructured
		if last != nil {
			obj = last
		} else {
			obj = &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": name, "namespace": ns}}}
		}
		notes := b.objectEvents(ctx, kindOf(last), ns, name)
		said := ""
		if len(notes) > 0 {
			said = "; Chaos Mesh's Events: " + strings.Join(notes, "; ")
		}
		send(childEvent{what: childFailed, err: injectError(f.Name, what, obj, last, describeSelector(obj), said, b.cfg.InjectionTimeout)})
		return
	case err != nil:
		send(childEvent{what: childEnded, at: time.Now(), why: "it was deleted before Chaos Mesh reported it injected"})
		return
	}
	send(childEvent{what: childInjected, at: InjectedAt(last, created, seen)})
	why := ""
	_, at, err := waitObject(ctx, res, name, last, func(u *unstructured.Unstructured) bool {
		paused, _ := stopState(u)
		switch {
		case paused:
			why = fmt.Sprintf("it was paused (%s): Chaos Mesh recovered its targets and keeps the object", AnnotationPause)
			return true
		case recordsRecovered(u) || (u.GetDeletionTimestamp() != nil && condition(u, "AllRecovered") == "True"):
			if u.GetDeletionTimestamp() == nil {
				why = "its targets were recovered while it stays"
			} else {
				why = "it was deleted (its targets recovered)"
			}
			return true
		}
		return false
	}, nil)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		// Deleted (the engine's deletion at the deadline, or someone else's): gone now.
		send(childEvent{what: childEnded, at: time.Now(), why: "it was deleted"})
		return
	}
	send(childEvent{what: childEnded, at: at, why: why})
}

func kindOf(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	return u.GetKind()
}

// nodeOf reads the WorkflowNode of a template (nil when it cannot be read).
func (b *Backend) nodeOf(ctx context.Context, nodes dynamic.ResourceInterface, sel, template string) *unstructured.Unstructured {
	list, err := nodes.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil
	}
	for i := range list.Items {
		if t, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "templateName"); t == template {
			return &list.Items[i]
		}
	}
	return nil
}

// conditionReason returns the reason of a condition.
func conditionReason(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			s, _ := m["reason"].(string)
			return s
		}
	}
	return ""
}

// watchList lists and watches the objects matching a label selector, sending every version seen,
// and re-lists after errors, until ctx ends.
func watchList(ctx context.Context, res dynamic.ResourceInterface, selector string, out chan<- *unstructured.Unstructured) {
	send := func(u *unstructured.Unstructured) bool {
		select {
		case out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	bo := newBackoff()
	for ctx.Err() == nil {
		// ResourceVersion "0": served from the watch cache at once (as informers list); a
		// consistent list can wait a second for the cache to catch up, and the watch from the
		// list's version delivers every later change anyway.
		list, err := res.List(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: "0"})
		if err != nil {
			if bo.sleep(ctx) != nil {
				return
			}
			continue
		}
		for i := range list.Items {
			if !send(&list.Items[i]) {
				return
			}
		}
		w, err := res.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			if bo.sleep(ctx) != nil {
				return
			}
			continue
		}
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && (ev.Type == "ADDED" || ev.Type == "MODIFIED") {
				if !send(u) {
					w.Stop()
					return
				}
			}
		}
		w.Stop()
	}
}

// workflowChildren lists what a Workflow's engine created: its WorkflowNodes (label
// chaos-mesh.org/workflow) and the chaos objects they point to (status.chaosResource), plus any
// object of the given kinds with the same label. There is no garbage collector to rely on (nor
// on the test server): Cleanup deletes them explicitly.
func workflowChildren(ctx context.Context, c *Clients, kinds []Kind, wf Ref) ([]Ref, error) {
	sel := LabelWorkflow + "=" + wf.Name
	var out []Ref
	nodes, err := c.Dynamic.Resource(WorkflowNodes).Namespace(wf.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("listing the WorkflowNodes of %s: %w", wf, err)
	default:
		byKind := map[string]Kind{}
		for _, k := range kinds {
			byKind[k.Kind] = k
		}
		for _, n := range nodes.Items {
			out = append(out, Ref{Kind: "WorkflowNode", Resource: WorkflowNodes, Namespace: n.GetNamespace(), Name: n.GetName()})
			kind, _, _ := unstructured.NestedString(n.Object, "status", "chaosResource", "kind")
			name, _, _ := unstructured.NestedString(n.Object, "status", "chaosResource", "name")
			if k, ok := byKind[kind]; ok && name != "" {
				out = append(out, Ref{Kind: kind, Resource: k.Resource, Namespace: n.GetNamespace(), Name: name})
			}
		}
	}
	for _, k := range kinds {
		if k.Kind == "Workflow" {
			continue
		}
		list, err := c.Dynamic.Resource(k.Resource).Namespace(wf.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s of %s: %w", k.Resource.Resource, wf, err)
		}
		for _, it := range list.Items {
			out = append(out, Ref{Kind: k.Kind, Resource: k.Resource, Namespace: it.GetNamespace(), Name: it.GetName()})
		}
	}
	return out, nil
}

func isWorkflow(r Ref) bool { return strings.EqualFold(r.Kind, "Workflow") }
