package kubetestctl

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Names of Chaos Mesh's workflow engine (api/v1alpha1).
const (
	labelWorkflow     = "chaos-mesh.org/workflow"
	labelControlledBy = "chaos-mesh.org/controlled-by"
	annotationAbort   = "workflow.chaos-mesh.org/abort"
	// foregroundDeletion (metav1.FinalizerDeleteDependents): renderNodesByTemplates puts it on
	// every node.
	finalizerForeground = "foregroundDeletion"
)

var (
	workflows     = schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: "workflows"}
	workflowNodes = schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: "workflownodes"}
)

// WorkflowEngine is a TEST STAND-IN for Chaos Mesh's workflow engine (pkg/workflow/controllers,
// part of chaos-controller-manager). It is not Chaos Mesh: it plays the templates faultline
// compiles — Parallel, Serial, Suspend and chaos templates; a StatusCheck node is created and
// never checks — level-triggered, every Interval, as the engine's reconcilers do:
//
//   - workflow_entry_reconciler: a new Workflow gets status.startTime, Scheduled=True and its
//     entry node; Accomplished=True (and endTime) once the entry node is Accomplished;
//   - renderNodesByTemplates (new_node.go): every node has a GENERATED name (<template>-xxxxx),
//     labels chaos-mesh.org/workflow and controlled-by (its parent), an owner reference to its
//     parent (the Workflow for the entry), the finalizer foregroundDeletion, spec.startTime and,
//     with a template deadline, spec.deadline = start + deadline in WHOLE seconds (metav1.Time);
//   - deadline_reconciler: DeadlineExceed=False (NodeDeadlineNotExceed) until the deadline,
//     True (NodeDeadlineExceed) after it;
//   - parallel/serial reconcilers: Parallel creates all children, Serial one after the other
//     once the previous is finished (Accomplished or DeadlineExceed); both become Accomplished
//     when every child is finished;
//   - chaos_node_reconciler: an unfinished chaos node owns exactly one chaos object (generated
//     name <node>-xxxxx, labels controlled-by and workflow, owner reference to the node, the
//     template's embedded spec — no duration): it is created when missing, and CREATED AGAIN when
//     it disappears while the node is unfinished; status.chaosResource and ChaosInjected=True
//     (reason ChaosCRCreated) as soon as it exists — not when it is injected; once the node's
//     deadline passed, the object is deleted (its finalizer recovers the targets later) and
//     ChaosInjected=False (ChaosCRNotExists) once it is gone. A chaos node never becomes
//     Accomplished;
//   - abort: with workflow.chaos-mesh.org/abort=true on the Workflow, unfinished nodes get
//     Aborted=True (WorkflowAborted) and their chaos objects are deleted; nothing new starts.
//
// Nodes and chaos objects of a deleted Workflow are not touched (there is no garbage collector on
// the test server: whoever deletes must delete them). Status is written through the status
// subresource, which Workflow and WorkflowNode declare.
type WorkflowEngine struct {
	Dynamic dynamic.Interface
	// Chaos maps a chaos kind ("NetworkChaos") to its resource.
	Chaos map[string]schema.GroupVersionResource
	// Interval between reconcile rounds (default 50ms).
	Interval time.Duration

	wg    sync.WaitGroup
	wrote bool // in this round (one goroutine runs the rounds)
}

// Start runs the engine until ctx ends; the returned function waits for it to stop.
func (e *WorkflowEngine) Start(ctx context.Context) (wait func()) {
	if e.Interval <= 0 {
		e.Interval = 50 * time.Millisecond
	}
	e.wg.Go(func() {
		for ctx.Err() == nil {
			if !e.round(ctx) {
				sleep(ctx, e.Interval)
			}
		}
	})
	return e.wg.Wait
}

// Abort annotates the Workflow workflow.chaos-mesh.org/abort=true.
func (e *WorkflowEngine) Abort(ctx context.Context, namespace, name string) error {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"true"}}}`, annotationAbort)
	_, err := e.Dynamic.Resource(workflows).Namespace(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// round reconciles every Workflow once; true when it wrote something (the next round comes at
// once then: the engine's reconcilers react to each change).
func (e *WorkflowEngine) round(ctx context.Context) bool {
	list, err := e.Dynamic.Resource(workflows).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	e.wrote = false
	for i := range list.Items {
		e.workflow(ctx, &list.Items[i])
	}
	return e.wrote
}

func (e *WorkflowEngine) workflow(ctx context.Context, wf *unstructured.Unstructured) {
	if wf.GetDeletionTimestamp() != nil {
		return
	}
	ns := wf.GetNamespace()
	templates := map[string]map[string]any{}
	ts, _, _ := unstructured.NestedSlice(wf.Object, "spec", "templates")
	for _, t := range ts {
		if m, ok := t.(map[string]any); ok {
			templates[fmt.Sprint(m["name"])] = m
		}
	}
	nodeRes := e.Dynamic.Resource(workflowNodes).Namespace(ns)
	list, err := nodeRes.List(ctx, metav1.ListOptions{LabelSelector: labelWorkflow + "=" + wf.GetName()})
	if err != nil {
		return
	}
	nodes := list.Items
	byParent := map[string][]*unstructured.Unstructured{}
	for i := range nodes {
		n := &nodes[i]
		p := n.GetLabels()[labelControlledBy]
		byParent[p] = append(byParent[p], n)
	}
	aborted := wf.GetAnnotations()[annotationAbort] == "true"
	entry, _, _ := unstructured.NestedString(wf.Object, "spec", "entry")
	if _, started, _ := unstructured.NestedString(wf.Object, "status", "startTime"); !started {
		if len(byParent[wf.GetName()]) == 0 {
			if _, err := e.createNode(ctx, wf, nil, templates[entry]); err != nil {
				return
			}
		}
		e.wrote = true
		setStatus(ctx, e.Dynamic.Resource(workflows).Namespace(ns), wf.GetName(), func(st map[string]any) {
			st["startTime"] = time.Now().UTC().Format(time.RFC3339)
			st["conditions"] = []any{
				map[string]any{"type": "Accomplished", "status": "False", "reason": ""},
				map[string]any{"type": "Scheduled", "status": "True", "reason": "EntryCreated"},
			}
		})
		return
	}
	for i := range nodes {
		n := &nodes[i]
		if n.GetDeletionTimestamp() != nil {
			continue
		}
		e.node(ctx, wf, templates, n, byParent[n.GetName()], aborted)
	}
	if es := byParent[wf.GetName()]; len(es) > 0 && condition(es[0], "Accomplished") == "True" && condition(wf, "Accomplished") != "True" {
		setStatus(ctx, e.Dynamic.Resource(workflows).Namespace(ns), wf.GetName(), func(st map[string]any) {
			st["endTime"] = time.Now().UTC().Format(time.RFC3339)
			st["conditions"] = []any{
				map[string]any{"type": "Accomplished", "status": "True", "reason": "WorkflowAccomplished"},
				map[string]any{"type": "Scheduled", "status": "True", "reason": "EntryCreated"},
			}
		})
	}
}

// finished is WorkflowNodeFinished: Accomplished or DeadlineExceed.
func finished(n *unstructured.Unstructured) bool {
	return condition(n, "Accomplished") == "True" || condition(n, "DeadlineExceed") == "True"
}

func (e *WorkflowEngine) node(ctx context.Context, wf *unstructured.Unstructured, templates map[string]map[string]any,
	n *unstructured.Unstructured, children []*unstructured.Unstructured, aborted bool) {
	nodes := e.Dynamic.Resource(workflowNodes).Namespace(n.GetNamespace())
	conds := map[string]string{}
	// deadline_reconciler
	if d, ok, _ := unstructured.NestedString(n.Object, "spec", "deadline"); ok {
		at, _ := time.Parse(time.RFC3339, d)
		switch {
		case time.Now().After(at) && condition(n, "DeadlineExceed") != "True":
			conds["DeadlineExceed"] = "True:NodeDeadlineExceed"
		case !time.Now().After(at) && condition(n, "DeadlineExceed") == "":
			conds["DeadlineExceed"] = "False:NodeDeadlineNotExceed"
		}
	}
	if aborted && !finished(n) && condition(n, "Aborted") != "True" {
		conds["Aborted"] = "True:WorkflowAborted"
	}
	if len(conds) > 0 {
		setNodeConditions(ctx, nodes, n.GetName(), nil, conds)
		e.wrote = true
		return // the next round sees the new conditions
	}
	done := finished(n) || condition(n, "Aborted") == "True"
	typ, _, _ := unstructured.NestedString(n.Object, "spec", "type")
	tmpl, _, _ := unstructured.NestedString(n.Object, "spec", "templateName")
	want, _, _ := unstructured.NestedStringSlice(n.Object, "spec", "children")
	childDone := func() (all bool, byTemplate map[string]bool) {
		byTemplate = map[string]bool{}
		for _, c := range children {
			t, _, _ := unstructured.NestedString(c.Object, "spec", "templateName")
			byTemplate[t] = finished(c)
		}
		for _, t := range want {
			if !byTemplate[t] {
				return false, byTemplate
			}
		}
		return true, byTemplate
	}
	switch typ {
	case "Parallel", "Serial":
		if done {
			return
		}
		all, byTemplate := childDone()
		if all {
			setNodeConditions(ctx, nodes, n.GetName(), nil, map[string]string{"Accomplished": "True:NodeAccomplished"})
			e.wrote = true
			return
		}
		if aborted {
			return
		}
		for _, t := range want {
			f, exists := byTemplate[t]
			if !exists {
				_, _ = e.createNode(ctx, wf, n, templates[t])
				if typ == "Serial" {
					return
				}
				continue
			}
			if typ == "Serial" && !f {
				return // wait for it
			}
		}
	case "Suspend", "StatusCheck", "Task":
	default:
		e.chaosNode(ctx, n, typ, tmpl, templates, done || aborted)
	}
}

// chaosNode is chaos_node_reconciler's syncChaosResources and status update.
func (e *WorkflowEngine) chaosNode(ctx context.Context, n *unstructured.Unstructured, kind, tmpl string, templates map[string]map[string]any, done bool) {
	nodes := e.Dynamic.Resource(workflowNodes).Namespace(n.GetNamespace())
	res, ok := e.Chaos[kind]
	if !ok {
		return
	}
	chaos := e.Dynamic.Resource(res).Namespace(n.GetNamespace())
	list, err := chaos.List(ctx, metav1.ListOptions{LabelSelector: labelControlledBy + "=" + n.GetName()})
	if err != nil {
		return
	}
	items := list.Items
	slices.SortFunc(items, func(a, b unstructured.Unstructured) int {
		return a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time)
	})
	switch {
	case done:
		for _, it := range items {
			if it.GetDeletionTimestamp() == nil {
				bg := metav1.DeletePropagationBackground
				_ = chaos.Delete(ctx, it.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
			}
		}
	case len(items) == 0:
		spec, _ := templates[tmpl][lower(kind)].(map[string]any)
		wf := n.GetLabels()[labelWorkflow]
		child := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind,
			"metadata": map[string]any{"generateName": n.GetName() + "-", "namespace": n.GetNamespace(),
				"labels":          map[string]any{labelWorkflow: wf, labelControlledBy: n.GetName()},
				"ownerReferences": []any{ownerRef("WorkflowNode", n)}},
			"spec": spec,
		}}
		got, err := chaos.Create(ctx, child, metav1.CreateOptions{})
		if err != nil {
			return
		}
		items = []unstructured.Unstructured{*got}
	}
	var ref map[string]any
	status := "False:ChaosCRNotExists"
	if len(items) > 0 {
		ref = map[string]any{"apiGroup": "chaos-mesh.org", "kind": kind, "name": items[0].GetName()}
		status = "True:ChaosCRCreated"
	}
	cur, _, _ := unstructured.NestedString(n.Object, "status", "chaosResource", "name")
	stale := condition(n, "ChaosInjected")+":"+conditionReason(n, "ChaosInjected") != status
	if ref != nil {
		stale = stale || cur != ref["name"]
	} else {
		stale = stale || cur != ""
	}
	if stale {
		setNodeConditions(ctx, nodes, n.GetName(), ref, map[string]string{"ChaosInjected": status})
		e.wrote = true
	}
}

func ownerRef(kind string, owner *unstructured.Unstructured) map[string]any {
	return map[string]any{"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind, "name": owner.GetName(),
		"uid": string(owner.GetUID()), "controller": true, "blockOwnerDeletion": true}
}

// createNode is renderNodesByTemplates for one template (parent nil: the entry, owned by wf).
func (e *WorkflowEngine) createNode(ctx context.Context, wf, parent *unstructured.Unstructured, t map[string]any) (*unstructured.Unstructured, error) {
	if t == nil {
		return nil, fmt.Errorf("no such template")
	}
	name := fmt.Sprint(t["name"])
	typ := fmt.Sprint(t["templateType"])
	now := time.Now()
	owner, ownerKind := wf, "Workflow"
	if parent != nil {
		owner, ownerKind = parent, "WorkflowNode"
	}
	spec := map[string]any{"templateName": name, "workflowName": wf.GetName(), "type": typ,
		"startTime": now.UTC().Format(time.RFC3339)}
	if d, ok := t["deadline"].(string); ok {
		if dur, err := time.ParseDuration(d); err == nil {
			spec["deadline"] = now.Add(dur).UTC().Format(time.RFC3339) // whole seconds, as metav1.Time
		}
	}
	if c, ok := t["children"].([]any); ok {
		spec["children"] = c
	}
	if f := lower(typ); t[f] != nil {
		spec[f] = t[f]
	}
	node := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "WorkflowNode",
		"metadata": map[string]any{"generateName": name + "-", "namespace": wf.GetNamespace(),
			"labels":          map[string]any{labelWorkflow: wf.GetName(), labelControlledBy: owner.GetName()},
			"ownerReferences": []any{ownerRef(ownerKind, owner)},
			"finalizers":      []any{finalizerForeground}},
		"spec": spec,
	}}
	e.wrote = true
	return e.Dynamic.Resource(workflowNodes).Namespace(wf.GetNamespace()).Create(ctx, node, metav1.CreateOptions{})
}

func condition(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

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

// setNodeConditions merges conditions ("Status:Reason" by type) and, when ref is set, the chaos
// reference into a node's status, retrying conflicts. A nil ref with ChaosInjected False clears
// the reference.
func setNodeConditions(ctx context.Context, nodes dynamic.ResourceInterface, name string, ref map[string]any, conds map[string]string) {
	setStatus(ctx, nodes, name, func(st map[string]any) {
		if ref != nil {
			st["chaosResource"] = ref
		} else if conds["ChaosInjected"] == "False:ChaosCRNotExists" {
			delete(st, "chaosResource")
		}
		existing, _ := st["conditions"].([]any)
		var out []any
		for _, c := range existing {
			m, _ := c.(map[string]any)
			if _, ok := conds[fmt.Sprint(m["type"])]; !ok {
				out = append(out, m)
			}
		}
		for _, typ := range []string{"Accomplished", "DeadlineExceed", "ChaosInjected", "Aborted"} {
			if v, ok := conds[typ]; ok {
				status, reason := v, ""
				if i := indexByte(v, ':'); i >= 0 {
					status, reason = v[:i], v[i+1:]
				}
				out = append(out, map[string]any{"type": typ, "status": status, "reason": reason})
			}
		}
		st["conditions"] = out
	})
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func setStatus(ctx context.Context, res dynamic.ResourceInterface, name string, f func(map[string]any)) {
	for range 20 {
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return
		}
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		f(st)
		u.Object["status"] = st
		_, err = res.UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return
		}
	}
}
