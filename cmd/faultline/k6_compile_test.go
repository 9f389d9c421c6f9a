package main

// Tests of compiler/k6's output with the real, embedded k6 (the binary built
// in TestMain in k6_test.go): every script passes `k6 inspect`, scenario
// strings reach the wire byte for byte, and per-phase thresholds fail
// exactly where the target misbehaves.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.k6.io/k6/errext/exitcodes"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/schema"
)

// compileScenario writes a scenario (a JSON document) to a file, loads it
// with the schema loader and compiles it; it returns the path of the
// script and the emitted files.
func compileScenario(t *testing.T, doc map[string]any) (string, k6.Files) {
	t.Helper()
	dir := t.TempDir()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ls, ds, err := schema.NewLoader().Load(t.Context(), []string{path})
	if err != nil || len(ds) > 0 || len(ls) != 1 {
		t.Fatalf("loading the scenario: %v %v (%d loaded)\n%s", err, ds, len(ls), b)
	}
	files, ds, err := k6.EmitLoaded(ls[0])
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	script := filepath.Join(dir, "script.js")
	if err := os.WriteFile(script, files.Get(k6.ScriptPath), 0o600); err != nil {
		t.Fatal(err)
	}
	return script, files
}

// summary is the JSON report of the script's handleSummary.
type summary struct {
	Scenario    string   `json:"scenario"`
	Passed      bool     `json:"passed"`
	EmptyPhases []string `json:"emptyPhases"`
	Phases      []struct {
		Name       string `json:"name"`
		Requests   *int   `json:"requests"`
		Thresholds []struct {
			SLO       string `json:"slo"`
			Metric    string `json:"metric"`
			Threshold string `json:"threshold"`
			Status    string `json:"status"`
			Samples   int    `json:"samples"`
		} `json:"thresholds"`
	} `json:"phases"`
}

// runScript runs a compiled script with `faultline k6 run` and reads the
// JSON summary it writes.
func runScript(t *testing.T, script string) (result, summary) {
	t.Helper()
	tr := newTrap(t)
	out := filepath.Join(t.TempDir(), "summary.json")
	start := time.Now()
	r := runBinary(t, tr, binary, "k6", "run", "--no-usage-report", "--address=", "--quiet",
		"--env", k6.SummaryEnv+"="+out, script)
	t.Logf("k6 run took %s, exit code %d\n%s", time.Since(start).Round(time.Millisecond), r.code, r.stdout)
	tr.check(t)
	var s summary
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no JSON summary: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("JSON summary: %v\n%s", err, b)
	}
	return r, s
}

// TestK6CompiledLibraryInspect: every library scenario's script passes
// `k6 inspect`, and k6 reads the same options as options.json.
func TestK6CompiledLibraryInspect(t *testing.T) {
	ls, ds, err := schema.NewLoader().Load(t.Context(), []string{"../../scenarios"})
	if err != nil || len(ds) > 0 {
		t.Fatalf("loading the library: %v %v", err, ds)
	}
	if len(ls) == 0 {
		t.Fatal("no scenarios in the library")
	}
	tr := newTrap(t)
	for _, l := range ls {
		t.Run(l.Scenario.Name, func(t *testing.T) {
			files, ds, err := k6.EmitLoaded(l)
			if err != nil || len(ds) > 0 {
				t.Fatalf("compiling: %v %v", err, ds)
			}
			script := writeScript(t, string(files.Get(k6.ScriptPath)))
			r := runBinary(t, tr, binary, "k6", "inspect", script)
			if r.code != 0 {
				t.Fatalf("k6 inspect: exit code %d\nstderr:\n%s", r.code, r.stderr)
			}
			var got, want struct {
				Scenarios  map[string]json.RawMessage `json:"scenarios"`
				Thresholds map[string]json.RawMessage `json:"thresholds"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("k6 inspect output: %v\n%s", err, r.stdout)
			}
			if err := json.Unmarshal(files.Get(k6.OptionsPath), &want); err != nil {
				t.Fatal(err)
			}
			if _, ok := got.Scenarios[k6.ScenarioName]; !ok || len(got.Scenarios) != 1 {
				t.Errorf("k6 sees scenarios %v, want only %q", slices.Sorted(mapKeys(got.Scenarios)), k6.ScenarioName)
			}
			if !slices.Equal(slices.Sorted(mapKeys(got.Thresholds)), slices.Sorted(mapKeys(want.Thresholds))) {
				t.Errorf("k6 sees thresholds on %v, options.json has %v",
					slices.Sorted(mapKeys(got.Thresholds)), slices.Sorted(mapKeys(want.Thresholds)))
			}
		})
	}
	tr.check(t)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// nasty holds what could break a generator that pastes strings into
// JavaScript source: quotes, backticks, template syntax, a closing script
// tag, line breaks, JavaScript's other line terminators, non-ASCII text.
const nasty = "q\"uote 'single' `back` ${globalThis.x} </script><!-- \\ \\n \n newline \u2028 \u2029 ünïcødé 日本語 😀 */ //"

// nastyHeader is nasty without the line breaks HTTP forbids in a header.
const nastyHeader = "q\"uote 'single' `back` ${globalThis.x} </script> \\ \u2028 \u2029 ünïcødé 日本語 😀 */ //"

// TestK6CompiledSafeStrings: a scenario whose names, headers, bodies and
// checks hold nasty strings compiles to a script k6 accepts, and the
// requests k6 sends carry exactly those bytes.
func TestK6CompiledSafeStrings(t *testing.T) {
	type got struct {
		method, uri, header, body string
	}
	var (
		mu   sync.Mutex
		reqs []got
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.Method, r.RequestURI, r.Header.Get("X-Odd`'|~"), string(body)})
		mu.Unlock()
		_, _ = w.Write(body) // echo: the bodyContains checks look for nasty
	}))
	defer srv.Close()

	path := "/echo/it's$x?q=%22a%22&b='c'"
	script, files := compileScenario(t, map[string]any{
		"name": "nasty-strings", "version": "1.0.0",
		"description": nasty,
		"target":      map[string]any{"url": srv.URL},
		"load": map[string]any{
			"executor": "shared-iterations", "vus": 1, "iterations": 3, "maxDuration": "20s",
			"requests": []any{map[string]any{
				"name":    nasty,
				"method":  "POST",
				"path":    path,
				"headers": map[string]any{"X-Odd`'|~": nastyHeader},
				"body":    nasty,
				"expect":  map[string]any{"status": 200, "bodyContains": []string{nasty, "</script>", "\u2028"}},
			}},
		},
		// checks 100% and no errors: the run passes only if every check
		// (status and the three bodyContains) passed.
		"slos": map[string]any{"steady": map[string]any{"checks": 100, "errorRate": 0}},
	})
	for _, f := range files {
		for i, c := range f.Data {
			if c >= 0x7f || (c < 0x20 && c != '\n') {
				t.Errorf("%s: byte %d is %#x: the output is not plain printable ASCII", f.Path, i, c)
				break
			}
		}
	}

	tr := newTrap(t)
	if r := runBinary(t, tr, binary, "k6", "inspect", script); r.code != 0 {
		t.Fatalf("k6 inspect: exit code %d\nstderr:\n%s", r.code, r.stderr)
	}
	r, s := runScript(t, script)
	if r.code != 0 {
		t.Fatalf("k6 run: exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !s.Passed {
		t.Errorf("summary says the thresholds failed: %+v", s)
	}
	u, err := url.Parse(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	want := got{"POST", u.RequestURI(), nastyHeader, nasty}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 3 {
		t.Fatalf("the server got %d requests, want 3", len(reqs))
	}
	for i, g := range reqs {
		if g != want {
			t.Errorf("request %d:\n got %s\nwant %s", i, strconv.Quote(g.method+" "+g.uri+" | "+g.header+" | "+g.body),
				strconv.Quote(want.method+" "+want.uri+" | "+want.header+" | "+want.body))
		}
	}
}

// TestK6CompiledFaultWindow is the acceptance test: a 6 s run (steady 2 s,
// fault 2 s, recovery 2 s; 2 VUs) against a server that is slow (300 ms)
// only while the "fault" is on, by its own clock from the first request,
// as a real fault would be. Every phase has p99 < 100ms: exactly the
// fault-phase latency threshold fails, and k6 exits with 99.
//
// Margins: fast responses take 20 ms, so each phase sees ~100-200 requests
// and a slow response at a phase boundary (the two clocks differ by the
// time from k6's scenario start to the first request) stays far below 1%
// of steady or recovery; the server's slow window is [2.1 s, 3.9 s), 0.1 s
// inside the fault phase, so fault-phase p99 is 300 ms by a wide margin
// (~12 slow requests of ~40).
func TestK6CompiledFaultWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs k6 for 6 s")
	}
	var (
		mu    sync.Mutex
		first time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
		}
		since := time.Since(first)
		mu.Unlock()
		delay := 20 * time.Millisecond
		if since >= 2100*time.Millisecond && since < 3900*time.Millisecond {
			delay = 300 * time.Millisecond
		}
		time.Sleep(delay)
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	p99 := map[string]any{"latency": map[string]any{"p99": "100ms"}}
	script, _ := compileScenario(t, map[string]any{
		"name": "fault-window", "version": "1.0.0",
		"target": map[string]any{"url": srv.URL},
		"load": map[string]any{
			"executor": "constant-vus", "vus": 2, "duration": "6s", "gracefulStop": "2s",
			"requests": []any{map[string]any{"path": "/"}},
		},
		"faults": map[string]any{"slow": map[string]any{
			"start": "2s", "duration": "2s", "mode": "all",
			"httpFault": map[string]any{"target": "response", "port": port, "delay": "300ms"},
		}},
		"slos": map[string]any{"steady": p99, "fault": p99, "recovery": p99},
	})
	r, s := runScript(t, script)
	if r.code != int(exitcodes.ThresholdsHaveFailed) {
		t.Errorf("exit code %d, want %d (thresholds crossed)\nstdout:\n%s\nstderr:\n%s",
			r.code, exitcodes.ThresholdsHaveFailed, r.stdout, r.stderr)
	}
	var failed []string
	for _, ph := range s.Phases {
		if ph.Requests == nil || *ph.Requests == 0 {
			t.Errorf("phase %s: %v requests, want some", ph.Name, ph.Requests)
		}
		for _, th := range ph.Thresholds {
			if th.Status != "passed" {
				failed = append(failed, th.Metric+" "+th.Threshold+" "+th.Status)
			}
		}
	}
	want := []string{"http_req_duration{phase:fault} p(99)<100 failed"}
	if !slices.Equal(failed, want) {
		t.Errorf("thresholds not passed: %q, want %q\nstdout:\n%s", failed, want, r.stdout)
	}
}

// TestK6CompiledEmptyPhase: a phase with SLOs that gets no requests fails
// the run (k6 itself passes thresholds on empty sub-metrics) and the
// summary names it.
func TestK6CompiledEmptyPhase(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	// Three iterations finish in milliseconds; the fault phase starts at
	// 5 s, so it never sees a request.
	script, _ := compileScenario(t, map[string]any{
		"name": "empty-phase", "version": "1.0.0",
		"target": map[string]any{"url": srv.URL},
		"load": map[string]any{
			"executor": "per-vu-iterations", "vus": 1, "iterations": 3, "maxDuration": "10s",
			"requests": []any{map[string]any{"path": "/"}},
		},
		"faults": map[string]any{"later": map[string]any{
			"start": "5s", "duration": "1s", "podKill": map[string]any{},
		}},
		"slos": map[string]any{
			"steady": map[string]any{"latency": map[string]any{"p99": "5s"}},
			"fault":  map[string]any{"latency": map[string]any{"p99": "5s"}},
		},
	})
	r, s := runScript(t, script)
	if r.code != int(exitcodes.ThresholdsHaveFailed) {
		t.Errorf("exit code %d, want %d (thresholds crossed)\nstdout:\n%s\nstderr:\n%s",
			r.code, exitcodes.ThresholdsHaveFailed, r.stdout, r.stderr)
	}
	if !slices.Equal(s.EmptyPhases, []string{"fault"}) {
		t.Errorf("summary names empty phases %q, want [fault]", s.EmptyPhases)
	}
	if !strings.Contains(r.stdout, "NO SAMPLES") {
		t.Errorf("the text summary does not flag the empty phase:\n%s", r.stdout)
	}
	for _, ph := range s.Phases {
		for _, th := range ph.Thresholds {
			want := "passed"
			switch {
			case ph.Name == "fault" && th.Threshold == "count>0":
				want = "failed"
			case ph.Name == "fault":
				want = "no samples"
			}
			if th.Status != want {
				t.Errorf("phase %s: %s %s is %q, want %q", ph.Name, th.Metric, th.Threshold, th.Status, want)
			}
		}
	}
}
