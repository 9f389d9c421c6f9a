// Package cgroup gives the target faultline starts, and the stressors it
// runs beside it, a control group of their own, so that CPU and memory
// stress compete with the target alone and not with the load generator in
// faultline's own process.
//
// The group is made under faultline's own cgroup in each hierarchy (so it
// stays inside whatever limits faultline itself runs under), named
// faultline-<pid>-<n>:
//
//   - cgroup v1 (a hierarchy per controller): cpuset (cpuset.cpus; the
//     memory nodes copied from the parent), cpu (cpu.cfs_quota_us, when a
//     CPU budget is asked without cpuset), memory (memory.limit_in_bytes).
//   - cgroup v2 (the unified hierarchy, when it has the cpu or memory
//     controller): cpuset.cpus, cpu.max, memory.max in one directory.
//
// A process starts inside the group from its first instruction (Start): on
// v1 the forking thread joins the group for the fork and leaves it again,
// on v2 the child is cloned into the group (CLONE_INTO_CGROUP). Remove
// kills what is left in the group and removes its directories; Sweep
// removes groups left by a faultline process that no longer exists.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec is what the group limits. Zero values leave a resource unlimited.
type Spec struct {
	// CPUs is a cpuset list such as "1" or "2-3": the only CPUs the group's
	// processes run on.
	CPUs string
	// CPUQuota is a CPU budget in CPUs (1.5 = one and a half CPUs' time
	// per period), for machines without the cpuset controller.
	CPUQuota float64
	// MemoryLimit is the group's memory limit in bytes.
	MemoryLimit int64
}

// Support says which controllers a group can use here, and why not.
type Support struct {
	V2     bool
	CPUSet bool
	CPU    bool
	Memory bool
	// Why explains a missing controller (not root, not mounted, ...).
	Why []string
}

// Group is one control group, in one directory per controller (v1) or in
// one directory (v2).
type Group struct {
	name string
	v2   bool
	// dirs maps a v1 controller ("cpuset", "cpu", "memory") to the group's
	// directory in its hierarchy; on v2 the one directory is under "".
	dirs map[string]string
}

// prefix starts the name of every group faultline makes.
const prefix = "faultline-"

var seq atomic.Int64

const root = "/sys/fs/cgroup"

// Detect says what a group can use on this machine.
func Detect() Support {
	var s Support
	if os.Geteuid() != 0 {
		s.Why = append(s.Why, "faultline is not running as root")
		return s
	}
	if ctrls, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		// Pure v2: /sys/fs/cgroup is the unified hierarchy.
		s.V2 = true
		have := strings.Fields(string(ctrls))
		s.CPUSet, s.CPU, s.Memory = contains(have, "cpuset"), contains(have, "cpu"), contains(have, "memory")
		if !s.CPU && !s.CPUSet {
			s.Why = append(s.Why, "the cgroup v2 hierarchy has no cpu or cpuset controller")
		}
		if !s.Memory {
			s.Why = append(s.Why, "the cgroup v2 hierarchy has no memory controller")
		}
		return s
	}
	own, err := ownCgroups()
	if err != nil {
		s.Why = append(s.Why, err.Error())
		return s
	}
	for _, c := range []struct {
		name string
		ok   *bool
	}{{"cpuset", &s.CPUSet}, {"cpu", &s.CPU}, {"memory", &s.Memory}} {
		if _, ok := own[c.name]; ok && isDir(filepath.Join(root, c.name)) {
			*c.ok = true
		}
	}
	if !s.CPUSet && !s.CPU {
		s.Why = append(s.Why, "no cgroup v1 cpuset or cpu controller is mounted")
	}
	if !s.Memory {
		s.Why = append(s.Why, "no cgroup v1 memory controller is mounted")
	}
	return s
}

// New makes a group for spec under faultline's own cgroups. Sweep first
// removes groups a dead faultline left behind.
func New(spec Spec) (*Group, error) {
	sup := Detect()
	if len(sup.Why) > 0 && !sup.CPU && !sup.CPUSet && !sup.Memory {
		return nil, errors.New(strings.Join(sup.Why, "; "))
	}
	if spec.CPUs != "" && !sup.CPUSet {
		return nil, errors.New("no cpuset controller to pin the group's CPUs")
	}
	if spec.CPUQuota > 0 && !sup.CPU {
		return nil, errors.New("no cpu controller for a CPU quota")
	}
	if spec.MemoryLimit > 0 && !sup.Memory {
		return nil, errors.New("no memory controller for a memory limit")
	}
	Sweep()
	g := &Group{name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), seq.Add(1)), v2: sup.V2, dirs: map[string]string{}}
	if err := g.make(spec, sup); err != nil {
		_ = g.Remove()
		return nil, err
	}
	return g, nil
}

func (g *Group) make(spec Spec, sup Support) error {
	if g.v2 {
		own, err := ownCgroups()
		if err != nil {
			return err
		}
		parent := filepath.Join(root, own[""])
		dir := filepath.Join(parent, g.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		g.dirs[""] = dir
		var enable []string
		if spec.CPUs != "" {
			enable = append(enable, "+cpuset")
		}
		if spec.CPUQuota > 0 {
			enable = append(enable, "+cpu")
		}
		if spec.MemoryLimit > 0 {
			enable = append(enable, "+memory")
		}
		if len(enable) > 0 {
			// A v2 parent hands controllers down only when they are enabled
			// in its subtree_control.
			if err := write(filepath.Join(parent, "cgroup.subtree_control"), strings.Join(enable, " ")); err != nil {
				return fmt.Errorf("enabling %s for faultline's cgroup %s: %w", strings.Join(enable, " "), parent, err)
			}
		}
		if spec.CPUs != "" {
			if err := write(filepath.Join(dir, "cpuset.cpus"), spec.CPUs); err != nil {
				return err
			}
		}
		if spec.CPUQuota > 0 {
			const period = 100000
			if err := write(filepath.Join(dir, "cpu.max"), fmt.Sprintf("%d %d", int64(spec.CPUQuota*period), period)); err != nil {
				return err
			}
		}
		if spec.MemoryLimit > 0 {
			return g.SetMemoryLimit(spec.MemoryLimit)
		}
		return nil
	}
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	mk := func(ctrl string) (string, error) {
		dir := filepath.Join(root, ctrl, own[ctrl], g.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", err
		}
		g.dirs[ctrl] = dir
		return dir, nil
	}
	if spec.CPUs != "" {
		dir, err := mk("cpuset")
		if err != nil {
			return err
		}
		mems, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "cpuset.mems"))
		if err != nil {
			return err
		}
		if err := write(filepath.Join(dir, "cpuset.mems"), strings.TrimSpace(string(mems))); err != nil {
			return err
		}
		if err := write(filepath.Join(dir, "cpuset.cpus"), spec.CPUs); err != nil {
			return err
		}
	}
	if spec.CPUQuota > 0 {
		dir, err := mk("cpu")
		if err != nil {
			return err
		}
		period := int64(100000)
		if err := write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.FormatInt(period, 10)); err != nil {
			return err
		}
		if err := write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(int64(spec.CPUQuota*float64(period)), 10)); err != nil {
			return err
		}
	}
	if spec.MemoryLimit > 0 || sup.Memory {
		// A memory group even without a limit: its usage is the target's
		// and the stressors' together, and a limit can come later.
		if _, err := mk("memory"); err != nil {
			return err
		}
		if spec.MemoryLimit > 0 {
			return g.SetMemoryLimit(spec.MemoryLimit)
		}
	}
	return nil
}

// Name is the group's directory name.
func (g *Group) Name() string { return g.name }

// Dirs lists the group's directories.
func (g *Group) Dirs() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, d)
	}
	return out
}

// HasMemory says whether the group has a memory controller.
func (g *Group) HasMemory() bool {
	if g.v2 {
		return isFile(filepath.Join(g.dirs[""], "memory.max"))
	}
	return g.dirs["memory"] != ""
}

// SetMemoryLimit sets the group's memory limit in bytes.
func (g *Group) SetMemoryLimit(n int64) error {
	if g.v2 {
		return write(filepath.Join(g.dirs[""], "memory.max"), strconv.FormatInt(n, 10))
	}
	dir := g.dirs["memory"]
	if dir == "" {
		return errors.New("the group has no memory controller")
	}
	return write(filepath.Join(dir, "memory.limit_in_bytes"), strconv.FormatInt(n, 10))
}

// MemoryUsage is the memory the group's processes use now, in bytes.
func (g *Group) MemoryUsage() (int64, error) {
	f := filepath.Join(g.dirs["memory"], "memory.usage_in_bytes")
	if g.v2 {
		f = filepath.Join(g.dirs[""], "memory.current")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// OOMKills is how many times the kernel's OOM killer acted in the group
// (-1 when the kernel does not say).
func (g *Group) OOMKills() int64 {
	f, key := filepath.Join(g.dirs["memory"], "memory.oom_control"), "oom_kill"
	if g.v2 {
		f = filepath.Join(g.dirs[""], "memory.events")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// Start starts cmd inside the group: the process and everything it forks
// are in the group from the start.
func (g *Group) Start(cmd *exec.Cmd) error {
	if g.v2 {
		fd, err := syscall.Open(g.dirs[""], syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		return cmd.Start()
	}
	// v1: this OS thread joins the group's tasks, forks (the child
	// inherits the thread's groups), then goes back. The thread is never
	// unlocked: it ends with this goroutine, so no other goroutine runs on
	// a thread that was moved (and had its CPU affinity changed).
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := strconv.Itoa(syscall.Gettid())
		own, err := ownCgroups()
		if err != nil {
			errc <- err
			return
		}
		var moved []string
		back := func() {
			for _, ctrl := range moved {
				_ = write(filepath.Join(root, ctrl, own[ctrl], "tasks"), tid)
			}
		}
		for ctrl, dir := range g.dirs {
			if err := write(filepath.Join(dir, "tasks"), tid); err != nil {
				back()
				errc <- fmt.Errorf("joining %s: %w", dir, err)
				return
			}
			moved = append(moved, ctrl)
		}
		err = cmd.Start()
		back()
		errc <- err
	}()
	return <-errc
}

// Procs lists the processes in the group.
func (g *Group) Procs() []int {
	seen := map[int]bool{}
	var out []int
	for _, dir := range g.dirs {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// Remove kills every process still in the group (SIGKILL), waits up to 5s
// for them to go, and removes the group's directories.
func (g *Group) Remove() error {
	var errs []error
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs := g.Procs()
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("processes %v still in cgroup %s after SIGKILL", procs, g.name))
			break
		}
		for _, pid := range procs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for ctrl, dir := range g.dirs {
		if err := rmdir(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(g.dirs, ctrl)
	}
	return errors.Join(errs...)
}

// rmdir removes a cgroup directory, retrying briefly: the kernel may still
// hold it for a moment after its last process died.
func rmdir(dir string) error {
	var err error
	for range 50 {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", dir, err)
}

// Sweep removes the groups of faultline processes that no longer run
// (killed before their cleanup), with whatever they left inside.
func Sweep() {
	own, err := ownCgroups()
	if err != nil {
		return
	}
	var parents []string
	if isFile(filepath.Join(root, "cgroup.controllers")) {
		parents = append(parents, filepath.Join(root, own[""]))
	} else {
		for _, ctrl := range []string{"cpuset", "cpu", "memory"} {
			if p, ok := own[ctrl]; ok {
				parents = append(parents, filepath.Join(root, ctrl, p))
			}
		}
	}
	for _, parent := range parents {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			pid, ok := creator(e.Name())
			if !ok || !e.IsDir() || syscall.Kill(pid, 0) == nil || pid == os.Getpid() {
				continue
			}
			g := &Group{name: e.Name(), dirs: map[string]string{"": filepath.Join(parent, e.Name())}}
			_ = g.Remove()
		}
	}
}

// Leftovers lists the groups under faultline's own cgroups that a
// faultline process no longer running left behind (for tests and cleanup
// checks; Sweep removes them).
func Leftovers() []string {
	own, err := ownCgroups()
	if err != nil {
		return nil
	}
	var out []string
	for ctrl, p := range own {
		parent := filepath.Join(root, ctrl, p)
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if pid, ok := creator(e.Name()); ok && e.IsDir() && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				out = append(out, filepath.Join(parent, e.Name()))
			}
		}
	}
	return out
}

// creator is the pid in a group name faultline-<pid>-<n>.
func creator(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// ownCgroups maps each v1 controller of this process to its cgroup path
// ("" is the v2 path), from /proc/self/cgroup.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

func write(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0); err != nil {
		return fmt.Errorf("writing %q to %s: %w", v, path, err)
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// AllowedCPUs lists the CPUs this process may run on
// (Cpus_allowed_list in /proc/self/status).
func AllowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return ParseCPUList(strings.TrimSpace(v))
		}
	}
	return nil, errors.New("no Cpus_allowed_list in /proc/self/status")
}

// ParseCPUList reads a cpuset list such as "0-3,6".
func ParseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil || z < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= z; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// FormatCPUList writes CPUs as a cpuset list ("1,3" or "2-3").
func FormatCPUList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		} else {
			parts = append(parts, strconv.Itoa(cpus[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
