package kubetestctl

import (
	"context"
	"fmt"
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

// Names of Chaos Mesh's workflow engine (api/v1alpha1).
const (
	labelWorkflow     = "chaos-mesh.org/workflow"
	labelControlledBy = "chaos-mesh.org/controlled-by"
	annotationAbort   = "workflow.chaos-mesh.org/abort"
)

var (
	workflows     = schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: "workflows"}
	workflowNodes = schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: "workflownodes"}
)

// WorkflowEngine is a TEST STAND-IN for Chaos Mesh's workflow engine (part of
// chaos-controller-manager). It is not Chaos Mesh: it plays only the shape faultline compiles —
// a Parallel entry whose children are Serial tracks of an optional Suspend (the fault's offset)
// and one chaos template with a deadline — and writes what the engine writes:
//
//   - on a new Workflow: status.startTime and the condition Scheduled=True;
//   - per track, on its own clock (the Suspend's deadline times Scale), a WorkflowNode named
//     <template>-<n> labelled chaos-mesh.org/workflow=<workflow>, its chaos object (same name,
//     the template's embedded spec, labels chaos-mesh.org/workflow and controlled-by), then
//     status.chaosResource and ChaosInjected=True (InjectAfter later); at the node's deadline
//     (times Scale) it deletes the chaos object and sets DeadlineExceed=True (reason
//     NodeDeadlineExceed), ChaosInjected=False, Accomplished=True;
//   - when every track ended, the Workflow's Accomplished=True and status.endTime;
//   - when the Workflow carries workflow.chaos-mesh.org/abort=true (Abort sets it, as a failed
//     StatusCheck with abortWithStatusCheck does), active nodes get Aborted=True (reason
//     WorkflowAborted), their chaos objects are deleted, and nothing else is scheduled.
//
// Suspend, Serial and Parallel nodes are not created (faultline does not read them). Status is
// written through the status subresource, which Workflow and WorkflowNode declare.
type WorkflowEngine struct {
	Dynamic dynamic.Interface
	// Chaos maps a chaos kind ("NetworkChaos") to its resource.
	Chaos map[string]schema.GroupVersionResource
	// Scale multiplies offsets and deadlines (default 1).
	Scale float64
	// InjectAfter is the delay between a chaos object's creation and ChaosInjected=True.
	InjectAfter time.Duration

	mu   sync.Mutex
	seen map[types.UID]bool
	wg   sync.WaitGroup
}

// Start runs the engine until ctx ends; the returned function waits for it to stop.
func (e *WorkflowEngine) Start(ctx context.Context) (wait func()) {
	if e.Scale == 0 {
		e.Scale = 1
	}
	e.seen = map[types.UID]bool{}
	e.wg.Go(func() {
		for ctx.Err() == nil {
			list, err := e.Dynamic.Resource(workflows).List(ctx, metav1.ListOptions{})
			if err == nil {
				for _, wf := range list.Items {
					e.mu.Lock()
					isNew := !e.seen[wf.GetUID()]
					e.seen[wf.GetUID()] = true
					e.mu.Unlock()
					if isNew && wf.GetDeletionTimestamp() == nil {
						e.wg.Go(func() { e.run(ctx, wf.GetNamespace(), wf.GetName()) })
					}
				}
			}
			sleep(ctx, 50*time.Millisecond)
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

func (e *WorkflowEngine) scaled(d string) time.Duration {
	v, _ := time.ParseDuration(d)
	return time.Duration(float64(v) * e.Scale)
}

type track struct {
	offset, deadline time.Duration
	chaos            map[string]any // the chaos template
}

// run plays one Workflow.
func (e *WorkflowEngine) run(ctx context.Context, ns, name string) {
	res := e.Dynamic.Resource(workflows).Namespace(ns)
	wf, err := res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	start := time.Now()
	setWorkflowStatus(ctx, res, name, func(st map[string]any) {
		st["startTime"] = start.UTC().Format(time.RFC3339)
		st["conditions"] = []any{
			map[string]any{"type": "Accomplished", "status": "False", "reason": ""},
			map[string]any{"type": "Scheduled", "status": "True", "reason": "EntryCreated"},
		}
	})
	templates := map[string]map[string]any{}
	ts, _, _ := unstructured.NestedSlice(wf.Object, "spec", "templates")
	for _, t := range ts {
		if m, ok := t.(map[string]any); ok {
			n, _ := m["name"].(string)
			templates[n] = m
		}
	}
	entry, _, _ := unstructured.NestedString(wf.Object, "spec", "entry")
	var tracks []track
	for _, c := range strSlice(templates[entry]["children"]) {
		serial := templates[c]
		if serial["templateType"] != "Serial" {
			continue
		}
		var tr track
		for _, step := range strSlice(serial["children"]) {
			t := templates[step]
			d, _ := t["deadline"].(string)
			if t["templateType"] == "Suspend" {
				tr.offset = e.scaled(d)
			} else {
				tr.deadline, tr.chaos = e.scaled(d), t
			}
		}
		if tr.chaos != nil {
			tracks = append(tracks, tr)
		}
	}
	var wg sync.WaitGroup
	aborted := make([]bool, len(tracks))
	for i, tr := range tracks {
		wg.Go(func() { aborted[i] = !e.track(ctx, ns, name, i, start, tr) })
	}
	wg.Wait()
	for _, a := range aborted {
		if a {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	setWorkflowStatus(ctx, res, name, func(st map[string]any) {
		st["endTime"] = time.Now().UTC().Format(time.RFC3339)
		st["conditions"] = []any{
			map[string]any{"type": "Accomplished", "status": "True", "reason": "WorkflowAccomplished"},
			map[string]any{"type": "Scheduled", "status": "True", "reason": "EntryCreated"},
		}
	})
}

// track plays one Serial track; false when the Workflow was aborted or is gone.
func (e *WorkflowEngine) track(ctx context.Context, ns, wfName string, i int, start time.Time, tr track) bool {
	wfRes := e.Dynamic.Resource(workflows).Namespace(ns)
	// wait until at, watching for an abort; false when aborted or gone.
	wait := func(at time.Time) bool {
		for {
			wf, err := wfRes.Get(ctx, wfName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || ctx.Err() != nil || (err == nil && wf.GetDeletionTimestamp() != nil) {
				return false
			}
			if err == nil && wf.GetAnnotations()[annotationAbort] == "true" {
				return false
			}
			if !time.Now().Before(at) {
				return true
			}
			sleep(ctx, min(50*time.Millisecond, time.Until(at)))
		}
	}
	if !wait(start.Add(tr.offset)) {
		return false
	}
	tmpl, _ := tr.chaos["name"].(string)
	kind, _ := tr.chaos["templateType"].(string)
	field := strings.ToLower(kind[:1]) + kind[1:]
	spec, _ := tr.chaos[field].(map[string]any)
	nodeName := fmt.Sprintf("%s-%d", tmpl, i)
	nodes := e.Dynamic.Resource(workflowNodes).Namespace(ns)
	now := time.Now()
	node := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "WorkflowNode",
		"metadata": map[string]any{"name": nodeName, "namespace": ns, "labels": map[string]any{labelWorkflow: wfName}},
		"spec": map[string]any{"templateName": tmpl, "workflowName": wfName, "type": kind,
			"startTime": now.UTC().Format(time.RFC3339), "deadline": now.Add(tr.deadline).UTC().Format(time.RFC3339), field: spec},
	}}
	if _, err := nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return false
	}
	chaosRes := e.Chaos[kind]
	child := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind,
		"metadata": map[string]any{"name": nodeName, "namespace": ns, "labels": map[string]any{labelWorkflow: wfName, labelControlledBy: nodeName}},
		"spec":     spec,
	}}
	if _, err := e.Dynamic.Resource(chaosRes).Namespace(ns).Create(ctx, child, metav1.CreateOptions{}); err != nil {
		setNodeConditions(ctx, nodes, nodeName, nil, map[string]string{"ChaosInjected": "False:ChaosCRCreateFailed"})
		return false
	}
	ref := map[string]any{"apiGroup": "chaos-mesh.org", "kind": kind, "name": nodeName}
	setNodeConditions(ctx, nodes, nodeName, ref, map[string]string{"ChaosInjected": "False:ChaosCRCreated"})
	if !wait(time.Now().Add(e.InjectAfter)) {
		e.abortNode(ctx, nodes, nodeName, chaosRes, ns)
		return false
	}
	setNodeConditions(ctx, nodes, nodeName, ref, map[string]string{"ChaosInjected": "True:ChaosCRCreated", "DeadlineExceed": "False:NodeDeadlineNotExceed"})
	if !wait(now.Add(tr.deadline)) {
		e.abortNode(ctx, nodes, nodeName, chaosRes, ns)
		return false
	}
	bg := metav1.DeletePropagationBackground
	_ = e.Dynamic.Resource(chaosRes).Namespace(ns).Delete(ctx, nodeName, metav1.DeleteOptions{PropagationPolicy: &bg})
	setNodeConditions(ctx, nodes, nodeName, ref, map[string]string{"ChaosInjected": "False:ChaosCRDeleted",
		"DeadlineExceed": "True:NodeDeadlineExceed", "Accomplished": "True:NodeAccomplished"})
	return true
}

func (e *WorkflowEngine) abortNode(ctx context.Context, nodes dynamic.ResourceInterface, name string, chaosRes schema.GroupVersionResource, ns string) {
	bg := metav1.DeletePropagationBackground
	_ = e.Dynamic.Resource(chaosRes).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	setNodeConditions(ctx, nodes, name, nil, map[string]string{"Aborted": "True:WorkflowAborted", "ChaosInjected": "False:ChaosCRDeleted"})
}

// setNodeConditions merges conditions ("Status:Reason" by type) and the chaos reference into a
// node's status, retrying conflicts.
func setNodeConditions(ctx context.Context, nodes dynamic.ResourceInterface, name string, ref map[string]any, conds map[string]string) {
	for range 20 {
		u, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return
		}
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		if ref != nil {
			st["chaosResource"] = ref
		}
		existing, _ := st["conditions"].([]any)
		var out []any
		for _, c := range existing {
			m, _ := c.(map[string]any)
			if _, ok := conds[fmt.Sprint(m["type"])]; !ok {
				out = append(out, m)
			}
		}
		for typ, v := range conds {
			status, reason, _ := strings.Cut(v, ":")
			out = append(out, map[string]any{"type": typ, "status": status, "reason": reason})
		}
		st["conditions"] = out
		u.Object["status"] = st
		_, err = nodes.UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return
		}
	}
}

func setWorkflowStatus(ctx context.Context, res dynamic.ResourceInterface, name string, f func(map[string]any)) {
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

func strSlice(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
