package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/internal/registrytest"
	"faultline.dev/faultline/schema"
)

// cueIn runs the pinned cue in dir with CUE_REGISTRY and a cache of the
// test's own (nothing from the machine's cache, no other registry).
func cueIn(t *testing.T, dir, registry, cache string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cueTool(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CUE_REGISTRY="+registry, "CUE_CACHE_DIR="+cache)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestInitRegistry: the schema published with hack/publish-schema.sh (what
// make publish-schema runs: cue mod publish) into a real registry; a
// repository from `faultline init --registry` depends on it, vendors
// nothing, and vets with the official cue against that registry and with
// faultline vet offline. A broken scenario fails both; with the registry
// gone and a cold cache cue cannot vet (so it did use the registry).
func TestInitRegistry(t *testing.T) {
	reg := registrytest.Start(t)
	registry := reg.Host + "+insecure"
	root := repoRoot(t)

	publish := func(version string) (string, error) {
		cmd := exec.Command("bash", filepath.Join(root, "hack", "publish-schema.sh"))
		cmd.Env = append(os.Environ(), "CUE_REGISTRY="+registry, "SCHEMA_VERSION="+version, "CUE_CACHE_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := publish(schema.ModuleVersion)
	if err != nil || !strings.Contains(out, "published faultline.dev/schema@"+schema.ModuleVersion) {
		t.Fatalf("publish-schema: %v\n%s", err, out)
	}
	// The published module holds exactly the embedded schema.
	status, body, err := reg.Get(t.Context(), "/v2/faultline.dev/schema/tags/list")
	if err != nil || status != 200 || !strings.Contains(string(body), schema.ModuleVersion) {
		t.Fatalf("tags of faultline.dev/schema: %d %s %v", status, body, err)
	}
	if out, err := publish(schema.ModuleVersion); err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("publishing the same version again: %v\n%s", err, out)
	}

	dir := t.TempDir()
	if code, out := runFaultline(t, dir, "init", "--registry", registry, "--module", "example.com/shop/chaos@v0"); code != 0 {
		t.Fatalf("init --registry: %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, schema.VendorDir)); err == nil {
		t.Error("init --registry vendored the schema")
	}
	mod := string(must(os.ReadFile(filepath.Join(dir, "cue.mod", "module.cue"))))
	if !strings.Contains(mod, `"faultline.dev/schema@v0"`) || !strings.Contains(mod, schema.ModuleVersion) {
		t.Errorf("module.cue:\n%s", mod)
	}
	env := "faultline.dev=" + registry
	for f, want := range map[string]string{
		".pre-commit-config.yaml":          "CUE_REGISTRY=" + env + " cue vet",
		".github/workflows/faultline.yaml": "CUE_REGISTRY: " + env,
		"README.md":                        "CUE_REGISTRY=" + env,
	} {
		b := string(must(os.ReadFile(filepath.Join(dir, f))))
		if !strings.Contains(b, want) || strings.Contains(b, "CUE_REGISTRY: none") || strings.Contains(b, "vendored") {
			t.Errorf("%s does not point cue at the registry (%q):\n%s", f, want, b)
		}
	}

	cache := t.TempDir()
	if out, err := cueIn(t, dir, env, cache, "vet", "-c", "./..."); err != nil {
		t.Errorf("cue vet -c ./... against the registry: %v\n%s", err, out)
	}
	// `cue mod tidy` finds nothing to change: init wrote what cue writes.
	if out, err := cueIn(t, dir, env, cache, "mod", "tidy", "--check"); err != nil {
		t.Errorf("cue mod tidy --check: %v\n%s", err, out)
	}
	vet := exec.Command(binary, "vet", "./...")
	vet.Dir = dir
	vet.Env = append(os.Environ(), "CUE_REGISTRY=none", "CUE_CACHE_DIR="+t.TempDir())
	if out, err := vet.CombinedOutput(); err != nil {
		t.Errorf("faultline vet ./... offline in a module-based repository: %v\n%s", err, out)
	}

	// A scenario the schema refuses fails both.
	scen := filepath.Join(dir, initScenario)
	src := string(must(os.ReadFile(scen)))
	os.WriteFile(scen, []byte(strings.Replace(src, "rate:            50", "rate:            -5", 1)), 0o644)
	if out, err := cueIn(t, dir, env, cache, "vet", "-c", "./..."); err == nil {
		t.Errorf("cue vet accepted a negative rate:\n%s", out)
	}
	if code, out := runFaultline(t, dir, "vet", "./..."); code != exitcode.Invalid {
		t.Errorf("faultline vet of a negative rate: exit %d\n%s", code, out)
	}
	os.WriteFile(scen, []byte(src), 0o644)

	reg.Stop()
	if out, err := cueIn(t, dir, env, t.TempDir(), "vet", "-c", "./..."); err == nil {
		t.Errorf("cue vet passed with the registry stopped and a cold cache: it did not use the registry\n%s", out)
	}
	if code, out := runFaultline(t, t.TempDir(), "init", "--registry", "not a registry"); code != exitcode.Usage {
		t.Errorf("init --registry 'not a registry': exit %d\n%s", code, out)
	}
}

// TestPublishSchemaImmutable: a version already published with other
// files is refused, not overwritten (cue mod publish alone would).
func TestPublishSchemaImmutable(t *testing.T) {
	reg := registrytest.Start(t)
	registry := reg.Host + "+insecure"
	mod := t.TempDir()
	os.MkdirAll(filepath.Join(mod, "cue.mod"), 0o755)
	os.WriteFile(filepath.Join(mod, "cue.mod", "module.cue"), []byte("module: \"faultline.dev/schema@v0\"\nlanguage: version: \"v0.17.0\"\nsource: kind: \"self\"\n"), 0o644)
	os.WriteFile(filepath.Join(mod, "scenario.cue"), []byte("package schema\n\n#Scenario: {name: string}\n"), 0o644)
	if out, err := cueIn(t, mod, registry, t.TempDir(), "mod", "publish", "v0.0.1"); err != nil {
		t.Fatalf("cue mod publish: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "hack", "publish-schema.sh"))
	cmd.Env = append(os.Environ(), "CUE_REGISTRY="+registry, "SCHEMA_VERSION=v0.0.1", "CUE_CACHE_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already published with other content") {
		t.Errorf("publish over another v0.0.1: %v\n%s", err, out)
	}
}
