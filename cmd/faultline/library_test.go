package main

// The scenario library's local scenarios, run for real in `make test`:
// each against the demo target that faultline starts itself, shortened with
// --time-scale so that its load lasts at most 9s (memory-pressure 18s), on a free loopback port,
// judged pass, and compared with its golden baseline under golden/ci.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/golden"
	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/local"
	"faultline.dev/faultline/schema"
)

// libraryDir is the scenario library.
const libraryDir = "../../scenarios"

// libraryGoldenDir holds the golden baselines of the shortened library runs
// (<dir>/<scenario>/v<major>.json). They are not the baselines of full-length
// runs: phases a seventh as long measure other numbers. Refresh them with
// `go test ./cmd/faultline -run TestLibraryLocal -update`.
const libraryGoldenDir = "../../golden/ci"

// libraryPort is the port the library's local scenarios are written for; the
// test rewrites it to a free one in a copy of the scenario.
const libraryPort = "127.0.0.1:18080"

// libraryGRPCPort is the demo target's gRPC port in the library's gRPC
// scenarios; the test rewrites it to a free one too.
const libraryGRPCPort = "127.0.0.1:18090"

// maxLibraryLoad bounds the shortened load of each scenario (9s for all
// but memory-pressure's 18s).
const maxLibraryLoad = 18 * time.Second

// localLibrary lists every library scenario the local backend can run, with
// the time scale it runs at here. A scenario whose SLOs cannot hold at a
// scale says so in its header; all of these keep theirs at these scales
// (steady, fault and judged recovery windows of 1.4s or more, so that every
// phase gets requests and at least one Go runtime scrape).
var localLibrary = []struct {
	file  string
	scale float64
}{
	{"baseline.cue", 0.3},         // 30s → 9s
	{"checkout-jitter.cue", 0.15}, // 60s → 9s
	{"grpc-checkout.cue", 0.15},   // 60s → 9s
	{"cpu-starvation.cue", 0.15},  // 60s → 9s
	{"lock-contention.cue", 0.15}, // 60s → 9s
	{"memory-pressure.cue", 0.3},  // 60s → 18s: heap in use needs a GC cycle in each phase
	{"multi-stage.cue", 0.15},     // 60s → 9s
	{"network-jitter.cue", 0.15},  // 60s → 9s
	{"packet-loss.cue", 0.15},     // 60s → 9s
}

// libraryTolerances are the test's regression tolerances against the
// shortened baselines: wide, because the runs share two cores with the
// rest of `make test`; they catch gross regressions of the demo target or
// the runner (errors where there were none, a phase at a fraction of its
// rate, latency several times the baseline, goroutines piling up), not
// percent-level drift. A change counts only when it exceeds both limits.
// (A fault that stops having an effect reads as an improvement here; the
// scenarios' own SLOs and the runner's efficacy check are about that.)
func libraryTolerances() *schema.Baseline {
	tol := func(rel, abs float64) schema.Tolerance { return schema.Tolerance{Relative: &rel, Absolute: &abs} }
	m := map[string]schema.Tolerance{
		"p50":          tol(300, 150), // ms
		"p99":          tol(400, 400), // ms
		"errorRate":    tol(100, 3),   // percentage points
		"checks":       tol(10, 3),    // percentage points
		"throughput":   tol(40, 10),   // req/s
		"goroutines":   tol(150, 60),  // count
		"heapInUse":    tol(200, 30),  // MB
		"schedLatency": tol(500, 50),  // ms
		"gcPause":      tol(500, 50),  // ms
	}
	// p90, p95, avg and max: covered by p50 and p99; max is one request.
	def := tol(10000, 10000)
	return &schema.Baseline{Default: &def, Steady: m, Fault: m, Recovery: m}
}

// TestLibraryLocalCovered: every library scenario the local backend can run
// is in localLibrary, so that a new one is not forgotten by CI.
func TestLibraryLocalCovered(t *testing.T) {
	ls, diags, err := schema.NewLoader().Load(t.Context(), []string{libraryDir})
	if err != nil || len(diags) > 0 {
		t.Fatalf("loading the library: %v %v", err, diags)
	}
	var runnable, listed []string
	for _, l := range ls {
		s := l.Scenario
		if s.Target.Local == nil {
			continue
		}
		ok := true
		b := local.New(s, "", nil)
		for _, f := range s.Faults {
			if b.Supported(f) != nil {
				ok = false
			}
		}
		if ok {
			runnable = append(runnable, filepath.Base(l.File))
		}
	}
	for _, sc := range localLibrary {
		listed = append(listed, sc.file)
	}
	slices.Sort(runnable)
	slices.Sort(listed)
	if !slices.Equal(runnable, listed) {
		t.Errorf("library scenarios the local backend runs: %v; TestLibraryLocal runs %v", runnable, listed)
	}
	if len(ls) < 12 {
		t.Errorf("the library holds %d scenarios, want at least 12", len(ls))
	}
}

// TestLibraryLocal runs each local library scenario, shortened, against the
// demo target: the verdict is pass, the time scale is recorded, and the run
// is within tolerance of its golden baseline (-update blesses new ones).
// A run that does not pass, or regresses against its baseline, is retried
// once (the machine is shared; the first failure is logged): a scenario
// that fails twice fails the test.
func TestLibraryLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every local library scenario for about 10s each")
	}
	for _, sc := range localLibrary {
		name := strings.TrimSuffix(sc.file, filepath.Ext(sc.file))
		t.Run(name, func(t *testing.T) {
			var res *results.Result
			for attempt := 1; attempt <= 2; attempt++ {
				var out string
				var wall time.Duration
				res, out, wall = runLibraryScenario(t, sc.file, sc.scale)
				t.Logf("attempt %d: %s in %.1fs (load %.1fs): %s", attempt, res.Verdict, wall.Seconds(), res.PlannedLoad, res.Reason)
				if res.Verdict != results.VerdictPass {
					if attempt == 2 {
						t.Fatalf("verdict %s (%s), twice:\n%s", res.Verdict, res.Reason, out)
					}
					t.Logf("retrying after:\n%s", out)
					continue
				}
				// A regression against the baseline is retried once too (a CI
				// run's steady gcPause read 113.2ms against 1.3ms, once).
				regression := compareLibraryBaseline(t, res)
				if regression == "" {
					break
				}
				if attempt == 2 {
					t.Fatalf("%s\n(twice)", regression)
				}
				t.Logf("retrying after:\n%s", regression)
			}
			if res.TimeScale != sc.scale {
				t.Errorf("results.json timeScale %v, want %v", res.TimeScale, sc.scale)
			}
			if load := time.Duration(res.PlannedLoad * float64(time.Second)); load > maxLibraryLoad {
				t.Errorf("shortened load lasts %s, want at most %s: lower the scale", load, maxLibraryLoad)
			}
			for _, p := range res.Phases {
				if p.Requests == 0 || p.RuntimeSeen == 0 {
					t.Errorf("phase %s: %d requests, %d runtime scrapes", p.Name, p.Requests, p.RuntimeSeen)
				}
			}
		})
	}
}

// runLibraryScenario runs one library scenario from a copy that listens on
// a free loopback port, bounded by a minute, and returns its results.
func runLibraryScenario(t *testing.T, file string, scale float64) (*results.Result, string, time.Duration) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(libraryDir, file))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(libraryPort)) {
		t.Fatalf("%s does not use %s", file, libraryPort)
	}
	dir := t.TempDir()
	ports := freeLoopbackPorts(t, 2)
	port := "127.0.0.1:" + strconv.Itoa(ports[0])
	src = bytes.ReplaceAll(src, []byte(libraryPort), []byte(port))
	if bytes.Contains(src, []byte(libraryGRPCPort)) {
		src = bytes.ReplaceAll(src, []byte(libraryGRPCPort), []byte("127.0.0.1:"+strconv.Itoa(ports[1])))
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", path, "--time-scale", strconv.FormatFloat(scale, 'f', -1, 64),
		"--report-dir", report, "--golden-dir", filepath.Join(dir, "no-golden"), "--quiet")
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	_ = cmd.Run()
	wall := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("still running after a minute:\n%s", out.String())
	}
	res, err := results.ReadResult(filepath.Join(report, results.ResultsFile))
	if err != nil {
		t.Fatalf("%v (exit %d):\n%s", err, cmd.ProcessState.ExitCode(), out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != res.ExitCode {
		t.Errorf("exit code %d, results.json says %d", code, res.ExitCode)
	}
	return res, out.String(), wall
}

// compareLibraryBaseline diffs a run with its baseline under golden/ci,
// or blesses it there with -update.
func compareLibraryBaseline(t *testing.T, res *results.Result) string {
	t.Helper()
	if *updatePlanGolden {
		path, err := golden.Bless(res, libraryGoldenDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("blessed %s", path)
		return ""
	}
	base, path, err := golden.LoadFor(libraryGoldenDir, res.Scenario, res.Version)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no golden baseline at %s: bless one with go test ./cmd/faultline -run 'TestLibraryLocal$' -update", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if base.Environment.TimeScale != res.TimeScale {
		t.Errorf("baseline %s was blessed at time scale %v, this run is %v: re-bless it", path, base.Environment.TimeScale, res.TimeScale)
	}
	rep, err := golden.Diff(res, base, path, libraryTolerances())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status == diff.StatusRegression {
		var b strings.Builder
		_ = golden.WriteText(&b, rep)
		return fmt.Sprintf("regression against %s:\n%s", path, b.String())
	}
	return ""
}
