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
// Chaos Mesh marks it Accomplished. Each fault's window comes from the WorkflowNode of its chaos
// template (spec.templateName, label chaos-mesh.org/workflow): injected when the node reports
// ChaosInjected=True, at the latest "Apply Succeeded" record of its chaos object
// (status.chaosResource; Chaos Mesh writes whole seconds) clamped between the apply plus the
// fault's offset (the node cannot start earlier) and the moment faultline saw ChaosInjected
// (WorkflowNode conditions carry no time); recovered when faultline saw the
// node's own deadline exceeded (NodeDeadlineExceed) or Accomplished. The abort annotation
// workflow.chaos-mesh.org/abort=true, or a node's Aborted (or ParentNodeDeadlineExceed)
// condition, ends it with a *WorkflowAbortedError. A chaos node not injected within
// InjectionTimeout of its planned start is an error.
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
		firstSeen           time.Time
		injected, recovered bool
	}
	st := map[string]*state{}
	for _, f := range p.Faults {
		st[f.Name] = &state{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

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

	node := func(u *unstructured.Unstructured) error {
		tmpl, _, _ := unstructured.NestedString(u.Object, "spec", "templateName")
		f, ok := byTemplate[tmpl]
		if !ok {
			return nil // Serial, Parallel, Suspend, StatusCheck nodes
		}
		s := st[f.Name]
		now := time.Now()
		if condition(u, "Aborted") == "True" {
			return &WorkflowAbortedError{Workflow: name, Why: fmt.Sprintf("WorkflowNode %s (fault %s) is Aborted (%s)", u.GetName(), f.Name, conditionReason(u, "Aborted"))}
		}
		exceeded := condition(u, "DeadlineExceed") == "True"
		if exceeded && conditionReason(u, "DeadlineExceed") == "ParentNodeDeadlineExceed" {
			return &WorkflowAbortedError{Workflow: name, Why: fmt.Sprintf("WorkflowNode %s (fault %s) was cut short: its parent's deadline passed", u.GetName(), f.Name)}
		}
		ended := exceeded || condition(u, "Accomplished") == "True"
		if !s.injected && condition(u, "ChaosInjected") == "True" {
			s.injected = true
			// The node cannot start before its offset has passed since the apply.
			onInjected(f, InjectedAt(b.chaosChild(ctx, u), applied.Add(f.Start.Std()), now))
		}
		if ended && !s.recovered {
			if !s.injected {
				return fmt.Errorf("fault %s: WorkflowNode %s ended without Chaos Mesh reporting its chaos injected (ChaosInjected is %q)", f.Name, u.GetName(), condition(u, "ChaosInjected"))
			}
			s.recovered = true
			onRecovered(f, now)
		}
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
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
		case u := <-wfCh:
			if u.GetAnnotations()[AnnotationWorkflowAbort] == "true" {
				return &WorkflowAbortedError{Workflow: name, Why: "annotated " + AnnotationWorkflowAbort + "=true (a StatusCheck with abortWithStatusCheck failed, or someone aborted it)"}
			}
			if condition(u, "Accomplished") != "True" {
				continue
			}
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
				s := st[f.Name]
				if !s.injected {
					return fmt.Errorf("fault %s: Workflow %s was accomplished without Chaos Mesh reporting the fault's chaos injected", f.Name, name)
				}
				if !s.recovered {
					s.recovered = true
					onRecovered(f, time.Now())
				}
			}
			b.logf("%s accomplished", wf)
			return nil
		case now := <-tick.C:
			for _, f := range p.Faults {
				if s := st[f.Name]; !s.injected && now.After(applied.Add(f.Start.Std()+b.cfg.InjectionTimeout)) {
					return fmt.Errorf("fault %s: Chaos Mesh's workflow engine did not report it injected within %s of its planned start (%s): is chaos-controller-manager running, and do the fault's selectors match pods? see `kubectl get workflownodes -n %s -l %s`",
						f.Name, b.cfg.InjectionTimeout, f.Start, ns, sel)
				}
			}
		}
	}
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

// chaosChild reads the chaos object a chaos node created (status.chaosResource); nil when it
// cannot be read.
func (b *Backend) chaosChild(ctx context.Context, node *unstructured.Unstructured) *unstructured.Unstructured {
	kind, _, _ := unstructured.NestedString(node.Object, "status", "chaosResource", "kind")
	cname, _, _ := unstructured.NestedString(node.Object, "status", "chaosResource", "name")
	k, ok := b.served[kind]
	if !ok || cname == "" {
		return nil
	}
	u, err := b.c.Dynamic.Resource(k.Resource).Namespace(node.GetNamespace()).Get(ctx, cname, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
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
