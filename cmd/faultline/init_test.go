package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/schema"
)

// runFaultline runs the built binary in dir.
func runFaultline(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String()
}

// cueTool is the official cue command pinned as a Go tool in go.mod.
func cueTool(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "cue").Output()
	if err != nil {
		t.Fatalf("go tool -n cue: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestInit: what `faultline init` writes passes `faultline vet` and the
// official `cue vet -c ./...` exactly as generated, offline; its hooks are
// the ones this repository offers; its workflow vets pull requests and
// uploads the JUnit report of a kubernetes run; and it refuses to overwrite
// anything without --force.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chaos")
	code, out := runFaultline(t, t.TempDir(), "init", dir)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	for _, f := range []string{"cue.mod/module.cue", "cue.mod/pkg/faultline.dev/schema/scenario.cue", initScenario,
		".pre-commit-config.yaml", ".github/workflows/faultline.yaml", "README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
	}

	// faultline vet, as the pre-commit hook and the workflow call it.
	if code, out := runFaultline(t, dir, "vet", "./..."); code != 0 || !strings.Contains(out, "checkout-latency@1.0.0") {
		t.Errorf("faultline vet ./...: exit %d\n%s", code, out)
	}
	// The official cue, offline, against the vendored schema.
	cue := exec.Command(cueTool(t), "vet", "-c", "./...")
	cue.Dir = dir
	cue.Env = append(os.Environ(), "CUE_REGISTRY=none")
	if out, err := cue.CombinedOutput(); err != nil {
		t.Errorf("cue vet -c ./...: %v\n%s", err, out)
	}
	// And the scenario compiles into Chaos Mesh objects and a k6 script.
	if code, out := runFaultline(t, dir, "compile", initScenario, "-o", filepath.Join(t.TempDir(), "out")); code != 0 {
		t.Errorf("faultline compile: exit %d\n%s", code, out)
	}

	// The cue the generated files name is the one faultline pins.
	if gomod := string(must(os.ReadFile("../../go.mod"))); !strings.Contains(gomod, "cuelang.org/go "+initCUEVersion) {
		t.Errorf("initCUEVersion %s is not the cuelang.org/go version in go.mod", initCUEVersion)
	}

	// The pre-commit config uses hooks this repository offers.
	var offered []struct {
		ID string `json:"id"`
	}
	if err := yaml.Unmarshal(must(os.ReadFile("../../.pre-commit-hooks.yaml")), &offered); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range offered {
		ids = append(ids, h.ID)
	}
	var cfg struct {
		Repos []struct {
			Repo  string `json:"repo"`
			Rev   string `json:"rev"`
			Hooks []struct {
				ID    string `json:"id"`
				Entry string `json:"entry"`
			} `json:"hooks"`
		} `json:"repos"`
	}
	if err := yaml.Unmarshal(must(os.ReadFile(filepath.Join(dir, ".pre-commit-config.yaml"))), &cfg); err != nil {
		t.Fatal(err)
	}
	var sawVet, sawCue bool
	for _, r := range cfg.Repos {
		for _, h := range r.Hooks {
			switch r.Repo {
			case initRepo:
				if !slices.Contains(ids, h.ID) {
					t.Errorf("pre-commit hook %s is not in .pre-commit-hooks.yaml (%v)", h.ID, ids)
				}
				sawVet = sawVet || h.ID == "faultline-vet"
				if r.Rev == "" {
					t.Errorf("no rev for %s", r.Repo)
				}
			case "local":
				sawCue = sawCue || h.Entry == "cue vet -c ./scenarios/..."
			}
		}
	}
	if !sawVet || !sawCue {
		t.Errorf("pre-commit config lacks the faultline-vet hook (%v) or the local cue vet hook (%v)", sawVet, sawCue)
	}

	// The workflow: vet on pull requests, a kubernetes run with the JUnit
	// report uploaded.
	var wf struct {
		// YAML 1.1 (sigs.k8s.io/yaml) reads the key on as true; GitHub reads it as "on".
		On   map[string]any `json:"true"`
		Jobs map[string]struct {
			If    string `json:"if"`
			Steps []struct {
				Uses string         `json:"uses"`
				Run  string         `json:"run"`
				With map[string]any `json:"with"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(must(os.ReadFile(filepath.Join(dir, ".github/workflows/faultline.yaml"))), &wf); err != nil {
		t.Fatal(err)
	}
	if _, ok := wf.On["pull_request"]; !ok {
		t.Errorf("the workflow does not run on pull requests: %v", wf.On)
	}
	vet, run := wf.Jobs["vet"], wf.Jobs["run"]
	var vetRuns, runRuns, junit string
	for _, s := range vet.Steps {
		vetRuns += s.Run + "\n"
	}
	for _, s := range run.Steps {
		runRuns += s.Run + "\n"
		if strings.HasPrefix(s.Uses, "actions/upload-artifact@") {
			if p, _ := s.With["path"].(string); strings.Contains(p, "junit.xml") {
				junit = p
			}
		}
	}
	if vet.If != "" || !strings.Contains(vetRuns, "faultline vet ./...") || !strings.Contains(vetRuns, "cue vet -c ./...") {
		t.Errorf("vet job (if %q) runs:\n%s", vet.If, vetRuns)
	}
	if !strings.Contains(runRuns, "faultline run --backend kubernetes") || !strings.Contains(runRuns, `--report-dir "out/reports/$name"`) || junit != "out/reports/*/junit.xml" {
		t.Errorf("run job runs:\n%s\nuploads %q", runRuns, junit)
	}

	// A second init refuses, and leaves the edited scenario alone.
	scenario := filepath.Join(dir, initScenario)
	edited := append(must(os.ReadFile(scenario)), "// edited\n"...)
	if err := os.WriteFile(scenario, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runFaultline(t, t.TempDir(), "init", dir)
	if code != exitcode.Usage || !strings.Contains(out, initScenario) || !strings.Contains(out, "--force") {
		t.Errorf("second init: exit %d\n%s", code, out)
	}
	if !bytes.Equal(must(os.ReadFile(scenario)), edited) {
		t.Error("a refused init changed the scenario")
	}
	// Only the vendored schema existing is enough to refuse.
	only := t.TempDir()
	if _, err := schema.Vendor(only); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(only, "cue.mod", "module.cue")); err != nil {
		t.Fatal(err)
	}
	if code, out := runFaultline(t, only, "init"); code != exitcode.Usage || !strings.Contains(out, "cue.mod/pkg/faultline.dev/schema/") {
		t.Errorf("init over a vendored schema: exit %d\n%s", code, out)
	}
	// --force overwrites.
	if code, out := runFaultline(t, t.TempDir(), "init", "--force", "--module", "example.com/shop/chaos@v1", dir); code != 0 {
		t.Fatalf("init --force: exit %d\n%s", code, out)
	}
	if bytes.Equal(must(os.ReadFile(scenario)), edited) {
		t.Error("init --force kept the edited scenario")
	}
	if mod := string(must(os.ReadFile(filepath.Join(dir, "cue.mod", "module.cue")))); !strings.Contains(mod, `"example.com/shop/chaos@v1"`) {
		t.Errorf("module.cue after --module: %s", mod)
	}
	if code, out := runFaultline(t, t.TempDir(), "init", "--module", "Not A Module", t.TempDir()); code != exitcode.Usage {
		t.Errorf("init --module 'Not A Module': exit %d\n%s", code, out)
	}
}
