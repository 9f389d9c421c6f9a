package cgroup

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func need(t *testing.T, cpuset, memory bool) {
	t.Helper()
	s := Detect()
	if (cpuset && !s.CPUSet) || (memory && !s.Memory) {
		t.Skipf("no cgroup controllers here: %v", s.Why)
	}
}

// TestStartInGroup: a process started in the group is in it from the
// start (its children too), runs on the group's CPUs only, and Remove kills
// it and leaves no directory behind.
func TestStartInGroup(t *testing.T) {
	need(t, true, true)
	g, err := New(Spec{CPUs: "0", MemoryLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dirs := g.Dirs()
	cmd := exec.Command("sh", "-c", "sleep 30 & cat /proc/self/cgroup; grep Cpus_allowed_list /proc/self/status; wait")
	var out strings.Builder
	cmd.Stdout = &out
	if err := g.Start(cmd); err != nil {
		t.Fatal(err)
	}
	own, _ := ownCgroups()
	if strings.Contains(own["memory"], g.Name()) || strings.Contains(own["cpuset"], g.Name()) {
		t.Fatalf("the test process stayed in the group: %v", own)
	}
	for range 100 {
		if len(g.Procs()) >= 2 && strings.Contains(out.String(), "Cpus_allowed_list") {
			break
		}
		exec.Command("sleep", "0.02").Run()
	}
	if n := len(g.Procs()); n < 2 {
		t.Errorf("%d processes in the group, want the shell and its sleep", n)
	}
	if !strings.Contains(out.String(), "memory:") || !strings.Contains(out.String(), g.Name()) {
		t.Errorf("the child's cgroups: %s", out.String())
	}
	if !strings.Contains(out.String(), "Cpus_allowed_list:\t0\n") {
		t.Errorf("the child's CPUs: %s", out.String())
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s is left", d)
		}
	}
	if l := Leftovers(); len(l) > 0 {
		t.Errorf("left: %v", l)
	}
}
