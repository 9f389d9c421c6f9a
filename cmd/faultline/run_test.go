package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/internal/testport"
	"faultline.dev/faultline/results"
)

// freeLoopbackPort returns a port nothing listens on right now.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	return freeLoopbackPorts(t, 1)[0]
}

// freeLoopbackPorts returns n distinct ports nothing listens on right now,
// from below the kernel's ephemeral range (testport.Pick): the demo target
// faultline starts binds them later, and a port from that range can be
// taken by any outgoing connection meanwhile.
func freeLoopbackPorts(t testing.TB, n int) []int {
	t.Helper()
	return testport.Loopback(t, n)
}

// runScenario writes a 9-second local scenario against a demo target that
// faultline starts itself on a free loopback port: steady [0,3s), fault
// [3s,6s), recovery [6s,9s).
func runScenario(t *testing.T, faults, slos string) (dir string, port int) {
	t.Helper()
	dir = t.TempDir()
	port = freeLoopbackPort(t)
	src := fmt.Sprintf(`name: run-test
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  metrics: http://127.0.0.1:%[1]d/metrics
  local:
    command: [faultline, demo-target, --listen, "127.0.0.1:%[1]d"]
    readiness: /healthz
load:
  executor: constant-arrival-rate
  rate: 40
  duration: 9s
  preAllocatedVUs: 10
  maxVUs: 40
  requests:
    - {name: catalog, path: /catalog, expect: {status: 200}}
faults:
%[2]s
slos:
%[3]s
`, port, faults, slos)
	if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, port
}

const delayFault = `  delay:
    start: 3s
    duration: 3s
    mode: all
    networkDelay: {latency: 100ms}`

func readResults(t *testing.T, dir string) *results.Result {
	t.Helper()
	r, err := results.ReadResult(filepath.Join(dir, "report", results.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunVerdicts: a fault-phase SLO deliberately too tight fails on exactly
// that SLO; a relaxed one passes. Real load (embedded k6), real injector,
// real demo target, all on loopback.
func TestRunVerdicts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for 10s")
	}
	cases := []struct {
		name     string
		faultP99 string
		code     int
		failed   []string
	}{
		{"tight", "50ms", exitcode.SLOBreach, []string{"fault latency.p99"}},
		{"relaxed", "600ms", exitcode.OK, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			slos := fmt.Sprintf("  steady: {latency: {p99: 80ms}, errorRate: 1}\n  fault: {latency: {p99: %s}, errorRate: 1}\n  recovery: {within: 1s, latency: {p99: 80ms}, errorRate: 1}", tc.faultP99)
			dir, _ := runScenario(t, delayFault, slos)
			cmd := exec.Command(binary, "run", filepath.Join(dir, "scenario.yaml"), "--report-dir", filepath.Join(dir, "report"), "--quiet")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out.String())
			}
			r := readResults(t, dir)
			var failed []string
			for _, s := range r.SLOs {
				if s.Status != results.StatusPass {
					failed = append(failed, s.Phase+" "+s.SLO)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tc.failed, ",") {
				t.Errorf("failed SLOs %v, want %v\n%s", failed, tc.failed, out.String())
			}
			if len(r.Faults) != 1 || r.Faults[0].Effective != "yes" {
				t.Errorf("the delay fault: %+v", r.Faults)
			}
			if w := r.Faults[0]; w.StartOffset < 2.9 || w.StartOffset > 3.2 || w.EndOffset < 5.9 || w.EndOffset > 6.2 {
				t.Errorf("actual window %.2f-%.2fs, planned 3-6s", w.StartOffset, w.EndOffset)
			}
			for _, p := range r.Phases {
				if p.Requests == 0 {
					t.Errorf("phase %s has no requests", p.Name)
				}
			}
			// The demo target serves /debug/pprof: the goroutine profiles of
			// the end of steady and of the run are diffed.
			if g := r.Goroutines; g == nil || g.From != "fault-start" || g.To != "after-load" || g.Total[0] == 0 || g.Total[1] == 0 {
				t.Errorf("goroutine diff %+v", g)
			}
		})
	}
}

// TestRunSIGINT interrupts runs at several moments: every time the verdict
// is aborted (never pass), no child process is left, the target's and the
// injector's ports are free again, and the faults were recovered.
func TestRunSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	faults := delayFault + `
  burn:
    start: 3s
    duration: 3s
    cpuStress: {workers: 1, load: 50}
  freeze:
    start: 3.5s
    duration: 1s
    podFailure: {}`
	slos := "  fault: {errorRate: 100}"
	for _, at := range []time.Duration{300 * time.Millisecond, 2 * time.Second, 4 * time.Second, 7500 * time.Millisecond} {
		t.Run(at.String(), func(t *testing.T) {
			t.Parallel()
			dir, port := runScenario(t, faults, slos)
			report := filepath.Join(dir, "report")
			cmd := exec.Command(binary, "run", filepath.Join(dir, "scenario.yaml"), "--report-dir", report)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The load starts after the target is ready: wait for it, so
			// that the moment is measured on the run's own clock.
			started := time.Now()
			if at > time.Second {
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(out.String(), "load started") && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				started = time.Now()
			}
			time.Sleep(time.Until(started.Add(at)))
			_ = cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			begin := time.Now()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("faultline did not exit within 60s of SIGINT:\n%s", out.String())
			}
			t.Logf("exited %s after SIGINT", time.Since(begin).Round(time.Millisecond))
			if code := cmd.ProcessState.ExitCode(); code != exitcode.Aborted {
				t.Errorf("exit %d, want %d (aborted):\n%s", code, exitcode.Aborted, out.String())
			}
			r, err := results.ReadResult(filepath.Join(report, results.ResultsFile))
			if err != nil {
				t.Fatalf("no results after SIGINT: %v\n%s", err, out.String())
			}
			if r.Verdict != results.VerdictAborted {
				t.Errorf("verdict %s (%s), want aborted", r.Verdict, r.Reason)
			}
			// No child left: nothing on this machine still runs with the
			// run's port or report directory in its command line.
			if left := processesMatching(fmt.Sprint(port), report); len(left) > 0 {
				t.Errorf("processes left after the run: %v", left)
			}
			// The ports are free again.
			for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), strings.TrimPrefix(r.LoadURL, "http://")} {
				if addr == "" {
					continue
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("port %s still taken after the run: %v", addr, err)
					continue
				}
				ln.Close()
			}
			if r.CleanupError != "" {
				t.Errorf("cleanup: %s", r.CleanupError)
			}
		})
	}
}

// processesMatching lists running processes whose command line contains
// any of the needles.
func processesMatching(needles ...string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	self := fmt.Sprint(os.Getpid())
	for _, e := range entries {
		if !e.IsDir() || e.Name() == self || strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		for _, n := range needles {
			if strings.Contains(cl, n) {
				out = append(out, e.Name()+": "+cl)
				break
			}
		}
	}
	return out
}

// runPassing writes a scenario into dir, runs it (it must exit 0) and
// returns its results.
func runPassing(t *testing.T, dir, src string) *results.Result {
	t.Helper()
	scen := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(scen, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "run", scen, "--report-dir", filepath.Join(dir, "report"), "--quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	return readResults(t, dir)
}

// TestRunDroppedIterations: an open-model load whose maxVUs cannot keep
// up (one VU, 100ms responses, 100 iterations a second) drops iterations
// as k6 does; results.json counts them, the VUs over time show the cap, and
// the run warns that the target got less load than planned.
func TestRunDroppedIterations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	src := fmt.Sprintf(`name: dropped
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  local:
    command: [faultline, demo-target, --listen, "127.0.0.1:%[1]d"]
    readiness: /healthz
load:
  executor: constant-arrival-rate
  rate: 100
  duration: 3s
  preAllocatedVUs: 1
  maxVUs: 1
  requests: [{path: /healthz, expect: {status: 200}}]
faults:
  slow: {start: 0s, duration: 3s, mode: all, networkDelay: {latency: 100ms}}
slos:
  fault: {errorRate: 100}
`, port)
	r := runPassing(t, dir, src)
	e := r.Engine
	if e == nil {
		t.Fatal("results.json has no engine section")
	}
	// One VU of ~100ms iterations starts ~10 a second: ~30 done, ~270 dropped.
	if e.Iterations < 15 || e.Iterations > 40 || e.DroppedIterations < 250 || e.Iterations+e.DroppedIterations < 295 || e.Iterations+e.DroppedIterations > 301 {
		t.Errorf("iterations %d, dropped %d; want about 30 and 270 of 300", e.Iterations, e.DroppedIterations)
	}
	if e.MaxVUs != 1 {
		t.Errorf("max VUs %d, want 1", e.MaxVUs)
	}
	var dropped int64
	for _, p := range e.VUs {
		dropped += p.Dropped
		if p.VUs > 1 || p.Busy > 1 {
			t.Errorf("VUs over time exceed maxVUs: %+v", p)
		}
	}
	if len(e.VUs) < 2 || dropped == 0 {
		t.Errorf("VUs over time: %+v", e.VUs)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "iterations were dropped") {
		t.Errorf("no warning about dropped iterations: %q", r.Warnings)
	}
}

// TestRunAbortOnBreach: a fault-phase p99 SLO with abortOnBreach, breached
// from the first requests of a 200ms delay, stops the run early as an SLO
// breach.
func TestRunAbortOnBreach(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	slos := "  fault: {latency: {p99: 50ms}, abortOnBreach: true}"
	dir, _ := runScenario(t, `  delay:
    start: 3s
    duration: 6s
    mode: all
    networkDelay: {latency: 200ms}`, slos)
	start := time.Now()
	cmd := exec.Command(binary, "run", filepath.Join(dir, "scenario.yaml"), "--report-dir", filepath.Join(dir, "report"), "--quiet")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitcode.SLOBreach {
		t.Fatalf("exit %d, want %d:\n%s", code, exitcode.SLOBreach, out)
	}
	r := readResults(t, dir)
	if !r.AbortedOnBreach || !strings.Contains(r.Reason, "abortOnBreach") {
		t.Errorf("abortedOnBreach %v, reason %q", r.AbortedOnBreach, r.Reason)
	}
	// 40 requests/s: the 50 requests a judgement needs are there 1.25s into
	// the fault (from 3s); it is judged each second, so the stop comes
	// within a second of that.
	b := r.Breach
	if b == nil || b.Phase != "fault" || b.Requests < 50 || b.At > 3+1.25+1.2 {
		t.Errorf("breach evidence %+v: want the fault phase, at least 50 requests, stopped by %.2fs", b, 3+1.25+1.2)
	}
	if len(r.Faults) != 1 || !r.Faults[0].CutShort || b == nil || math.Abs(r.Faults[0].EndOffset-b.At) > 0.2 {
		t.Errorf("the delay's window %+v should end where the run stopped (%+v)", r.Faults, b)
	}
	t.Logf("stopped after %v (load %v): %s", time.Since(start).Round(time.Millisecond), r.EndedAt.Sub(r.LoadStart).Round(time.Millisecond), r.Reason)
}

// TestRunKillInFlight: a target whose requests take 300ms (its payment
// dependency is slow) is killed mid-load. The requests in flight at the
// kill started before it and fail at its instant: the kill is judged
// effective with them in its evidence, and the series places their
// failures in the second they ended — inside the kill's window, not the
// second before it.
func TestRunKillInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	src := fmt.Sprintf(`name: kill-in-flight
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  local:
    command: [faultline, demo-target, --listen, "127.0.0.1:%[1]d", --downstream-latency, 300ms]
    readiness: /healthz
load:
  executor: constant-arrival-rate
  rate: 40
  duration: 6s
  preAllocatedVUs: 20
  maxVUs: 40
  requests:
    - {name: checkout, method: POST, path: /checkout, body: '{"sku":"demo","qty":1}', expect: {status: 200}}
faults:
  kill: {start: 3s, duration: 2s, mode: all, podKill: {gracePeriod: 0}}
slos:
  fault: {errorRate: 100}
`, port)
	r := runPassing(t, dir, src)
	if len(r.Faults) != 1 {
		t.Fatalf("faults %+v", r.Faults)
	}
	f := r.Faults[0]
	if f.Effective != "yes" {
		t.Errorf("the kill reads %q: %s", f.Effective, f.Evidence)
	}
	// About 12 requests (40/s × 300ms) were in flight at the kill.
	var beforeKill, inWindow int64
	for _, p := range r.Series {
		switch {
		case p.Offset+1 <= f.StartOffset:
			beforeKill += p.FailedEnded
		case p.Offset < f.EndOffset:
			inWindow += p.FailedEnded
		}
	}
	if beforeKill != 0 || inWindow < 5 {
		t.Errorf("failures by the second they ended: %d before the kill at %.2fs, %d in its window; want 0 and the requests in flight (~12)\n%+v",
			beforeKill, f.StartOffset, inWindow, r.Series)
	}
	if r.TransitionRequests < 5 {
		t.Errorf("%d requests straddle the kill's start, want the ones in flight (~12)", r.TransitionRequests)
	}
	// Nothing failed before the kill: the failures of the slot that holds
	// it are placed after it, not in steady.
	if r.Phases[0].Name != "steady" || r.Phases[0].Failed != 0 {
		t.Errorf("steady: %d of %d requests failed, want none", r.Phases[0].Failed, r.Phases[0].Requests)
	}
}

// TestRunLeakCheck: a target with a planted goroutine leak (from the
// fault on, every request leaves a goroutine behind) breaches the
// recovery goroutine SLO, and the leak check names the leaking stack: at
// the top of the diff in results.json and in the terminal summary.
func TestRunLeakCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "leaktarget")
	if out, err := exec.Command("go", "build", "-o", target, "./testdata/leaktarget").CombinedOutput(); err != nil {
		t.Fatalf("building the leak target: %v\n%s", err, out)
	}
	port := freeLoopbackPort(t)
	src := fmt.Sprintf(`name: leak
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  metrics: http://127.0.0.1:%[1]d/metrics
  local:
    command: [%[2]q, "127.0.0.1:%[1]d"]
    env: {LEAK_AFTER: 3s}
    readiness: /healthz
load:
  executor: constant-arrival-rate
  rate: 40
  duration: 9s
  preAllocatedVUs: 10
  maxVUs: 40
  requests: [{path: /work, expect: {status: 200}}]
faults:
  delay: {start: 3s, duration: 3s, mode: all, networkDelay: {latency: 10ms}}
slos:
  recovery: {within: 1s, goroutines: {overSteady: 20}}
`, port, target)
	scen := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(scen, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", scen, "--report-dir", filepath.Join(dir, "report"), "--quiet")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitcode.SLOBreach {
		t.Fatalf("exit %d, want %d (the goroutine SLO breached):\n%s", code, exitcode.SLOBreach, out)
	}
	r := readResults(t, dir)
	g := r.Goroutines
	if g == nil || len(g.Stacks) == 0 {
		t.Fatalf("no goroutine diff: %+v\n%s", g, out)
	}
	top := g.Stacks[0]
	if !strings.Contains(strings.Join(top.Stack, " "), "main.plantedLeak") || top.After-top.Before < 100 {
		t.Errorf("top of the diff: +%d %v; want the planted leak, +200 or so", top.After-top.Before, top.Stack)
	}
	if !strings.Contains(string(out), "the stacks that grew most") || !strings.Contains(string(out), "main.plantedLeak") {
		t.Errorf("the terminal summary does not name the leak:\n%s", out)
	}
}
