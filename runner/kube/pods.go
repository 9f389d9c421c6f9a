package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TargetPods lists the names of the pods target.kubernetes selects (its
// namespace and label selector), for the Prometheus source of the Go
// runtime SLIs (runner.PodLister): a Service's other pods, or another
// release in the namespace, are not the target. The list is every pod seen
// since Prepare, so a pod a fault killed (and its replacement) both count.
// An error means the pods could not be listed (no permission, or no core
// API): the caller reads the whole namespace and says so.
func (b *Backend) TargetPods(ctx context.Context) ([]string, error) {
	k := b.s.Target.Kubernetes
	if k == nil {
		return nil, nil
	}
	list, err := b.c.Dynamic.Resource(b.pods).Namespace(k.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(k.Selector).String(),
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		if len(b.seenPods) > 0 {
			return slices.Sorted(maps.Keys(b.seenPods)), nil
		}
		return nil, fmt.Errorf("listing pods %s in namespace %s: %w", labels.SelectorFromSet(k.Selector), k.Namespace, err)
	}
	if b.seenPods == nil {
		b.seenPods = map[string]bool{}
	}
	for _, p := range list.Items {
		b.seenPods[p.GetName()] = true
	}
	return slices.Sorted(maps.Keys(b.seenPods)), nil
}
