package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
)

// poll calls f every interval until it reports done, returns an error, or timeout passes.
func poll(ctx context.Context, interval, timeout time.Duration, what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		done, err := f()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: not done after %s: %w", what, timeout, last)
			}
			return fmt.Errorf("%s: not done after %s", what, timeout)
		case <-time.After(interval):
		}
	}
}

// ChaosResources are the chaos-mesh.org resources the CRDs define (plural names), sorted.
func (c *Cluster) ChaosResources() []string {
	return slices.Clone(c.resources)
}

func (c *Cluster) installCRDs(ctx context.Context) error {
	crds, err := crd.All()
	if err != nil {
		return err
	}
	start := time.Now()
	for _, d := range crds {
		if _, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating CRD %s: %w", d.Name, err)
		}
		c.resources = append(c.resources, d.Spec.Names.Plural)
	}
	slices.Sort(c.resources)
	for _, d := range crds {
		err := poll(ctx, 100*time.Millisecond, time.Minute, "CRD "+d.Name+" established", func() (bool, error) {
			got, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	// Discovery must list every resource before the controller starts (its RESTMapper).
	err = poll(ctx, 200*time.Millisecond, time.Minute, "chaos-mesh.org in discovery", func() (bool, error) {
		list, err := c.Kube.Discovery().ServerResourcesForGroupVersion("chaos-mesh.org/v1alpha1")
		if err != nil {
			return false, err
		}
		served := map[string]bool{}
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
		for _, r := range c.resources {
			if !served[r] {
				return false, fmt.Errorf("%s not served yet", r)
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	c.logf("installed %d Chaos Mesh CRDs in %s", len(crds), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// bootstrap creates the Node, the chaos-mesh namespace, the recording daemon's EndpointSlice
// (after the recorder's port is known) and Chaos Mesh's DNS server Service and Pod.
func (c *Cluster) bootstrap(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: map[string]string{"kubernetes.io/hostname": NodeName}}}
	if _, err := c.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating node: %w", err)
	}
	node.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "E2EHarness",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
	}
	if _, err := c.Kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the node's status: %w", err)
	}
	return c.EnsureNamespace(ctx, ChaosMeshNamespace)
}

// registerDaemon publishes the recorder as the node's chaos-daemon and the DNS server.
func (c *Cluster) registerDaemon(ctx context.Context) error {
	ready := true
	node := NodeName
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "chaos-daemon-" + NodeName, Namespace: ChaosMeshNamespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: "chaos-daemon", discoveryv1.LabelManagedBy: "faultline-e2e-harness"}},
		// The API server refuses loopback addresses in IPv4 slices ("may not be in the loopback
		// range"); an FQDN slice takes "127.0.0.1" (four DNS labels), and Chaos Mesh dials
		// addresses[0] whatever the address type.
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, NodeName: &node,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("grpc"), Port: ptr(int32(c.daemonPort))}},
	}
	if _, err := c.Kube.DiscoveryV1().EndpointSlices(ChaosMeshNamespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the daemon's EndpointSlice: %w", err)
	}
	sel := map[string]string{"app.kubernetes.io/component": "chaos-dns-server"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: DNSServiceName, Namespace: ChaosMeshNamespace},
		Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
			{Name: "grpc", Port: int32(c.dnsPort), Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(c.dnsPort))},
		}},
	}
	if _, err := c.Kube.CoreV1().Services(ChaosMeshNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the DNS server's Service: %w", err)
	}
	// The controller dials the DNS server at its pod IP and CHAOS_DNS_SERVICE_PORT: 127.0.0.1 is
	// the recorder.
	_, err := c.createPod(ctx, PodSpec{Namespace: ChaosMeshNamespace, Name: "chaos-dns-server-0", Labels: sel,
		Containers: []string{"chaos-dns-server"}}, "127.0.0.1")
	return err
}

// EnsureNamespace creates a namespace unless it exists.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// PodSpec describes a target pod.
type PodSpec struct {
	Namespace, Name string
	Labels          map[string]string
	// Containers are the container names (default: one, "app").
	Containers []string
}

// ContainerID is the container ID the harness writes in a pod's status for one container.
func ContainerID(namespace, pod, container string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + pod + "/" + container))
	return "containerd://" + hex.EncodeToString(sum[:])
}

// podIP gives each pod a stable address in 127.0.1.0/24..127.0.254.0/24 (never dialled: Chaos
// Mesh only writes pod IPs into ipsets and iptables rules, which the recorder records).
func (c *Cluster) podIP(ns, name string) string {
	c.ipMu.Lock()
	defer c.ipMu.Unlock()
	key := ns + "/" + name
	if ip, ok := c.ips[key]; ok {
		return ip
	}
	n := len(c.ips) + 1
	ip := fmt.Sprintf("127.0.%d.%d", 1+n/250, 1+n%250)
	if c.ips == nil {
		c.ips = map[string]string{}
	}
	c.ips[key] = ip
	return ip
}

// PodIP is the IP the harness gave a pod.
func (c *Cluster) PodIP(ns, name string) string { return c.podIP(ns, name) }

// CreatePod creates a target pod bound to the node and writes its status as a kubelet would
// (Running, Ready, pod IP, container IDs).
func (c *Cluster) CreatePod(ctx context.Context, p PodSpec) (*corev1.Pod, error) {
	return c.createPod(ctx, p, c.podIP(p.Namespace, p.Name))
}

func (c *Cluster) createPod(ctx context.Context, p PodSpec, ip string) (*corev1.Pod, error) {
	names := p.Containers
	if len(names) == 0 {
		names = []string{"app"}
	}
	var containers []corev1.Container
	var statuses []corev1.ContainerStatus
	now := metav1.Now()
	for _, n := range names {
		containers = append(containers, corev1.Container{Name: n, Image: "faultline.dev/e2e/none:never-pulled"})
		statuses = append(statuses, corev1.ContainerStatus{Name: n, Ready: true, Started: ptr(true), RestartCount: 0,
			Image: "faultline.dev/e2e/none:never-pulled", ImageID: "faultline.dev/e2e/none@sha256:" + strings.Repeat("0", 64),
			ContainerID: ContainerID(p.Namespace, p.Name, n),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels},
		Spec:       corev1.PodSpec{NodeName: NodeName, Containers: containers, TerminationGracePeriodSeconds: ptr(int64(0))},
	}
	created, err := c.Kube.CoreV1().Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	created.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: statuses,
		QOSClass:          corev1.PodQOSBestEffort,
	}
	updated, err := c.Kube.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("writing pod %s/%s's status: %w", p.Namespace, p.Name, err)
	}
	return updated, nil
}

// ResetPods makes the namespace hold exactly these pods, freshly created (a pod killed by a
// previous test comes back; a pod stuck terminating is removed with grace period 0).
func (c *Cluster) ResetPods(ctx context.Context, ns string, pods []PodSpec) error {
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		return err
	}
	if err := c.DeletePods(ctx, ns); err != nil {
		return err
	}
	for _, p := range pods {
		p.Namespace = ns
		if _, err := c.CreatePod(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// DeletePods deletes every pod of a namespace (grace period 0) and waits until they are gone.
func (c *Cluster) DeletePods(ctx context.Context, ns string) error {
	err := c.Kube.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("deleting the pods of %s: %w", ns, err)
	}
	return poll(ctx, 100*time.Millisecond, 30*time.Second, "pods of "+ns+" gone", func() (bool, error) {
		list, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 0, nil
	})
}

// chaosGVR is a chaos-mesh.org/v1alpha1 resource.
func chaosGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "chaos-mesh.org", Version: "v1alpha1", Resource: resource}
}

// bookkeeping are the per-pod objects Chaos Mesh's controller itself creates for network, IO
// and HTTP faults and keeps after recovery with an empty spec.
var bookkeeping = []string{"podnetworkchaos", "podiochaos", "podhttpchaos"}

// Leftovers lists every chaos-mesh.org object in the cluster, except Chaos Mesh's own per-pod
// bookkeeping objects whose spec is empty again (those it keeps after recovering).
func (c *Cluster) Leftovers(ctx context.Context) ([]string, error) {
	var out []string
	for _, r := range c.resources {
		list, err := c.Dyn.Resource(chaosGVR(r)).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", r, err)
		}
		for _, it := range list.Items {
			if slices.Contains(bookkeeping, r) && emptyBookkeeping(&it) {
				continue
			}
			out = append(out, it.GetKind()+" "+it.GetNamespace()+"/"+it.GetName())
		}
	}
	return out, nil
}

// emptyBookkeeping: a PodNetworkChaos / PodIOChaos / PodHttpChaos that holds no fault.
func emptyBookkeeping(u *unstructured.Unstructured) bool {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	for k, v := range spec {
		switch k {
		case "volumeMountPath", "container":
			continue
		}
		switch v := v.(type) {
		case []any:
			if len(v) > 0 {
				return false
			}
		case map[string]any:
			if len(v) > 0 {
				return false
			}
		case nil:
		default:
			return false
		}
	}
	return true
}

// webhookCRDs are the names Chaos Mesh's Helm chart registers webhooks for (values.yaml
// webhook.CRDS at the pinned commit), and the resource each one covers.
var webhookCRDs = []struct{ name, resource string }{
	{"podchaos", "podchaos"}, {"iochaos", "iochaos"}, {"timechaos", "timechaos"},
	{"networkchaos", "networkchaos"}, {"kernelchaos", "kernelchaos"}, {"stresschaos", "stresschaos"},
	{"awschaos", "awschaos"}, {"azurechaos", "azurechaos"}, {"gcpchaos", "gcpchaos"},
	{"dnschaos", "dnschaos"}, {"jvmchaos", "jvmchaos"}, {"schedule", "schedules"},
	{"workflow", "workflows"}, {"httpchaos", "httpchaos"}, {"blockchaos", "blockchaos"},
	{"physicalmachinechaos", "physicalmachinechaos"}, {"physicalmachine", "physicalmachines"},
	{"statuscheck", "statuschecks"}, {"remotecluster", "remoteclusters"},
}

// registerWebhooks registers the controller-manager's webhooks as Chaos Mesh's Helm chart does
// (mutating-admission-webhooks.yaml, validating-admission-webhooks.yaml), with loopback URLs
// instead of the Service, and waits until a server-side dry run meets them.
func (c *Cluster) registerWebhooks(ctx context.Context) error {
	ca, err := os.ReadFile(c.pki.CAFile())
	if err != nil {
		return err
	}
	base := "https://127.0.0.1:" + strconv.Itoa(c.webhookPort)
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	rule := func(resources ...string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"chaos-mesh.org"}, APIVersions: []string{"v1alpha1"}, Resources: resources},
		}}
	}
	url := func(path string) admissionregistrationv1.WebhookClientConfig {
		u := base + path
		return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: ca}
	}
	mut := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "chaos-mesh-mutation"}}
	val := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "chaos-mesh-validation"}}
	for _, w := range webhookCRDs {
		mut.Webhooks = append(mut.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name: "m" + w.name + ".kb.io", ClientConfig: url("/mutate-chaos-mesh-org-v1alpha1-" + w.name),
			Rules: rule(w.resource), FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1", "v1beta1"}})
		val.Webhooks = append(val.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name: "v" + w.name + ".kb.io", ClientConfig: url("/validate-chaos-mesh-org-v1alpha1-" + w.name),
			Rules: rule(w.resource), FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1", "v1beta1"}})
	}
	auth := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "validate-auth"}}
	auth.Webhooks = []admissionregistrationv1.ValidatingWebhook{{
		Name: "vauth.kb.io", ClientConfig: url("/validate-auth"), Rules: rule("*"),
		FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1", "v1beta1"}}}
	ar := c.Kube.AdmissionregistrationV1()
	if _, err := ar.MutatingWebhookConfigurations().Create(ctx, mut, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering the mutating webhooks: %w", err)
	}
	for _, v := range []*admissionregistrationv1.ValidatingWebhookConfiguration{val, auth} {
		if _, err := ar.ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("registering the validating webhooks %s: %w", v.Name, err)
		}
	}
	// The webhooks are live when a dry-run create comes back defaulted by the mutating webhook
	// (a selector without namespaces gets the object's: no CRD default can do that) and the
	// validating webhook refuses what only it checks (mode fixed with a value that is no number).
	probe := func(value string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
			"metadata": map[string]any{"name": "webhook-probe", "namespace": ChaosMeshNamespace},
			"spec": map[string]any{"action": "delay", "mode": "fixed", "value": value,
				"selector": map[string]any{"labelSelectors": map[string]any{"app": "none"}},
				"delay":    map[string]any{"latency": "10ms", "correlation": "0", "jitter": "0ms"}},
		}}
	}
	res := c.Dyn.Resource(chaosGVR("networkchaos")).Namespace(ChaosMeshNamespace)
	return poll(ctx, 300*time.Millisecond, time.Minute, "Chaos Mesh's webhooks answering", func() (bool, error) {
		got, err := res.Create(ctx, probe("1"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		if ns, _, _ := unstructured.NestedStringSlice(got.Object, "spec", "selector", "namespaces"); !slices.Equal(ns, []string{ChaosMeshNamespace}) {
			return false, fmt.Errorf("the dry-run NetworkChaos came back undefaulted (selector namespaces %q)", ns)
		}
		_, err = res.Create(ctx, probe("abc"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), `admission webhook "vnetworkchaos.kb.io" denied`) {
			return false, fmt.Errorf("an invalid value was not refused by the validating webhook: %v", err)
		}
		return true, nil
	})
}

func ptr[T any](v T) *T { return &v }

// Kick annotates every object of a chaos-mesh.org resource in a namespace, so that Chaos Mesh's
// controller reconciles them now instead of after its retry backoff (which grows to minutes
// after many failed daemon calls).
func (c *Cluster) Kick(ctx context.Context, resource, ns string) error {
	res := c.Dyn.Resource(chaosGVR(resource)).Namespace(ns)
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	patch := []byte(`{"metadata":{"annotations":{"faultline.dev/e2e-kick":"` + strconv.FormatInt(time.Now().UnixNano(), 10) + `"}}}`)
	for _, it := range list.Items {
		if _, err := res.Patch(ctx, it.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("kicking %s %s/%s: %w", resource, ns, it.GetName(), err)
		}
	}
	return nil
}
