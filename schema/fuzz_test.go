package schema

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds are the files under testdata/vet, valid and invalid.
func fuzzSeeds(f *testing.F, ext string) {
	matches, _ := filepath.Glob(filepath.Join("testdata", "vet", "*", "scenario"+ext))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// The corpus's bad inputs of the same kind.
	cases, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.txtar"))
	for _, c := range cases {
		cc, err := parseCorpus(c)
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range cc.Order {
			if strings.HasSuffix(n, ext) && len(cc.Files[n]) < 64<<10 {
				f.Add(cc.Files[n])
			}
		}
	}
	f.Add([]byte(""))
	f.Add([]byte("name: [\n"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Add([]byte("faults: {a: {start: 1s, duration: -1s, networkLoss: {loss: 1e309}}}\n"))
}

// loadOne writes src into a fresh directory and loads it; a problem must come
// back as diagnostics, never as a panic, and every diagnostic names a file.
func loadOne(t *testing.T, name string, src []byte) {
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, diags, err := NewLoader().Load(context.Background(), []string{p})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		if d.File == "" || d.Message == "" {
			t.Fatalf("diagnostic without file or message: %+v", d)
		}
	}
	for _, l := range loaded {
		if l.Scenario == nil || l.Scenario.Name == "" {
			t.Fatalf("loaded a scenario without a name from %q", src)
		}
		// A YAML or JSON file holds one scenario; a CUE file may declare
		// several, and one with a problem does not stop the others.
		for _, d := range diags {
			if filepath.Ext(p) != ".cue" || d.Scenario == l.Scenario.Name {
				t.Fatalf("loaded %s although it has problems: %v", l.Scenario.Name, diags)
			}
		}
	}
}

func FuzzLoadYAML(f *testing.F) {
	fuzzSeeds(f, ".yaml")
	f.Fuzz(func(t *testing.T, src []byte) { loadOne(t, "scenario.yaml", src) })
}

func FuzzLoadCUE(f *testing.F) {
	fuzzSeeds(f, ".cue")
	f.Add([]byte("package x\nimport \"faultline.dev/schema\"\nscenarios: schema.#Scenarios & {a: b: c}\n"))
	f.Add([]byte("package x\nscenarios: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, src []byte) { loadOne(t, "scenario.cue", src) })
}
