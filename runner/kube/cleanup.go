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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"faultline.dev/faultline/compiler/chaosmesh"
)

// Ref names one object on the cluster.
type Ref struct {
	Kind      string
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
	// RunID is the object's faultline.dev/run-id label, when listed.
	RunID string
}

// String is "Kind namespace/name".
func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

func (r Ref) key() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// LeftoverError is a cleanup that could not confirm every object gone before its deadline.
type LeftoverError struct {
	// Objects may be left on the cluster (each expires by itself at the end of its duration,
	// except the Undated ones).
	Objects []Ref
	// Cause is the last error seen (the API server unreachable, a stuck finalizer, ...).
	Cause error
	// Undated are those of Objects that have no duration of their own: a Workflow, its nodes and
	// the chaos objects its engine created (they stay, and keep their fault, until deleted).
	Undated []Ref
	// Deleting are those of Objects whose deletion the API server accepted: Chaos Mesh's
	// finalizer lets each go only once it has recovered its targets, so their duration no
	// longer ends them.
	Deleting []Ref
	// Hint says how to finish the job.
	Hint string
}

func (e *LeftoverError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cleanup did not finish: %d object(s) may be left on the cluster", len(e.Objects))
	if e.Cause != nil {
		fmt.Fprintf(&b, " (last error: %v)", e.Cause)
	}
	b.WriteString(":")
	for _, r := range e.Objects {
		b.WriteString("\n  ")
		b.WriteString(r.String())
	}
	deleting := map[string]bool{}
	for _, r := range e.Deleting {
		deleting[r.key()] = true
	}
	undated, dated := 0, 0
	for _, r := range e.Objects {
		switch {
		case slices.ContainsFunc(e.Undated, func(u Ref) bool { return u.key() == r.key() }):
			undated++
		case !deleting[r.key()]:
			dated++
		}
	}
	var notes []string
	if n := len(e.Deleting); n > 0 {
		notes = append(notes, fmt.Sprintf("%s being deleted: Chaos Mesh's finalizer %s lets go of an object only once it has recovered its targets (a chaos daemon that keeps failing keeps it there, and perhaps its fault)",
			count(n, len(e.Objects), "is", "are"), FinalizerRecords))
	}
	if undated > 0 {
		notes = append(notes, count(undated, len(e.Objects), "has", "have")+" no duration (a Workflow, its nodes and the chaos objects its engine created): they stay, and keep their fault, until deleted")
	}
	if dated > 0 {
		notes = append(notes, count(dated, len(e.Objects), "expires", "expire")+" by itself at the end of its duration")
	}
	b.WriteString("\n")
	b.WriteString(strings.Join(notes, "; "))
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *LeftoverError) Unwrap() error { return e.Cause }

// count is "each" (all of them, one verb) or "N of them" for a note of LeftoverError.
func count(n, all int, one, many string) string {
	switch {
	case n == all && n == 1:
		return "it " + one
	case n == all:
		return "each " + one
	}
	return fmt.Sprintf("%d of them %s", n, many)
}

// Cleaner deletes faultline's objects by label and waits until they are gone.
type Cleaner struct {
	Clients *Clients
	// Kinds to look in; nil: every namespaced Chaos Mesh kind the server serves (CleanupKinds).
	Kinds []Kind
	// Namespaces to look in; nil or "": every namespace.
	Namespaces []string
	// Selector is the label selector (faultline.dev/run-id=ID, or managed-by=faultline for --all).
	Selector string
	// Known are objects to delete even if listing does not show them (yet): what a run applied.
	Known []Ref
	// ForceFinalizers annotates objects still there StuckAfter after their deletion with
	// chaos-mesh.chaos-mesh.org/cleanFinalizer=forced: Chaos Mesh then drops its finalizer without
	// recovering.
	ForceFinalizers bool
	// StuckAfter is how long a deleted object may stay before it counts as stuck (default 10s).
	StuckAfter time.Duration
	// RunID, when set, goes into the hint of a LeftoverError.
	RunID string
	Log   io.Writer

	workflows map[string]Ref  // Workflows found: their nodes and chaos children are deleted too
	undated   map[string]bool // keys of Workflows, their nodes and children (no duration)
	requested map[string]bool // keys whose deletion the API server accepted
}

func (c *Cleaner) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

func (c *Cleaner) kinds(ctx context.Context) ([]Kind, error) {
	if c.Kinds != nil {
		return c.Kinds, nil
	}
	served, err := c.Clients.ServedKinds(ctx)
	if err != nil {
		return nil, err
	}
	c.Kinds = append(CleanupKinds(served), c.Clients.LoadKinds(ctx)...)
	return c.Kinds, nil
}

// List returns the objects matching the selector, sorted.
func (c *Cleaner) List(ctx context.Context) ([]Ref, error) {
	kinds, err := c.kinds(ctx)
	if err != nil {
		return nil, err
	}
	nss := c.Namespaces
	if len(nss) == 0 {
		nss = []string{metav1.NamespaceAll}
	}
	var out []Ref
	for _, k := range kinds {
		for _, ns := range nss {
			var list *unstructured.UnstructuredList
			err := retryUnreachable(ctx, 5*time.Second, func() error {
				var err error
				list, err = c.Clients.Dynamic.Resource(k.Resource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: c.Selector})
				return err
			})
			if err != nil {
				where := "every namespace"
				if ns != "" {
					where = "namespace " + ns
				}
				return nil, fmt.Errorf("listing %s in %s (labels %s): %w", k.Resource.Resource, where, c.Selector, err)
			}
			for _, it := range list.Items {
				out = append(out, Ref{Kind: k.Kind, Resource: k.Resource, Namespace: it.GetNamespace(), Name: it.GetName(), RunID: it.GetLabels()[LabelRunID]})
			}
		}
	}
	sortRefs(out)
	return out, nil
}

func sortRefs(rs []Ref) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].key() < rs[j].key() })
}

// Run deletes every object matching the selector (and every Known one) with background
// propagation, and waits until they are gone. While the API server is unreachable it retries with
// backoff until ctx ends; then it returns a *LeftoverError listing what may be left. It returns the
// objects it deleted (found and confirmed gone), sorted.
func (c *Cleaner) Run(ctx context.Context) ([]Ref, error) {
	if c.StuckAfter <= 0 {
		c.StuckAfter = 10 * time.Second
	}
	pending := map[string]Ref{}
	for _, r := range c.Known {
		pending[r.key()] = r
	}
	var deleted []Ref
	bo := newBackoff()
	var lastErr error
	stuck, listed := false, false
	for {
		err := c.round(ctx, pending, &deleted, &listed)
		if err == nil {
			sortRefs(deleted)
			return deleted, nil
		}
		lastErr = err
		stuck = stuck || errors.Is(err, errStuck)
		if ctx.Err() != nil || !retryable(err) {
			break
		}
		c.logf("cleanup: %v; retrying", err)
		if bo.sleep(ctx) != nil {
			break
		}
	}
	left := make([]Ref, 0, len(pending))
	for _, r := range pending {
		left = append(left, r)
	}
	sortRefs(left)
	sortRefs(deleted)
	if len(left) == 0 && listed {
		return deleted, lastErr
	}
	var undated, deleting []Ref
	for _, r := range left {
		if c.undated[r.key()] {
			undated = append(undated, r)
		}
		if c.requested[r.key()] {
			deleting = append(deleting, r)
		}
	}
	again := "faultline cleanup --all"
	if c.RunID != "" {
		again = "faultline cleanup --run-id " + c.RunID
	}
	var hint string
	switch {
	case stuck && !c.ForceFinalizers:
		hint = fmt.Sprintf("objects stuck in deletion (Chaos Mesh did not remove its finalizer %s) can be forced with `%s --force-finalizers`", FinalizerRecords, again)
	case stuck:
		hint = "Chaos Mesh's controller did not act on " + AnnotationCleanFinalizer + "=" + CleanFinalizerForced + ": is it running?"
	default:
		hint = fmt.Sprintf("run `%s` once the API server answers", again)
	}
	if !listed {
		hint += " (listed above: the objects this run created; others with its label may exist)"
	}
	return deleted, &LeftoverError{Objects: left, Cause: lastErr, Hint: hint, Undated: undated, Deleting: deleting}
}

var (
	errListing = errors.New("listing")
	errStuck   = errors.New("stuck in deletion")
)

func retryable(err error) bool {
	return Unreachable(err) || errors.Is(err, errStuck) || errors.Is(err, errListing) || errors.Is(err, context.DeadlineExceeded)
}

// round lists, deletes and waits once.
func (c *Cleaner) round(ctx context.Context, pending map[string]Ref, deleted *[]Ref, listed *bool) error {
	found, err := c.List(ctx)
	if err != nil {
		// NotFound: a server that just came back may serve the kinds a moment after it answers.
		if Unreachable(err) || ctx.Err() != nil || (apierrors.IsNotFound(err) && c.Kinds != nil) {
			return fmt.Errorf("%w: %w", errListing, err)
		}
		return err
	}
	*listed = true
	for _, r := range found {
		pending[r.key()] = r
	}
	// A Workflow's engine made WorkflowNodes and chaos objects that do not carry faultline's
	// labels: find them by the Workflow's name, in this round and every later one. They go in
	// order — the Workflow, then its nodes, then their chaos objects — since the engine creates
	// a node's missing chaos object again while the node is there and unfinished
	// (chaos_node_reconciler), and nodes while the Workflow is there.
	if c.workflows == nil {
		c.workflows = map[string]Ref{}
		c.undated = map[string]bool{}
	}
	for _, r := range pending {
		if isWorkflow(r) {
			c.workflows[r.key()] = r
			c.undated[r.key()] = true
		}
	}
	children := func() ([]Ref, error) {
		var out []Ref
		for _, wf := range c.workflows {
			refs, err := workflowChildren(ctx, c.Clients, c.Kinds, wf)
			if err != nil {
				if Unreachable(err) || ctx.Err() != nil {
					return nil, fmt.Errorf("%w: %w", errListing, err)
				}
				return nil, err
			}
			for _, r := range refs {
				c.undated[r.key()] = true
				pending[r.key()] = r
			}
			out = append(out, refs...)
		}
		return out, nil
	}
	kids, err := children()
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		return nil
	}
	isKid := map[string]bool{}
	for _, r := range kids {
		isKid[r.key()] = true
	}
	var first, nodes []Ref
	for _, r := range pending {
		switch {
		case r.Kind == "WorkflowNode":
			nodes = append(nodes, r)
		case !isKid[r.key()]:
			first = append(first, r)
		}
	}
	if err := c.deleteAndWait(ctx, pending, deleted, first); err != nil {
		return err
	}
	if err := c.deleteAndWait(ctx, pending, deleted, nodes); err != nil {
		return err
	}
	// With the Workflow and its nodes gone nothing creates chaos objects any more: list them now.
	if _, err := children(); err != nil {
		return err
	}
	var rest []Ref
	for _, r := range pending {
		rest = append(rest, r)
	}
	return c.deleteAndWait(ctx, pending, deleted, rest)
}

// deleteAndWait deletes refs (background propagation) and waits for all of them at once (their
// finalizers run in parallel); the gone ones leave pending for deleted.
func (c *Cleaner) deleteAndWait(ctx context.Context, pending map[string]Ref, deleted *[]Ref, refs []Ref) error {
	if len(refs) == 0 {
		return nil
	}
	sortRefs(refs)
	bg := metav1.DeletePropagationBackground
	for _, r := range refs {
		err := c.res(r).Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", r, err)
		}
		if c.requested == nil {
			c.requested = map[string]bool{}
		}
		c.requested[r.key()] = true
	}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, r := range refs {
		wg.Go(func() {
			err := c.waitGone(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				delete(pending, r.key())
				*deleted = append(*deleted, r)
			} else if firstErr == nil {
				firstErr = fmt.Errorf("waiting for %s to be gone: %w", r, err)
			}
		})
	}
	wg.Wait()
	return firstErr
}

func (c *Cleaner) res(r Ref) dynamic.ResourceInterface {
	return c.Clients.Dynamic.Resource(r.Resource).Namespace(r.Namespace)
}

// waitGone waits for one deleted object; after StuckAfter it forces the finalizer off when asked
// to, else reports errStuck.
func (c *Cleaner) waitGone(ctx context.Context, r Ref) error {
	sctx, cancel := context.WithTimeout(ctx, c.StuckAfter)
	_, _, err := waitObject(sctx, c.res(r), r.Name, nil, nil, nil)
	cancel()
	if err == nil || ctx.Err() != nil {
		return err
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Still there, or the server stopped answering meanwhile?
	if _, gerr := c.res(r).Get(ctx, r.Name, metav1.GetOptions{}); gerr != nil {
		if apierrors.IsNotFound(gerr) {
			return nil
		}
		return gerr
	}
	if !c.ForceFinalizers {
		return fmt.Errorf("%w: still there %s after its deletion (finalizer %s: Chaos Mesh did not recover it)", errStuck, c.StuckAfter, FinalizerRecords)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, AnnotationCleanFinalizer, CleanFinalizerForced)
	if _, err := c.res(r).Patch(ctx, r.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("annotating %s with %s=%s: %w", r, AnnotationCleanFinalizer, CleanFinalizerForced, err)
	}
	c.logf("cleanup: %s was stuck in deletion: annotated %s=%s", r, AnnotationCleanFinalizer, CleanFinalizerForced)
	sctx, cancel = context.WithTimeout(ctx, c.StuckAfter)
	defer cancel()
	_, _, err = waitObject(sctx, c.res(r), r.Name, nil, nil, nil)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%w: still there after %s=%s", errStuck, AnnotationCleanFinalizer, CleanFinalizerForced)
	}
	return err
}

// LabelSelectorAll selects every object faultline manages (`faultline cleanup --all`).
func LabelSelectorAll() string { return chaosmesh.LabelManagedBy + "=" + chaosmesh.ManagedByValue }

// LabelSelectorRun selects the objects of one run (`faultline cleanup --run-id ID`).
func LabelSelectorRun(runID string) string {
	return LabelSelectorAll() + "," + LabelRunID + "=" + chaosmesh.LabelValue(runID)
}
