package local

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"faultline.dev/faultline/schema"
)

const sigCont = syscall.SIGCONT

// impl is how the local backend runs one fault kind.
type impl interface {
	inject(ctx context.Context, name string) (time.Time, error)
	recover(name string) (time.Time, error)
}

// choose picks the implementation of a fault, or says why it cannot run
// locally.
func (b *Backend) choose(f schema.Fault) (impl, error) {
	if err := kubernetesOnly(f); err != nil {
		return nil, err
	}
	switch {
	case f.NetworkDelay != nil, f.NetworkLoss != nil, f.NetworkBandwidth != nil, f.NetworkPartition != nil, f.Netem != nil, f.HTTPFault != nil, f.GRPCFault != nil:
		return injected{b: b, f: f}, nil
	case f.CPUStress != nil:
		return stressor{b: b, f: f}, nil
	case f.MemoryStress != nil:
		limit, _, err := b.memoryLimit()
		if err != nil {
			return nil, err
		}
		if _, err := memorySize(f.MemoryStress.Size, limit); err != nil {
			return nil, err
		}
		return stressor{b: b, f: f}, nil
	case f.PodKill != nil, f.ContainerKill != nil, f.PodFailure != nil:
		if b.s.Target.Local == nil || len(b.s.Target.Local.Command) == 0 {
			return nil, fmt.Errorf("%s needs target.local.command so that faultline starts, kills and restarts the target itself", f.Kind())
		}
		if f.PodFailure != nil {
			return pauser{b: b}, nil
		}
		return killer{b: b}, nil
	case ioTarget(f) != nil:
		r, err := b.ioRule(f)
		if err != nil {
			return nil, err
		}
		return ioFaulter{b: b, r: r}, nil
	case f.NetworkDuplicate != nil, f.NetworkCorrupt != nil:
		return nil, fmt.Errorf("%s acts on single packets, which faultline does not see on a TCP connection", f.Kind())
	default:
		return nil, fmt.Errorf("%s needs the node's kernel or the pod's runtime", f.Kind())
	}
}

// injected is a network or HTTP fault: it acts on the engine's connections
// and requests through the fault set.
type injected struct {
	b *Backend
	f schema.Fault
}

func (i injected) inject(_ context.Context, name string) (time.Time, error) {
	if err := i.b.faults.Set(name, i.f); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

func (i injected) recover(name string) (time.Time, error) {
	i.b.faults.Clear(name)
	return time.Now(), nil
}

// killer is podKill and containerKill: SIGKILL, then the target is started
// again at once, as a controller would. One-shot: recovery does nothing.
type killer struct{ b *Backend }

func (k killer) inject(ctx context.Context, name string) (time.Time, error) {
	at := time.Now()
	if err := k.b.target.kill(); err != nil {
		return time.Time{}, err
	}
	if err := k.b.startTarget(ctx); err != nil {
		return time.Time{}, fmt.Errorf("restarting the target after %s: %w", name, err)
	}
	return at, nil
}

func (killer) recover(string) (time.Time, error) { return time.Now(), nil }

// pauser is podFailure: the target is stopped (SIGSTOP) for the fault's
// duration, then continued once no podFailure holds it.
type pauser struct{ b *Backend }

func (p pauser) inject(_ context.Context, name string) (time.Time, error) {
	if p.b.target == nil {
		return time.Time{}, errors.New("faultline did not start the target")
	}
	if err := p.b.target.signal(syscall.SIGSTOP); err != nil {
		return time.Time{}, err
	}
	p.b.mu.Lock()
	p.b.paused[name] = true
	p.b.mu.Unlock()
	return time.Now(), nil
}

func (p pauser) recover(name string) (time.Time, error) {
	p.b.mu.Lock()
	delete(p.b.paused, name)
	still := len(p.b.paused) > 0
	p.b.mu.Unlock()
	if !still {
		if err := p.b.target.signal(sigCont); err != nil {
			return time.Now(), err
		}
	}
	return time.Now(), nil
}
