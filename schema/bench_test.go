package schema

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeScenarios writes n distinct CUE scenarios, one per file, into one
// package in dir, with the schema vendored so the official cue can vet them.
func writeScenarios(tb testing.TB, dir string, n int) {
	tb.Helper()
	if _, err := Vendor(dir); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		src := fmt.Sprintf(`package scenarios

import "faultline.dev/schema"

scenarios: schema.#Scenarios & {
	"gen-%03d": {
		version: "1.%d.0"
		target: {url: "http://127.0.0.1:18080", kubernetes: {namespace: "shop", selector: app: "svc-%d"}}
		load: {
			executor:        "constant-arrival-rate"
			rate:            %d
			duration:        "2m"
			preAllocatedVUs: 10
			maxVUs:          50
			requests: [{path: "/a", weight: 2, expect: status: 200}, {path: "/b", method: "POST", body: "{}"}]
		}
		faults: {
			delay: {start: "20s", duration: "30s", mode: "fixed-percent", value: 50, networkDelay: {latency: "%dms", jitter: "10ms", correlation: 25}}
			cpu: {start: "60s", duration: "20s", cpuStress: {workers: 2, load: 80}}
		}
		slos: {
			steady: latency: p99: "300ms"
			fault: {latency: p99: "1s", errorRate: 1}
			recovery: {within: "10s", goroutines: overSteady: 20}
		}
	}
}
`, i, i, i, 10+i, 100+i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.cue", i)), []byte(src), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkVetVsCueVet vets 500 generated scenarios with `faultline vet` and
// with the official `cue vet -c` (pinned as `go tool cue`), both as processes,
// alternating in one run, and reports the ratio faultline/cue (goal <= 1.0)
// of wall time and of CPU time.
func BenchmarkVetVsCueVet(b *testing.B) {
	dir := b.TempDir()
	writeScenarios(b, dir, 500)
	bin := filepath.Join(b.TempDir(), "faultline")
	if out, err := exec.Command("go", "build", "-o", bin, "faultline.dev/faultline/cmd/faultline").CombinedOutput(); err != nil {
		b.Fatalf("building faultline: %v\n%s", err, out)
	}
	cueOut, err := exec.Command("go", "tool", "-n", "cue").Output()
	if err != nil {
		b.Fatal(err)
	}
	cue := strings.TrimSpace(string(cueOut))
	var cpu time.Duration // user+system time of the last run
	run := func(name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return time.Since(start)
	}
	// Warm the page cache and both binaries once.
	run(bin, "vet", ".")
	run(cue, "vet", "-c", "./...")
	var fl, cv, flCPU, cvCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fl += run(bin, "vet", ".")
		flCPU += cpu
		cv += run(cue, "vet", "-c", "./...")
		cvCPU += cpu
	}
	b.ReportMetric(float64(fl.Milliseconds())/float64(b.N), "faultline-ms")
	b.ReportMetric(float64(cv.Milliseconds())/float64(b.N), "cuevet-ms")
	b.ReportMetric(float64(fl)/float64(cv), "ratio")
	// CPU time (user+system) is steadier than wall time on a shared machine.
	b.ReportMetric(float64(flCPU)/float64(cvCPU), "cpu-ratio")
}

// BenchmarkLoad500 is the in-process cost of loading and validating 500
// scenarios (no process start).
func BenchmarkLoad500(b *testing.B) {
	dir := b.TempDir()
	writeScenarios(b, dir, 500)
	for i := 0; i < b.N; i++ {
		loaded, diags, err := NewLoader().Load(context.Background(), []string{dir})
		if err != nil || len(diags) > 0 || len(loaded) != 500 {
			b.Fatalf("loaded %d, diags %v, err %v", len(loaded), diags, err)
		}
	}
}

// writeRequests writes a YAML scenario with n requests.
func writeRequests(tb testing.TB, path string, n int) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("name: big\nversion: 1.0.0\ntarget:\n  url: http://127.0.0.1:8080\n  kubernetes: {namespace: shop, selector: {app: shop}}\nload:\n  executor: constant-vus\n  vus: 2\n  duration: 60s\n  requests:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - {name: r%d, path: /items/%d, method: GET, weight: 1, headers: {X-Id: \"%d\"}}\n", i, i, i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkVetRequests vets one YAML scenario with 10 000 and 50 000
// requests, and a CUE package with 50 000 (goal: 50 000 in under 2 s, and linear: the time per request
// the same for both).
func BenchmarkVetRequests(b *testing.B) {
	for _, n := range []int{10_000, 50_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "big.yaml")
			writeRequests(b, p, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				loaded, diags, err := NewLoader().Load(context.Background(), []string{p})
				if err != nil || len(diags) > 0 || len(loaded) != 1 || len(loaded[0].Scenario.Load.Requests) != n {
					b.Fatalf("diags %v, err %v", diags, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/request")
		})
	}
	// The same list in a CUE package.
	b.Run("cue-50000", func(b *testing.B) {
		const n = 50_000
		dir := b.TempDir()
		if _, err := Vendor(dir); err != nil {
			b.Fatal(err)
		}
		var src strings.Builder
		src.WriteString("package scenarios\n\nimport \"faultline.dev/schema\"\n\nscenarios: schema.#Scenarios & {\n\tbig: {\n\t\tversion: \"1.0.0\"\n\t\ttarget: {url: \"http://127.0.0.1:8080\", kubernetes: {namespace: \"shop\", selector: app: \"shop\"}}\n\t\tload: {\n\t\t\texecutor: \"constant-vus\"\n\t\t\tvus: 2\n\t\t\tduration: \"60s\"\n\t\t\trequests: [\n")
		for i := range n {
			fmt.Fprintf(&src, "\t\t\t\t{name: \"r%d\", path: \"/items/%d\", method: \"GET\", weight: 1, headers: {\"X-Id\": \"%d\"}},\n", i, i, i)
		}
		src.WriteString("\t\t\t]\n\t\t}\n\t}\n}\n")
		if err := os.WriteFile(filepath.Join(dir, "big.cue"), []byte(src.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			loaded, diags, err := NewLoader().Load(context.Background(), []string{dir})
			if err != nil || len(diags) > 0 || len(loaded) != 1 || len(loaded[0].Scenario.Load.Requests) != n {
				b.Fatalf("diags %v, err %v", diags, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/request")
	})
}

// BenchmarkVet20MB vets a 20 MB YAML file: refused at once, naming the size
// limit (goal: under 5 s).
func BenchmarkVet20MB(b *testing.B) {
	p := filepath.Join(b.TempDir(), "huge.yaml")
	writeRequests(b, p, 300_000)
	if st, _ := os.Stat(p); st.Size() < 20<<20 {
		b.Fatalf("%d bytes, want 20 MB", st.Size())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, diags, _ := NewLoader().Load(context.Background(), []string{p})
		if len(diags) != 1 || !strings.Contains(diags[0].Message, "larger than 10 MB") {
			b.Fatalf("diags %v", diags)
		}
	}
}
