package local

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/runner/local/cgroup"
	"faultline.dev/faultline/schema"
)

func needCgroup(t *testing.T) {
	t.Helper()
	s := cgroup.Detect()
	if !s.CPU || !s.Memory {
		t.Skipf("no cpu and memory cgroup controllers here: %v", s.Why)
	}
	if cpus, _ := cgroup.AllowedCPUs(); len(cpus) < 2 {
		t.Skip("one CPU: the target and the load generator must share it")
	}
}

// TestStressInTargetCgroup: with cpuStress and memoryStress in the
// scenario, the target and the stress workers share a cgroup with a CPU
// limit of half the CPUs, the memory stress is charged
// to that group under the limit GOMEMLIMIT implies, nothing is noted, and
// cleanup leaves no cgroup behind.
func TestStressInTargetCgroup(t *testing.T) {
	needCgroup(t)
	all, _ := cgroup.AllowedCPUs()
	faults := map[string]schema.Fault{
		"burn": {CPUStress: &schema.CPUStress{Workers: 2}},
		"hold": {MemoryStress: &schema.MemoryStress{Workers: 1, Size: "50%"}},
	}
	b, p, addr := testBackend(t, faults, map[string]string{"GOMEMLIMIT": "180MiB"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if b.group == nil {
		t.Fatalf("no cgroup; notes: %v", b.Notes())
	}
	if n := b.Notes(); len(n) > 0 {
		t.Errorf("notes with a cgroup: %v", n)
	}
	pid, _ := strconv.Atoi(get(t, "http://"+addr+"/pid"))
	if cg := procCgroups(pid); !strings.Contains(cg, b.group.Name()) {
		t.Fatalf("the target (pid %d) is not in %s:\n%s", pid, b.group.Name(), cg)
	}
	if q, _ := os.ReadFile(filepath.Join(cgroupDir(b, "cpu"), "cpu.cfs_quota_us")); strings.TrimSpace(string(q)) != strconv.Itoa(100000*(len(all)/2)) {
		t.Errorf("the group's CPU quota is %q, want half of %d CPUs per 100ms", q, len(all))
	}
	if want := int64(180<<20) * 10 / 9; b.memLimit < want-1 || b.memLimit > want+1 {
		t.Errorf("memory limit %d, want %d (GOMEMLIMIT / 0.9)", b.memLimit, want)
	}

	before, _ := b.group.MemoryUsage()
	for _, name := range []string{"burn", "hold"} {
		if _, err := b.Inject(ctx, plan.Fault{Name: name}); err != nil {
			t.Fatalf("inject %s: %v", name, err)
		}
	}
	procs := b.group.Procs()
	if len(procs) != 3 {
		t.Errorf("processes in the group: %v, want the target and two stress workers", procs)
	}
	after, _ := b.group.MemoryUsage()
	if grew, want := after-before, b.memLimit/2; grew < want*9/10 {
		t.Errorf("the group's memory grew by %d bytes under memoryStress, want about %d", grew, want)
	}
	for _, name := range []string{"burn", "hold"} {
		if _, err := b.Recover(ctx, plan.Fault{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if procs := b.group.Procs(); len(procs) != 1 {
		t.Errorf("after recovery the group holds %v, want the target alone", procs)
	}
	dirs := b.group.Dirs()
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after cleanup", d)
		}
	}
	if l := cgroup.Leftovers(); len(l) > 0 {
		t.Errorf("cgroups left: %v", l)
	}
}

// TestStressNoCgroup: where no cgroup is made, the stress runs in
// faultline's process and Notes says so.
func TestStressNoCgroup(t *testing.T) {
	t.Setenv(NoCgroupEnv, "1")
	faults := map[string]schema.Fault{"burn": {CPUStress: &schema.CPUStress{Workers: 1}}}
	b, p, _ := testBackend(t, faults, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if b.group != nil {
		t.Fatal("a cgroup although " + NoCgroupEnv + "=1")
	}
	if n := strings.Join(b.Notes(), "\n"); !strings.Contains(n, "inside faultline's own process, beside the load generator") {
		t.Errorf("notes: %q", n)
	}
	if _, err := b.Inject(ctx, plan.Fault{Name: "burn"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Recover(ctx, plan.Fault{Name: "burn"}); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryPercentNeedsLimit: a percentage size without GOMEMLIMIT is
// refused up front, saying how to give the target a limit.
func TestMemoryPercentNeedsLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	b := New(&schema.Scenario{Target: schema.Target{Local: &schema.LocalTarget{Command: []string{"x"}}}}, "", nil)
	err := b.Supported(schema.Fault{MemoryStress: &schema.MemoryStress{Workers: 1, Size: "50%"}})
	if err == nil || !strings.Contains(err.Error(), "GOMEMLIMIT") {
		t.Errorf("got %v", err)
	}
	if err := b.Supported(schema.Fault{MemoryStress: &schema.MemoryStress{Workers: 1, Size: "64MB"}}); err != nil {
		t.Errorf("64MB: %v", err)
	}
}

// cgroupDir is the group's directory in a v1 controller's hierarchy.
func cgroupDir(b *Backend, ctrl string) string {
	for _, d := range b.group.Dirs() {
		if strings.Contains(d, "/"+ctrl+"/") {
			return d
		}
	}
	return ""
}
