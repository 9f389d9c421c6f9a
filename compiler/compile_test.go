package compiler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	v1 "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// sources are the scenario library and the compiler's own scenarios (every
// fault kind, a fault-only selector, a long name).
var sources = []string{"../scenarios", "testdata/scenarios"}

func load(t testing.TB, paths ...string) []*schema.Loaded {
	t.Helper()
	ls, diags, err := schema.NewLoader().Load(context.Background(), paths)
	if err != nil || len(diags) > 0 {
		t.Fatalf("loading %v: %v %v", paths, err, diags)
	}
	return ls
}

// readTree returns every file under dir by its slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// TestGolden compiles every library scenario and the compiler's own test
// scenarios and compares the whole output tree with testdata/golden. The k6
// emitter is left out: its output has golden files of its own in
// compiler/k6 (TestArtifactHashes covers the wiring).
func TestGolden(t *testing.T) {
	out := t.TempDir()
	for _, l := range load(t, sources...) {
		if _, err := CompileWith(context.Background(), l, out, Options{Emitters: []Emitter{}}); err != nil {
			t.Fatalf("%s: %v", l.Scenario.Name, err)
		}
	}
	golden := filepath.Join("testdata", "golden")
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(golden, os.DirFS(out)); err != nil {
			t.Fatal(err)
		}
	}
	got, want := readTree(t, out), readTree(t, golden)
	for name, data := range got {
		if w, ok := want[name]; !ok {
			t.Errorf("%s: not in the golden files (run go test ./compiler -update)", name)
		} else if !bytes.Equal(data, w) {
			t.Errorf("%s differs from the golden file:\n%s", name, data)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: in the golden files but not compiled", name)
		}
	}
}

// TestArtifactHashes: with the default emitters (k6 included) plan.json
// lists every other file of the directory with its true sha256.
func TestArtifactHashes(t *testing.T) {
	out := t.TempDir()
	for _, l := range load(t, sources...) {
		res, err := Compile(context.Background(), l, out)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := readPlanFile(filepath.Join(res.Dir, PlanFileName))
		if err != nil {
			t.Fatal(err)
		}
		files := readTree(t, res.Dir)
		if _, ok := files["k6/script.js"]; !ok {
			t.Errorf("%s: no k6/script.js", l.Scenario.Name)
		}
		if len(files) != len(pf.Artifacts)+1 {
			t.Errorf("%s: %d files, plan.json lists %d", l.Scenario.Name, len(files), len(pf.Artifacts))
		}
		for _, a := range pf.Artifacts {
			sum := sha256.Sum256(files[a.Path])
			if got := "sha256:" + hex.EncodeToString(sum[:]); got != a.SHA256 {
				t.Errorf("%s/%s: sha256 %s, plan.json says %s", l.Scenario.Name, a.Path, got, a.SHA256)
			}
		}
		if pf.ChaosMesh.APIVersion != "chaos-mesh.org/v1alpha1" || pf.Faultline.Version == "" || pf.ContentHash != res.Plan.ContentHash {
			t.Errorf("%s: plan.json header %+v", l.Scenario.Name, pf)
		}
	}
}

// TestEveryKindCovered: the compiler's test scenarios use every fault kind
// of the schema, so the golden files exercise each mapping; except
// grpcFault, which has no Chaos Mesh mapping (compiler/chaosmesh refuses
// it: TestGRPCFaultRefused).
func TestEveryKindCovered(t *testing.T) {
	used := map[string]bool{}
	for _, l := range load(t, "testdata/scenarios") {
		for _, f := range l.Scenario.Faults {
			used[f.Kind()] = true
		}
	}
	ft := reflect.TypeOf(schema.Fault{})
	for i := 0; i < ft.NumField(); i++ {
		f := ft.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() == reflect.Pointer && f.Name != "Selector" && name != "grpcFault" && !used[name] {
			t.Errorf("no test scenario uses fault kind %s", name)
		}
	}
}

// TestDeterministic: two compiles of the same scenarios into two
// directories give byte-identical trees; compiling again into the first is a
// no-op that leaves the files untouched.
func TestDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ls := load(t, sources...)
	for _, l := range ls {
		for _, dir := range []string{a, b} {
			if _, err := Compile(context.Background(), l, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	ta, tb := readTree(t, a), readTree(t, b)
	if !reflect.DeepEqual(ta, tb) {
		t.Fatal("two compiles differ")
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		return os.Chtimes(p, past, past)
	})
	for _, l := range ls {
		res, err := Compile(context.Background(), l, a)
		if err != nil || !res.Unchanged {
			t.Fatalf("recompile %s: %+v, %v", l.Scenario.Name, res, err)
		}
	}
	filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if fi, _ := os.Stat(p); fi != nil && !fi.ModTime().Equal(past) {
			t.Errorf("%s was touched by an unchanged compile", p)
		}
		return nil
	})
	if !reflect.DeepEqual(readTree(t, a), ta) {
		t.Error("an unchanged compile changed files")
	}
}

// TestImmutableVersion: changed content under a compiled version fails with
// a message that says to bump the version, and writes nothing.
func TestImmutableVersion(t *testing.T) {
	out := t.TempDir()
	l := load(t, "../scenarios/checkout-jitter.cue")[0]
	if _, err := Compile(context.Background(), l, out); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, out)
	changed := *l
	s := *l.Scenario
	s.Description = "changed"
	changed.Scenario = &s
	_, err := Compile(context.Background(), &changed, out)
	if !errors.Is(err, ErrVersionExists) || !strings.Contains(err.Error(), "bump the version") ||
		!strings.Contains(err.Error(), "checkout-jitter.cue:") {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(readTree(t, out), before) {
		t.Error("a refused compile changed files")
	}
}

// TestEmittedFilesValidate decodes every emitted YAML file back into the
// api module's types (strictly: no unknown fields) and runs it through
// Chaos Mesh's own rules: what is on disk is what Chaos Mesh accepts.
func TestEmittedFilesValidate(t *testing.T) {
	out := t.TempDir()
	for _, l := range load(t, sources...) {
		if _, err := Compile(context.Background(), l, out); err != nil {
			t.Fatal(err)
		}
	}
	v := crd.NewValidator()
	n := 0
	for name, data := range readTree(t, out) {
		if !strings.Contains(name, "/chaos/") && !strings.HasSuffix(name, "/workflow.yaml") {
			continue // k6 files are checked by compiler/k6
		}
		var tm struct{ Kind string }
		if err := yaml.Unmarshal(data, &tm); err != nil {
			t.Fatal(err)
		}
		objs := map[string]client.Object{
			"NetworkChaos": &v1.NetworkChaos{}, "IOChaos": &v1.IOChaos{}, "TimeChaos": &v1.TimeChaos{},
			"StressChaos": &v1.StressChaos{}, "PodChaos": &v1.PodChaos{}, "HTTPChaos": &v1.HTTPChaos{},
			"DNSChaos": &v1.DNSChaos{}, "Workflow": &v1.Workflow{},
		}
		obj, ok := objs[tm.Kind]
		if !ok {
			t.Fatalf("%s: unexpected kind %q", name, tm.Kind)
		}
		// As the API server decodes it: YAML to JSON, then case-sensitive
		// JSON with no unknown fields.
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := chaosmesh.Validate(context.Background(), v, obj); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		n++
	}
	if n < 25 {
		t.Errorf("only %d objects checked", n)
	}
}

// TestInvalid: scenarios Chaos Mesh cannot express fail with diagnostics in
// the user's file, not as faultline bugs.
func TestInvalid(t *testing.T) {
	for _, l := range load(t, "testdata/invalid") {
		t.Run(l.Scenario.Name, func(t *testing.T) {
			_, err := Compile(context.Background(), l, t.TempDir())
			var ce *Error
			if !errors.As(err, &ce) || ce.Bug {
				t.Fatalf("err = %v", err)
			}
			d := ce.Diagnostics[0]
			if !strings.HasSuffix(d.File, filepath.Join("invalid", l.Scenario.Name+".yaml")) || d.Line == 0 ||
				!strings.HasPrefix(d.Path, "faults.jitter") {
				t.Errorf("diagnostic = %+v", d)
			}
		})
	}
}

// TestBugReport: an object Chaos Mesh rejects for a scenario that passed
// faultline's checks is reported as a faultline bug at the fault.
func TestBugReport(t *testing.T) {
	l := load(t, "../scenarios/cpu-starvation.cue")[0]
	s := *l.Scenario
	s.Faults = map[string]schema.Fault{}
	for k, f := range l.Scenario.Faults {
		// Beyond the schema: only reachable through a compiler bug.
		f.CPUStress, f.MemoryStress = nil, &schema.MemoryStress{Workers: 1, Size: "lots"}
		s.Faults[k] = f
	}
	bad := *l
	bad.Scenario = &s
	_, err := Compile(context.Background(), &bad, t.TempDir())
	var ce *Error
	if !errors.As(err, &ce) || !ce.Bug || !strings.Contains(err.Error(), "faultline bug: Chaos Mesh rejects StressChaos") ||
		!strings.Contains(err.Error(), "cpu-starvation.cue:") {
		t.Fatalf("err = %v", err)
	}
}

// TestChaosMeshModuleVersion keeps the pinned api module version in step
// with go.mod (and with the build information when the test binary has it).
func TestChaosMeshModuleVersion(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := ChaosMeshAPIModule + " " + ChaosMeshAPIModuleVersion
	found := false
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == ChaosMeshAPIModule {
			found = true
			if f[0]+" "+f[1] != want {
				t.Errorf("go.mod has %s %s; update ChaosMeshAPIModuleVersion", f[0], f[1])
			}
		}
	}
	if !found {
		t.Errorf("go.mod does not require %s", ChaosMeshAPIModule)
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == ChaosMeshAPIModule && d.Version != ChaosMeshAPIModuleVersion {
				t.Errorf("build info has %s %s", d.Path, d.Version)
			}
		}
	}
}

func TestRequiredBump(t *testing.T) {
	base := load(t, "../scenarios/checkout-jitter.cue")[0].Scenario
	f := func(x float64) *float64 { return &x }
	tests := []struct {
		name   string
		change func(s *schema.Scenario)
		want   Bump
		reason string
	}{
		{"equal", func(s *schema.Scenario) {}, BumpNone, ""},
		{"version only", func(s *schema.Scenario) { s.Version = "9.9.9" }, BumpNone, ""},
		{"description", func(s *schema.Scenario) { s.Description = "x" }, BumpPatch, "description"},
		{"owner", func(s *schema.Scenario) { s.Owner = "x" }, BumpPatch, "owner"},
		{"labels", func(s *schema.Scenario) { s.Labels = map[string]string{"a": "b"} }, BumpPatch, "labels"},
		{"slo changed", func(s *schema.Scenario) { s.SLOs.Fault.ErrorRate = f(2) }, BumpMinor, "SLOs"},
		{"slo added", func(s *schema.Scenario) { s.SLOs.Steady.Throughput = f(10) }, BumpMinor, "SLOs"},
		{"check", func(s *schema.Scenario) { s.Load.Requests[1].Expect = &schema.Expect{Status: 201} }, BumpMinor, "checks"},
		{"baseline", func(s *schema.Scenario) { s.Baseline = &schema.Baseline{Default: &schema.Tolerance{Relative: f(5)}} }, BumpMinor, "baseline"},
		{"guardrails", func(s *schema.Scenario) { s.Guardrails = &schema.Guardrails{MaxBlastRadius: 10} }, BumpMinor, "guardrails"},
		{"load", func(s *schema.Scenario) { s.Load.Rate = 60 }, BumpMajor, "load"},
		{"request", func(s *schema.Scenario) { s.Load.Requests[0].Path = "/other" }, BumpMajor, "load"},
		{"timing", func(s *schema.Scenario) {
			j := s.Faults["jitter"]
			j.Start += schema.Duration(time.Second)
			s.Faults["jitter"] = j
		}, BumpMajor, "timing"},
		{"fault params", func(s *schema.Scenario) {
			j := s.Faults["jitter"]
			d := *j.NetworkDelay
			d.Latency *= 2
			j.NetworkDelay = &d
			s.Faults["jitter"] = j
		}, BumpMajor, "fault jitter changed"},
		{"fault added", func(s *schema.Scenario) {
			s.Faults["kill"] = schema.Fault{Duration: 1, PodKill: &schema.PodKill{}}
		}, BumpMajor, "fault kill added"},
		{"fault removed", func(s *schema.Scenario) { delete(s.Faults, "jitter") }, BumpMajor, "fault jitter removed"},
		{"major wins", func(s *schema.Scenario) { s.Description = "x"; s.Load.Rate = 60 }, BumpMajor, "load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clone(t, base)
			tt.change(s)
			got, reasons := RequiredBump(base, s)
			if got != tt.want {
				t.Errorf("bump = %s, want %s (%v)", got, tt.want, reasons)
			}
			if tt.reason != "" && (len(reasons) == 0 || !strings.Contains(reasons[0], tt.reason)) {
				t.Errorf("reasons = %v, want first to mention %q", reasons, tt.reason)
			}
			if tt.want == BumpNone && len(reasons) != 0 {
				t.Errorf("reasons = %v for no change", reasons)
			}
		})
	}
}

func clone(t *testing.T, s *schema.Scenario) *schema.Scenario {
	t.Helper()
	data, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out schema.Scenario
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestBumpedEnough(t *testing.T) {
	tests := []struct {
		old, new string
		need     Bump
		want     bool
	}{
		{"1.0.0", "1.0.0", BumpNone, true},
		{"1.0.0", "0.9.0", BumpNone, true},
		{"1.0.0", "1.0.0", BumpPatch, false},
		{"1.0.0", "1.0.1", BumpPatch, true},
		{"1.0.0", "1.1.0", BumpPatch, true},
		{"1.0.0", "1.0.1", BumpMinor, false},
		{"1.0.9", "1.1.0", BumpMinor, true},
		{"1.9.0", "2.0.0", BumpMinor, true},
		{"1.0.0", "1.1.0", BumpMajor, false},
		{"1.0.0", "2.0.0", BumpMajor, true},
		{"2.0.0", "1.5.0", BumpPatch, false},
		{"1.0.0-rc.1", "1.0.0", BumpPatch, false},
		{"1.0.0+build.1", "1.0.1+build.2", BumpPatch, true},
		{"1.2.3", "1.2.3-rc.1", BumpNone, true},
	}
	for _, tt := range tests {
		got, err := BumpedEnough(tt.old, tt.new, tt.need)
		if err != nil || got != tt.want {
			t.Errorf("BumpedEnough(%s, %s, %s) = %v, %v; want %v", tt.old, tt.new, tt.need, got, err, tt.want)
		}
	}
	if _, err := BumpedEnough("v1.0.0", "1.0.0", BumpPatch); err == nil {
		t.Error("v1.0.0 accepted")
	}
}

// BenchmarkCompileLibrary compiles every scenario of the library (and the
// compiler's test scenarios) into a fresh directory: plan, emit, Chaos Mesh
// validation, YAML, hashes, atomic write. Loading is measured separately.
func BenchmarkCompileLibrary(b *testing.B) {
	ls := load(b, sources...)
	ctx := context.Background()
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			out := b.TempDir()
			for _, l := range ls {
				if _, err := Compile(ctx, l, out); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(ls)), "scenarios")
	})
	b.Run("load+compile", func(b *testing.B) {
		for b.Loop() {
			out := b.TempDir()
			for _, l := range load(b, sources...) {
				if _, err := Compile(ctx, l, out); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
