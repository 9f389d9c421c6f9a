// Package local is the runner's local backend: a scenario on a laptop, no
// cluster. The load comes from faultline's own engine in the runner's
// process, so network and HTTP faults act on the engine's own connections
// and requests (package inject: a dialer that wraps each connection, and an
// HTTP middleware): no proxy and no second hop, and with no fault active
// the load takes the direct path. CPU and memory stress run in stress
// worker processes that share a cgroup with the target (stress.go, package
// cgroup), so they compete with the target and not with the load
// generator; pod kill, pod failure and container kill act
// on the target process when faultline started it (target.local.command):
// kill and restart, SIGSTOP until the fault ends. IO faults act on the
// target's target.local.dataDir through a FUSE passthrough mount (io.go,
// package iofs). Kinds it cannot do locally (time skew, DNS faults, packet
// duplication and corruption; IO faults without a data directory or
// without FUSE) are refused up front, saying why.
//
// Each fault gets its implementation when the run is prepared (faults.go):
// the injector's fault set, a stressor, or an action on the target process.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/portowner"
	"faultline.dev/faultline/load"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/local/cgroup"
	"faultline.dev/faultline/runner/local/inject"
	"faultline.dev/faultline/runner/local/iofs"
	"faultline.dev/faultline/schema"
)

// Backend is the local backend.
type Backend struct {
	s    *schema.Scenario
	self string
	log  io.Writer

	faults   *inject.Faults
	impls    map[string]impl // by fault name, chosen in Prepare
	target   *process
	failures chan error

	// group is the target's cgroup, shared with the stress workers (nil
	// when there is none: stress.go); memLimit is its memory limit.
	group     *cgroup.Group
	groupDesc string
	memLimit  int64
	// fuse is the FUSE mount over target.local.dataDir (io.go).
	fuse *iofs.FS

	mu     sync.Mutex
	stress map[string]func() // fault → stop
	paused map[string]bool   // faults holding the target stopped
	notes  []string          // warnings for the run (Notes)
}

// New returns a local backend for a scenario. self is the faultline binary
// ("faultline" in target.local.command means this binary); log receives the
// target's output.
func New(s *schema.Scenario, self string, log io.Writer) *Backend {
	if log == nil {
		log = io.Discard
	}
	return &Backend{s: s, self: self, log: log, faults: inject.NewFaults(), failures: make(chan error, 1),
		stress: map[string]func(){}, paused: map[string]bool{}}
}

// Name is "local".
func (b *Backend) Name() string { return "local" }

// Failures reports a target that died on its own.
func (b *Backend) Failures() <-chan error { return b.failures }

// EngineOptions puts the network faults on the engine's connections, the
// HTTP faults on its requests and the gRPC faults on its calls.
func (b *Backend) EngineOptions() []load.Option {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return []load.Option{
		load.WithDialer(load.DialFunc(b.faults.Dial(d.DialContext))), load.WithMiddleware(b.faults.Middleware()),
		load.WithGRPCInterceptor(b.faults.UnaryInterceptor()),
	}
}

// Supported says whether the local backend can run a fault, and why not.
func (b *Backend) Supported(f schema.Fault) error {
	_, err := b.choose(f)
	return err
}

// Prepare refuses what cannot run locally, starts the target if the
// scenario says how and waits until it is ready. It returns the target's
// own address: the load goes there directly.
func (b *Backend) Prepare(ctx context.Context, p *plan.Plan) (string, error) {
	var refused []string
	b.impls = map[string]impl{}
	for _, f := range p.Faults {
		im, err := b.choose(b.s.Faults[f.Name])
		if err != nil {
			refused = append(refused, fmt.Sprintf("fault %s: %v", f.Name, err))
			continue
		}
		b.impls[f.Name] = im
	}
	if len(refused) > 0 {
		return "", fmt.Errorf("%w: %s; run it with --backend kubernetes (Chaos Mesh)", runner.ErrUnsupported, strings.Join(refused, "; "))
	}
	u, err := url.Parse(b.s.Target.URL)
	if err != nil {
		return "", fmt.Errorf("target.url: %w", err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("the local backend only sends load to loopback; target.url is %s (use --backend kubernetes for a remote service)", b.s.Target.URL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if l := b.s.Target.Local; l != nil && l.Port != 0 {
		port = strconv.Itoa(l.Port)
	}
	addr := net.JoinHostPort(host, port)
	if err := b.mountDataDir(); err != nil {
		return "", err
	}

	if l := b.s.Target.Local; l != nil && len(l.Command) > 0 {
		from := "target.url " + b.s.Target.URL
		if l.Port != 0 {
			from = "target.local.port"
		}
		if holder, taken := portowner.Taken(addr); taken {
			return "", fmt.Errorf("port %s (%s) is already in use by %s: stop it, or change target.url / target.local.port", port, from, holder)
		}
		if err := b.prepareGroup(); err != nil {
			return "", err
		}
		if err := b.startTarget(ctx); err != nil {
			return "", err
		}
	}
	if cpu, mem := b.stressKinds(); (cpu || mem) && b.target == nil {
		b.note("cpuStress/memoryStress run inside faultline's own process, beside the load generator: faultline did not start the target (no target.local.command), so it cannot put the target and the stress in a cgroup of their own; the stress competes with the load generator as much as with the target")
	}
	if err := b.waitReady(ctx, 60*time.Second); err != nil {
		return "", err
	}
	return u.Scheme + "://" + addr, nil
}

// readinessURL is the URL polled before the load starts.
func (b *Backend) readinessURL() string {
	path := "/"
	if l := b.s.Target.Local; l != nil && l.Readiness != "" {
		path = l.Readiness
	}
	return strings.TrimSuffix(b.s.Target.URL, "/") + path
}

// waitReady polls the target until it answers below 500.
func (b *Backend) waitReady(ctx context.Context, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	u := b.readinessURL()
	var last error
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		if b.target != nil && b.target.exited() {
			return fmt.Errorf("the target exited before it was ready (%v); its output is in the report's target.log", b.target.waitErr())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the target at %s was not ready within %s: %v", u, timeout, last)
}

// Inject starts a fault.
func (b *Backend) Inject(ctx context.Context, pf plan.Fault) (time.Time, error) {
	im := b.impls[pf.Name]
	if im == nil {
		return time.Time{}, fmt.Errorf("fault %s: %w", pf.Name, runner.ErrUnsupported)
	}
	return im.inject(ctx, pf.Name)
}

// Recover ends a fault.
func (b *Backend) Recover(_ context.Context, pf plan.Fault) (time.Time, error) {
	im := b.impls[pf.Name]
	if im == nil {
		return time.Now(), nil
	}
	return im.recover(pf.Name)
}

// Cleanup recovers everything and stops what Prepare started: faults
// first, then the target.
func (b *Backend) Cleanup(context.Context) error {
	var errs []error
	b.faults.ClearAll()
	b.mu.Lock()
	for name, stop := range b.stress {
		stop()
		delete(b.stress, name)
	}
	wasPaused := len(b.paused) > 0
	clear(b.paused)
	b.mu.Unlock()
	if b.target != nil && wasPaused {
		_ = b.target.signal(sigCont)
	}
	if b.target != nil {
		if err := b.target.stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if b.fuse != nil {
		if err := b.fuse.Unmount(); err != nil {
			errs = append(errs, err)
		}
		b.fuse = nil
	}
	if b.group != nil {
		if err := b.group.Remove(); err != nil {
			errs = append(errs, err)
		}
		b.group = nil
	}
	return errors.Join(errs...)
}
