package kube

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"faultline.dev/faultline/schema"
)

// ProtectedNamespaces are refused unless --allow-namespace names them: the control plane's own
// namespaces and Chaos Mesh's.
var ProtectedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "chaos-mesh"}

// Rules a run can be refused by.
const (
	RuleProtectedNamespace = "protected-namespace"
	RuleAllowedNamespaces  = "guardrails.allowedNamespaces"
	RuleMaxBlastRadius     = "guardrails.maxBlastRadius"
	RuleLeftovers          = "leftovers"
	RulePermission         = "permission"
)

// Refusal is one reason not to run: which fault, which rule, what and how to lift it.
type Refusal struct {
	Fault   string
	Rule    string
	Message string
}

func (r Refusal) String() string {
	if r.Fault == "" {
		return fmt.Sprintf("[%s] %s", r.Rule, r.Message)
	}
	return fmt.Sprintf("fault %s: [%s] %s", r.Fault, r.Rule, r.Message)
}

// RefusedError is a run refused before anything was created on the cluster. The command maps it to
// exit code 2 (usage): each refusal is lifted by a flag (--allow-namespace, --allow-blast-radius,
// --force) or by changing the scenario or the credentials, never by retrying.
type RefusedError struct {
	Scenario string
	Refusals []Refusal
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to run scenario %s on the cluster:", e.Scenario)
	for _, r := range e.Refusals {
		b.WriteString("\n  ")
		b.WriteString(r.String())
	}
	return b.String()
}

// Rules lists the rules that refused, sorted, without duplicates.
func (e *RefusedError) Rules() []string {
	var out []string
	for _, r := range e.Refusals {
		if !slices.Contains(out, r.Rule) {
			out = append(out, r.Rule)
		}
	}
	sort.Strings(out)
	return out
}

// Guardrails checks the objects of a run against the protected namespaces and the scenario's
// guardrails, offline:
//
//   - protected-namespace: no object is created in, and no fault selects pods in, kube-system,
//     kube-public, kube-node-lease or chaos-mesh unless allowNamespaces names it;
//   - guardrails.allowedNamespaces: every namespace a fault selects pods in (its selector, and a
//     NetworkChaos peer's) is in the list; without the list, the target's namespace
//     (target.kubernetes.namespace) is the only one allowed, as the schema documents;
//   - guardrails.maxBlastRadius: a fault's share of the selected pods (mode all = 100%,
//     fixed-percent and random-max-percent = value) is at most the cap unless allowBlastRadius;
//     modes one and fixed name a count of pods, not a share, and are not capped.
func Guardrails(s *schema.Scenario, objs []*Object, allowNamespaces []string, allowBlastRadius bool) []Refusal {
	var out []Refusal
	var allowed []string
	if g := s.Guardrails; g != nil && len(g.AllowedNamespaces) > 0 {
		allowed = g.AllowedNamespaces
	} else if k := s.Target.Kubernetes; k != nil && k.Namespace != "" {
		allowed = []string{k.Namespace}
	}
	for _, o := range objs {
		name := o.Fault.Name
		touched := selectorNamespaces(o.Obj)
		for _, ns := range append([]string{o.Obj.GetNamespace()}, touched...) {
			if slices.Contains(ProtectedNamespaces, ns) && !slices.Contains(allowNamespaces, ns) {
				out = append(out, Refusal{Fault: name, Rule: RuleProtectedNamespace, Message: fmt.Sprintf(
					"%s touches namespace %s, which faultline refuses by default (%s); pass --allow-namespace %s if you mean it",
					o, ns, strings.Join(ProtectedNamespaces, ", "), ns)})
			}
		}
		if allowed != nil {
			for _, ns := range touched {
				if !slices.Contains(allowed, ns) {
					out = append(out, Refusal{Fault: name, Rule: RuleAllowedNamespaces, Message: fmt.Sprintf(
						"selects pods in namespace %s, outside the allowed namespaces [%s]; add %s to guardrails.allowedNamespaces or change the fault's selector",
						ns, strings.Join(allowed, ", "), ns)})
				}
			}
		}
		if g := s.Guardrails; g != nil && g.MaxBlastRadius > 0 && !allowBlastRadius {
			f := s.Faults[name]
			share, what := 0.0, ""
			switch f.Mode {
			case schema.ModeAll:
				share, what = 100, "mode all: every selected pod"
			case schema.ModeFixedPercent:
				share, what = float64(f.Value), fmt.Sprintf("mode fixed-percent, value %d", f.Value)
			case schema.ModeRandomMaxPercent:
				share, what = float64(f.Value), fmt.Sprintf("mode random-max-percent, value %d", f.Value)
			}
			if share > g.MaxBlastRadius {
				out = append(out, Refusal{Fault: name, Rule: RuleMaxBlastRadius, Message: fmt.Sprintf(
					"hits up to %g%% of the selected pods (%s), above guardrails.maxBlastRadius %g%%; lower the fault's mode/value, raise the cap, or pass --allow-blast-radius",
					share, what, g.MaxBlastRadius)})
			}
		}
	}
	return out
}

// selectorNamespaces are the namespaces an object selects pods in: spec.selector.namespaces and,
// for a NetworkChaos with a peer, spec.target.selector.namespaces. A selector without namespaces
// selects in the object's own namespace.
func selectorNamespaces(u *unstructured.Unstructured) []string {
	var out []string
	for _, path := range [][]string{{"spec", "selector", "namespaces"}, {"spec", "target", "selector", "namespaces"}} {
		nss, found, _ := unstructured.NestedStringSlice(u.Object, path...)
		if !found {
			if path[1] == "selector" {
				out = append(out, u.GetNamespace())
			}
			continue
		}
		if len(nss) == 0 {
			nss = []string{u.GetNamespace()}
		}
		for _, ns := range nss {
			if !slices.Contains(out, ns) {
				out = append(out, ns)
			}
		}
	}
	return out
}
