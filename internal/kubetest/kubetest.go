// Package kubetest starts a real Kubernetes API server in-process for tests: an embedded etcd plus
// k8s.io/apiextensions-apiserver, serving HTTPS on loopback. It serves CustomResourceDefinitions with
// their OpenAPI validation, status subresources, server-side apply, watch and finalizers.
//
// What it is not: there are no Namespace objects (any namespace name works), pods, RBAC (every request is admin), admission
// webhooks or garbage collector (delete with background propagation; Foreground deletion hangs).
//
// One server per test:
//
//	s := kubetest.Start(t)
//	if err := s.InstallCRDs(ctx, crds); err != nil { t.Fatal(err) }
//	obj, err := s.Dynamic().Resource(gvr).Namespace("default").Apply(ctx, name, u, opts)
//
// One server per test package (cheaper: a start is about a second, and CRD installation a few):
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
//	func TestX(t *testing.T) {
//		s := kubetest.Shared(t) // started by the first caller, stopped by Main after the last test
//		...
//	}
//
// The server's klog output is discarded unless KUBETEST_VERBOSE is set to a non-empty value.
package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	extensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	serveroptions "k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/compatibility"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	certutil "k8s.io/client-go/util/cert"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/klog/v2"

	"faultline.dev/faultline/internal/testport"
)

const (
	startTimeout = time.Minute
	pollInterval = 50 * time.Millisecond
	// establishedGrace is how long after a CRD becomes Established the server delays every create of
	// its resources (by 2 s, "for HA"; see customresource_handler.go in apiextensions-apiserver).
	establishedGrace = 2 * time.Second
	// fieldManager is the field manager InstallCRDs applies CRDs with.
	fieldManager = "kubetest"
)

// Server is a real kube API server (embedded etcd + k8s.io/apiextensions-apiserver) on loopback.
//
// Config stays valid across Stop and Restart: the server comes back on the same address with the same
// serving certificate and the same bearer token. Copy it (rest.CopyConfig) before changing it.
//
// The clients and InstallCRDs may be used from parallel tests; Stop, Restart and Close must not run
// concurrently with each other.
type Server struct {
	// Config reaches the server as an administrator. Client-side rate limiting is off (QPS < 0).
	Config *rest.Config

	dir      string // certificates, fake kubeconfig, etcd data
	etcd     *embed.Etcd
	etcdURL  string
	prefix   string // etcd key prefix of this API server
	addr     string // 127.0.0.1:port of the API server
	token    string
	certFile string
	keyFile  string

	dynamic    dynamic.Interface
	discovery  *discovery.DiscoveryClient
	extensions apiextensionsclient.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper

	mu        sync.Mutex
	running   *apiServer // nil while stopped
	installed map[string]*apiextensionsv1.CustomResourceDefinition
	closed    bool
}

// apiServer is one run of the API server process-in-a-goroutine.
type apiServer struct {
	cancel context.CancelCauseFunc
	conns  *connTracker
	done   chan struct{} // closed when RunWithContext returned
	err    error         // RunWithContext's result, valid after done
}

// Start starts etcd and the API server, waits for /healthz, and registers Close with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts etcd and the API server and waits for /healthz. The caller must call Close.
// Use it where there is no testing.TB (TestMain); tests use Start or Shared.
func New() (*Server, error) {
	quietLogs()
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, installed: map[string]*apiextensionsv1.CustomResourceDefinition{}}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	if err := s.startEtcd(); err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	if err := s.prepare(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	s.addr = ln.Addr().String()
	s.Config = &rest.Config{
		Host:            "https://" + s.addr,
		BearerToken:     s.token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.certFile},
		QPS:             -1, // no client-side throttling: client-go's default of 5 QPS slows tests down
		Burst:           1000,
	}
	if err := s.clients(); err != nil {
		ln.Close()
		return nil, err
	}
	if err := s.startAPIServer(ln); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Close stops the API server and etcd and removes their files. It is safe to call more than once.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.etcd != nil {
		s.etcd.Close()
	}
	os.RemoveAll(s.dir)
}

// Stop stops the API server and waits until it no longer serves; etcd keeps running with its data.
// It drops open connections as a crashed server would: requests in flight and open watches end
// with an error, and new requests fail (connection refused, see IsUnreachable) until Restart.
// Stop on a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	run := s.running
	s.running = nil
	s.mu.Unlock()
	if run == nil {
		return
	}
	run.cancel(errors.New("kubetest: server stopped"))
	// Like a crashed server: drop every connection at once. A graceful shutdown would wait up to
	// 60 s for open watches, and 1 s for HTTP/2 clients to answer GOAWAY.
	run.conns.closeAll()
	<-run.done
}

// Restart starts the API server again on the same address, with the same certificate, token and
// data, after Stop (or stops it first if it runs). It returns when /healthz passes and discovery lists
// every CRD installed through InstallCRDs.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.restart(); err != nil {
		t.Fatalf("kubetest: restarting the API server: %v", err)
	}
}

func (s *Server) restart() error {
	s.Stop()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("the server is closed")
	}
	// The port was ours a moment ago; in the unlikely case another process took it, wait a little.
	var ln net.Listener
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) {
			var err error
			ln, err = net.Listen("tcp", s.addr)
			return err == nil, nil
		})
	if err != nil {
		return fmt.Errorf("listening again on %s: %w", s.addr, err)
	}
	if err := s.startAPIServer(ln); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s.mu.Lock()
	crds := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(s.installed))
	for _, crd := range s.installed {
		crds = append(crds, crd)
	}
	s.mu.Unlock()
	for _, crd := range crds {
		if err := s.waitDiscovered(ctx, crd); err != nil {
			return err
		}
	}
	s.mapper.Reset()
	return nil
}

// URL is the server's base address, https://127.0.0.1:PORT.
func (s *Server) URL() string { return s.Config.Host }

// Dynamic returns a dynamic client for the server (no client-side throttling).
func (s *Server) Dynamic() dynamic.Interface { return s.dynamic }

// Discovery returns a discovery client for the server (uncached).
func (s *Server) Discovery() discovery.DiscoveryInterface { return s.discovery }

// APIExtensions returns a typed client for CustomResourceDefinitions.
func (s *Server) APIExtensions() apiextensionsclient.Interface { return s.extensions }

// RESTMapper returns a discovery-based RESTMapper. InstallCRDs and Restart reset it; it also
// refreshes itself when asked about a kind it does not know yet.
func (s *Server) RESTMapper() meta.RESTMapper { return s.mapper }

// InstallCRDs applies the CRDs (server-side apply, field manager "kubetest"), waits until each is
// Established and its resources are listed by discovery for every served version, and then until the
// server's "just established" window has passed, so that the first create of a custom resource is not
// delayed by 2 s.
//
// CRDs that this Server already installed unchanged, and that discovery still lists, are skipped, so
// tests sharing a server can each call InstallCRDs cheaply. A changed CRD is applied again; the server
// may take a moment after that to serve the new schema.
//
// Install CRDs once per test package where possible (see Shared): new CRDs cost about 1.5–4 s.
func (s *Server) InstallCRDs(ctx context.Context, crds []*apiextensionsv1.CustomResourceDefinition) error {
	crdClient := s.extensions.ApiextensionsV1().CustomResourceDefinitions()
	listed := map[string]map[string]bool{} // discovery, fetched once per group version
	var pending []*apiextensionsv1.CustomResourceDefinition
	for _, crd := range crds {
		s.mu.Lock()
		prev := s.installed[crd.Name]
		s.mu.Unlock()
		if prev != nil && equality.Semantic.DeepEqual(prev, crd) && s.discovered(crd, listed) {
			continue
		}
		pending = append(pending, crd)
	}
	for _, crd := range pending {
		obj := crd.DeepCopy()
		obj.APIVersion = apiextensionsv1.SchemeGroupVersion.String()
		obj.Kind = "CustomResourceDefinition"
		obj.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		obj.ResourceVersion = ""
		obj.ManagedFields = nil
		data, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding CRD %s: %w", crd.Name, err)
		}
		force := true
		if _, err := crdClient.Patch(ctx, crd.Name, types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
			return fmt.Errorf("applying CRD %s: %w", crd.Name, err)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	var lastEstablished time.Time
	for _, crd := range pending {
		established, err := s.waitEstablished(ctx, crd.Name)
		if err != nil {
			return err
		}
		if established.After(lastEstablished) {
			lastEstablished = established
		}
		if err := s.waitDiscovered(ctx, crd); err != nil {
			return err
		}
		s.mu.Lock()
		s.installed[crd.Name] = crd.DeepCopy()
		s.mu.Unlock()
	}
	s.mapper.Reset()
	// LastTransitionTime has whole seconds; the server compares its own (equally truncated) copy.
	if wait := time.Until(lastEstablished.Add(establishedGrace)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitEstablished waits for the CRD's Established condition and returns when it became true.
func (s *Server) waitEstablished(ctx context.Context, name string) (time.Time, error) {
	var since time.Time
	var last *apiextensionsv1.CustomResourceDefinition
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		crd, err := s.extensions.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // transient; the context bounds the wait
		}
		last = crd
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse {
				return false, fmt.Errorf("CRD %s: names not accepted: %s", name, c.Message)
			}
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				since = c.LastTransitionTime.Time
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if last != nil {
			return since, fmt.Errorf("waiting for CRD %s to be established (conditions %+v): %w", name, last.Status.Conditions, err)
		}
		return since, fmt.Errorf("waiting for CRD %s to be established: %w", name, err)
	}
	return since, nil
}

// discovered reports whether discovery lists the CRD's resource for every served version, now.
func (s *Server) discovered(crd *apiextensionsv1.CustomResourceDefinition, listed map[string]map[string]bool) bool {
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		gv := crd.Spec.Group + "/" + v.Name
		names, ok := listed[gv]
		if !ok {
			names = map[string]bool{}
			if list, err := s.discovery.ServerResourcesForGroupVersion(gv); err == nil {
				for _, r := range list.APIResources {
					names[r.Name] = true
				}
			}
			listed[gv] = names
		}
		if !names[crd.Spec.Names.Plural] {
			return false
		}
	}
	return true
}

// waitDiscovered waits until discovery lists the CRD's resource for every served version.
func (s *Server) waitDiscovered(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) error {
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		gv := crd.Spec.Group + "/" + v.Name
		err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
			list, err := s.discovery.ServerResourcesForGroupVersion(gv)
			if err != nil {
				return false, nil
			}
			for _, r := range list.APIResources {
				if r.Name == crd.Spec.Names.Plural {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for discovery to list %s in %s: %w", crd.Spec.Names.Plural, gv, err)
		}
	}
	return nil
}

// startEtcd starts an embedded single-member etcd on free loopback ports.
func (s *Server) startEtcd() error {
	var lastErr error
	for range 3 { // free ports are picked then released; another process may take one in between
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		cfg := embed.NewConfig()
		cfg.Name = "kubetest"
		cfg.Dir = filepath.Join(s.dir, "etcd")
		cfg.UnsafeNoFsync = true // test data only; a Restart of the API server keeps etcd running
		clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
		peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}
		cfg.ListenClientUrls = []url.URL{clientURL}
		cfg.AdvertiseClientUrls = []url.URL{clientURL}
		cfg.ListenPeerUrls = []url.URL{peerURL}
		cfg.AdvertisePeerUrls = []url.URL{peerURL}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		// etcd logs its own orderly shutdown at level error; start failures come back as errors anyway.
		cfg.LogLevel = "fatal"
		if verbose() {
			cfg.LogLevel = "warn"
		}
		cfg.LogOutputs = []string{"stderr"}
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			os.RemoveAll(cfg.Dir)
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(startTimeout):
			e.Close()
			return errors.New("etcd took too long to start")
		}
		s.etcd = e
		s.etcdURL = clientURL.String()
		return nil
	}
	return lastErr
}

// prepare creates what every run of the API server shares: the serving certificate, the token, a
// dummy kubeconfig (delegated authn/authz and the core informers want one; nothing answers there)
// and the etcd prefix.
func (s *Server) prepare() error {
	cert, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return fmt.Errorf("generating a serving certificate: %w", err)
	}
	s.certFile = filepath.Join(s.dir, "apiserver.crt")
	s.keyFile = filepath.Join(s.dir, "apiserver.key")
	if err := os.WriteFile(s.certFile, cert, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.keyFile, key, 0o600); err != nil {
		return err
	}
	s.token = randomHex(16)
	s.prefix = "/kubetest-" + randomHex(8)
	return os.WriteFile(filepath.Join(s.dir, "kubeconfig"), []byte(`apiVersion: v1
kind: Config
clusters:
- cluster:
    server: http://127.1.2.3:12345
  name: none
contexts:
- context:
    cluster: none
    user: none
  name: none
current-context: none
users:
- name: none
  user:
    token: none
`), 0o600)
}

func (s *Server) clients() error {
	var err error
	if s.dynamic, err = dynamic.NewForConfig(s.Config); err != nil {
		return err
	}
	if s.discovery, err = discovery.NewDiscoveryClientForConfig(s.Config); err != nil {
		return err
	}
	if s.extensions, err = apiextensionsclient.NewForConfig(s.Config); err != nil {
		return err
	}
	s.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(s.discovery))
	return nil
}

// startAPIServer runs the apiextensions-apiserver on ln (which it takes over) and waits for /healthz.
// This follows k8s.io/apiextensions-apiserver/pkg/cmd/server/testing.StartTestServer, with two
// changes: discovery is enabled (the apiextensions server alone answers 404 on /apis otherwise), and
// the loopback token is ours, so that clients keep working across restarts.
func (s *Server) startAPIServer(ln net.Listener) (err error) {
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	opts := serveroptions.NewCustomResourceDefinitionsServerOptions(io.Discard, io.Discard)
	// A registry and feature gate of our own per run: the default registry refuses a second registration.
	featureGate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	effectiveVersion := compatibility.DefaultKubeEffectiveVersionForTest()
	effectiveVersion.SetEmulationVersion(featureGate.EmulationVersion())
	registry := basecompatibility.NewComponentGlobalsRegistry()
	if err := registry.Register(basecompatibility.DefaultKubeComponent, effectiveVersion, featureGate); err != nil {
		return err
	}
	opts.ServerRunOptions.ComponentGlobalsRegistry = registry

	fs := pflag.NewFlagSet("kubetest", pflag.ContinueOnError)
	opts.AddFlags(fs)
	kubeconfig := filepath.Join(s.dir, "kubeconfig")
	if err := fs.Parse([]string{
		"--etcd-servers", s.etcdURL,
		"--etcd-prefix", s.prefix,
		"--tls-cert-file", s.certFile,
		"--tls-private-key-file", s.keyFile,
		"--authentication-skip-lookup",
		"--authentication-kubeconfig", kubeconfig,
		"--authorization-kubeconfig", kubeconfig,
		"--kubeconfig", kubeconfig,
		// Filters and admission plugins that would need a kube-apiserver behind the kubeconfig.
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins", "NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy",
	}); err != nil {
		return fmt.Errorf("API server flags: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	conns := &connTracker{Listener: ln, conns: map[net.Conn]struct{}{}}
	opts.RecommendedOptions.SecureServing.Listener = conns
	opts.RecommendedOptions.SecureServing.BindPort = port
	opts.RecommendedOptions.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	opts.RecommendedOptions.SecureServing.ExternalAddress = net.ParseIP("127.0.0.1")
	if err := opts.APIEnablement.RuntimeConfig.Set("api/all=true"); err != nil {
		return err
	}
	if err := registry.Set(); err != nil {
		return err
	}
	if err := opts.Complete(); err != nil {
		return fmt.Errorf("completing API server options: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("validating API server options: %w", err)
	}
	config, err := opts.Config()
	if err != nil {
		return fmt.Errorf("configuring the API server: %w", err)
	}
	getOpenAPIDefinitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(extensionsapiserver.Scheme)
	config.GenericConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(getOpenAPIDefinitions, namer)
	// Our token instead of a fresh random one: Complete registers it as the privileged loopback token.
	config.GenericConfig.LoopbackClientConfig.BearerToken = s.token

	completed := config.Complete()
	completed.GenericConfig.EnableDiscovery = true // Complete turns it off; /apis would answer 404
	server, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return fmt.Errorf("creating the API server: %w", err)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	run := &apiServer{cancel: cancel, conns: conns, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		run.err = server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
	}()
	if err := s.waitHealthy(run); err != nil {
		cancel(errors.New("kubetest: start failed"))
		conns.closeAll()
		<-run.done
		return err
	}
	s.mu.Lock()
	s.running = run
	s.mu.Unlock()
	return nil
}

// waitHealthy polls /healthz (not /readyz: that never passes without a kube-apiserver behind it).
func (s *Server) waitHealthy(run *apiServer) error {
	client := s.discovery.RESTClient()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		select {
		case <-run.done:
			return false, fmt.Errorf("API server exited: %v", run.err)
		default:
		}
		status := 0
		body, err := client.Get().AbsPath("/healthz").Do(ctx).StatusCode(&status).Raw()
		if status == http.StatusOK {
			return true, nil
		}
		last = fmt.Sprintf("status %d: %s (%v)", status, body, err)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for /healthz on %s (last: %s): %w", s.addr, last, err)
	}
	return nil
}

// connTracker is a listener that remembers the connections it accepted, so that Stop can drop them.
type connTracker struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (l *connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		// Not an error: the API server panics if its listener fails before it closed it itself.
		c.Close()
		return c, nil
	}
	l.conns[c] = struct{}{}
	return &trackedConn{Conn: c, l: l}, nil
}

// closeAll closes every connection accepted so far and any accepted later. The listener stays open
// for the API server to close during its shutdown.
func (l *connTracker) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

type trackedConn struct {
	net.Conn
	l *connTracker
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// shared is the package's server for Shared and Main.
var shared struct {
	once   sync.Once
	server *Server
	err    error
	inMain bool
}

// Main runs the package's tests (m.Run), closes the shared server if a test started one, and exits.
// Call it from TestMain to use Shared:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
func Main(m *testing.M) {
	shared.inMain = true
	code := m.Run()
	if shared.server != nil {
		shared.server.Close()
	}
	os.Exit(code)
}

// Shared returns the test package's shared server, starting it on first use. It requires TestMain to
// call Main, which closes the server after the last test.
//
// Tests that share a server install their CRDs with InstallCRDs (cheap when they are already there),
// use distinct object names (or namespaces: names of namespaces are free, there is no Namespace
// object), and do not Stop it; tests that Stop or Restart start their own server with Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	if !shared.inMain {
		t.Fatal("kubetest.Shared needs TestMain to call kubetest.Main (func TestMain(m *testing.M) { kubetest.Main(m) })")
	}
	shared.once.Do(func() { shared.server, shared.err = New() })
	if shared.err != nil {
		t.Fatalf("kubetest: starting the shared server: %v", shared.err)
	}
	return shared.server
}

var quietOnce sync.Once

// quietLogs discards the API server's klog output (it is long, and mostly about the absent
// kube-apiserver behind the dummy kubeconfig) unless KUBETEST_VERBOSE is set.
func quietLogs() {
	quietOnce.Do(func() {
		if verbose() {
			return
		}
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		_ = fs.Set("logtostderr", "false")
		_ = fs.Set("alsologtostderr", "false")
		_ = fs.Set("stderrthreshold", "FATAL")
		klog.SetOutput(io.Discard)
	})
}

func verbose() bool { return os.Getenv("KUBETEST_VERBOSE") != "" }

// freePorts are etcd's ports, from below the ephemeral range (testport).
func freePorts(n int) ([]int, error) {
	ports, err := testport.Pick(n)
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// IsUnreachable reports whether err looks like the API server is not there (stopped): a refused or
// reset connection, or a timeout. Errors that carry an API status (404, 422, ...) are not.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
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
	return errors.As(err, &netErr) && netErr.Timeout()
}
