package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/local"
	"faultline.dev/faultline/runner/local/cgroup"
)

// cpuStressScenario is a 12-second open-model run at 300/s against a
// target whose requests cost CPU (testdata/cputarget, about 0.3ms each)
// with a 2-worker cpuStress in [4s, 8s).
func cpuStressScenario(t *testing.T, target string) string {
	t.Helper()
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	src := fmt.Sprintf(`name: cpu-stress
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  local:
    command: [%[2]q, "127.0.0.1:%[1]d"]
    readiness: /healthz
load:
  executor: constant-arrival-rate
  rate: 300
  duration: 12s
  preAllocatedVUs: 50
  maxVUs: 400
  requests:
    - {name: work, path: /work, expect: {status: 200}}
faults:
  burn: {start: 4s, duration: 4s, mode: all, cpuStress: {workers: 2}}
slos:
  fault: {errorRate: 100}
`, port, target)
	if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunCPUStressCgroup: with the target and the stressors in a cgroup of
// their own (a CPU limit of half the CPUs, as a container's), the load
// generator's achieved rate in the fault phase stays within 5% of the
// planned 300/s while the target's latency rises; no cgroup is left.
// Without the cgroup (FAULTLINE_NO_CGROUP=1, as where none can be made)
// the stress runs in faultline's process beside the load generator.
func TestRunCPUStressCgroup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for 12s")
	}
	s := cgroup.Detect()
	if cpus, _ := cgroup.AllowedCPUs(); !s.CPU || len(cpus) < 2 {
		t.Skipf("no cpu controller or one CPU: %v", s.Why)
	}
	target := filepath.Join(t.TempDir(), "cputarget")
	if out, err := exec.Command("go", "build", "-o", target, "./testdata/cputarget").CombinedOutput(); err != nil {
		t.Fatalf("building the test target: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		env  []string
	}{{"cgroup", nil}, {"no-cgroup", []string{local.NoCgroupEnv + "=1"}}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cpuStressScenario(t, target)
			cmd := exec.Command(binary, "run", filepath.Join(dir, "scenario.yaml"), "--report-dir", filepath.Join(dir, "report"))
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			r := readResults(t, dir)
			ph := map[string]results.PhaseResult{}
			for _, p := range r.Phases {
				ph[p.Name] = p
				t.Logf("%-8s %5d requests %7.1f/s avg %.2fms p50 %.2fms p99 %.2fms", p.Name, p.Requests, p.Throughput, p.Avg, p.P50, p.P99)
			}
			t.Logf("warnings: %q", r.Warnings)
			if l := cgroup.Leftovers(); len(l) > 0 {
				t.Errorf("cgroups left after the run: %v", l)
			}
			const inside = "run inside faultline's own process, beside the load generator"
			if tc.name != "cgroup" {
				if !strings.Contains(strings.Join(r.Warnings, "\n"), inside) {
					t.Errorf("results.json's warnings do not say the stress was not isolated: %q", r.Warnings)
				}
				if !strings.Contains(string(out), inside) {
					t.Errorf("the run's output does not say the stress was not isolated:\n%s", out)
				}
				return
			}
			f, st := ph["fault"], ph["steady"]
			if f.Throughput < 285 || f.Throughput > 315 {
				t.Errorf("achieved rate in the fault phase %.1f/s, planned 300/s (5%%)", f.Throughput)
			}
			// The quota throttles the group for part of each 100ms period:
			// the requests that arrive then wait, the others do not, so
			// the mean moves more steadily than the median.
			if f.Avg < 2*st.Avg {
				t.Errorf("the target's mean latency went from %.2fms (steady) to %.2fms (fault): the CPU stress did not reach it", st.Avg, f.Avg)
			}
			if strings.Contains(strings.Join(r.Warnings, "\n"), inside) {
				t.Errorf("a warning about the stress although the cgroup was there: %q", r.Warnings)
			}
		})
	}
}
