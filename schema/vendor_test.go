package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cueTool returns the official cue command pinned in go.mod as a Go tool
// (`go tool cue`): `go tool -n cue` builds it and prints its path.
func cueTool(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "cue").Output()
	if err != nil {
		t.Fatalf("go tool -n cue: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestVendorThenCueVet vendors the schema into a sample repository and
// shows the official `cue vet -c` passing on a valid scenario and failing on
// an invalid one, offline.
func TestVendorThenCueVet(t *testing.T) {
	cue := cueTool(t)
	repo := t.TempDir()
	written, err := Vendor(repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) < 2 {
		t.Fatalf("vendor wrote %v", written)
	}
	must(t, os.MkdirAll(filepath.Join(repo, "scenarios"), 0o755))
	valid, _ := os.ReadFile("testdata/vet/ok/scenario.cue")
	must(t, os.WriteFile(filepath.Join(repo, "scenarios", "checkout.cue"), valid, 0o644))

	vet := func(args ...string) (string, error) {
		cmd := exec.Command(cue, append([]string{"vet", "-c"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CUE_REGISTRY=none") // offline: the vendored copy must suffice
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := vet("./..."); err != nil {
		t.Fatalf("cue vet -c on a valid scenario failed: %v\n%s", err, out)
	}
	// YAML files are vetted against the definition, one per call.
	validYAML, _ := os.ReadFile("testdata/vet/ok/scenario.yaml")
	must(t, os.WriteFile(filepath.Join(repo, "scenarios", "checkout.yaml"), validYAML, 0o644))
	if out, err := vet("-d", "#Scenario", ImportPath, "scenarios/checkout.yaml"); err != nil {
		t.Fatalf("cue vet of the valid YAML failed: %v\n%s", err, out)
	}

	for _, bad := range []struct{ file, want string }{
		{"kind-value/scenario.cue", "workers"},
		{"window/scenario.cue", "_endNS"},
		{"missing-required/scenario.cue", "version"},
	} {
		src, _ := os.ReadFile(filepath.Join("testdata/vet", bad.file))
		must(t, os.WriteFile(filepath.Join(repo, "scenarios", "checkout.cue"), src, 0o644))
		out, err := vet("./...")
		if err == nil {
			t.Errorf("cue vet -c passed %s", bad.file)
		}
		if !strings.Contains(out, bad.want) {
			t.Errorf("cue vet -c on %s does not mention %q:\n%s", bad.file, bad.want, out)
		}
	}
	bad, _ := os.ReadFile("testdata/vet/out-of-range/scenario.yaml")
	must(t, os.WriteFile(filepath.Join(repo, "scenarios", "checkout.yaml"), bad, 0o644))
	if out, err := vet("-d", "#Scenario", ImportPath, "scenarios/checkout.yaml"); err == nil || !strings.Contains(out, "150") {
		t.Errorf("cue vet passed an invalid YAML scenario: %v\n%s", err, out)
	}
}

// TestStaleVendoredSchema: faultline vet notices a vendored schema that
// differs from its own, and re-vendoring clears it.
func TestStaleVendoredSchema(t *testing.T) {
	repo := t.TempDir()
	if _, err := Vendor(repo); err != nil {
		t.Fatal(err)
	}
	valid, _ := os.ReadFile("testdata/vet/ok/scenario.cue")
	must(t, os.WriteFile(filepath.Join(repo, "checkout.cue"), valid, 0o644))
	load := func() Diagnostics {
		_, ds, err := NewLoader().Load(context.Background(), []string{repo})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	if ds := load(); len(ds) != 0 {
		t.Fatalf("fresh vendored copy: %v", ds)
	}
	f := filepath.Join(repo, VendorDir, "scenario.cue")
	old, _ := os.ReadFile(f)
	must(t, os.WriteFile(f, bytes.Replace(old, []byte("<=100"), []byte("<=1000"), 1), 0o644))
	ds := load()
	if len(ds) != 1 || !strings.Contains(ds[0].Message, "faultline schema vendor") {
		t.Fatalf("stale copy not reported: %v", ds)
	}
	if _, err := Vendor(repo); err != nil {
		t.Fatal(err)
	}
	if ds := load(); len(ds) != 0 {
		t.Fatalf("after re-vendoring: %v", ds)
	}
}

// TestRepoVendoredSchemaFresh: this repository's own vendored copy (made by
// make generate) matches the embedded schema.
func TestRepoVendoredSchemaFresh(t *testing.T) {
	if d := staleVendored(".."); d != nil {
		t.Fatal(d)
	}
	if _, err := os.Stat(filepath.Join("..", VendorDir, "scenario.cue")); err != nil {
		t.Fatalf("the repository has no vendored schema (run make generate): %v", err)
	}
}

// TestJSONSchema exports JSON Schema and checks it describes the scenario:
// required fields, enums, closed objects and the fault kinds.
func TestJSONSchema(t *testing.T) {
	b, err := NewLoader().JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if js["$id"] != JSONSchemaID {
		t.Errorf("$id = %v", js["$id"])
	}
	s := string(b)
	for _, want := range []string{`"required"`, `"version"`, `"constant-arrival-rate"`, `"networkDelay"`, `"dnsFault"`, `"additionalProperties": false`, `"random-max-percent"`, `"maximum": 100`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON Schema lacks %s", want)
		}
	}
	golden(t, "scenario.schema.json", s) // written by make generate
}
