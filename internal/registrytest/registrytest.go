// Package registrytest starts a real OCI registry for tests: Debian's
// docker-registry (the distribution registry, 2.8), serving on a free port of
// 127.0.0.1 with its storage in a temporary directory. Nothing is stubbed:
// tests push to and pull from the registry users run.
package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/internal/testport"
)

// Binary is the registry executable looked up on PATH.
const Binary = "docker-registry"

// Registry is one running docker-registry.
type Registry struct {
	// Host is host:port, e.g. 127.0.0.1:40123: the registry part of a
	// reference.
	Host string
	// Root is the storage root directory.
	Root string

	t      testing.TB
	config string
	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *syncBuffer
	done   chan struct{}
}

// syncBuffer is a bytes.Buffer the registry's output goroutines and Log
// may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Need returns the registry binary's path or skips the test (fails it under
// CI, where .ci/run installs the package).
func Need(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath(Binary)
	if err != nil {
		msg := Binary + " is not installed (apt-get install -y docker-registry; .ci/run installs it)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Start starts a registry on a free loopback port and stops it when the test
// ends.
func Start(t testing.TB) *Registry {
	t.Helper()
	Need(t)
	dir := t.TempDir()
	r := &Registry{t: t, Root: filepath.Join(dir, "storage"), config: filepath.Join(dir, "config.yml")}
	r.Host = freeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, r.Root, r.Host)
	if err := os.WriteFile(r.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.Stop)
	return r
}

// freeAddr is the registry's address, on a port from below the ephemeral
// range (testport).
func freeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", testport.Loopback(t, 1)[0])
}

// start runs the registry and waits until /v2/ answers (at most 15s).
func (r *Registry) start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = &syncBuffer{}
	cmd := exec.Command(Binary, "serve", r.config)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting %s: %v", Binary, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(r.done)

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			r.t.Fatalf("%s exited at start:\n%s", Binary, r.log.String())
		default:
		}
		resp, err := client.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("%s did not answer on %s within 15s:\n%s", Binary, r.Host, r.log.String())
}

// Stop kills the registry (SIGKILL: as abrupt as a crash) and waits for it.
// Stopping a stopped registry does nothing.
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("%s (pid %d) did not exit within 10s of SIGKILL", Binary, r.cmd.Process.Pid)
	}
	r.cmd = nil
}

// Restart starts the registry again on the same address and storage.
func (r *Registry) Restart() {
	r.t.Helper()
	r.Stop()
	r.start()
}

// Log is what the registry printed since it last started.
func (r *Registry) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// Get fetches a path of the registry's HTTP API (e.g. /v2/repo/tags/list)
// with a 5s timeout and returns the status and body.
func (r *Registry) Get(ctx context.Context, path string, accept ...string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Host+path, nil)
	if err != nil {
		return 0, nil, err
	}
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}
