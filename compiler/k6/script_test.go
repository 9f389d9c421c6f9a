package k6

// Tests of the compiled script's own logic, run under node with stand-ins
// for k6's modules (testdata/harness): the requests it makes, the tags it
// puts on them, its checks, and its end-of-test summary. Where the tests
// once ran the script in k6, these check the same behaviour without k6.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// jsInput drives one run of a script: the environment, one iteration per
// entry of Iterations (ms after the scenario's start), the values
// Math.random returns, the status every response has (0: 200), and the
// end-of-test data handleSummary gets (nil: not called).
type jsInput struct {
	Env        map[string]string `json:"env,omitempty"`
	Iterations []float64         `json:"iterations,omitempty"`
	Random     []float64         `json:"random,omitempty"`
	Status     int               `json:"status,omitempty"`
	Summary    any               `json:"summary,omitempty"`
	// GRPCStatus is the status every gRPC call gets (0: OK);
	// GRPCConnectFailures is how many connects fail first.
	GRPCStatus          int `json:"grpcStatus,omitempty"`
	GRPCConnectFailures int `json:"grpcConnectFailures,omitempty"`
}

// jsGRPC is one k6/net/grpc call of the script: load, connect or invoke.
type jsGRPC struct {
	Op          string         `json:"op"`
	ImportPaths []string       `json:"importPaths"`
	Files       []string       `json:"files"`
	Address     string         `json:"address"`
	URL         string         `json:"url"`
	Request     map[string]any `json:"request"`
	Params      struct {
		Plaintext *bool             `json:"plaintext"`
		Reflect   *bool             `json:"reflect"`
		Metadata  map[string]string `json:"metadata"`
		Tags      map[string]string `json:"tags"`
	} `json:"params"`
}

// jsMetric is a value added to a custom metric.
type jsMetric struct {
	Metric string            `json:"metric"`
	Value  float64           `json:"value"`
	Tags   map[string]string `json:"tags"`
}

type jsRequest struct {
	Method string  `json:"method"`
	URL    string  `json:"url"`
	Body   *string `json:"body"`
	Params struct {
		Headers          map[string]string `json:"headers"`
		Tags             map[string]string `json:"tags"`
		ResponseCallback *struct {
			ExpectedStatuses []int `json:"expectedStatuses"`
		} `json:"responseCallback"`
	} `json:"params"`
}

type jsCheck struct {
	Name string            `json:"name"`
	OK   bool              `json:"ok"`
	Tags map[string]string `json:"tags"`
}

// jsRun is what the script did.
type jsRun struct {
	Requests []jsRequest       `json:"requests"`
	Checks   []jsCheck         `json:"checks"`
	GRPC     []jsGRPC          `json:"grpc"`
	Metrics  []jsMetric        `json:"metrics"`
	Summary  map[string]string `json:"summary"`
	Options  json.RawMessage   `json:"options"`
}

// runJS runs a script under node with the k6 stand-ins.
func runJS(t *testing.T, script []byte, in jsInput) jsRun {
	t.Helper()
	node := needNode(t)
	dir := t.TempDir()
	stubs := filepath.Join(dir, "node_modules", "k6")
	if err := os.CopyFS(stubs, os.DirFS(filepath.Join("testdata", "harness", "k6"))); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"package.json": []byte(`{"private": true, "type": "module"}`),
		"script.js":    script,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	driver, err := os.ReadFile(filepath.Join("testdata", "harness", "run.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.mjs"), driver, 0o600); err != nil {
		t.Fatal(err)
	}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, "run.mjs", "script.js")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	var out jsRun
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.Bytes())
	}
	return out
}

// TestScriptSafeStrings: a scenario whose names, headers, bodies and
// checks hold nasty strings compiles to plain printable ASCII, and the
// script sends exactly those strings and checks for exactly them.
func TestScriptSafeStrings(t *testing.T) {
	files, ds, err := EmitLoaded(loadDoc(t, nastyDoc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	for _, f := range files {
		for i, c := range f.Data {
			if c >= 0x7f || (c < 0x20 && c != '\n') {
				t.Errorf("%s: byte %d is %#x: the output is not plain printable ASCII", f.Path, i, c)
				break
			}
		}
	}
	run := runJS(t, files.Get(ScriptPath), jsInput{Iterations: []float64{0, 10, 20}})
	if len(run.Requests) != 3 {
		t.Fatalf("%d requests, want 3", len(run.Requests))
	}
	for i, r := range run.Requests {
		if r.Method != "POST" || r.URL != "http://127.0.0.1:1"+nastyPath || r.Body == nil || *r.Body != nasty {
			t.Errorf("request %d: %s %q body %v", i, r.Method, r.URL, r.Body)
		}
		if got := r.Params.Headers["X-Odd`'|~"]; got != nastyHeader || len(r.Params.Headers) != 1 {
			t.Errorf("request %d: headers %q", i, r.Params.Headers)
		}
		wantTags := map[string]string{"name": nasty, "phase": "steady", "fault": "none"}
		if !reflect.DeepEqual(r.Params.Tags, wantTags) {
			t.Errorf("request %d: tags %q, want %q", i, r.Params.Tags, wantTags)
		}
		if cb := r.Params.ResponseCallback; cb == nil || !slices.Equal(cb.ExpectedStatuses, []int{200}) {
			t.Errorf("request %d: responseCallback %+v, want the expected status 200", i, cb)
		}
	}
	// The server echoes the body, so every check passes.
	wantNames := []string{nasty + ": status is 200", nasty + ": body contains " + nasty,
		nasty + ": body contains </script>", nasty + ": body contains \u2028"}
	if len(run.Checks) != 3*len(wantNames) {
		t.Fatalf("%d checks, want %d", len(run.Checks), 3*len(wantNames))
	}
	for i, c := range run.Checks {
		if c.Name != wantNames[i%len(wantNames)] || !c.OK || c.Tags["phase"] != "steady" {
			t.Errorf("check %d: %q ok=%v tags %v, want %q to pass", i, c.Name, c.OK, c.Tags, wantNames[i%len(wantNames)])
		}
	}
	// A response without the strings fails the body checks.
	run = runJS(t, bytes.Replace(files.Get(ScriptPath), []byte(`"body": "q`), []byte(`"body": "Q`), 1), jsInput{Iterations: []float64{0}})
	var failed []string
	for _, c := range run.Checks {
		if !c.OK {
			failed = append(failed, c.Name)
		}
	}
	if !slices.Equal(failed, wantNames[1:2]) {
		t.Errorf("failed checks %q, want %q", failed, wantNames[1:2])
	}
}

// TestScriptTimeline: for every scenario, an iteration starting anywhere
// in a segment of the timeline tags its request and checks with that
// segment's phase and faults; after the last segment, the last one's.
func TestScriptTimeline(t *testing.T) {
	for _, p := range testPlans(t) {
		t.Run(p.name, func(t *testing.T) {
			c, err := newCompilation(p.plan)
			if err != nil {
				t.Fatal(err)
			}
			var at []float64
			var want []segment
			for _, s := range c.segments {
				at = append(at, s.Start, s.End-1, (s.Start+s.End)/2)
				want = append(want, s, s, s)
			}
			last := c.segments[len(c.segments)-1]
			at = append(at, last.End, last.End+60000)
			want = append(want, last, last)
			run := runJS(t, emitted(t, p).Get(ScriptPath), jsInput{Iterations: at, Random: slices.Repeat([]float64{0}, len(at))})
			var tags []map[string]string // of HTTP requests and gRPC calls
			for _, r := range run.Requests {
				tags = append(tags, r.Params.Tags)
			}
			for _, g := range run.GRPC {
				if g.Op == "invoke" {
					tags = append(tags, g.Params.Tags)
				}
			}
			if len(tags) != len(at) {
				t.Fatalf("%d requests for %d iterations", len(tags), len(at))
			}
			for i, tg := range tags {
				if tg["phase"] != want[i].Phase || tg["fault"] != want[i].Fault {
					t.Errorf("at %g ms: phase %q fault %q, want %q %q", at[i], tg["phase"], tg["fault"], want[i].Phase, want[i].Fault)
				}
			}
			// Every check is counted in faultline_checks, with its phase,
			// fault and outcome, for the windows read from Prometheus.
			var counted []jsMetric
			for _, m := range run.Metrics {
				if m.Metric == ChecksMetric {
					counted = append(counted, m)
				}
			}
			if len(counted) != len(run.Checks) || len(counted) == 0 {
				t.Fatalf("%d checks, %d counted in %s", len(run.Checks), len(counted), ChecksMetric)
			}
			for i, ch := range run.Checks {
				if ch.Tags["phase"] == "" || ch.Tags["fault"] == "" {
					t.Errorf("check %q without phase and fault tags: %v", ch.Name, ch.Tags)
				}
				want := map[string]string{"phase": ch.Tags["phase"], "fault": ch.Tags["fault"], "passed": fmt.Sprint(ch.OK)}
				if c := counted[i]; c.Value != 1 || !reflect.DeepEqual(c.Tags, want) {
					t.Errorf("check %q (ok %v, %v) counted as %+v", ch.Name, ch.OK, ch.Tags, c)
				}
			}
		})
	}
}

// TestScriptFaultWindow: the fault-window scenario's requests are steady
// for 2 s, in the fault "slow" for 2 s, then recovering.
func TestScriptFaultWindow(t *testing.T) {
	files, ds, err := EmitLoaded(loadDoc(t, faultWindowDoc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	at := []float64{0, 1999, 2000, 3999, 4000, 5999}
	run := runJS(t, files.Get(ScriptPath), jsInput{Iterations: at})
	want := [][2]string{{"steady", "none"}, {"steady", "none"}, {"fault", "slow"}, {"fault", "slow"}, {"recovery", "none"}, {"recovery", "none"}}
	for i, r := range run.Requests {
		if got := [2]string{r.Params.Tags["phase"], r.Params.Tags["fault"]}; got != want[i] {
			t.Errorf("at %g ms: %v, want %v", at[i], got, want[i])
		}
	}
}

// TestScriptTargetOverride: FAULTLINE_TARGET_URL replaces target.url as
// the base of every request; the paths stay the scenario's.
func TestScriptTargetOverride(t *testing.T) {
	files, ds, err := EmitLoaded(loadDoc(t, mixDoc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:1/base/a"},
		{map[string]string{TargetEnv: "http://127.0.0.1:9"}, "http://127.0.0.1:9/a"},
		{map[string]string{TargetEnv: "http://127.0.0.1:9//"}, "http://127.0.0.1:9/a"},
		{map[string]string{TargetEnv: ""}, "http://127.0.0.1:1/base/a"},
	} {
		run := runJS(t, files.Get(ScriptPath), jsInput{Env: tt.env, Iterations: []float64{0}, Random: []float64{0}})
		if got := run.Requests[0].URL; got != tt.want {
			t.Errorf("%s=%q: URL %q, want %q", TargetEnv, tt.env[TargetEnv], got, tt.want)
		}
	}
}

// TestScriptMix: the request mix is drawn by weight, with each request's
// method, body, headers, expected status and checks.
func TestScriptMix(t *testing.T) {
	files, ds, err := EmitLoaded(loadDoc(t, mixDoc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	// Weights 3 and 1: a draw below 0.75 picks the first request.
	draws := []float64{0, 0.5, 0.7499, 0.75, 0.99}
	run := runJS(t, files.Get(ScriptPath), jsInput{Iterations: slices.Repeat([]float64{0}, len(draws)), Random: draws})
	var names []string
	for _, r := range run.Requests {
		names = append(names, r.Method+" "+r.URL)
	}
	want := []string{"GET http://127.0.0.1:1/base/a", "GET http://127.0.0.1:1/base/a", "GET http://127.0.0.1:1/base/a",
		"PUT http://127.0.0.1:1/base/b", "PUT http://127.0.0.1:1/base/b"}
	if !slices.Equal(names, want) {
		t.Fatalf("requests %q, want %q", names, want)
	}
	get, put := run.Requests[0], run.Requests[3]
	if get.Body != nil || get.Params.ResponseCallback != nil || get.Params.Tags["name"] != "GET /a" {
		t.Errorf("GET request %+v", get)
	}
	if put.Body == nil || *put.Body != `{"x":1}` || put.Params.Headers["Content-Type"] != "application/json" ||
		put.Params.ResponseCallback == nil || !slices.Equal(put.Params.ResponseCallback.ExpectedStatuses, []int{201}) ||
		put.Params.Tags["name"] != "create" {
		t.Errorf("PUT request %+v", put)
	}
	// Every response is 200: the GET passes "2xx or 3xx", the PUT fails
	// its expected 201.
	got := map[string]bool{}
	for _, c := range run.Checks {
		got[c.Name] = c.OK
	}
	if want := map[string]bool{"GET /a: status is 2xx or 3xx": true, "create: status is 201": false}; !reflect.DeepEqual(got, want) {
		t.Errorf("checks %v, want %v", got, want)
	}
	run = runJS(t, files.Get(ScriptPath), jsInput{Iterations: []float64{0}, Random: []float64{0}, Status: 500})
	if run.Checks[0].OK {
		t.Errorf("status 500 passes %q", run.Checks[0].Name)
	}
}

// summaryData builds k6's end-of-test data: every threshold of the
// options with the given result, and samples per phase.
func summaryData(t *testing.T, optionsJSON []byte, samples map[string]int, failed map[string]bool) map[string]any {
	t.Helper()
	var opts struct {
		Thresholds map[string][]json.RawMessage `json:"thresholds"`
	}
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]any{}
	for name, ts := range opts.Thresholds {
		_, phase, _ := strings.Cut(strings.TrimSuffix(name, "}"), "{phase:")
		n := samples[phase]
		m := map[string]any{"type": "trend", "values": map[string]any{"count": n}, "thresholds": map[string]any{}}
		switch {
		case strings.HasPrefix(name, "http_reqs"), strings.HasPrefix(name, RequestsMetric):
			m["type"] = "counter"
		case strings.HasPrefix(name, "http_req_failed"), strings.HasPrefix(name, GRPCFailedMetric), strings.HasPrefix(name, "checks"):
			m["type"], m["values"] = "rate", map[string]any{"passes": n, "fails": 0}
		}
		for _, raw := range ts {
			var expr string
			if json.Unmarshal(raw, &expr) != nil {
				var obj struct{ Threshold string }
				if err := json.Unmarshal(raw, &obj); err != nil {
					t.Fatal(err)
				}
				expr = obj.Threshold
			}
			m["thresholds"].(map[string]any)[expr] = map[string]any{"ok": !failed[name+" "+expr]}
		}
		metrics[name] = m
	}
	return map[string]any{"metrics": metrics}
}

// report is the JSON report of the script's handleSummary.
type report struct {
	Scenario    string   `json:"scenario"`
	Passed      bool     `json:"passed"`
	EmptyPhases []string `json:"emptyPhases"`
	Phases      []struct {
		Name       string   `json:"name"`
		Requests   *int     `json:"requests"`
		Throughput *float64 `json:"throughput"`
		Thresholds []struct {
			SLO       string `json:"slo"`
			Metric    string `json:"metric"`
			Threshold string `json:"threshold"`
			Status    string `json:"status"`
			Samples   int    `json:"samples"`
		} `json:"thresholds"`
	} `json:"phases"`
}

func summarize(t *testing.T, doc map[string]any, samples map[string]int, failed map[string]bool) (report, string) {
	t.Helper()
	files, ds, err := EmitLoaded(loadDoc(t, doc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	path := "/tmp/summary.json" // only a key of handleSummary's result
	run := runJS(t, files.Get(ScriptPath), jsInput{
		Env:     map[string]string{SummaryEnv: path},
		Summary: summaryData(t, files.Get(OptionsPath), samples, failed),
	})
	var r report
	if err := json.Unmarshal([]byte(run.Summary[path]), &r); err != nil {
		t.Fatalf("the JSON summary: %v\n%v", err, run.Summary)
	}
	return r, run.Summary["stdout"]
}

// TestScriptSummaryFaultWindow: exactly the fault phase's latency
// threshold failed: the summary says so and that the run failed.
func TestScriptSummaryFaultWindow(t *testing.T) {
	r, text := summarize(t, faultWindowDoc, map[string]int{"steady": 150, "fault": 40, "recovery": 150},
		map[string]bool{"http_req_duration{phase:fault} p(99)<100": true})
	var notPassed []string
	for _, ph := range r.Phases {
		if ph.Requests == nil || *ph.Requests == 0 {
			t.Errorf("phase %s: %v requests, want some", ph.Name, ph.Requests)
		}
		for _, th := range ph.Thresholds {
			if th.Status != "passed" {
				notPassed = append(notPassed, th.Metric+" "+th.Threshold+" "+th.Status)
			}
		}
	}
	if want := []string{"http_req_duration{phase:fault} p(99)<100 failed"}; !slices.Equal(notPassed, want) {
		t.Errorf("thresholds not passed: %q, want %q", notPassed, want)
	}
	if r.Passed || r.Scenario != "fault-window" || !strings.Contains(text, "THRESHOLDS FAILED") || !strings.Contains(text, "FAIL") {
		t.Errorf("summary passed=%v scenario %q\n%s", r.Passed, r.Scenario, text)
	}
}

// TestScriptSummaryEmptyPhase: a phase with SLOs and no requests fails
// its count>0 threshold (k6 passes the others on empty sub-metrics) and the
// summary names it.
func TestScriptSummaryEmptyPhase(t *testing.T) {
	r, text := summarize(t, emptyPhaseDoc, map[string]int{"steady": 3},
		map[string]bool{"http_reqs{phase:fault} count>0": true})
	if r.Passed || !slices.Equal(r.EmptyPhases, []string{"fault"}) {
		t.Errorf("passed=%v, empty phases %q; want failed with [fault]", r.Passed, r.EmptyPhases)
	}
	if !strings.Contains(text, "NO SAMPLES") || !strings.Contains(text, "phases with SLOs and no samples: fault") {
		t.Errorf("the text summary does not flag the empty phase:\n%s", text)
	}
	for _, ph := range r.Phases {
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

// TestScriptSummaryThroughput: the measured throughput is the phase's
// requests over its judged length; a phase without SLOs has none.
func TestScriptSummaryThroughput(t *testing.T) {
	// mix: steady 0-10 s (no SLOs), fault 10-15 s, recovery 15-30 s judged
	// from 20 s.
	r, text := summarize(t, mixDoc, map[string]int{"fault": 50, "recovery": 100}, nil)
	got := map[string]string{}
	for _, ph := range r.Phases {
		switch {
		case ph.Requests == nil:
			got[ph.Name] = "no SLOs"
		case ph.Throughput != nil:
			got[ph.Name] = strconv.FormatFloat(*ph.Throughput, 'f', -1, 64)
		}
	}
	if want := map[string]string{"steady": "no SLOs", "fault": "10", "recovery": "10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("throughput %v, want %v\n%s", got, want, text)
	}
	if !r.Passed || !strings.Contains(text, "judged from 20s") {
		t.Errorf("passed=%v\n%s", r.Passed, text)
	}
}

// TestScriptGRPC: a load of gRPC calls only. The VU's client is made in the
// init context and connects once, on the first call, plaintext and with
// reflection (no proto files); each call sends its method, message and
// metadata, tagged with name, phase and fault; grpc_req_failed is true for
// a status other than the expected one and faultline_reqs counts every
// call; the status check passes exactly then. A failed connect counts the
// call as failed (UNAVAILABLE) and the next call connects again.
func TestScriptGRPC(t *testing.T) {
	files, ds, err := EmitLoaded(loadDoc(t, grpcDoc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	script := files.Get(ScriptPath)
	// Weights 3 and 1: a draw below 0.75 picks Checkout, above "missing";
	// the second iteration is in the fault window.
	run := runJS(t, script, jsInput{Iterations: []float64{0, 2500, 100}, Random: []float64{0, 0.5, 0.9}})
	var ops []string
	for _, g := range run.GRPC {
		ops = append(ops, g.Op)
	}
	if want := []string{"connect", "invoke", "invoke", "invoke"}; !slices.Equal(ops, want) {
		t.Fatalf("gRPC calls %q, want %q: no proto files to load, one connect per VU", ops, want)
	}
	c := run.GRPC[0]
	if c.Address != "127.0.0.1:2" || c.Params.Plaintext == nil || !*c.Params.Plaintext || c.Params.Reflect == nil || !*c.Params.Reflect {
		t.Errorf("connect %+v, want 127.0.0.1:2, plaintext, reflect", c)
	}
	wantTags := []map[string]string{
		{"name": "faultline.demo.v1.Shop/Checkout", "phase": "steady", "fault": "none"},
		{"name": "faultline.demo.v1.Shop/Checkout", "phase": "fault", "fault": "slow"},
		{"name": "missing", "phase": "steady", "fault": "none"},
	}
	for i, g := range run.GRPC[1:] {
		if g.URL != "faultline.demo.v1.Shop/Checkout" || !reflect.DeepEqual(g.Params.Tags, wantTags[i]) {
			t.Errorf("call %d: %s tags %v, want tags %v", i, g.URL, g.Params.Tags, wantTags[i])
		}
	}
	if m := run.GRPC[1]; m.Request["sku"] != "sku-1" || m.Request["qty"] != 1.0 || m.Params.Metadata["x-run"] != "t" {
		t.Errorf("call 0: message %v metadata %v", m.Request, m.Params.Metadata)
	}
	if m := run.GRPC[3]; m.Request["sku"] != "nope" || len(m.Params.Metadata) != 0 {
		t.Errorf("call 2: message %v metadata %v", m.Request, m.Params.Metadata)
	}
	if len(run.Requests) != 0 {
		t.Errorf("%d HTTP requests from a load of gRPC calls", len(run.Requests))
	}
	// Every call is answered OK: "missing" expected NOT_FOUND.
	// Each call: counted at its start, then its outcome (the Rate and the
	// Counter tagged failed), then its check counted (tagged passed).
	with := func(m map[string]string, k, v string) map[string]string {
		m = maps.Clone(m)
		m[k] = v
		return m
	}
	checkTags := func(i int, passed string) map[string]string {
		return map[string]string{"phase": wantTags[i]["phase"], "fault": wantTags[i]["fault"], "passed": passed}
	}
	wantMetrics := []jsMetric{
		{RequestsMetric, 1, wantTags[0]}, {GRPCFailedMetric, 0, wantTags[0]}, {GRPCCallsMetric, 1, with(wantTags[0], "failed", "false")}, {ChecksMetric, 1, checkTags(0, "true")},
		{RequestsMetric, 1, wantTags[1]}, {GRPCFailedMetric, 0, wantTags[1]}, {GRPCCallsMetric, 1, with(wantTags[1], "failed", "false")}, {ChecksMetric, 1, checkTags(1, "true")},
		{RequestsMetric, 1, wantTags[2]}, {GRPCFailedMetric, 1, wantTags[2]}, {GRPCCallsMetric, 1, with(wantTags[2], "failed", "true")}, {ChecksMetric, 1, checkTags(2, "false")},
	}
	if !reflect.DeepEqual(run.Metrics, wantMetrics) {
		t.Errorf("metrics %+v\nwant %+v", run.Metrics, wantMetrics)
	}
	wantChecks := []jsCheck{
		{"faultline.demo.v1.Shop/Checkout: status is OK", true, map[string]string{"phase": "steady", "fault": "none"}},
		{"faultline.demo.v1.Shop/Checkout: status is OK", true, map[string]string{"phase": "fault", "fault": "slow"}},
		{"missing: status is NOT_FOUND", false, map[string]string{"phase": "steady", "fault": "none"}},
	}
	if !reflect.DeepEqual(run.Checks, wantChecks) {
		t.Errorf("checks %+v\nwant %+v", run.Checks, wantChecks)
	}

	// Every call answered NOT_FOUND: "missing" passes, Checkout fails.
	run = runJS(t, script, jsInput{Iterations: []float64{0, 0}, Random: []float64{0, 0.9}, GRPCStatus: 5})
	var failed []float64
	for _, m := range run.Metrics {
		if m.Metric == GRPCFailedMetric {
			failed = append(failed, m.Value)
		}
	}
	if !slices.Equal(failed, []float64{1, 0}) || run.Checks[0].OK || !run.Checks[1].OK {
		t.Errorf("NOT_FOUND: %s %v, checks %+v", GRPCFailedMetric, failed, run.Checks)
	}

	// The first connect fails: that call fails as UNAVAILABLE, without an
	// invoke; the next connects and calls.
	run = runJS(t, script, jsInput{Iterations: []float64{0, 0}, Random: []float64{0, 0}, GRPCConnectFailures: 1})
	ops = nil
	for _, g := range run.GRPC {
		ops = append(ops, g.Op)
	}
	if want := []string{"connect", "connect", "invoke"}; !slices.Equal(ops, want) {
		t.Errorf("gRPC calls %q, want %q", ops, want)
	}
	failed = nil
	for _, m := range run.Metrics {
		if m.Metric == GRPCFailedMetric {
			failed = append(failed, m.Value)
		}
	}
	if !slices.Equal(failed, []float64{1, 0}) || len(run.Checks) != 2 || run.Checks[0].OK || !run.Checks[1].OK {
		t.Errorf("a failed connect: %s %v, checks %+v", GRPCFailedMetric, failed, run.Checks)
	}

	// FAULTLINE_TARGET_GRPC replaces target.grpc.
	run = runJS(t, script, jsInput{Env: map[string]string{GRPCTargetEnv: "127.0.0.1:9"}, Iterations: []float64{0}})
	if run.GRPC[0].Address != "127.0.0.1:9" {
		t.Errorf("%s=127.0.0.1:9: connect to %q", GRPCTargetEnv, run.GRPC[0].Address)
	}
}

// TestScriptGRPCMix: HTTP requests and gRPC calls in one weighted mix. The
// proto files are loaded once, in the init context, before any connect;
// the connect is TLS without reflection; HTTP requests are counted in
// faultline_reqs too, and the summary counts a phase's requests from it.
func TestScriptGRPCMix(t *testing.T) {
	files, ds, err := EmitLoaded(loadDoc(t, grpcMixDoc))
	if err != nil || len(ds) > 0 {
		t.Fatalf("compiling: %v %v", err, ds)
	}
	// Weights 1 and 1: below 0.5 HTTP, else gRPC.
	run := runJS(t, files.Get(ScriptPath), jsInput{Iterations: []float64{0, 10, 20, 30}, Random: []float64{0, 0.6, 0.7, 0.2}})
	var ops []string
	for _, g := range run.GRPC {
		ops = append(ops, g.Op)
	}
	if want := []string{"load", "connect", "invoke", "invoke"}; !slices.Equal(ops, want) {
		t.Fatalf("gRPC calls %q, want %q", ops, want)
	}
	if l := run.GRPC[0]; !slices.Equal(l.ImportPaths, []string{"../../internal/demotarget"}) || !slices.Equal(l.Files, []string{"shop.proto"}) {
		t.Errorf("load %+v", l)
	}
	if c := run.GRPC[1]; c.Params.Plaintext == nil || *c.Params.Plaintext || c.Params.Reflect == nil || *c.Params.Reflect {
		t.Errorf("connect %+v, want TLS without reflection", c)
	}
	if len(run.Requests) != 2 || run.Requests[0].URL != "http://127.0.0.1:1/a" {
		t.Errorf("HTTP requests %+v, want two GET /a", run.Requests)
	}
	counts := map[string]int{}
	for _, m := range run.Metrics {
		if m.Metric == RequestsMetric {
			counts[m.Tags["name"]] += int(m.Value)
		}
	}
	if want := map[string]int{"GET /a": 2, "faultline.demo.v1.Shop/Checkout": 2}; !reflect.DeepEqual(counts, want) {
		t.Errorf("%s by name %v, want %v", RequestsMetric, counts, want)
	}

	r, text := summarize(t, grpcMixDoc, map[string]int{"steady": 120}, map[string]bool{"grpc_req_failed{phase:steady} rate<=0.005": true})
	if r.Passed || len(r.Phases) != 1 || r.Phases[0].Requests == nil || *r.Phases[0].Requests != 120 {
		t.Fatalf("summary %+v\n%s", r, text)
	}
	var failedTh []string
	for _, th := range r.Phases[0].Thresholds {
		if th.Status == "failed" {
			failedTh = append(failedTh, th.SLO+" "+th.Metric)
		}
	}
	if want := []string{"errorRate grpc_req_failed{phase:steady}"}; !slices.Equal(failedTh, want) {
		t.Errorf("failed thresholds %q, want %q\n%s", failedTh, want, text)
	}
}
