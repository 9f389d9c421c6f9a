package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

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
	if b.fuse != nil {
		cmd.Env = append(cmd.Env, DataDirEnv+"="+b.fuse.Dir())
	}
	cmd.Stdout, cmd.Stderr = b.log, b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := cmd.Start
	if b.group != nil {
		start = func() error { return b.group.Start(cmd) }
	}
	if err := start(); err != nil {
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
