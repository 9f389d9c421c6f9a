package k6

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func loadLibrary(t testing.TB) []*schema.Loaded {
	t.Helper()
	ls, ds, err := schema.NewLoader().Load(context.Background(), []string{"../../scenarios"})
	if err != nil || len(ds) > 0 {
		t.Fatalf("loading the scenario library: %v\n%v", err, ds)
	}
	if len(ls) == 0 {
		t.Fatal("the scenario library is empty")
	}
	return ls
}

// TestGolden: every library scenario compiles to the files under
// testdata/<scenario>/ (refresh with -update), and compiling twice gives
// the same bytes.
func TestGolden(t *testing.T) {
	for _, l := range loadLibrary(t) {
		t.Run(l.Scenario.Name, func(t *testing.T) {
			files, ds, err := EmitLoaded(l)
			if err != nil || len(ds) > 0 {
				t.Fatalf("EmitLoaded: %v %v", err, ds)
			}
			again, _, _ := EmitLoaded(l)
			if !reflect.DeepEqual(files, again) {
				t.Error("two compilations differ")
			}
			wantPaths := []string{ConfigMapPath, OptionsPath, ScriptPath, TestRunPath}
			var paths []string
			for _, f := range files {
				paths = append(paths, f.Path)
			}
			if !reflect.DeepEqual(paths, wantPaths) {
				t.Errorf("files %q, want %q", paths, wantPaths)
			}
			for _, f := range files {
				golden := filepath.Join("testdata", l.Scenario.Name, f.Path)
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from %s (run go test -update if the change is intended)", f.Path, golden)
				}
			}
		})
	}
}

// TestDeterministic: fresh loads and plans compile to identical bytes, many
// times over (map iteration order must not leak into the output).
func TestDeterministic(t *testing.T) {
	first := map[string]Files{}
	for range 5 {
		for _, l := range loadLibrary(t) {
			p, err := plan.New(l.Scenario)
			if err != nil {
				t.Fatal(err)
			}
			files, err := Emit(p)
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := first[l.Scenario.Name]; ok && !reflect.DeepEqual(prev, files) {
				t.Errorf("%s: output differs between runs", l.Scenario.Name)
			}
			first[l.Scenario.Name] = files
		}
	}
}

// TestKubernetesObjects: the TestRun and ConfigMap carry the labels, the
// parallelism, the script reference, and the ConfigMap holds script.js
// byte for byte.
func TestKubernetesObjects(t *testing.T) {
	for _, l := range loadLibrary(t) {
		t.Run(l.Scenario.Name, func(t *testing.T) {
			files, _, err := EmitLoaded(l)
			if err != nil {
				t.Fatal(err)
			}
			var cm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string
				Metadata   struct {
					Name, Namespace string
					Labels          map[string]string
				}
				Data map[string]string
			}
			if err := yaml.UnmarshalStrict(files.Get(ConfigMapPath), &cm); err != nil {
				t.Fatal(err)
			}
			if cm.Data["script.js"] != string(files.Get(ScriptPath)) {
				t.Error("the ConfigMap's script.js differs from k6/script.js")
			}
			var tr struct {
				APIVersion string `json:"apiVersion"`
				Kind       string
				Metadata   struct {
					Name, Namespace string
					Labels          map[string]string
				}
				Spec struct {
					Parallelism int
					Arguments   string
					Script      struct {
						ConfigMap struct{ Name, File string } `json:"configMap"`
					}
				}
			}
			if err := yaml.UnmarshalStrict(files.Get(TestRunPath), &tr); err != nil {
				t.Fatal(err)
			}
			s := l.Scenario
			if tr.APIVersion != "k6.io/v1alpha1" || tr.Kind != "TestRun" {
				t.Errorf("TestRun is %s %s", tr.APIVersion, tr.Kind)
			}
			want := s.Load.Parallelism
			if want == 0 {
				want = 1
			}
			if tr.Spec.Parallelism != want {
				t.Errorf("parallelism %d, want %d", tr.Spec.Parallelism, want)
			}
			if tr.Spec.Script.ConfigMap.Name != cm.Metadata.Name || tr.Spec.Script.ConfigMap.File != "script.js" {
				t.Errorf("TestRun script %+v, ConfigMap %s", tr.Spec.Script.ConfigMap, cm.Metadata.Name)
			}
			for _, labels := range []map[string]string{tr.Metadata.Labels, cm.Metadata.Labels} {
				if labels[LabelManagedBy] != "faultline" || labels[LabelScenario] != s.Name || labels[LabelVersion] != s.Version {
					t.Errorf("labels %v", labels)
				}
				for k, v := range s.Labels {
					if labels[k] != v {
						t.Errorf("label %s=%q, want %q", k, labels[k], v)
					}
				}
			}
			wantArgs := "--tag faultline_scenario=" + s.Name + " --tag faultline_version=" + s.Version
			if tr.Spec.Arguments != wantArgs {
				t.Errorf("arguments %q, want %q", tr.Spec.Arguments, wantArgs)
			}
			if s.Target.Kubernetes != nil && tr.Metadata.Namespace != s.Target.Kubernetes.Namespace {
				t.Errorf("namespace %q, want %q", tr.Metadata.Namespace, s.Target.Kubernetes.Namespace)
			}
		})
	}
}

func sd(s string) schema.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return schema.Duration(d)
}

func ptr[T any](v T) *T { return &v }

func base(load schema.Load) *schema.Scenario {
	if load.Requests == nil {
		load.Requests = []schema.Request{{Path: "/"}}
	}
	return &schema.Scenario{Name: "t", Version: "1.0.0", Target: schema.Target{URL: "http://127.0.0.1:1"}, Load: load}
}

func emitOptions(t *testing.T, s *schema.Scenario) (map[string]any, Files) {
	t.Helper()
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Emit(p)
	if err != nil {
		t.Fatal(err)
	}
	var opts map[string]any
	if err := json.Unmarshal(files.Get(OptionsPath), &opts); err != nil {
		t.Fatal(err)
	}
	return opts, files
}

// executorCase is a load section and the k6 scenario it compiles to.
type executorCase struct {
	name string
	load schema.Load
	want string
}

// executorCases has each of the six executors, with the schema's defaults
// and with parameters set. The type-check tests compile them too.
func executorCases() []executorCase {
	stages := []schema.Stage{{Duration: sd("10s"), Target: 5}, {Duration: sd("1m30s"), Target: 0}}
	return []executorCase{
		{"constant-arrival-rate defaults", schema.Load{Executor: schema.ConstantArrivalRate, Rate: 10, Duration: sd("30s"), PreAllocatedVUs: 4},
			`{"startTime":"0s","executor":"constant-arrival-rate","rate":10,"timeUnit":"1s","duration":"30s","preAllocatedVUs":4,"maxVUs":4,"gracefulStop":"30s","exec":"default"}`},
		{"constant-arrival-rate set", schema.Load{Executor: schema.ConstantArrivalRate, Rate: 10, TimeUnit: sd("1m"), Duration: sd("90s"), PreAllocatedVUs: 4, MaxVUs: 9, GracefulStop: ptr(sd("0s"))},
			`{"startTime":"0s","executor":"constant-arrival-rate","rate":10,"timeUnit":"1m","duration":"1m30s","preAllocatedVUs":4,"maxVUs":9,"gracefulStop":"0s","exec":"default"}`},
		{"ramping-arrival-rate", schema.Load{Executor: schema.RampingArrivalRate, Stages: stages, PreAllocatedVUs: 2},
			`{"startTime":"0s","executor":"ramping-arrival-rate","startRate":0,"timeUnit":"1s","stages":[{"duration":"10s","target":5},{"duration":"1m30s","target":0}],"preAllocatedVUs":2,"maxVUs":2,"gracefulStop":"30s","exec":"default"}`},
		{"constant-vus", schema.Load{Executor: schema.ConstantVUs, VUs: 3, Duration: sd("5s")},
			`{"startTime":"0s","executor":"constant-vus","duration":"5s","vus":3,"gracefulStop":"30s","exec":"default"}`},
		{"ramping-vus defaults", schema.Load{Executor: schema.RampingVUs, Stages: stages},
			`{"startTime":"0s","executor":"ramping-vus","startVUs":1,"stages":[{"duration":"10s","target":5},{"duration":"1m30s","target":0}],"gracefulRampDown":"30s","gracefulStop":"30s","exec":"default"}`},
		{"ramping-vus set", schema.Load{Executor: schema.RampingVUs, Stages: stages, StartVUs: ptr(0), GracefulRampDown: ptr(sd("5s"))},
			`{"startTime":"0s","executor":"ramping-vus","startVUs":0,"stages":[{"duration":"10s","target":5},{"duration":"1m30s","target":0}],"gracefulRampDown":"5s","gracefulStop":"30s","exec":"default"}`},
		{"per-vu-iterations", schema.Load{Executor: schema.PerVUIterations, VUs: 2, Iterations: 7},
			`{"startTime":"0s","executor":"per-vu-iterations","vus":2,"iterations":7,"maxDuration":"10m","gracefulStop":"30s","exec":"default"}`},
		{"shared-iterations", schema.Load{Executor: schema.SharedIterations, VUs: 2, Iterations: 7, MaxDuration: sd("1m")},
			`{"startTime":"0s","executor":"shared-iterations","vus":2,"iterations":7,"maxDuration":"1m","gracefulStop":"30s","exec":"default"}`},
	}
}

// TestExecutors: each of the six executors compiles to its k6 scenario
// with its parameters and k6's defaults filled in.
func TestExecutors(t *testing.T) {
	for _, tt := range executorCases() {
		t.Run(tt.name, func(t *testing.T) {
			opts, _ := emitOptions(t, base(tt.load))
			got, _ := json.Marshal(opts["scenarios"].(map[string]any)[ScenarioName])
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("scenario\n got %s\nwant %s", got, wantJSON)
			}
		})
	}
}

// thresholdCase is a scenario's SLOs and the thresholds they compile to.
type thresholdCase struct {
	name   string
	slos   schema.SLOs
	par    int
	faults map[string]schema.Fault
	want   string
}

// thresholdLoad is the load of the threshold cases.
func thresholdLoad() schema.Load {
	return schema.Load{Executor: schema.ConstantArrivalRate, Rate: 50, Duration: sd("60s"), PreAllocatedVUs: 5}
}

// thresholdCases: every SLO kind, abortOnBreach, phases. The type-check
// tests compile them too.
func thresholdCases() []thresholdCase {
	faults := map[string]schema.Fault{"f": {Start: sd("10s"), Duration: sd("20s"), PodKill: &schema.PodKill{}}}
	return []thresholdCase{
		{
			name: "latency, errors, checks",
			slos: schema.SLOs{Steady: &schema.PhaseSLO{
				Latency:   &schema.LatencySLO{P50: sd("50ms"), P90: sd("90ms"), P95: sd("1.5ms"), P99: sd("1s"), Avg: sd("40ms"), Max: sd("2s")},
				ErrorRate: ptr(0.1), Checks: ptr(99.9),
			}},
			want: `{
				"checks{phase:steady}": ["rate>=0.999"],
				"http_req_duration{phase:steady}": ["p(50)<50", "p(90)<90", "p(95)<1.5", "p(99)<1000", "avg<40", "max<2000"],
				"http_req_failed{phase:steady}": ["rate<=0.001"],
				"http_reqs{phase:steady}": ["count>0"]}`,
		},
		{
			name: "runtime SLIs are not thresholds",
			slos: schema.SLOs{Steady: &schema.PhaseSLO{
				Goroutines: &schema.GaugeSLO{Max: 10}, HeapInUse: &schema.HeapSLO{Max: "1GB"},
				GCPause: &schema.GCPauseSLO{P99: sd("1ms")}, SchedLatency: &schema.SchedLatSLO{P99: sd("1ms")},
			}},
			want: `{"http_reqs{phase:steady}": ["count>0"]}`,
		},
		{
			name:   "abortOnBreach, phases, recovery within, throughput per runner",
			faults: faults,
			par:    2,
			slos: schema.SLOs{
				Fault: &schema.PhaseSLO{Latency: &schema.LatencySLO{P99: sd("1s")}, ErrorRate: ptr(5.0), Checks: ptr(90.0), Throughput: ptr(40.0), AbortOnBreach: true},
				Recovery: &schema.RecoverySLO{Within: sd("10s"), PhaseSLO: schema.PhaseSLO{
					Latency: &schema.LatencySLO{P99: sd("300ms")}, Throughput: ptr(45.0)}},
			},
			want: `{
				"checks{phase:fault}": [{"threshold": "rate>=0.9", "abortOnFail": true, "delayAbortEval": "15s"}],
				"http_req_duration{phase:fault}": [{"threshold": "p(99)<1000", "abortOnFail": true, "delayAbortEval": "15s"}],
				"http_req_duration{phase:recovery}": ["p(99)<300"],
				"http_req_failed{phase:fault}": [{"threshold": "rate<=0.05", "abortOnFail": true, "delayAbortEval": "15s"}],
				"http_reqs{phase:fault}": ["count>=400", "count>0"],
				"http_reqs{phase:recovery}": ["count>=450", "count>0"]}`,
		},
	}
}

func (tt thresholdCase) scenario() *schema.Scenario {
	s := base(thresholdLoad())
	s.Load.Parallelism = tt.par
	s.Faults = tt.faults
	s.SLOs = &tt.slos
	return s
}

// TestThresholds: SLOs become per-phase thresholds on tagged sub-metrics;
// runtime SLIs do not; abortOnBreach adds abortOnFail to latency, errors
// and checks; throughput is a count over the judged phase, per runner.
func TestThresholds(t *testing.T) {
	for _, tt := range thresholdCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.scenario()
			opts, _ := emitOptions(t, s)
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(opts["thresholds"], want) {
				got, _ := json.MarshalIndent(opts["thresholds"], "", "  ")
				t.Errorf("thresholds\n%s", got)
			}
		})
	}
}

// TestTimeline: the script's segments follow the plan, with the recovery
// grace period (slos.recovery.within) tagged apart and overlapping faults
// joined with "+".
func TestTimeline(t *testing.T) {
	s := base(schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: sd("60s")})
	s.Faults = map[string]schema.Fault{
		"a": {Start: sd("10s"), Duration: sd("20s"), PodKill: &schema.PodKill{}},
		"b": {Start: sd("20s"), Duration: sd("20s"), PodKill: &schema.PodKill{}},
	}
	s.SLOs = &schema.SLOs{Recovery: &schema.RecoverySLO{Within: sd("5s"), PhaseSLO: schema.PhaseSLO{ErrorRate: ptr(1.0)}}}
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCompilation(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []segment{
		{0, 10000, "steady", "none"},
		{10000, 20000, "fault", "a"},
		{20000, 30000, "fault", "a+b"},
		{30000, 40000, "fault", "b"},
		{40000, 45000, GracePhase, "none"},
		{45000, 60000, "recovery", "none"},
	}
	if !reflect.DeepEqual(c.segments, want) {
		t.Errorf("segments\n got %v\nwant %v", c.segments, want)
	}
}

// TestMarshalJS: scenario strings enter the script as pure-ASCII JSON with
// nothing that could end a string, a comment or a script element, and
// decode back to the same text.
func TestMarshalJS(t *testing.T) {
	for _, s := range []string{
		"plain", "q\"uote 'single' `back` ${x} \\", "</script><!--", "line\nbreak\r\t",
		"\u2028\u2029\u0085", "ünïcødé 日本語", "😀 \U0010FFFF", "\x00\x1f\x7f", "*/ //",
	} {
		b, err := marshalJS(map[string]string{"k": s}, "  ")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b {
			if c >= 0x7f || (c < 0x20 && c != '\n') {
				t.Errorf("%q: output has byte %#x: %s", s, c, b)
				break
			}
		}
		// A backtick or ${ inside a double-quoted string is plain text.
		if bytes.ContainsAny(b, "<>&") {
			t.Errorf("%q: output has one of <>&: %s", s, b)
		}
		var back map[string]string
		if err := json.Unmarshal(b, &back); err != nil || back["k"] != s {
			t.Errorf("%q: round trip gives %q, %v", s, back["k"], err)
		}
	}
}

// writeScenario writes a YAML scenario and loads it.
func writeScenario(t *testing.T, src string) *schema.Loaded {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ls, ds, err := schema.NewLoader().Load(context.Background(), []string{path})
	if err != nil || len(ds) > 0 || len(ls) != 1 {
		t.Fatalf("loading: %v %v", err, ds)
	}
	return ls[0]
}

// TestEmitLoadedDiagnostics: what k6 rejects in the load section, and what
// HTTP cannot carry, comes back as a diagnostic at the scenario's line.
func TestEmitLoadedDiagnostics(t *testing.T) {
	tests := []struct {
		name, src, path, msg string
		line                 int
	}{
		{
			name: "k6 rejects the stages",
			src: `name: zero
version: 1.0.0
target: {url: "http://127.0.0.1:1"}
load:
  executor: ramping-vus
  startVUs: 0
  stages:
    - {duration: 10s, target: 0}
  requests: [{path: /}]
`,
			path: "load.stages", line: 7, msg: "k6 rejects the load: startVUs or the target of some stage must be greater than 0",
		},
		// A header value with a line break is refused by the loader itself
		// (schema/checks.go: vet and compile agree), before EmitLoaded.
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := writeScenario(t, tt.src)
			files, ds, err := EmitLoaded(l)
			if err != nil {
				t.Fatalf("error %v, want diagnostics", err)
			}
			if files != nil || len(ds) != 1 {
				t.Fatalf("files %v, diagnostics %v; want one diagnostic", files != nil, ds)
			}
			d := ds[0]
			if d.Path != tt.path || d.Line != tt.line || !strings.Contains(d.Message, tt.msg) {
				t.Errorf("diagnostic %s (path %q line %d), want path %q line %d with %q", d, d.Path, d.Line, tt.path, tt.line, tt.msg)
			}
		})
	}
}

// BenchmarkEmitLibrary measures compiling every library scenario (plan and
// emit, k6 options validation included), from loaded scenarios.
func BenchmarkEmitLibrary(b *testing.B) {
	ls := loadLibrary(b)
	b.ResetTimer()
	for b.Loop() {
		for _, l := range ls {
			if _, _, err := EmitLoaded(l); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(ls)), "scenarios/op")
}

// TestConfigMapLiteral: the ConfigMap holds any script verbatim, whether
// written as a literal block or (when a block cannot hold it) by the
// YAML encoder.
func TestConfigMapLiteral(t *testing.T) {
	for _, script := range []string{
		"a\n\n\tb  \nc\n", " leading space\n", "no final newline", "two\n\n", "\nfirst empty\n",
		"non-ASCII ü\n", "cr\r\n", "# comment\n- not a list\nkey: value\n",
	} {
		cm := configMap{APIVersion: "v1", Kind: "ConfigMap", Metadata: objectMeta{Name: "x", Labels: map[string]string{}}}
		b, err := configMapYAMLOf(cm, []byte(script))
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal(b, &back); err != nil || back.Data["script.js"] != script {
			t.Errorf("%q: read back %q, %v\n%s", script, back.Data["script.js"], err, b)
		}
	}
}

// TestTestRunRemoteWrite: with target.prometheus, the TestRun's runners
// send their samples there with k6's remote-write output, trends as native
// histograms, every second; without it, the TestRun has no output.
func TestTestRunRemoteWrite(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		wantEnv   map[string]string
	}{
		{"none", "", nil},
		{"prometheus", "http://prometheus.monitoring:9090/", map[string]string{
			"K6_PROMETHEUS_RW_SERVER_URL":                "http://prometheus.monitoring:9090/api/v1/write",
			"K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true",
			"K6_PROMETHEUS_RW_PUSH_INTERVAL":             "1s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base(schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: schema.Duration(time.Second)})
			if tc.url != "" {
				s.Target.Prometheus = &schema.PrometheusTarget{URL: tc.url}
			}
			_, files := emitOptions(t, s)
			var tr struct {
				Spec struct {
					Arguments string
					Runner    *struct {
						Env []struct{ Name, Value string }
					}
				}
			}
			if err := yaml.Unmarshal(files.Get(TestRunPath), &tr); err != nil {
				t.Fatal(err)
			}
			hasOut := strings.Contains(tr.Spec.Arguments, "-o "+RemoteWriteOutput)
			if hasOut != (tc.url != "") {
				t.Errorf("arguments %q: remote-write output %v, want %v", tr.Spec.Arguments, hasOut, tc.url != "")
			}
			got := map[string]string{}
			if tr.Spec.Runner != nil {
				for _, e := range tr.Spec.Runner.Env {
					got[e.Name] = e.Value
				}
			}
			if len(got) != len(tc.wantEnv) {
				t.Errorf("runner env %v, want %v", got, tc.wantEnv)
			}
			for k, v := range tc.wantEnv {
				if got[k] != v {
					t.Errorf("runner env %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
