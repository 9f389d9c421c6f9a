// Package harness starts a test cluster on loopback for faultline's e2e tests: a real etcd, a
// real kube-apiserver (k8s.io/kubernetes v1.37.2, RBAC on, self-signed certificates, bearer
// tokens), faultline's generated Chaos Mesh CRDs, Chaos Mesh's real chaos-controller-manager
// (the pinned commit, its mutating, validating and auth webhooks registered with the API
// server), and, in place of the node components that cannot run here, these stand-ins:
//
//   - chaos-daemon-recorder (e2e/chaosmesh/cmd/chaos-daemon-recorder), a gRPC server of
//     Chaos Mesh's own pb.ChaosDaemon service (and of its DNS server's pb.DNS) that records
//     every call and can be told to delay or fail one; the controller finds it through the
//     EndpointSlice chaos-daemon-node-0 (address 127.0.0.1, address type FQDN), as it finds the real daemon;
//   - no kubelet: target Pods are created bound to the Node node-0 and their status is
//     written by the harness (Running, Ready, a pod IP, a container ID per container);
//   - no kube-controller-manager: nothing garbage-collects, so tests delete what they create.
//
// Everything listens on 127.0.0.1; processes die with the test binary (Pdeathsig).
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Names in the cluster.
const (
	// ChaosMeshNamespace is where the controller-manager "runs" (its NAMESPACE): the daemon's
	// EndpointSlice and the DNS server's Service and Pod live there.
	ChaosMeshNamespace = "chaos-mesh"
	// NodeName is the one Node; every Pod is bound to it.
	NodeName = "node-0"
	// DNSServiceName is Chaos Mesh's DNS server Service (CHAOS_DNS_SERVICE_NAME).
	DNSServiceName = "chaos-mesh-dns-server"
	// AdminUser is the kubeconfig's user (group system:masters).
	AdminUser = "e2e-admin"
	// ControllerUser is the controller-manager's user (group system:masters).
	ControllerUser = "chaos-controller-manager"
)

// Cluster is a running test cluster.
type Cluster struct {
	// Dir holds the certificates, kubeconfigs, etcd's data and every process's log.
	Dir string
	// Kubeconfig is an admin kubeconfig (server, CA, bearer token) as a user's would be.
	Kubeconfig string
	// Config is the admin client configuration.
	Config *rest.Config
	Kube   kubernetes.Interface
	Dyn    dynamic.Interface
	Ext    apiextensionsclient.Interface
	// Daemon is the recording chaos-daemon's control endpoint.
	Daemon *Recorder
	// Tokens maps user names to bearer tokens (AdminUser, ControllerUser and the restricted
	// users of Options.Users).
	Tokens map[string]string

	bins                             *Binaries
	pki                              *pki
	procs                            []*process
	apiserver                        *process
	manager                          *process
	server                           string
	resources                        []string // chaos-mesh.org plural names, sorted
	ipMu                             sync.Mutex
	ips                              map[string]string
	daemonPort, dnsPort, webhookPort int
	logf                             func(string, ...any)
}

// Options configure Start.
type Options struct {
	// Users are extra users without any group (so without any permission until a test grants
	// some with RBAC), with their own tokens.
	Users []string
	// Logf receives progress lines.
	Logf func(string, ...any)
}

// Start starts a cluster. Stop it with Stop.
func Start(ctx context.Context, bins *Binaries, opts Options) (c *Cluster, err error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "faultline-e2e-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, bins: bins, logf: logf, Tokens: map[string]string{}}
	defer func() {
		if err != nil {
			c.Stop()
			err = fmt.Errorf("%w (logs in %s)", err, dir)
		}
	}()
	start := time.Now()
	if c.pki, err = newPKI(filepath.Join(dir, "pki")); err != nil {
		return c, err
	}
	if err = c.startAPIServer(ctx, opts.Users); err != nil {
		return c, err
	}
	logf("etcd and kube-apiserver ready in %s", time.Since(start).Round(100*time.Millisecond))
	if err = c.installCRDs(ctx); err != nil {
		return c, err
	}
	if err = c.bootstrap(ctx); err != nil {
		return c, err
	}
	if err = c.startRecorder(ctx); err != nil {
		return c, err
	}
	if err = c.registerDaemon(ctx); err != nil {
		return c, err
	}
	if err = c.startManager(ctx); err != nil {
		return c, err
	}
	if err = c.registerWebhooks(ctx); err != nil {
		return c, err
	}
	logf("cluster ready in %s (dir %s)", time.Since(start).Round(100*time.Millisecond), dir)
	return c, nil
}

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Cluster) startAPIServer(ctx context.Context, users []string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, secure := ports[0], ports[1], ports[2]
	clientURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := startProcess(c.Dir, "etcd", nil, c.bins.Etcd,
		"--name", "e2e",
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2e="+peerURL,
		"--listen-metrics-urls", "",
		"--unsafe-no-fsync", "--log-level", "warn")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, etcd)
	if err := waitHTTP(ctx, etcd, clientURL+"/health", "", "", time.Minute); err != nil {
		return err
	}

	c.Tokens[AdminUser] = token()
	c.Tokens[ControllerUser] = token()
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n%s,%s,%s,\"system:masters\"\n",
		c.Tokens[AdminUser], AdminUser, AdminUser, c.Tokens[ControllerUser], ControllerUser, ControllerUser)
	for _, u := range users {
		c.Tokens[u] = token()
		tokens += fmt.Sprintf("%s,%s,%s\n", c.Tokens[u], u, u)
	}
	tokenFile := filepath.Join(c.Dir, "pki", "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return err
	}
	cert, key, err := c.pki.serving(filepath.Join(c.Dir, "pki"), "apiserver.crt", "apiserver.key", 2, "kubernetes", "kubernetes.default.svc")
	if err != nil {
		return err
	}
	sa, err := c.pki.serviceAccountKey()
	if err != nil {
		return err
	}
	c.server = "https://127.0.0.1:" + strconv.Itoa(secure)
	api, err := startProcess(c.Dir, "kube-apiserver", nil, c.bins.KubeAPIServer,
		"--etcd-servers", clientURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(secure),
		"--tls-cert-file", cert, "--tls-private-key-file", key,
		"--client-ca-file", c.pki.CAFile(),
		"--token-auth-file", tokenFile,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", sa, "--service-account-signing-key-file", sa,
		"--service-cluster-ip-range", "10.96.0.0/24",
		// No controller-manager creates the default ServiceAccount of a namespace.
		"--disable-admission-plugins", "ServiceAccount",
		"--cert-dir", filepath.Join(c.Dir, "pki"),
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
		"--v", "1")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, api)
	c.apiserver = api
	if err := waitHTTP(ctx, api, c.server+"/readyz", c.pki.CAFile(), c.Tokens[AdminUser], 2*time.Minute); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := c.writeKubeconfig(c.Kubeconfig, AdminUser, "default"); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.WarningHandler = rest.NoWarnings{} // "FQDN endpoints are deprecated": known, see registerDaemon
	c.Config = cfg
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if c.Dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	c.Ext, err = apiextensionsclient.NewForConfig(cfg)
	return err
}

// writeKubeconfig writes a kubeconfig for one of the cluster's users.
func (c *Cluster) writeKubeconfig(path, user, namespace string) error {
	tok, ok := c.Tokens[user]
	if !ok {
		return fmt.Errorf("no user %q", user)
	}
	src := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: %s, namespace: %s}
current-context: e2e
`, c.server, c.pki.CAFile(), user, tok, user, namespace)
	return os.WriteFile(path, []byte(src), 0o600)
}

// KubeconfigFor writes a kubeconfig for user into dir and returns its path.
func (c *Cluster) KubeconfigFor(dir, user string) (string, error) {
	path := filepath.Join(dir, "kubeconfig-"+user)
	return path, c.writeKubeconfig(path, user, "default")
}

func (c *Cluster) startRecorder(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	c.daemonPort, c.dnsPort = ports[0], ports[1]
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	p, err := startProcess(c.Dir, "chaos-daemon-recorder", nil, c.bins.DaemonRecorder,
		"--daemon", addr(c.daemonPort), "--dns", addr(c.dnsPort), "--http", addr(ports[2]))
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	c.Daemon = &Recorder{base: "http://" + addr(ports[2])}
	return waitHTTP(ctx, p, c.Daemon.base+"/healthz", "", "", 30*time.Second)
}

func (c *Cluster) startManager(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	c.webhookPort = ports[0]
	metrics := ports[1]
	certs := filepath.Join(c.Dir, "webhook-certs")
	if _, _, err := c.pki.serving(certs, "tls.crt", "tls.key", 3); err != nil {
		return err
	}
	kc := filepath.Join(c.Dir, "kubeconfig-controller-manager")
	if err := c.writeKubeconfig(kc, ControllerUser, ChaosMeshNamespace); err != nil {
		return err
	}
	p, err := startProcess(c.Dir, "chaos-controller-manager", []string{
		"KUBECONFIG=" + kc,
		"CERTS_DIR=" + certs,
		"WEBHOOK_HOST=127.0.0.1", "WEBHOOK_PORT=" + strconv.Itoa(c.webhookPort),
		"METRICS_HOST=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(metrics),
		"ENABLE_LEADER_ELECTION=false",
		"CLUSTER_SCOPED=true",
		"NAMESPACE=" + ChaosMeshNamespace,
		"CHAOS_DAEMON_SERVICE_PORT=" + strconv.Itoa(c.daemonPort),
		"CHAOS_MESH_CA_CERT=",
		"CHAOS_DNS_SERVICE_NAME=" + DNSServiceName,
		"CHAOS_DNS_SERVICE_PORT=" + strconv.Itoa(c.dnsPort),
		"SECURITY_MODE=true",
		// A daemon call that the recorder is told to hang fails after this.
		"RPC_TIMEOUT=20s",
	}, c.bins.ControllerMgr)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	c.manager = p
	return waitHTTP(ctx, p, "http://127.0.0.1:"+strconv.Itoa(metrics)+"/metrics", "", "", 2*time.Minute)
}

// ManagerLog returns the last n lines of the controller-manager's log.
func (c *Cluster) ManagerLog(n int) string {
	if c.manager == nil {
		return ""
	}
	return c.manager.tail(n)
}

// Check reports a process of the cluster that has exited.
func (c *Cluster) Check() error {
	var errs []error
	for _, p := range c.procs {
		if p.exited() {
			errs = append(errs, fmt.Errorf("%s exited: %v; its log ends:\n%s", p.name, p.err, p.tail(20)))
		}
	}
	return errors.Join(errs...)
}

// Stop stops every process (the controller first, etcd last) and removes Dir unless
// FAULTLINE_E2E_KEEP is set.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
	if os.Getenv("FAULTLINE_E2E_KEEP") != "" {
		c.logf("kept %s", c.Dir)
		return
	}
	_ = os.RemoveAll(c.Dir)
}
