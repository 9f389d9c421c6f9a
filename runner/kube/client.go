package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"faultline.dev/faultline/compiler/chaosmesh"
)

// Names faultline uses on the cluster.
const (
	// FieldManager is the server-side apply field manager of every object faultline creates.
	FieldManager = "faultline"
	// LabelRunID carries the run's id on every object a run creates.
	LabelRunID = "faultline.dev/run-id"
	// FinalizerRecords is Chaos Mesh's finalizer: its controller recovers every target before removing it.
	FinalizerRecords = "chaos-mesh/records"
	// AnnotationCleanFinalizer with the value CleanFinalizerForced tells Chaos Mesh's controller to
	// drop its finalizer without recovering (for objects stuck in deletion).
	AnnotationCleanFinalizer = "chaos-mesh.chaos-mesh.org/cleanFinalizer"
	CleanFinalizerForced     = "forced"
)

// ClientOptions select the cluster as kubectl does: the kubeconfig loading rules ($KUBECONFIG,
// ~/.kube/config, in-cluster), --kubeconfig, --context and -n/--namespace.
type ClientOptions struct {
	Kubeconfig string
	Context    string
	Namespace  string
}

// RESTConfig resolves the options into a client configuration (client-side rate limits raised to
// 50 QPS, burst 100: a run sends a handful of requests per fault, a cleanup a few per kind) and the
// namespace: the -n flag, else the context's namespace, else "default". explicit says whether -n
// was given.
func (o ClientOptions) RESTConfig() (cfg *rest.Config, namespace string, explicit bool, err error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	if o.Namespace != "" {
		overrides.Context.Namespace = o.Namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err = cc.ClientConfig()
	if err != nil {
		return nil, "", false, fmt.Errorf("loading the cluster configuration (kubeconfig): %w", err)
	}
	namespace, explicit, err = cc.Namespace()
	if err != nil {
		return nil, "", false, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	if o.Namespace != "" {
		explicit = true
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "faultline"
	return cfg, namespace, explicit, nil
}

// Clients are the API clients the backend and the cleaner use.
type Clients struct {
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	Host      string
}

// NewClients makes the clients for a configuration.
func NewClients(cfg *rest.Config) (*Clients, error) {
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Dynamic: d, Discovery: disc, Host: cfg.Host}, nil
}

// Kind is a Chaos Mesh kind as the API server serves it.
type Kind struct {
	Kind       string
	Resource   schema.GroupVersionResource
	Namespaced bool
}

// ErrChaosMeshMissing means the API server does not serve Chaos Mesh's kinds.
var ErrChaosMeshMissing = errors.New("Chaos Mesh is not installed in this cluster")

// ServedKinds asks discovery which Chaos Mesh kinds the API server serves (chaos-mesh.org/v1alpha1),
// by kind. ErrChaosMeshMissing when it serves none.
func (c *Clients) ServedKinds(ctx context.Context) (map[string]Kind, error) {
	gv := chaosmesh.APIVersion
	var list *metav1.APIResourceList
	err := retryUnreachable(ctx, 5*time.Second, func() error {
		var err error
		list, err = c.Discovery.ServerResourcesForGroupVersion(gv)
		return err
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: the API server at %s does not serve %s (no Chaos Mesh CRDs); install Chaos Mesh (https://chaos-mesh.org/docs/production-installation-using-helm/) or check --context: %w",
				ErrChaosMeshMissing, c.Host, gv, err)
		}
		return nil, fmt.Errorf("asking the API server at %s which Chaos Mesh kinds it serves: %w", c.Host, err)
	}
	sgv, _ := schema.ParseGroupVersion(gv)
	out := map[string]Kind{}
	for _, r := range list.APIResources {
		if strings.Contains(r.Name, "/") {
			continue // subresource
		}
		out[r.Kind] = Kind{Kind: r.Kind, Resource: sgv.WithResource(r.Name), Namespaced: r.Namespaced}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s is served by %s but lists no kinds", ErrChaosMeshMissing, gv, c.Host)
	}
	return out, nil
}

// EmittedKinds are the kinds faultline's compiler emits (compiler/chaosmesh): the chaos kinds of
// its fault types and the Workflow.
var EmittedKinds = []string{"DNSChaos", "HTTPChaos", "IOChaos", "NetworkChaos", "PodChaos", "StressChaos", "TimeChaos", "Workflow"}

// CleanupKinds are the kinds faultline may have created (EmittedKinds), among those served.
func CleanupKinds(served map[string]Kind) []Kind {
	var out []Kind
	for _, name := range EmittedKinds {
		if k, ok := served[name]; ok && k.Namespaced {
			out = append(out, k)
		}
	}
	return out
}

// Unreachable reports whether err says the API server could not be reached (refused or reset
// connection, timeout, EOF, 503) rather than answering.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "http2: client connection lost") || strings.Contains(msg, "EOF")
}

// retryUnreachable calls f until it succeeds, fails with an answer from the server, or the server
// stays unreachable for longer than patience (or ctx ends).
func retryUnreachable(ctx context.Context, patience time.Duration, f func() error) error {
	deadline := time.Now().Add(patience)
	b := newBackoff()
	for {
		err := f()
		if err == nil || !Unreachable(err) || time.Now().After(deadline) {
			return err
		}
		if sleepErr := b.sleep(ctx); sleepErr != nil {
			return err
		}
	}
}

// backoff doubles from 100 ms up to 2 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }

func (b *backoff) sleep(ctx context.Context) error {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, 2*time.Second)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
