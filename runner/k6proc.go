package runner

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.k6.io/k6/api/v1"
	"go.k6.io/k6/api/v1/client"
	"gopkg.in/guregu/null.v3"

	"faultline.dev/faultline/runner/k6out"
)

// k6Proc is the embedded k6 running as a child of faultline itself:
// `faultline k6 run --paused ...`, resumed over its REST API so that the
// instant the load starts is known.
type k6Proc struct {
	cmd      *exec.Cmd
	api      *client.Client
	apiAddr  string
	done     chan struct{}
	mu       sync.Mutex
	exitCode int
	waitErr  error
}

// startK6 starts k6 paused and waits until its API answers. A child that
// cannot be reached within the timeout is killed, never waited on forever.
func startK6(ctx context.Context, self, script, collector string, env []string, logs io.Writer, timeout time.Duration) (*k6Proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"k6", "run", "--paused", "--address", addr, "--no-usage-report", "--quiet",
		"--out", k6out.Name + "=" + collector, script}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "K6_AUTO_EXTENSION_RESOLUTION=false", "K6_NO_USAGE_REPORT=true", "K6_NO_COLOR=true")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	// Own process group: a Ctrl-C on the terminal reaches faultline, which
	// stops k6 itself, in order, after recovering the faults.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting k6: %w", err)
	}
	p := &k6Proc{cmd: cmd, apiAddr: addr, done: make(chan struct{}), exitCode: -1}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		if cmd.ProcessState != nil {
			p.exitCode = cmd.ProcessState.ExitCode()
		}
		p.mu.Unlock()
		close(p.done)
	}()
	p.api, err = client.New(addr)
	if err != nil {
		p.kill()
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := p.api.Status(sctx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			code, _ := p.exit()
			return nil, fmt.Errorf("k6 exited with code %d before its API answered (see the k6 log)", code)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("k6's API at %s did not answer within %s: killed it", addr, timeout)
		}
	}
}

// resume starts the load and returns the instant it started.
func (p *k6Proc) resume(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	before := time.Now()
	_, err := p.api.SetStatus(ctx, v1.Status{Paused: null.BoolFrom(false)})
	if err != nil {
		return time.Time{}, fmt.Errorf("resuming k6: %w", err)
	}
	after := time.Now()
	return before.Add(after.Sub(before) / 2), nil
}

// stop asks k6 to stop (SIGINT: it ends the test gracefully) and kills it
// when it has not exited within grace.
func (p *k6Proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// kill kills k6's process group and reaps it.
func (p *k6Proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// exit returns k6's exit code (-1 while it runs) and its wait error.
func (p *k6Proc) exit() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode, p.waitErr
}

// k6 exit codes faultline distinguishes.
const (
	k6ThresholdsCrossed = 99
	k6ExternalAbort     = 105
	k6ScriptAbort       = 108
)

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
