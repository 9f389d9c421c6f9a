package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/results"
)

// TestAuthEverySelectedNamespace (issue 12, item 9): Chaos Mesh's auth webhook requires create
// on the chaos kind in EVERY namespace the selector selects, not only the object's own. A user
// who may create NetworkChaos in shop but not in billing runs a fault whose selector spans both:
// the run must fail before any fault is injected, name the namespace billing, and leave nothing.
func TestAuthEverySelectedNamespace(t *testing.T) {
	managerLogOnFailure(t)
	c := shared.cluster
	ctx := context.Background()
	for _, ns := range []string{"shop", "billing"} {
		if err := c.ResetPods(ctx, ns, shopPods()); err != nil {
			t.Fatal(err)
		}
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-chaos", Namespace: "shop"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"chaos-mesh.org"}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	if _, err := c.Kube.RbacV1().Roles("shop").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-chaos", Namespace: "shop"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "e2e-chaos"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: restrictedUser}},
	}
	if _, err := c.Kube.RbacV1().RoleBindings("shop").Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Kube.RbacV1().RoleBindings("shop").Delete(context.Background(), "e2e-chaos", metav1.DeleteOptions{})
		_ = c.Kube.RbacV1().Roles("shop").Delete(context.Background(), "e2e-chaos", metav1.DeleteOptions{})
	})
	kc, err := c.KubeconfigFor(t.TempDir(), restrictedUser)
	if err != nil {
		t.Fatal(err)
	}
	path := writeScenario(t, "two-namespaces", fmt.Sprintf(`name: e2e-two-namespaces
version: 1.0.0
target:
  url: %s
  kubernetes: {namespace: shop, selector: {app: checkout}}
load:
  executor: constant-arrival-rate
  rate: 20
  duration: 10s
  preAllocatedVUs: 5
  maxVUs: 10
  requests:
    - {name: catalog, path: /catalog, expect: {status: 200}}
faults:
  jitter:
    start: 2s
    duration: 4s
    mode: all
    selector: {namespaces: [shop, billing], labels: {app: checkout}}
    networkDelay: {latency: 100ms}
slos:
  steady: {errorRate: 1}
guardrails:
  allowedNamespaces: [shop, billing]
`, demoTarget(t)))
	before, _ := c.Daemon.Last(ctx)
	// The kubeconfig flag given last wins over the admin one faultline() passes.
	r := faultline(t, runOpts{args: []string{path, "--kubeconfig", kc, "--injection-timeout", "8s"}})
	if r.code == exitcode.OK || (r.res != nil && r.res.Verdict == results.VerdictPass) {
		t.Errorf("a user without create on NetworkChaos in billing: exit %d, verdict %s:\n%s", r.code, verdict(r), r.out)
	}
	if !strings.Contains(r.out, "billing") || !strings.Contains(r.out, "networkchaos") {
		t.Errorf("the error does not name the kind and the namespace billing:\n%s", r.out)
	}
	calls, _ := c.Daemon.Since(ctx, before)
	if len(calls) > 0 {
		t.Errorf("the daemon saw %d calls: a fault reached a target", len(calls))
	}
	t.Logf("exit %d:\n%s", r.code, r.out)
	noLeftovers(t)
}
