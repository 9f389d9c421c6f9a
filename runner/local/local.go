// Package local is the runner's local backend: a scenario on a laptop, no
// cluster. Network and HTTP faults are injected by a proxy in front of the
// target (package inject); CPU and memory stress run beside it on the same
// machine; pod kill, pod failure and container kill act on the target
// process when faultline started it (target.local.command): kill and
// restart, SIGSTOP until the fault ends. Kinds it cannot do locally (time
// skew, IO faults, DNS faults, packet duplication and corruption) are
// refused up front, naming the kubernetes backend.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/portowner"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/local/inject"
	"faultline.dev/faultline/schema"
)

// Backend is the local backend.
type Backend struct {
	s    *schema.Scenario
	self string
	log  io.Writer

	proxy    *inject.Proxy
	proxyEnd chan struct{}
	target   *process
	failures chan error

	mu     sync.Mutex
	stress map[string]func() // fault → stop
	paused map[string]bool   // faults holding the target stopped
}

// New returns a local backend for a scenario. self is the faultline binary
// ("faultline" in target.local.command means this binary); log receives the
// target's output.
func New(s *schema.Scenario, self string, log io.Writer) *Backend {
	if log == nil {
		log = io.Discard
	}
	return &Backend{s: s, self: self, log: log, failures: make(chan error, 1), stress: map[string]func(){}, paused: map[string]bool{}}
}

// Name is "local".
func (b *Backend) Name() string { return "local" }

// Failures reports a target that died on its own.
func (b *Backend) Failures() <-chan error { return b.failures }

// Supported says whether the local backend can run a fault, and why not.
func (b *Backend) Supported(f schema.Fault) error {
	switch {
	case f.NetworkDelay != nil, f.NetworkLoss != nil, f.NetworkBandwidth != nil, f.NetworkPartition != nil, f.HTTPFault != nil,
		f.CPUStress != nil, f.MemoryStress != nil:
		return nil
	case f.PodKill != nil, f.PodFailure != nil, f.ContainerKill != nil:
		if b.s.Target.Local == nil || len(b.s.Target.Local.Command) == 0 {
			return fmt.Errorf("%s needs target.local.command so that faultline starts, kills and restarts the target itself", f.Kind())
		}
		return nil
	case f.NetworkDuplicate != nil, f.NetworkCorrupt != nil:
		return fmt.Errorf("%s acts on single packets, which a local TCP proxy does not see", f.Kind())
	default:
		return fmt.Errorf("%s needs the node's kernel or the pod's runtime", f.Kind())
	}
}

// Prepare refuses what cannot run locally, starts the target if the
// scenario says how, waits until it is ready and puts the injector in front.
func (b *Backend) Prepare(ctx context.Context, p *plan.Plan) (string, error) {
	var refused []string
	for _, f := range p.Faults {
		if err := b.Supported(b.s.Faults[f.Name]); err != nil {
			refused = append(refused, fmt.Sprintf("fault %s: %v", f.Name, err))
		}
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
	upstream := net.JoinHostPort(host, port)

	if l := b.s.Target.Local; l != nil && len(l.Command) > 0 {
		from := "target.url " + b.s.Target.URL
		if l.Port != 0 {
			from = "target.local.port"
		}
		if holder, taken := portowner.Taken(upstream); taken {
			return "", fmt.Errorf("port %s (%s) is already in use by %s: stop it, or change target.url / target.local.port", port, from, holder)
		}
		if err := b.startTarget(ctx); err != nil {
			return "", err
		}
	}
	if err := b.waitReady(ctx, 60*time.Second); err != nil {
		return "", err
	}
	b.proxy, err = inject.New("127.0.0.1:0", upstream)
	if err != nil {
		return "", fmt.Errorf("starting the fault injector: %w", err)
	}
	b.proxyEnd = make(chan struct{})
	go func() {
		defer close(b.proxyEnd)
		_ = b.proxy.Serve(context.Background())
	}()
	return u.Scheme + "://" + b.proxy.Addr(), nil
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
	f := b.s.Faults[pf.Name]
	switch {
	case f.NetworkDelay != nil, f.NetworkLoss != nil, f.NetworkBandwidth != nil, f.NetworkPartition != nil, f.HTTPFault != nil:
		if err := b.proxy.Set(pf.Name, f); err != nil {
			return time.Time{}, err
		}
		return time.Now(), nil
	case f.CPUStress != nil:
		load := 100.0
		if f.CPUStress.Load != nil {
			load = *f.CPUStress.Load
		}
		b.setStress(pf.Name, cpuStress(f.CPUStress.Workers, load))
		return time.Now(), nil
	case f.MemoryStress != nil:
		stop, err := memoryStress(f.MemoryStress.Workers, f.MemoryStress.Size)
		if err != nil {
			return time.Time{}, err
		}
		b.setStress(pf.Name, stop)
		return time.Now(), nil
	case f.PodKill != nil, f.ContainerKill != nil:
		at := time.Now()
		if err := b.target.kill(); err != nil {
			return time.Time{}, err
		}
		// As a controller would: start it again at once.
		if err := b.startTarget(ctx); err != nil {
			return time.Time{}, fmt.Errorf("restarting the target after %s: %w", pf.Name, err)
		}
		return at, nil
	case f.PodFailure != nil:
		if err := b.target.signal(syscall.SIGSTOP); err != nil {
			return time.Time{}, err
		}
		b.mu.Lock()
		b.paused[pf.Name] = true
		b.mu.Unlock()
		return time.Now(), nil
	}
	return time.Time{}, fmt.Errorf("fault %s: %w", pf.Name, runner.ErrUnsupported)
}

func (b *Backend) setStress(name string, stop func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stress[name] = stop
}

// Recover ends a fault.
func (b *Backend) Recover(_ context.Context, pf plan.Fault) (time.Time, error) {
	f := b.s.Faults[pf.Name]
	switch {
	case f.CPUStress != nil, f.MemoryStress != nil:
		b.mu.Lock()
		stop := b.stress[pf.Name]
		delete(b.stress, pf.Name)
		b.mu.Unlock()
		if stop != nil {
			stop()
		}
	case f.PodFailure != nil:
		b.mu.Lock()
		delete(b.paused, pf.Name)
		still := len(b.paused) > 0
		b.mu.Unlock()
		if !still {
			if err := b.target.signal(syscall.SIGCONT); err != nil {
				return time.Now(), err
			}
		}
	case f.PodKill != nil, f.ContainerKill != nil:
		// One-shot: the restart happened at injection.
	default:
		b.proxy.Clear(pf.Name)
	}
	return time.Now(), nil
}

// Cleanup recovers everything and stops what Prepare started: faults
// first, then the injector (which cuts the load off), then the target.
func (b *Backend) Cleanup(context.Context) error {
	var errs []error
	if b.proxy != nil {
		b.proxy.ClearAll()
	}
	b.mu.Lock()
	for name, stop := range b.stress {
		stop()
		delete(b.stress, name)
	}
	wasPaused := len(b.paused) > 0
	clear(b.paused)
	b.mu.Unlock()
	if b.target != nil && wasPaused {
		_ = b.target.signal(syscall.SIGCONT)
	}
	if b.proxy != nil {
		if err := b.proxy.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		select {
		case <-b.proxyEnd:
		case <-time.After(5 * time.Second):
			errs = append(errs, errors.New("the fault injector did not stop within 5s"))
		}
	}
	if b.target != nil {
		if err := b.target.stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// process is the target, started from target.local.command.
type process struct {
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	stopping atomic.Bool
}

func (b *Backend) startTarget(ctx context.Context) error {
	l := b.s.Target.Local
	argv := append([]string(nil), l.Command...)
	if argv[0] == "faultline" && b.self != "" {
		argv[0] = b.self
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for k, v := range l.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = b.log, b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the target (%s): %w", strings.Join(l.Command, " "), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		if !p.stopping.Load() {
			select {
			case b.failures <- fmt.Errorf("the target process exited unexpectedly: %v", p.err):
			default:
			}
		}
	}()
	b.target = p
	return b.waitReady(ctx, 30*time.Second)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) waitErr() error {
	if p.exited() {
		return p.err
	}
	return nil
}

func (p *process) signal(sig syscall.Signal) error {
	if p == nil {
		return errors.New("faultline did not start the target")
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// kill kills the target at once (SIGKILL), as a pod kill does.
func (p *process) kill() error {
	if p == nil {
		return errors.New("faultline did not start the target")
	}
	p.stopping.Store(true)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("the target did not die within 5s of SIGKILL")
	}
}

// stop ends the target: SIGTERM, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	p.stopping.Store(true)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	return p.kill()
}

// cpuStress runs workers threads that each keep a CPU busy load% of the
// time (in 10ms periods); the returned func stops them.
func cpuStress(workers int, load float64) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	busy := time.Duration(load / 100 * float64(10*time.Millisecond))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				for time.Since(start) < busy {
					x++
				}
				if idle := 10*time.Millisecond - busy; idle > 0 {
					time.Sleep(idle)
				}
			}
		}()
	}
	return func() { close(stop); wg.Wait() }
}

// memoryStress allocates size per worker and touches every page, holding it
// until stopped.
func memoryStress(workers int, size string) (func(), error) {
	n, err := schema.Size(size).Bytes()
	if err != nil {
		if strings.HasSuffix(size, "%") {
			return nil, fmt.Errorf("memoryStress size %s: a percentage needs a container limit; give a size such as 256MB locally", size)
		}
		return nil, err
	}
	held := make([][]byte, workers)
	for i := range held {
		held[i] = make([]byte, n)
		for j := 0; j < len(held[i]); j += 4096 {
			held[i][j] = 1
		}
	}
	return func() {
		clear(held)
		runtime.GC()
	}, nil
}
