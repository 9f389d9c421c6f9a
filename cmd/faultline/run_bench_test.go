package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/results"
)

// benchScenario writes a local scenario: `load` (a YAML load block without
// its requests) hammering the demo target's /healthz, with the given faults.
func benchScenario(b *testing.B, dir string, port int, load, faults string) string {
	b.Helper()
	src := fmt.Sprintf(`name: bench
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  metrics: http://127.0.0.1:%[1]d/metrics
  local:
    command: [faultline, demo-target, --listen, "127.0.0.1:%[1]d"]
    readiness: /healthz
load:
%[2]s
  requests: [{path: /healthz, expect: {status: 200}}]
%[3]s`, port, load, faults)
	p := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// closedLoad is a closed-model load block: vus VUs for dur.
func closedLoad(vus int, dur string) string {
	return fmt.Sprintf("  executor: constant-vus\n  vus: %d\n  duration: %s", vus, dur)
}

// runBench runs `faultline run` on a scenario and returns its results.
func runBench(b *testing.B, scen, report string) *results.Result {
	b.Helper()
	out, err := exec.Command(binary, "run", scen, "--report-dir", report, "--quiet").CombinedOutput()
	if err != nil {
		b.Fatalf("faultline run: %v\n%s", err, out)
	}
	r, err := results.ReadResult(filepath.Join(report, results.ResultsFile))
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// wrkRun runs wrk against a demo target started here on port and returns
// its requests per second and p50 latency (ms).
func wrkRun(b *testing.B, port, threads, conns int, dur string) (rps, p50 float64) {
	b.Helper()
	target := exec.Command(binary, "demo-target", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	if err := target.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = target.Process.Signal(os.Interrupt)
		_ = target.Wait()
	}()
	waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	out, err := exec.Command("wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-d"+dur, "--latency",
		fmt.Sprintf("http://127.0.0.1:%d/healthz", port)).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
	l := regexp.MustCompile(`(?m)^\s+50%\s+([0-9.]+)(us|ms|s)`).FindSubmatch(out)
	if m == nil || l == nil {
		b.Fatalf("cannot read wrk's output:\n%s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	p50, _ = strconv.ParseFloat(string(l[1]), 64)
	switch string(l[2]) {
	case "us":
		p50 /= 1000
	case "s":
		p50 *= 1000
	}
	return rps, p50
}

func needWrk(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk is not on PATH (apt-get install -y wrk): the engine is compared with it side by side")
	}
}

// BenchmarkClosedVsWrk: `faultline run` (local backend, no fault, the
// engine in-process, samples into the runner's sketches) with 32 VUs for 5s
// against the demo target's /healthz, then `wrk -t2 -c32 -d5s` on the same
// target, alternating in one run: requests per second and their ratio
// (the goal: at least 0.6), and the p50 each records on that target and
// their ratio (the goal: within 10%). At 32 connections both p50s are
// mostly the target's queueing; BenchmarkP50VsWrk compares them where the
// target is not saturated.
func BenchmarkClosedVsWrk(b *testing.B) {
	needWrk(b)
	var run, wrk, runP50, wrkP50 float64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		port := freeLoopbackPort(b)
		r := runBench(b, benchScenario(b, dir, port, closedLoad(32, "5s"), ""), filepath.Join(dir, "report"))
		run += float64(r.Phases[0].Requests) / 5
		runP50 += r.Phases[0].P50
		rps, p50 := wrkRun(b, port, 2, 32, "5s")
		wrk += rps
		wrkP50 += p50
	}
	n := float64(b.N)
	b.ReportMetric(run/n, "run-req/s")
	b.ReportMetric(wrk/n, "wrk-req/s")
	b.ReportMetric(run/wrk, "ratio")
	b.ReportMetric(runP50/n, "run-p50-ms")
	b.ReportMetric(wrkP50/n, "wrk-p50-ms")
	b.ReportMetric(runP50/wrkP50, "p50-ratio")
}

// BenchmarkP50VsWrk: the p50 latency the engine records against wrk's on
// the same target and concurrency, below saturation (4 connections, one
// wrk thread, 5s each, alternating): the goal is within 10%.
func BenchmarkP50VsWrk(b *testing.B) {
	needWrk(b)
	var runP50, wrkP50 float64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		port := freeLoopbackPort(b)
		r := runBench(b, benchScenario(b, dir, port, closedLoad(4, "5s"), ""), filepath.Join(dir, "report"))
		runP50 += r.Phases[0].P50
		_, p50 := wrkRun(b, port, 1, 4, "5s")
		wrkP50 += p50
	}
	n := float64(b.N)
	b.ReportMetric(runP50/n, "run-p50-ms")
	b.ReportMetric(wrkP50/n, "wrk-p50-ms")
	b.ReportMetric(runP50/wrkP50, "p50-ratio")
}

// BenchmarkOpenModel: constant-arrival-rate 2000 iterations/s for 5s
// through `faultline run`: the total against 10 000 (goal within 2%), the
// worst second against 2000 (goal within 5%) and the dropped iterations
// (0 with enough VUs).
func BenchmarkOpenModel(b *testing.B) {
	var worstTotal, worstSecond float64
	var dropped int64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		load := "  executor: constant-arrival-rate\n  rate: 2000\n  duration: 5s\n  preAllocatedVUs: 50\n  maxVUs: 200"
		r := runBench(b, benchScenario(b, dir, freeLoopbackPort(b), load, ""), filepath.Join(dir, "report"))
		if r.Engine == nil {
			b.Fatal("results.json has no engine section")
		}
		worstTotal = math.Max(worstTotal, math.Abs(float64(r.Engine.Iterations+r.Engine.DroppedIterations)-10000)/100)
		for _, p := range r.Series {
			if p.Offset < 5 {
				worstSecond = math.Max(worstSecond, math.Abs(float64(p.Requests)-2000)/20)
			}
		}
		dropped += r.Engine.DroppedIterations
	}
	b.ReportMetric(worstTotal, "worst-total-off-%")
	b.ReportMetric(worstSecond, "worst-second-off-%")
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped")
}

// BenchmarkFaultStartVsPlan measures how far the actual injection and
// recovery instants are from the plan (local backend).
func BenchmarkFaultStartVsPlan(b *testing.B) {
	var worst, sum float64
	var count int
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		faults := `faults:
  a: {start: 1s, duration: 1s, networkDelay: {latency: 10ms}}
  b: {start: 2500ms, duration: 1s, networkLoss: {loss: 5}}
  c: {start: 4s, duration: 1500ms, cpuStress: {workers: 1, load: 20}}
`
		scen := benchScenario(b, dir, freeLoopbackPort(b), closedLoad(4, "6s"), faults)
		report := filepath.Join(dir, "report")
		if out, err := exec.Command(binary, "run", scen, "--report-dir", report, "--quiet").CombinedOutput(); err != nil {
			b.Fatalf("faultline run: %v\n%s", err, out)
		}
		r, err := results.ReadResult(filepath.Join(report, results.ResultsFile))
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range r.Faults {
			for _, pair := range [][2]string{{f.PlanStart, fmt.Sprint(f.StartOffset)}, {f.PlanEnd, fmt.Sprint(f.EndOffset)}} {
				planned, _ := time.ParseDuration(pair[0])
				actual, _ := strconv.ParseFloat(pair[1], 64)
				d := math.Abs(actual-planned.Seconds()) * 1000
				worst = math.Max(worst, d)
				sum += d
				count++
			}
		}
	}
	b.ReportMetric(sum/float64(count), "mean-ms-off-plan")
	b.ReportMetric(worst, "max-ms-off-plan")
}

// BenchmarkRunRSS measures the resident memory of the faultline runner
// process (not the target) during one 10-minute run at 2000 requests/s:
// after 1 minute and after 10. The collector folds old slots and the
// series are bounded, so memory should not grow with the run's length
// (goal: the 10-minute figure at most 1.1× the 1-minute one). It takes ten
// minutes whatever -benchtime says.
func BenchmarkRunRSS(b *testing.B) {
	dir := b.TempDir()
	load := "  executor: constant-arrival-rate\n  rate: 2000\n  duration: 10m\n  preAllocatedVUs: 50\n  maxVUs: 200"
	scen := benchScenario(b, dir, freeLoopbackPort(b), load, "")
	cmd := exec.Command(binary, "run", scen, "--report-dir", filepath.Join(dir, "report"), "--quiet")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	start := time.Now()
	var at1, at10 float64
	for at10 == 0 {
		select {
		case <-done:
			b.Fatalf("the run ended after %v:\n%s", time.Since(start), out.String())
		case <-time.After(time.Second):
		}
		switch el := time.Since(start); {
		case at1 == 0 && el >= 61*time.Second:
			at1 = vmRSS(cmd.Process.Pid)
		case el >= 10*time.Minute-time.Second:
			at10 = vmRSS(cmd.Process.Pid)
		}
	}
	<-done
	if cmd.ProcessState.ExitCode() != 0 {
		b.Fatalf("run failed:\n%s", out.String())
	}
	r, err := results.ReadResult(filepath.Join(dir, "report", results.ResultsFile))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(at1/1024, "RSS-1m-MB")
	b.ReportMetric(at10/1024, "RSS-10m-MB")
	b.ReportMetric(at10/at1, "ratio")
	b.ReportMetric(float64(r.Phases[0].Requests)/600, "req/s")
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(pid int) float64 { return procStatus(pid, "VmRSS:") }

// procStatus reads a KiB field of /proc/<pid>/status.
func procStatus(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return v
		}
	}
	return 0
}

func waitHTTP(b *testing.B, url string) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("%s not ready", url)
}
