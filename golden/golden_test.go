package golden

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/schema"
)

func f(v float64) *float64 { return &v }

func phase(name string) results.PhaseResult {
	return results.PhaseResult{Name: name, Start: 0, End: 10, Requests: 400, ErrorRate: 0.25, ChecksRate: 99.75, Throughput: 40,
		P50: 10, P90: 20, P95: 30, P99: 100, Avg: 12, Max: 150, Goroutines: 20, HeapInUse: 10e6, GCPauseP99: 0.2, SchedP99: 0.5, RuntimeSeen: 10}
}

func result(version string) *results.Result {
	return &results.Result{Format: results.ResultsFormat, Scenario: "demo", Version: version, Backend: "local", Target: "http://127.0.0.1:1",
		FaultlineVersion: "v0.1.0", RunID: "run-1", Verdict: results.VerdictPass, Reason: "every SLO met",
		Phases: []results.PhaseResult{phase("steady"), phase("fault"), phase("recovery")}}
}

// TestCompare: each rule of one metric, table-driven.
func TestCompare(t *testing.T) {
	byName := map[string]MetricDef{}
	for _, m := range Metrics {
		byName[m.Name] = m
	}
	rel15 := schema.Tolerance{Relative: f(15)}
	cases := []struct {
		name     string
		metric   string
		base     float64
		meas     float64
		tol      schema.Tolerance
		status   string
		allowed  float64
		noSample bool
		samples  int64 // on both sides; default 1000
	}{
		{"p99 within 15%", "p99", 100, 114, rel15, diff.StatusOK, 15, false, 0},
		{"p99 over 15%", "p99", 100, 116, rel15, diff.StatusRegression, 15, false, 0},
		{"p99 exactly at the limit is ok", "p99", 100, 115, rel15, diff.StatusOK, 15, false, 0},
		{"p99 improved beyond 15%", "p99", 100, 80, rel15, diff.StatusImproved, 15, false, 0},
		{"tiny latency: +100% but under the 2ms floor", "p50", 0.5, 1.9, rel15, diff.StatusOK, 2, false, 0},
		{"tiny latency over the floor", "p50", 0.5, 2.6, rel15, diff.StatusRegression, 2, false, 0},
		{"relative and absolute: over relative only", "p99", 100, 125, schema.Tolerance{Relative: f(15), Absolute: f(30)}, diff.StatusOK, 30, false, 0},
		{"relative and absolute: over both", "p99", 100, 131, schema.Tolerance{Relative: f(15), Absolute: f(30)}, diff.StatusRegression, 30, false, 0},
		{"absolute only", "p90", 10, 14, schema.Tolerance{Absolute: f(3)}, diff.StatusRegression, 3, false, 0},
		{"max: one slow request under the 10ms floor", "max", 10, 19, schema.Tolerance{Absolute: f(3)}, diff.StatusOK, 10, false, 0},
		{"max over the 10ms floor", "max", 10, 21, schema.Tolerance{Absolute: f(3)}, diff.StatusRegression, 10, false, 0},
		{"p99 of 160 requests rests on 1.6: floor 10ms", "p99", 3, 12, rel15, diff.StatusOK, 10, false, 160},
		{"p99 of 1000 requests: floor 2ms", "p99", 3, 12, rel15, diff.StatusRegression, 2, false, 1000},
		{"p95 of 160 requests rests on 8: floor 2ms", "p95", 3, 6, rel15, diff.StatusRegression, 2, false, 160},
		{"error rate from 0 to 0.4 points: under the floor", "errorRate", 0, 0.4, rel15, diff.StatusOK, 0.5, false, 0},
		{"error rate from 0 to 0.6 points", "errorRate", 0, 0.6, rel15, diff.StatusRegression, 0.5, false, 0},
		{"checks drop 2 points: within 15% of 100", "checks", 100, 98, rel15, diff.StatusOK, 15, false, 0},
		{"checks drop over an absolute 1 point", "checks", 100, 98, schema.Tolerance{Absolute: f(1)}, diff.StatusRegression, 1, false, 0},
		{"throughput drop", "throughput", 40, 30, rel15, diff.StatusRegression, 6, false, 0},
		{"throughput rise is an improvement", "throughput", 40, 50, rel15, diff.StatusImproved, 6, false, 0},
		{"goroutines +4 under the floor of 5", "goroutines", 10, 14, rel15, diff.StatusOK, 5, false, 0},
		{"goroutines +6", "goroutines", 10, 16, rel15, diff.StatusRegression, 5, false, 0},
		{"heap +0.9MB under the floor", "heapInUse", 2, 2.9, rel15, diff.StatusOK, 1, false, 0},
		{"heap +5MB", "heapInUse", 10, 15, rel15, diff.StatusRegression, 1.5, false, 0},
		{"no tolerance at all: only the floor", "p99", 100, 103, schema.Tolerance{}, diff.StatusRegression, 2, false, 0},
		{"no samples", "p99", 100, 500, rel15, diff.StatusNoData, 15, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := byName[tc.metric]
			n := tc.samples
			if n == 0 {
				n = 1000
			}
			base := Sample{Value: tc.base, Samples: n}
			if tc.noSample {
				base.Samples = 0
			}
			m := compare(def, "fault", base, Sample{Value: tc.meas, Samples: n}, tc.tol)
			if m.Status != tc.status {
				t.Errorf("status %s, want %s (%+v)", m.Status, tc.status, m)
			}
			if m.Allowed != tc.allowed {
				t.Errorf("allowed %v, want %v", m.Allowed, tc.allowed)
			}
			if !tc.noSample && m.Change != tc.meas-tc.base {
				t.Errorf("change %v", m.Change)
			}
		})
	}
}

func TestTolerance(t *testing.T) {
	tol := &schema.Baseline{Default: &schema.Tolerance{Relative: f(20)}, Fault: map[string]schema.Tolerance{"p99": {Absolute: f(50)}}}
	cases := []struct {
		tol           *schema.Baseline
		phase, metric string
		rel, abs      *float64
	}{
		{nil, "fault", "p99", f(15), nil},
		{&schema.Baseline{}, "steady", "p50", f(15), nil},
		{tol, "fault", "p99", nil, f(50)},
		{tol, "fault", "p50", f(20), nil},
		{tol, "steady", "p99", f(20), nil},
	}
	for _, tc := range cases {
		got := Tolerance(tc.tol, tc.phase, tc.metric)
		if !eq(got.Relative, tc.rel) || !eq(got.Absolute, tc.abs) {
			t.Errorf("%s %s: %v/%v", tc.phase, tc.metric, got.Relative, got.Absolute)
		}
	}
}

func eq(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// TestBlessLoadDiff: bless writes <dir>/<scenario>/v<major>.json; the same
// results compare clean; a worse run regresses, and Judge turns pass into
// regression with exit code 5.
func TestBlessLoadDiff(t *testing.T) {
	dir := t.TempDir()
	res := result("1.2.0")
	path, err := Bless(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "demo", "v1.json"); path != want {
		t.Fatalf("path %s, want %s", path, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "demo", ".golden-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	b, p, err := LoadFor(dir, "demo", "1.9.3")
	if err != nil || p != path {
		t.Fatal(err, p)
	}
	if b.Major != 1 || b.Environment.Backend != "local" || b.Phases[2].Metrics["p99"].Samples != 400 || b.Phases[0].Metrics["heapInUse"].Value != 10 {
		t.Errorf("baseline: %+v", b)
	}
	rep, err := Diff(res, b, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != diff.StatusOK || rep.Regressions != 0 || rep.Improvements != 0 || len(rep.Phases) != 3 || len(rep.Phases[0].Metrics) != len(Metrics) {
		t.Errorf("same run: %+v", rep)
	}

	worse := result("1.3.0")
	worse.Phases[1].P99 = 200
	worse.Phases[1].ErrorRate = 3
	worse.Phases[2].P50 = 11 // +10% and 1ms: nothing
	rep, err = Diff(worse, b, path, &schema.Baseline{Fault: map[string]schema.Tolerance{"errorRate": {Absolute: f(5)}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rep.RegressedMetrics() {
		got = append(got, m.Phase+" "+m.Metric)
	}
	if strings.Join(got, ",") != "fault p99" {
		t.Errorf("regressions %v, want fault p99 (errorRate is within its absolute 5 points)", got)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "1.2.0") || !strings.Contains(rep.Notes[0], "1.3.0") {
		t.Errorf("a minor difference is compared and noted: %q", rep.Notes)
	}
	Judge(worse, rep)
	if worse.Verdict != results.VerdictRegression || worse.ExitCode != 5 || !strings.Contains(worse.Reason, "fault p99 100.0ms → 200.0ms") || worse.Baseline != rep {
		t.Errorf("judged: %s %d %s", worse.Verdict, worse.ExitCode, worse.Reason)
	}

	// A breach stays a breach.
	breach := result("1.3.0")
	breach.Phases[1].P99 = 200
	breach.Verdict = results.VerdictSLOBreach
	rep, _ = Diff(breach, b, path, nil)
	Judge(breach, rep)
	if breach.Verdict != results.VerdictSLOBreach {
		t.Errorf("verdict %s", breach.Verdict)
	}
}

// TestMajorRefused: a baseline of another major is refused, saying to re-bless.
func TestMajorRefused(t *testing.T) {
	dir := t.TempDir()
	path, err := Bless(result("1.0.0"), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Diff(result("2.0.0"), b, path, nil)
	var me *MajorError
	if !errors.As(err, &me) || !errors.Is(err, ErrRefused) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"1.0.0", "2.0.0", "re-bless", "faultline golden bless"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// And there is no v2 baseline to load.
	if _, _, err := LoadFor(dir, "demo", "2.0.0"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("v2: %v", err)
	}
	// Another scenario is refused too.
	other := result("1.0.0")
	other.Scenario = "other"
	if _, err := Diff(other, b, path, nil); !errors.Is(err, ErrRefused) {
		t.Errorf("other scenario: %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"format":  `{"format":"faultline.dev/golden/v9","scenario":"demo","version":"1.0.0","major":1}`,
		"major":   `{"format":"faultline.dev/golden/v1","scenario":"demo","version":"2.0.0","major":1}`,
		"version": `{"format":"faultline.dev/golden/v1","scenario":"demo","version":"one","major":1}`,
		"json":    `{`,
	}
	for name, src := range cases {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestBlessRefusesFailedRun(t *testing.T) {
	for _, v := range []string{results.VerdictSLOBreach, results.VerdictAborted, results.VerdictError} {
		res := result("1.0.0")
		res.Verdict = v
		if _, err := Bless(res, t.TempDir()); err == nil {
			t.Errorf("%s blessed", v)
		}
	}
}

func TestMajor(t *testing.T) {
	for v, want := range map[string]int{"1.0.0": 1, "0.3.1": 0, "12.0.0-rc.1+b": 12, "v2.1.0": 2} {
		if got, err := Major(v); err != nil || got != want {
			t.Errorf("%s: %d %v", v, got, err)
		}
	}
	for _, v := range []string{"", "x.1.0", "-1.0.0", "1"} {
		if _, err := Major(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
