package importer

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var validator = crd.NewValidator()

func readFiles(t *testing.T, paths ...string) []File {
	t.Helper()
	var fs []File
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, File{Name: filepath.ToSlash(p), Data: data})
	}
	return fs
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update refreshes it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// compileBack compiles an imported scenario with the placeholders filled
// in, as a user would, through the loader (so that the scenario is valid as
// written) and faultline's Chaos Mesh emitter.
func compileBack(t *testing.T, data []byte, format string) *chaosmesh.Manifests {
	t.Helper()
	filled := bytes.ReplaceAll(data, []byte(schema.PlaceholderURL), []byte("http://checkout.shop.svc:8080"))
	filled = bytes.ReplaceAll(filled, []byte(schema.PlaceholderPath), []byte("/"))
	dir := t.TempDir()
	if format == FormatCUE {
		if _, err := schema.Vendor(dir); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "s."+format)
	if err := os.WriteFile(p, filled, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, diags, err := schema.NewLoader().Load(context.Background(), []string{p})
	if err != nil {
		t.Fatal(err)
	}
	diags = append(diags, schema.CheckDeploy(loaded)...)
	if len(diags) > 0 || len(loaded) != 1 {
		t.Fatalf("the imported scenario, filled in, does not vet:\n%v\n%s", diags, filled)
	}
	pl, err := plan.New(loaded[0].Scenario)
	if err != nil {
		t.Fatal(err)
	}
	m, err := chaosmesh.Emit(pl)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(context.Background(), validator, pl.Scenario); err != nil {
		t.Fatalf("Chaos Mesh rejects the compiled objects: %v", err)
	}
	return m
}

// TestCorpus imports every manifest of testdata/corpus, writes the
// scenario (YAML and CUE) and the compiled specs as golden files, and
// checks the round trip: the scenario as written, vetted and compiled,
// gives back each original spec (Chaos Mesh's defaults filled in on both
// sides), and the hand-written scenario beside it (testdata/handwritten,
// one per manifest) compiles to the same specs.
func TestCorpus(t *testing.T) {
	manifests, err := filepath.Glob("testdata/corpus/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(manifests) == 0 {
		t.Fatal("no corpus")
	}
	for _, mf := range manifests {
		name := strings.TrimSuffix(filepath.Base(mf), ".yaml")
		t.Run(name, func(t *testing.T) {
			res, err := Import(context.Background(), readFiles(t, mf), Options{Validator: validator})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Scenario.Faults) == 0 {
				t.Fatal("no faults imported")
			}
			y, err := Write(res, FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", name+".scenario.yaml"), y)
			c, err := Write(res, FormatCUE)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", name+".scenario.cue"), c)

			for _, format := range []string{FormatYAML, FormatCUE} {
				data := y
				if format == FormatCUE {
					data = c
				}
				m := compileBack(t, data, format)
				if len(m.Chaos) != len(res.Objects) {
					t.Fatalf("%s: %d objects compiled, %d imported", format, len(m.Chaos), len(res.Objects))
				}
				var specs bytes.Buffer
				for _, ch := range m.Chaos {
					orig := res.Objects[ch.Fault.Name]
					if orig == nil {
						t.Fatalf("%s: compiled fault %s was not imported", format, ch.Fault.Name)
					}
					diffs, err := SpecDiff(context.Background(), validator, orig, ch.Object)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range diffs {
						t.Errorf("%s: fault %s: spec.%s: %s", format, ch.Fault.Name, d.Path, d.message())
					}
					out, err := chaosmesh.Marshal(ch.Object)
					if err != nil {
						t.Fatal(err)
					}
					specs.WriteString("---\n")
					specs.Write(out)
				}
				if format == FormatYAML {
					golden(t, filepath.Join("testdata", "golden", name+".compiled.yaml"), specs.Bytes())
				}
			}

			// The hand-written scenario for the same chaos (written from
			// Chaos Mesh's documentation, not from the import) compiles to
			// the same specs. Every manifest has one.
			hand := filepath.Join("testdata", "handwritten", name+".yaml")
			data, err := os.ReadFile(hand)
			if err != nil {
				t.Errorf("%v: every corpus manifest needs a hand-written scenario", err)
			} else {
				m := compileBack(t, data, FormatYAML)
				got := map[string]bool{}
				for _, ch := range m.Chaos {
					orig := res.Objects[ch.Fault.Name]
					if orig == nil {
						t.Fatalf("%s: fault %s is not one of the imported ones", hand, ch.Fault.Name)
					}
					got[ch.Fault.Name] = true
					diffs, err := SpecDiff(context.Background(), validator, orig, ch.Object)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range diffs {
						t.Errorf("%s: fault %s: spec.%s: %s", hand, ch.Fault.Name, d.Path, d.message())
					}
				}
				if len(got) != len(res.Objects) {
					t.Errorf("%s compiles %d of the %d faults", hand, len(got), len(res.Objects))
				}
			}
		})
	}
}

// TestRejected imports each manifest of testdata/rejected and compares the
// errors with its golden .err file: every field that cannot be carried is
// named with its line.
func TestRejected(t *testing.T) {
	manifests, err := filepath.Glob("testdata/rejected/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(manifests) == 0 {
		t.Fatal("no rejected cases")
	}
	for _, mf := range manifests {
		name := strings.TrimSuffix(filepath.Base(mf), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, err := Import(context.Background(), readFiles(t, mf), Options{Validator: validator})
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			for _, e := range es {
				if e.Line == 0 {
					t.Errorf("error without a line: %s", e)
				}
				if e.File != filepath.ToSlash(mf) {
					t.Errorf("error names file %q: %s", e.File, e)
				}
			}
			golden(t, strings.TrimSuffix(mf, ".yaml")+".err", []byte(es.Error()+"\n"))
		})
	}
}

// TestWindows checks the timeline of a Workflow: Serial order, Suspend
// offsets, Parallel starts, deadlines, and the lead.
func TestWindows(t *testing.T) {
	res, err := Import(context.Background(), readFiles(t, "testdata/corpus/workflow-serial.yaml"), Options{Validator: validator})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for n, f := range res.Scenario.Faults {
		got = append(got, n+" "+f.Start.String()+" "+f.Duration.String())
	}
	sort.Strings(got)
	want := []string{
		"burn 1m 45s",
		"loss 1m 30s",
		"workflow-network-chaos 40s 20s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("windows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := res.Scenario.Load.Duration.String(); d != "2m15s" {
		t.Errorf("load duration %s, want 2m15s (last end 1m45s + 30s recovery)", d)
	}
}

// TestOneShot: a pod-kill without a duration is imported with just start
// (an instant, as in Chaos Mesh), or with Options.OneShot as its duration.
func TestOneShot(t *testing.T) {
	for _, tc := range []struct {
		oneShot schema.Duration
		want    schema.Duration
	}{{0, 0}, {schema.Duration(45e9), schema.Duration(45e9)}} {
		res, err := Import(context.Background(), readFiles(t, "testdata/corpus/multi.yaml"), Options{Validator: validator, OneShot: tc.oneShot})
		if err != nil {
			t.Fatal(err)
		}
		f := res.Scenario.Faults["pod-kill-example"]
		if f.Duration != tc.want || f.Instant() != (tc.want == 0) {
			t.Errorf("OneShot %s: duration %s (instant %v), want %s", tc.oneShot, f.Duration, f.Instant(), tc.want)
		}
		if len(res.Notes) == 0 || !strings.Contains(strings.Join(res.Notes, "\n"), "pod-kill-example") {
			t.Errorf("OneShot %s: no note on the one-shot fault: %q", tc.oneShot, res.Notes)
		}
	}
}
