package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"faultline.dev/faultline/golden"
	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/report"
)

// goldenScenario writes a 9-second local scenario (steady [0,3s), a 100ms
// network delay [3s,6s), recovery [6s,9s) judged from 7s) against a demo
// target faultline starts on a free loopback port. Its tolerances are wide
// enough that the same run twice on a busy, shared two-core machine is no
// regression (a steady p99 of 120 requests was seen to move 6 → 20ms, a max
// 17 → 91ms, between identical runs), and narrow enough that a baseline ten
// times better in the fault phase is.
func goldenScenario(t *testing.T, dir string) string {
	t.Helper()
	port := freeLoopbackPort(t)
	src := fmt.Sprintf(`name: golden-accept
version: 1.2.0
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
  delay:
    start: 3s
    duration: 3s
    mode: all
    networkDelay: {latency: 100ms}
slos:
  steady: {latency: {p99: 300ms}, errorRate: 1}
  fault: {latency: {p99: 800ms}, errorRate: 1}
  recovery: {within: 1s, latency: {p99: 300ms}, errorRate: 1}
baseline:
  default: {relative: 100, absolute: 50}
  fault:
    p99: {relative: 40, absolute: 25}
`, port)
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func faultline(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String()
}

// grafanaStub records annotations; it answers status.
type grafanaStub struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []report.Annotation
	auth   []string
}

func newGrafana(t *testing.T, status int) *grafanaStub {
	g := &grafanaStub{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a report.Annotation
		_ = json.NewDecoder(r.Body).Decode(&a)
		g.mu.Lock()
		g.bodies = append(g.bodies, a)
		g.auth = append(g.auth, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		g.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, `{"message":"stub"}`)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestGoldenAcceptance: a 9 s demo run blessed with --update-golden; the same
// run again is within tolerance (exit 0) and posts its fault window to
// Grafana; with the baseline edited to be far better (p99 divided by 10,
// error rate 0) the next run ends in regression (exit 5), and junit.xml and
// report.md name the metric, the phase, the measured and the baseline
// values, while a failing Grafana is only a warning; `faultline diff` says
// the same, and refuses a baseline of another major version (exit 3).
func TestGoldenAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load three times for 9s")
	}
	t.Parallel()
	dir := t.TempDir()
	scenario := goldenScenario(t, dir)
	gdir := filepath.Join(dir, "golden")
	report1, report2, report3 := filepath.Join(dir, "r1"), filepath.Join(dir, "r2"), filepath.Join(dir, "r3")

	// 1. Bless.
	code, out := faultline(t, nil, "run", scenario, "--report-dir", report1, "--quiet", "--golden-dir", gdir, "--update-golden")
	if code != exitcode.OK {
		t.Fatalf("first run: exit %d:\n%s", code, out)
	}
	basePath := filepath.Join(gdir, "golden-accept", "v1.json")
	base, err := golden.Load(basePath)
	if err != nil {
		t.Fatalf("--update-golden wrote no baseline: %v\n%s", err, out)
	}
	if base.Version != "1.2.0" || base.Environment.Backend != "local" || len(base.Phases) != 3 || base.Phases[1].Metrics["p99"].Samples == 0 {
		t.Errorf("baseline: %+v", base)
	}
	t.Logf("blessed: fault p99 %.1fms over %d requests", base.Phases[1].Metrics["p99"].Value, base.Phases[1].Metrics["p99"].Samples)

	// 2. The same run again: within tolerance; the fault's actual window
	// goes to Grafana with the token from GRAFANA_TOKEN.
	graf := newGrafana(t, http.StatusOK)
	code, out = faultline(t, []string{"GRAFANA_TOKEN=tok-123"}, "run", scenario, "--report-dir", report2, "--quiet", "--golden-dir", gdir, "--grafana-url", graf.srv.URL)
	res2, err := results.ReadResult(filepath.Join(report2, results.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if code != exitcode.OK || res2.Verdict != results.VerdictPass {
		regs, _ := json.MarshalIndent(res2.Baseline.RegressedMetrics(), "", " ")
		t.Fatalf("same run again: exit %d, verdict %s (%s)\n%s\n%s", code, res2.Verdict, res2.Reason, regs, out)
	}
	if res2.Baseline == nil || res2.Baseline.Status != diff.StatusOK || res2.Baseline.Baseline != basePath {
		t.Fatalf("results.json holds no clean baseline diff: %+v", res2.Baseline)
	}
	for _, f := range []string{report.JUnitFile, report.MarkdownFile, report.HTMLFile} {
		if st, err := os.Stat(filepath.Join(report2, f)); err != nil || st.Size() == 0 {
			t.Errorf("run wrote no %s: %v", f, err)
		}
	}
	graf.mu.Lock()
	if len(graf.bodies) != 1 || graf.auth[0] != "POST /api/annotations Bearer tok-123" {
		t.Errorf("grafana got %q %+v", graf.auth, graf.bodies)
	} else if a, w := graf.bodies[0], res2.Faults[0]; a.Time != w.Start.UnixMilli() || a.TimeEnd != w.End.UnixMilli() || strings.Join(a.Tags, ",") != "faultline,golden-accept,delay" {
		t.Errorf("annotation %+v, want the actual window %d-%d", a, w.Start.UnixMilli(), w.End.UnixMilli())
	}
	graf.mu.Unlock()
	if code, out := faultline(t, nil, "diff", filepath.Join(report2, results.ResultsFile), "--dir", gdir); code != exitcode.OK || !strings.Contains(out, "baseline: OK") {
		t.Errorf("faultline diff of the same run: exit %d\n%s", code, out)
	}

	// 3. A baseline far better than reality: p99 divided by 10, no errors.
	for _, p := range base.Phases {
		s := p.Metrics["p99"]
		s.Value /= 10
		p.Metrics["p99"] = s
		e := p.Metrics["errorRate"]
		e.Value = 0
		p.Metrics["errorRate"] = e
	}
	if err := base.Write(basePath); err != nil {
		t.Fatal(err)
	}
	down := newGrafana(t, http.StatusInternalServerError)
	code, out = faultline(t, nil, "run", scenario, "--report-dir", report3, "--quiet", "--golden-dir", gdir, "--grafana-url", down.srv.URL)
	res3, err := results.ReadResult(filepath.Join(report3, results.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if code != exitcode.Regression || res3.Verdict != results.VerdictRegression || res3.ExitCode != exitcode.Regression {
		t.Fatalf("far-better baseline: exit %d, verdict %s (%s)\n%s", code, res3.Verdict, res3.Reason, out)
	}
	if !strings.Contains(out, "warning: grafana annotations") || !strings.Contains(out, "500") {
		t.Errorf("a failing Grafana is not reported as a warning:\n%s", out)
	}
	var fault diff.Metric
	for _, m := range res3.Baseline.RegressedMetrics() {
		if m.Phase == "fault" && m.Metric == "p99" {
			fault = m
		}
	}
	if fault.Metric == "" {
		t.Fatalf("fault p99 did not regress: %+v", res3.Baseline.RegressedMetrics())
	}
	measured, baseline := fmt.Sprintf("%.1fms", fault.Measured), fmt.Sprintf("%.1fms", fault.Baseline)
	t.Logf("fault p99: measured %s, baseline %s, allowed +%.1fms", measured, baseline, fault.Allowed)

	junit, err := os.ReadFile(filepath.Join(report3, report.JUnitFile))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(junit, &suites); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	found := false
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil && c.Classname == "golden-accept.baseline.fault" && c.Name == "p99 vs baseline" {
				found = strings.Contains(c.Failure.Message, "fault p99 regressed: measured "+measured+", baseline "+baseline)
				if !found {
					t.Errorf("junit failure message %q", c.Failure.Message)
				}
			}
		}
	}
	if !found {
		t.Errorf("junit.xml has no failing fault p99 case:\n%s", junit)
	}
	md, err := os.ReadFile(filepath.Join(report3, report.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(md), "## 📉 REGRESSION — golden-accept 1.2.0") || !strings.Contains(string(md), "| fault | **p99** | "+measured+" | "+baseline+" |") {
		t.Errorf("report.md does not lead with the verdict and name fault p99 %s vs %s:\n%s", measured, baseline, md)
	}
	code, out = faultline(t, nil, "diff", filepath.Join(report3, results.ResultsFile), "--dir", gdir, "-o", "markdown")
	if code != exitcode.Regression || !strings.Contains(out, "| fault | **p99** |") {
		t.Errorf("faultline diff -o markdown: exit %d\n%s", code, out)
	}

	// 4. A baseline of another major version is refused.
	base.Version, base.Major = "2.0.0", 2
	other := filepath.Join(dir, "v2.json")
	if err := base.Write(other); err != nil {
		t.Fatal(err)
	}
	code, out = faultline(t, nil, "diff", filepath.Join(report2, results.ResultsFile), other)
	if code != exitcode.Invalid || !strings.Contains(out, "2.0.0 (major 2) but this run is 1.2.0 (major 1)") || !strings.Contains(out, "re-bless with `faultline golden bless") {
		t.Errorf("another major: exit %d\n%s", code, out)
	}
	// No baseline at all is said plainly.
	code, out = faultline(t, nil, "diff", filepath.Join(report2, results.ResultsFile), "--dir", filepath.Join(dir, "nothing"))
	if code != exitcode.Invalid || !strings.Contains(out, "no golden baseline") {
		t.Errorf("no baseline: exit %d\n%s", code, out)
	}
	// `faultline report` regenerates the three files elsewhere.
	code, out = faultline(t, nil, "report", filepath.Join(report3, results.ResultsFile), "-o", filepath.Join(dir, "again"))
	if code != exitcode.OK {
		t.Errorf("faultline report: exit %d\n%s", code, out)
	} else if again, _ := os.ReadFile(filepath.Join(dir, "again", report.MarkdownFile)); !bytes.Equal(again, md) {
		t.Errorf("faultline report wrote another report.md")
	}
}
