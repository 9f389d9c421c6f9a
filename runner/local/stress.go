package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"faultline.dev/faultline/runner/local/cgroup"
	"faultline.dev/faultline/runner/local/stress"
	"faultline.dev/faultline/schema"
)

// The target's cgroup.
//
// When faultline starts the target and the scenario has cpuStress or
// memoryStress, the target (and each restart of it) and the stress
// workers run in a cgroup of their own (package cgroup), so the stress
// competes with the target alone, as Chaos Mesh's stressors do inside the
// target's container:
//
//   - cpuStress: the group gets a CPU limit of half the CPUs faultline may
//     use (at least one; on 2 CPUs: one), as a container's CPU limit is: a
//     CFS quota (v1 cpu.cfs_quota_us, v2 cpu.max) per 100ms period. The
//     stressors use up the target's quota, so the target is throttled as
//     in a container under Chaos Mesh's stressors, and the group never
//     takes more than its limit from the load generator. Without the cpu
//     controller the group is pinned (cpuset) to the upper half of the
//     CPUs and the load generator keeps the rest: isolated too, but with
//     no throttling the scheduler serves a light target first and the
//     stress shows less. The limit holds for the whole run, so steady,
//     fault and recovery see the same target.
//     Measured on 2 CPUs, 300 req/s of 0.3ms of CPU each, 2 workers:
//     quota: p50 0.53 -> 7.8ms, p99 3.4 -> 49ms, rate 304/s; cpuset: p50
//     0.39 -> 0.42ms; in faultline's process: p50 0.52 -> 22ms, p99 361ms,
//     most of it the load generator starved.
//   - memoryStress: the workers' memory is charged to the group, and the
//     group's memory limit is the target's memory budget: GOMEMLIMIT of
//     the target's environment (target.local.env, else faultline's own)
//     divided by 0.9, since GOMEMLIMIT is commonly set to 90% of a
//     container's limit. Without GOMEMLIMIT the group has no limit (the run
//     says so) and a percentage size is refused.
//
// Where no group can be made (not root, no controller, the target not
// started by faultline), the stress runs inside faultline's process as
// before, and Notes says so.

// NoCgroupEnv set to "1" keeps the stress inside faultline, as where no
// cgroup can be made (to compare, and for tests).
const NoCgroupEnv = "FAULTLINE_NO_CGROUP"

// memoryBudgetShare is GOMEMLIMIT's share of the group's memory limit.
const memoryBudgetShare = 0.9

// stressKinds says whether the scenario has CPU or memory stress.
func (b *Backend) stressKinds() (cpu, mem bool) {
	for _, f := range b.s.Faults {
		cpu = cpu || f.CPUStress != nil
		mem = mem || f.MemoryStress != nil
	}
	return cpu, mem
}

// memoryLimit is the target's memory limit by the rule above, with where
// it comes from; 0 when there is none.
func (b *Backend) memoryLimit() (int64, string, error) {
	v, from := os.Getenv("GOMEMLIMIT"), "faultline's environment"
	if l := b.s.Target.Local; l != nil {
		if e, ok := l.Env["GOMEMLIMIT"]; ok {
			v, from = e, "target.local.env"
		}
	}
	if v == "" || v == "off" {
		return 0, "", nil
	}
	n, err := parseGoMemLimit(v)
	if err != nil {
		return 0, "", fmt.Errorf("GOMEMLIMIT %q in %s: %w", v, from, err)
	}
	return int64(float64(n) / memoryBudgetShare), fmt.Sprintf("GOMEMLIMIT %s (%s) / %.1f", v, from, memoryBudgetShare), nil
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does: a byte count
// with an optional B, KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive byte count such as 512MiB")
	}
	return n * mult, nil
}

// prepareGroup makes the target's cgroup before the target starts, or
// notes why the stress will run inside faultline.
func (b *Backend) prepareGroup() error {
	cpu, mem := b.stressKinds()
	if !cpu && !mem {
		return nil
	}
	fallback := func(why string) {
		b.note(fmt.Sprintf("cpuStress/memoryStress run inside faultline's own process, beside the load generator: %s; the stress competes with the load generator as much as with the target, and the latency measured is partly faultline's own", why))
	}
	if os.Getenv(NoCgroupEnv) == "1" {
		fallback(NoCgroupEnv + "=1 is set")
		return nil
	}
	if b.self == "" {
		fallback("faultline's own binary is not known, so no stress worker process can be started")
		return nil
	}
	sup := cgroup.Detect()
	var spec cgroup.Spec
	var desc []string
	if cpu {
		all, err := cgroup.AllowedCPUs()
		switch {
		case err != nil:
			fallback("the CPUs faultline may use are unknown: " + err.Error())
			return nil
		case len(all) < 2:
			fallback("faultline may use one CPU only, which the target and the load generator must share")
			return nil
		}
		n := len(all) / 2
		target, gen := all[len(all)-n:], all[:len(all)-n]
		switch {
		case sup.CPU:
			spec.CPUQuota = float64(n)
			desc = append(desc, fmt.Sprintf("a CPU limit of %d of %d CPUs", n, len(all)))
		case sup.CPUSet:
			spec.CPUs = cgroup.FormatCPUList(target)
			desc = append(desc, fmt.Sprintf("CPUs %s (the load generator keeps %s)", spec.CPUs, cgroup.FormatCPUList(gen)))
		default:
			fallback("no cgroup can be made for the target (" + strings.Join(sup.Why, "; ") + ")")
			return nil
		}
	}
	if mem {
		limit, from, err := b.memoryLimit()
		if err != nil {
			return err
		}
		switch {
		case !sup.Memory && !cpu:
			fallback("no cgroup can be made for the target (" + strings.Join(sup.Why, "; ") + ")")
			return nil
		case !sup.Memory:
			b.note("memoryStress runs in the target's cgroup without a memory limit: " + strings.Join(sup.Why, "; "))
		case limit > 0:
			spec.MemoryLimit = limit
			b.memLimit = limit
			desc = append(desc, fmt.Sprintf("memory limit %s (%s)", humanBytes(limit), from))
		default:
			b.note("memoryStress: the target's cgroup has no memory limit (set GOMEMLIMIT in target.local.env to give it one: the limit is GOMEMLIMIT / 0.9), so the stress takes memory from the machine rather than from the target's budget")
		}
	}
	g, err := cgroup.New(spec)
	if err != nil {
		fallback("no cgroup could be made for the target: " + err.Error())
		b.memLimit = 0
		return nil
	}
	b.group = g
	b.groupDesc = fmt.Sprintf("the target and its stressors run in cgroup %s: %s", g.Name(), strings.Join(desc, ", "))
	return nil
}

// note adds a warning for the run's output and results.json (Notes).
func (b *Backend) note(s string) {
	b.mu.Lock()
	b.notes = append(b.notes, s)
	b.mu.Unlock()
}

// Notes are the backend's warnings about the run: where stress could not
// be isolated from the load generator, a stress worker the OOM killer
// ended. The runner adds them to results.json's warnings and prints them.
func (b *Backend) Notes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.notes...)
}

// Isolation describes the target's cgroup ("" when there is none).
func (b *Backend) Isolation() string { return b.groupDesc }

// stressor runs CPU or memory stress: a stress worker process in the
// target's cgroup, or goroutines in faultline when there is no group.
type stressor struct {
	b *Backend
	f schema.Fault
}

func (s stressor) config() (stress.WorkerConfig, error) {
	if c := s.f.CPUStress; c != nil {
		load := 100.0
		if c.Load != nil {
			load = *c.Load
		}
		return stress.WorkerConfig{CPUWorkers: c.Workers, Load: load}, nil
	}
	m := s.f.MemoryStress
	n, err := memorySize(m.Size, s.b.memLimit)
	if err != nil {
		return stress.WorkerConfig{}, err
	}
	return stress.WorkerConfig{MemoryWorkers: m.Workers, MemoryBytes: n}, nil
}

// memorySize is a memoryStress size in bytes; a percentage is of limit.
func memorySize(size string, limit int64) (int64, error) {
	if p, ok := strings.CutSuffix(size, "%"); ok {
		if limit == 0 {
			return 0, fmt.Errorf("memoryStress size %s: a percentage needs the target's memory limit; set GOMEMLIMIT in target.local.env (the limit is GOMEMLIMIT / 0.9), or give a size such as 256MB", size)
		}
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return 0, err
		}
		return int64(v / 100 * float64(limit)), nil
	}
	return schema.Size(size).Bytes()
}

func (s stressor) inject(ctx context.Context, name string) (time.Time, error) {
	c, err := s.config()
	if err != nil {
		return time.Time{}, err
	}
	var stop func()
	if s.b.group != nil {
		stop, err = s.b.startWorker(ctx, name, c)
	} else if c.CPUWorkers > 0 {
		stop = stress.CPU(c.CPUWorkers, c.Load)
	} else {
		stop, err = stress.Memory(c.MemoryWorkers, c.MemoryBytes)
	}
	if err != nil {
		return time.Time{}, err
	}
	s.b.mu.Lock()
	s.b.stress[name] = stop
	s.b.mu.Unlock()
	return time.Now(), nil
}

func (s stressor) recover(name string) (time.Time, error) {
	s.b.mu.Lock()
	stop := s.b.stress[name]
	delete(s.b.stress, name)
	s.b.mu.Unlock()
	if stop != nil {
		stop()
	}
	return time.Now(), nil
}

// startWorker starts "faultline stress-worker" in the target's cgroup and
// waits until its stress is on. The returned func kills it.
func (b *Backend) startWorker(ctx context.Context, name string, c stress.WorkerConfig) (func(), error) {
	args := []string{"stress-worker"}
	if c.CPUWorkers > 0 {
		args = append(args, "--cpu-workers", strconv.Itoa(c.CPUWorkers), "--load", strconv.FormatFloat(c.Load, 'f', -1, 64))
	} else {
		args = append(args, "--memory-workers", strconv.Itoa(c.MemoryWorkers), "--memory-bytes", strconv.FormatInt(c.MemoryBytes, 10))
	}
	cmd := exec.Command(b.self, args...)
	cmd.Env = append(os.Environ(), stress.WorkerEnv+"=1")
	cmd.Stderr = b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := b.group.Start(cmd); err != nil {
		return nil, fmt.Errorf("starting the stress worker of %s: %w", name, err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == stress.Ready {
				ready <- nil
				for sc.Scan() {
				}
				return
			}
		}
		ready <- errors.New("it ended before its stress was on")
	}()
	done := make(chan struct{})
	var werr error
	var stopped atomic.Bool
	go func() {
		werr = cmd.Wait()
		close(done)
	}()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	select {
	case err := <-ready:
		if err != nil {
			kill()
			if oom := b.group.OOMKills(); oom > 0 {
				return nil, fmt.Errorf("the stress worker of %s was killed by the OOM killer in the target's cgroup (limit %s)", name, humanBytes(b.memLimit))
			}
			return nil, fmt.Errorf("the stress worker of %s: %v (%v)", name, err, werr)
		}
	case <-ctx.Done():
		kill()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		kill()
		return nil, fmt.Errorf("the stress worker of %s did not start its stress within 30s", name)
	}
	go func() {
		<-done
		if !stopped.Load() {
			b.note(fmt.Sprintf("fault %s: the stress worker ended before the fault did (%v; OOM kills in the target's cgroup: %d)", name, werr, b.group.OOMKills()))
		}
	}()
	return func() {
		stopped.Store(true)
		kill()
	}, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dB", n)
}
