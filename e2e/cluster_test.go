package e2e

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestClusterUp: the harness's cluster serves pods, nodes and the Chaos Mesh CRDs, and the
// controller-manager's webhooks are registered.
func TestClusterUp(t *testing.T) {
	c := shared.cluster
	ctx := t.Context()
	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	if len(c.ChaosResources()) < 20 {
		t.Errorf("chaos resources %v", c.ChaosResources())
	}
	hooks, err := c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil || len(hooks.Items) != 2 {
		t.Fatalf("validating webhook configurations: %v", err)
	}
	if log := c.ManagerLog(400); !strings.Contains(log, "Starting manager") {
		t.Errorf("the controller-manager's log lacks \"Starting manager\":\n%s", log)
	}
}
