package report

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/golden"
	"faultline.dev/faultline/results"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixture is a real results.json (12 s demo run, one networkDelay fault,
// every SLO met), checked in with its series as recorded.
func fixture(t *testing.T) *results.Result {
	t.Helper()
	r, err := results.ReadResult(filepath.Join("testdata", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// regressed is the fixture judged against a baseline of itself made far
// better: p99 divided by 10 and no errors in every phase, while the fault
// phase also had a few errors in this run.
func regressed(t *testing.T) *results.Result {
	t.Helper()
	r := fixture(t)
	base, err := golden.FromResult(r, time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range base.Phases {
		s := p.Metrics["p99"]
		s.Value /= 10
		p.Metrics["p99"] = s
	}
	// and a few errors in the fault phase, within the SLO (1%) but over
	// the baseline's 0 by more than the 0.5-point floor.
	r.Phases[1].ErrorRate, r.Phases[1].Failed = 0.625, 1
	for i, s := range r.SLOs {
		if s.Phase == "fault" && s.SLO == "errorRate" {
			r.SLOs[i].Measured = 0.625
		}
	}
	rep, err := golden.Diff(r, base, "golden/golden-demo/v1.json", r.Tolerances)
	if err != nil {
		t.Fatal(err)
	}
	golden.Judge(r, rep)
	return r
}

func check(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n%s", name, got)
	}
}

// TestGoldenFiles: junit.xml and report.md of a passing run and of the same
// run regressed against its baseline match the checked-in golden files.
func TestGoldenFiles(t *testing.T) {
	cases := []struct {
		name string
		res  func(*testing.T) *results.Result
	}{{"pass", fixture}, {"regression", regressed}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res(t)
			for _, f := range []struct {
				file  string
				write func(io.Writer, *results.Result) error
			}{{tc.name + ".junit.xml", JUnit}, {tc.name + ".report.md", Markdown}} {
				var b bytes.Buffer
				if err := f.write(&b, res); err != nil {
					t.Fatal(err)
				}
				check(t, f.file, b.Bytes())
			}
		})
	}
}

// TestRegressionNamed: the regressed metric is named with its phase, its
// measured and its baseline values in junit.xml and report.md, and the
// verdict comes first in report.md.
func TestRegressionNamed(t *testing.T) {
	res := regressed(t)
	if res.Verdict != results.VerdictRegression || res.ExitCode != 5 {
		t.Fatalf("verdict %s exit %d", res.Verdict, res.ExitCode)
	}
	var j, md bytes.Buffer
	if err := JUnit(&j, res); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&md, res); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(j.Bytes(), &suites); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	var failures []string
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				failures = append(failures, c.Classname+" "+c.Name+": "+c.Failure.Message)
			}
		}
	}
	fault := res.Phases[1]
	wantMsg := "fault p99 regressed: measured " + value(fault.P99, "ms") + ", baseline " + value(fault.P99/10, "ms")
	found := false
	for _, f := range failures {
		found = found || strings.Contains(f, wantMsg)
	}
	if !found {
		t.Errorf("no failure says %q: %q", wantMsg, failures)
	}
	if suites.Failures != len(failures) || suites.Tests == 0 {
		t.Errorf("counts: tests %d failures %d (%d failing cases)", suites.Tests, suites.Failures, len(failures))
	}
	m := md.String()
	if !strings.HasPrefix(m, "## 📉 REGRESSION — golden-demo 1.0.0") {
		t.Errorf("report.md does not start with the verdict:\n%s", m[:200])
	}
	if i, k := strings.Index(m, "### Regressions"), strings.Index(m, "### steady"); i < 0 || i > k {
		t.Errorf("regressions do not come before the phase tables")
	}
	row := "| fault | **p99** | " + value(fault.P99, "ms") + " | " + value(fault.P99/10, "ms") + " |"
	if !strings.Contains(m, row) {
		t.Errorf("report.md has no row %q", row)
	}
	if !strings.Contains(m, "| fault | **errorRate** | 0.62% | 0.00% | +0.62 points |") {
		t.Errorf("report.md does not name the error-rate regression:\n%s", m)
	}
}

// TestHTMLSelfContained: report.html fetches nothing: no src/href to any
// URL, no @import, no url(...), and draws one polyline per series and one
// shaded rect per fault per chart.
func TestHTMLSelfContained(t *testing.T) {
	res := regressed(t)
	var b bytes.Buffer
	if err := HTML(&b, res); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, bad := range []string{"src=", "href=", "@import", "url(", "http-equiv", "<link", "<script src", "//cdn"} {
		if strings.Contains(h, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	charts := strings.Count(h, `<svg id="chart-`)
	if charts != 5 {
		t.Errorf("%d charts, want 5 (latency, errors, rps, goroutines, heap)", charts)
	}
	if n := strings.Count(h, `<rect class="fault"`); n != charts*len(res.Faults) {
		t.Errorf("%d fault rects, want %d", n, charts*len(res.Faults))
	}
	if n := strings.Count(h, `<polyline class="series`); n != 7 {
		t.Errorf("%d polylines, want 7", n)
	}
	for _, want := range []string{`data-start="4.00" data-end="8.00"`, `id="regressions"`, `id="slos"`, `data-phase="recovery"`} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %s", want)
		}
	}
}

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	if err := WriteAll(dir, fixture(t)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{JUnitFile, MarkdownFile, HTMLFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".report-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ v, top, step float64 }{
		{0, 1, 0.25}, {1, 1, 0.25}, {12, 15, 5}, {130.3, 150, 50}, {40, 40, 10}, {0.3, 0.3, 0.1}, {0.31, 0.4, 0.1},
	} {
		top, step := niceScale(tc.v)
		if top != tc.top || step != tc.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tc.v, top, step, tc.top, tc.step)
		}
	}
}

// TestNotExposed: a target whose Go runtime is scraped without GC pause
// or scheduler latency data reads "not exposed" for them, not 0.0ms.
func TestNotExposed(t *testing.T) {
	for _, tc := range []struct {
		name             string
		gc, sched        int
		wantGC, wantSchd string
	}{
		{"both exposed", 4, 4, "| gcPause | 0.0ms", "| schedLatency |"},
		{"neither", 0, 0, "| gcPause | not exposed", "| schedLatency | not exposed"},
		{"GC only", 4, 0, "| gcPause | 0.0ms", "| schedLatency | not exposed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := fixture(t)
			for i := range res.Phases {
				res.Phases[i].GCPauseSeen, res.Phases[i].SchedSeen = tc.gc, tc.sched
			}
			var b bytes.Buffer
			if err := Markdown(&b, res); err != nil {
				t.Fatal(err)
			}
			md := b.String()
			for _, want := range []string{tc.wantGC, tc.wantSchd} {
				if !strings.Contains(md, want) {
					t.Errorf("report.md lacks %q", want)
				}
			}
		})
	}
}
