package schema

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// chdir runs the test from dir so that diagnostics carry short relative paths.
func chdir(t *testing.T, dir string) {
	t.Helper()
	t.Chdir(dir)
}

// TestVetDiagnostics checks, for each class of mistake, in a CUE and a YAML
// scenario, that vet reports exactly one problem, in the user's file, at the
// right line and column, with the right field path — and a message that
// matches the golden file (refresh with -update).
func TestVetDiagnostics(t *testing.T) {
	cases := []struct {
		dir      string
		path     string
		cueLine  int
		cueCol   int
		yamlLine int
		yamlCol  int
		contains string
	}{
		{"wrong-type", "load.vus", 11, 14, 7, 8, `wrong type: got string "four", want an integer`},
		{"out-of-range", "faults.stress.cpuStress.load", 23, 34, 20, 35, "invalid value 150"},
		{"unknown-field", "faults.stress.cpuStress.lod", 23, 28, 20, 29, `unknown field "lod": did you mean "load"?`},
		{"missing-required", "version", 6, 2, 1, 1, `missing required field "version"`},
		{"bad-duration", "faults.jitter.networkDelay.latency", 18, 27, 16, 16, `invalid duration "500xs"`},
		{"window", "faults.jitter.duration", 17, 14, 14, 15, "the fault window ends at 1m5s, after the load ends at 1m"},
		{"kind-value", "faults.stress.cpuStress.workers", 23, 25, 20, 26, "invalid value 0: want >=1"},
	}
	chdir(t, "testdata/vet")
	for _, tc := range cases {
		for _, ext := range []string{"cue", "yaml"} {
			t.Run(tc.dir+"/"+ext, func(t *testing.T) {
				file := filepath.Join(tc.dir, "scenario."+ext)
				loaded, diags, err := NewLoader().Load(context.Background(), []string{file})
				if err != nil {
					t.Fatal(err)
				}
				if len(loaded) != 0 {
					t.Errorf("an invalid scenario was loaded: %+v", loaded[0].Scenario)
				}
				if len(diags) != 1 {
					t.Fatalf("want exactly one diagnostic, got %d:\n%v", len(diags), diags)
				}
				d := diags[0]
				line, col := tc.cueLine, tc.cueCol
				if ext == "yaml" {
					line, col = tc.yamlLine, tc.yamlCol
				}
				if d.File != file || d.Line != line || d.Column != col {
					t.Errorf("position %s:%d:%d, want %s:%d:%d", d.File, d.Line, d.Column, file, line, col)
				}
				if d.Path != tc.path {
					t.Errorf("path %q, want %q", d.Path, tc.path)
				}
				if !strings.Contains(d.Message, tc.contains) {
					t.Errorf("message %q does not say %q", d.Message, tc.contains)
				}
				for _, noise := range []string{"cue.mod", "empty disjunction", "_faultKinds", "_endNS", "_totalNS", "=~"} {
					if strings.Contains(d.String(), noise) {
						t.Errorf("diagnostic leaks schema internals (%q): %s", noise, d)
					}
				}
				golden(t, filepath.Join(tc.dir, "want-"+ext+".txt"), diags.Error()+"\n")
			})
		}
	}
}

// TestVetValid loads the valid variants and checks the decoded values.
func TestVetValid(t *testing.T) {
	chdir(t, "testdata/vet")
	loaded, diags, err := NewLoader().Load(context.Background(), []string{"ok/scenario.cue"})
	if err != nil || len(diags) > 0 {
		t.Fatalf("err %v, diags:\n%v", err, diags)
	}
	if len(loaded) != 1 {
		t.Fatalf("loaded %d scenarios, want 1", len(loaded))
	}
	s := loaded[0].Scenario
	if s.Name != "checkout" || s.Version != "1.0.0" || s.Load.VUs != 4 || s.Load.Duration.String() != "1m" {
		t.Errorf("decoded %+v", s)
	}
	j := s.Faults["jitter"]
	if j.Kind() != "networkDelay" || j.NetworkDelay.Latency.String() != "500ms" || j.End().String() != "40s" {
		t.Errorf("jitter decoded as %+v", j)
	}
	if st := s.Faults["stress"]; st.CPUStress == nil || st.CPUStress.Workers != 2 || *st.CPUStress.Load != 50 {
		t.Errorf("stress decoded as %+v", st)
	}
	// The YAML twin decodes to the same scenario.
	yl, diags, _ := NewLoader().Load(context.Background(), []string{"ok/scenario.yaml"})
	if len(diags) > 0 || len(yl) != 1 {
		t.Fatalf("yaml: %v", diags)
	}
	if got, want := mustJSON(t, yl[0].Scenario), mustJSON(t, s); got != want {
		t.Errorf("YAML and CUE decode differently:\n%s\n%s", got, want)
	}
}

// TestVetMoreRules covers rules beyond single fields: kind count, modes,
// executors, phases, duplicates, bad files.
func TestVetMoreRules(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // each a substring of one diagnostic, in order
	}{
		{"no kind", map[string]string{"s.yaml": okYAML + "    podKill: {}\n  nokind:\n    start: 1s\n    duration: 1s\n"},
			[]string{"s.yaml:14:3: faults.nokind: a fault needs exactly one kind block; add one of networkDelay"}},
		{"two kinds", map[string]string{"s.yaml": okYAML + "    podKill: {}\n    podFailure: {}\n"},
			[]string{"s.yaml:10:3: faults.f: a fault has exactly one kind block, found podKill and podFailure"}},
		{"fixed without value", map[string]string{"s.yaml": okYAML + "    mode: fixed\n    podKill: {}\n"},
			[]string{`s.yaml:10:3: faults.f.value: missing required field "value"`}},
		{"percent over 100", map[string]string{"s.yaml": okYAML + "    mode: fixed-percent\n    value: 120\n    podKill: {}\n"},
			[]string{"s.yaml:14:12: faults.f.value: invalid value 120: want <=100"}},
		{"value with mode all", map[string]string{"s.yaml": okYAML + "    mode: all\n    value: 3\n    podKill: {}\n"},
			[]string{"s.yaml:14:12: faults.f.value: mode all does not use value"}},
		{"enum", map[string]string{"s.yaml": okYAML + "    mode: most\n    podKill: {}\n"},
			[]string{`s.yaml:13:11: faults.f.mode: invalid value "most": want one of "all", "fixed", "fixed-percent", "one", "random-max-percent"`}},
		{"loss over 100", map[string]string{"s.yaml": okYAML + "    networkLoss: {loss: 150}\n"},
			[]string{"s.yaml:13:25: faults.f.networkLoss.loss: invalid value 150: want <=100"}},
		{"executor param missing", map[string]string{"s.yaml": strings.Replace(okYAML, "  vus: 2\n", "", 1) + "    podKill: {}\n"},
			[]string{`s.yaml:4:1: load.vus: missing required field "vus"`}},
		{"executor param unused", map[string]string{"s.yaml": strings.Replace(okYAML, "  vus: 2\n", "  vus: 2\n  rate: 5\n", 1) + "    podKill: {}\n"},
			[]string{"s.yaml:7:9: load.rate: executor constant-vus does not use rate"}},
		{"maxVUs below preAllocatedVUs", map[string]string{"s.yaml": strings.Replace(okYAML, "  executor: constant-vus\n  vus: 2\n", "  executor: constant-arrival-rate\n  rate: 10\n  preAllocatedVUs: 10\n  maxVUs: 5\n", 1) + "    podKill: {}\n"},
			[]string{"s.yaml:8:11: load.maxVUs: invalid value 5: want >=10"}},
		{"steady slo without steady phase", map[string]string{"s.yaml": strings.Replace(okYAML, "start: 10s", "start: 0s", 1) + "    podKill: {}\nslos:\n  steady: {errorRate: 1}\n"},
			[]string{"s.yaml:15:3: slos.steady: the first fault starts at 0s, so there is no steady phase"}},
		{"fault slo without faults", map[string]string{"s.yaml": okYAML[:strings.Index(okYAML, "faults:")] + "slos:\n  fault: {errorRate: 1}\n"},
			[]string{"s.yaml:10:3: slos.fault: the scenario has no faults, so no fault phase"}},
		{"semver", map[string]string{"s.yaml": strings.Replace(okYAML, "version: 1.0.0", "version: v1.0", 1) + "    podKill: {}\n"},
			[]string{`s.yaml:2:10: version: invalid value "v1.0": want a strict semantic version`}},
		{"name", map[string]string{"s.yaml": strings.Replace(okYAML, "name: s", "name: Checkout_1", 1) + "    podKill: {}\n"},
			[]string{`s.yaml:1:7: name: invalid value "Checkout_1": want a DNS-1123 label`}},
		{"fault name", map[string]string{"s.yaml": strings.Replace(okYAML, "  f:\n", "  Bad_F:\n", 1) + "    podKill: {}\n"},
			[]string{`s.yaml:10:3: faults.Bad_F: invalid fault name "Bad_F": want a DNS-1123 label`}},
		{"duplicate names", map[string]string{"a.yaml": okYAML + "    podKill: {}\n", "b.yaml": okYAML + "    podKill: {}\n"},
			[]string{`b.yaml:1:7: name: scenario "s" is also declared in a.yaml`}},
		{"yaml syntax", map[string]string{"s.yaml": "name: [unclosed\n"},
			[]string{"s.yaml:"}},
		{"not a mapping", map[string]string{"s.yaml": "- a\n- b\n"},
			[]string{"s.yaml:1:1: a scenario file holds one scenario as a mapping"}},
		{"cue syntax", map[string]string{"s.cue": "package x\nscenarios: {\n"},
			[]string{"s.cue:"}},
		{"cue no scenarios", map[string]string{"s.cue": "package x\nfoo: 1\n"},
			[]string{"s.cue:1:1: no scenarios"}},
		{"cue without schema import", map[string]string{"s.cue": "package x\nscenarios: s: {version: \"1.0.0\", target: url: \"http://127.0.0.1:1\", load: {executor: \"constant-vus\", vus: 1, duration: \"10s\", requests: [{path: \"/\"}]}, bogus: 1}\n"},
			[]string{`s.cue:2:153: bogus: unknown field "bogus"`}},
		{"cue two scenarios, one file each", map[string]string{"a.cue": cueScenario("a", `"10s"`), "b.cue": cueScenario("b", `"ten"`)},
			[]string{`b.cue:6:43: load.duration: invalid duration "ten"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			chdir(t, dir)
			_, diags, err := NewLoader().Load(context.Background(), []string{"."})
			if err != nil {
				t.Fatal(err)
			}
			if len(diags) != len(tc.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%v", len(diags), len(tc.want), diags)
			}
			for i, w := range tc.want {
				if !strings.Contains(diags[i].String(), w) {
					t.Errorf("diagnostic %d:\n  got  %s\n  want %s", i, diags[i], w)
				}
			}
		})
	}
}

const okYAML = `name: s
version: 1.0.0
target: {url: "http://127.0.0.1:8080"}
load:
  executor: constant-vus
  vus: 2
  duration: 60s
  requests: [{path: /}]
faults:
  f:
    start: 10s
    duration: 10s
`

func cueScenario(name, dur string) string {
	return `package x

import "faultline.dev/schema"

scenarios: schema.#Scenarios & {
	"` + name + `": {version: "1.0.0", load: {duration: ` + dur + `, executor: "constant-vus", vus: 1, requests: [{path: "/"}]}, target: url: "http://127.0.0.1:1"}
}
`
}

func TestExpandPaths(t *testing.T) {
	dir := t.TempDir()
	chdir(t, dir)
	must(t, os.MkdirAll("a/b", 0o755))
	must(t, os.MkdirAll("a/testdata", 0o755))
	must(t, os.WriteFile("a/one.yaml", []byte(strings.Replace(okYAML, "name: s", "name: one", 1)+"    podKill: {}\n"), 0o644))
	must(t, os.WriteFile("a/b/two.yaml", []byte(strings.Replace(okYAML, "name: s", "name: two", 1)+"    podKill: {}\n"), 0o644))
	must(t, os.WriteFile("a/testdata/bad.yaml", []byte("nonsense: 1\n"), 0o644))
	must(t, os.WriteFile("a/notes.txt", []byte("x"), 0o644))
	for _, tc := range []struct {
		args  []string
		names string
		diags int
	}{
		{[]string{"a"}, "one", 0},
		{[]string{"a/..."}, "one two", 0},
		{[]string{"./..."}, "one two", 0},
		{[]string{"a/b/two.yaml"}, "two", 0},
		{[]string{"missing"}, "", 1},
		{[]string{"a/notes.txt"}, "", 1},
	} {
		loaded, diags, err := NewLoader().Load(context.Background(), tc.args)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range loaded {
			names = append(names, l.Scenario.Name)
		}
		if strings.Join(names, " ") != tc.names || len(diags) != tc.diags {
			t.Errorf("%v: loaded %v with %d diagnostics (%v), want %q with %d", tc.args, names, len(diags), diags, tc.names, tc.diags)
		}
	}
}

func TestLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := NewLoader().Load(ctx, []string{"testdata/vet/ok"}); err == nil {
		t.Fatal("a cancelled load returned no error")
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		must(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -update refreshes it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
