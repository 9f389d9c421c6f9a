package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/results"
)

// benchScenario writes a local scenario: `vus` VUs hammering the demo
// target's /healthz for `dur`, with the given faults.
func benchScenario(b *testing.B, dir string, port, vus int, dur, faults string) string {
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
  executor: constant-vus
  vus: %[2]d
  duration: %[3]s
  requests: [{path: /healthz, expect: {status: 200}}]
%[4]s`, port, vus, dur, faults)
	p := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkLoadRateVsK6 measures the request rate of `faultline run` (k6 as
// a child, samples through faultline's output, load through the injector
// with no fault active) against a plain `faultline k6 run` of the same
// compiled script straight at the target, side by side in one run.
func BenchmarkLoadRateVsK6(b *testing.B) {
	var viaRun, plain float64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		port := freeLoopbackPort(b)
		scen := benchScenario(b, dir, port, 16, "10s", "")
		report := filepath.Join(dir, "report")
		out, err := exec.Command(binary, "run", scen, "--report-dir", report, "--quiet").CombinedOutput()
		if err != nil {
			b.Fatalf("faultline run: %v\n%s", err, out)
		}
		r, err := results.ReadResult(filepath.Join(report, results.ResultsFile))
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for _, p := range r.Phases {
			n += p.Requests
		}
		viaRun += float64(n) / 10

		// The same script, plain k6, against a demo target started here.
		target := exec.Command(binary, "demo-target", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		if err := target.Start(); err != nil {
			b.Fatal(err)
		}
		waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		summary := filepath.Join(dir, "summary.json")
		k6 := exec.Command(binary, "k6", "run", "--quiet", "--no-usage-report", "--summary-export", summary, filepath.Join(report, "k6", "script.js"))
		if out, err := k6.CombinedOutput(); err != nil && k6.ProcessState.ExitCode() != 99 {
			b.Fatalf("k6 run: %v\n%s", err, out)
		}
		_ = target.Process.Signal(os.Interrupt)
		_ = target.Wait()
		var s struct {
			Metrics map[string]map[string]float64 `json:"metrics"`
		}
		raw, err := os.ReadFile(summary)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			b.Fatal(err)
		}
		plain += s.Metrics["http_reqs"]["count"] / 10
	}
	b.ReportMetric(viaRun/float64(b.N), "run-req/s")
	b.ReportMetric(plain/float64(b.N), "k6-req/s")
	b.ReportMetric(viaRun/plain, "ratio")
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
		scen := benchScenario(b, dir, freeLoopbackPort(b), 4, "6s", faults)
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

// BenchmarkRunRSS measures the peak RSS of the faultline runner process
// (not k6, not the target) for a 1-minute and a 10-minute run at the same
// rate: the collector folds old slots, so memory should not grow with the
// run's length.
func BenchmarkRunRSS(b *testing.B) {
	for _, dur := range []string{"1m", "10m"} {
		b.Run(dur, func(b *testing.B) {
			var peak float64
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				scen := benchScenario(b, dir, freeLoopbackPort(b), 4, dur, "")
				cmd := exec.Command(binary, "run", scen, "--report-dir", filepath.Join(dir, "report"), "--quiet")
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				done := make(chan struct{})
				go func() { _ = cmd.Wait(); close(done) }()
				hwm := 0.0
			poll:
				for {
					if v := vmHWM(cmd.Process.Pid); v > hwm {
						hwm = v
					}
					select {
					case <-done:
						break poll
					case <-time.After(200 * time.Millisecond):
					}
				}
				if cmd.ProcessState.ExitCode() != 0 {
					b.Fatalf("run failed:\n%s", out.String())
				}
				peak = math.Max(peak, hwm)
			}
			b.ReportMetric(peak/1024, "peak-RSS-MB")
		})
	}
}

// vmHWM reads a process's peak resident set size in KiB.
func vmHWM(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
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
