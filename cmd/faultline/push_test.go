package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/internal/registrytest"
	"faultline.dev/faultline/oci"
	"faultline.dev/faultline/results"
)

var digestLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// faultlineIO runs the built binary in dir with an empty Docker config and
// returns its exit code, stdout and stderr apart.
func faultlineIO(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestPushPull: the commands against a real registry: push prints the
// digest (progress on stderr), the same push again is a no-op, pull by tag
// and by digest restores the files, different content under the version is
// refused with exit 3, a stopped registry is exit 7, bad arguments exit 2.
func TestPushPull(t *testing.T) {
	reg := registrytest.Start(t)
	dir := t.TempDir()
	// A copy outside the repository: the scenario on its own, with the schema
	// faultline embeds.
	lib, err := os.ReadFile(filepath.Join(repoRoot(t), "scenarios", "checkout-jitter.cue"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "checkout-jitter.cue"), lib, 0o644)
	code, out, errOut := faultlineIO(t, dir, "compile", "checkout-jitter.cue", "-o", "out")
	if code != 0 {
		t.Fatalf("compile: %d %s %s", code, out, errOut)
	}
	version := filepath.Join("out", "checkout-jitter", "1.0.0")
	repo := reg.Host + "/chaos/checkout-jitter"

	code, out, errOut = faultlineIO(t, dir, "push", version, repo)
	if code != 0 || !digestLine.MatchString(out) || !strings.Contains(errOut, "uploading plan.json") || !strings.Contains(errOut, "pushed checkout-jitter@1.0.0 as 1.0.0") {
		t.Fatalf("push: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	digest := strings.TrimSpace(out)

	code, out, errOut = faultlineIO(t, dir, "push", version, repo, "-o", "json")
	if code != 0 || !strings.Contains(out, `"unchanged": true`) || !strings.Contains(out, digest) || !strings.Contains(errOut, "nothing to do") {
		t.Errorf("push again: exit %d\n%s\n%s", code, out, errOut)
	}

	for _, ref := range []string{repo + ":1.0.0", repo + "@" + digest} {
		into := filepath.Join(t.TempDir(), "pulled")
		code, out, errOut = faultlineIO(t, dir, "pull", ref, "-o", into)
		if code != 0 || strings.TrimSpace(out) != digest || !strings.Contains(errOut, "pulled checkout-jitter@1.0.0 into") {
			t.Fatalf("pull %s: exit %d\n%s\n%s", ref, code, out, errOut)
		}
		for _, f := range []string{"plan.json", "scenario.json", "workflow.yaml", "k6/script.js"} {
			a, errA := os.ReadFile(filepath.Join(dir, version, f))
			b, errB := os.ReadFile(filepath.Join(into, f))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("pull %s: %s differs (%v %v)", ref, f, errA, errB)
			}
		}
	}
	// The default directory is out/<name>/<version>, where compile wrote:
	// the same version there is a no-op.
	code, _, errOut = faultlineIO(t, dir, "pull", repo+":1.0.0")
	if code != 0 || !strings.Contains(errOut, "already there") {
		t.Errorf("pull into the compiled directory: exit %d %s", code, errOut)
	}

	// Different content under 1.0.0.
	changed := strings.Replace(string(lib), `description: "`, `description: "Changed: `, 1)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "checkout-jitter.cue"), []byte(changed), 0o644)
	if code, out, errOut := faultlineIO(t, other, "compile", "checkout-jitter.cue", "-o", "out"); code != 0 {
		t.Fatalf("compile changed: %d %s %s", code, out, errOut)
	}
	code, out, errOut = faultlineIO(t, other, "push", version, repo)
	if code != exitcode.Invalid || out != "" || !strings.Contains(errOut, "immutable") || !strings.Contains(errOut, "bump the version") {
		t.Errorf("push of changed content: exit %d, stdout %q\n%s", code, out, errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"push", version, repo + ":2.0.0"}, exitcode.Usage, "tagged with its scenario version"},
		{[]string{"push", "scenarios", repo}, exitcode.Usage, "not a compiled version"},
		{[]string{"push", version, "no-registry"}, exitcode.Usage, "not a registry reference"},
		{[]string{"pull", repo}, exitcode.Usage, "say which version"},
		{[]string{"pull", repo + ":9.9.9"}, exitcode.Infrastructure, "not found"},
		{[]string{"push", version}, exitcode.Usage, "accepts 2 arg"},
	} {
		code, out, errOut := faultlineIO(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("faultline %v: exit %d (want %d), stdout %q\nstderr %s(want %q)", tc.args, code, tc.code, out, errOut, tc.want)
		}
	}

	reg.Stop()
	code, _, errOut = faultlineIO(t, dir, "pull", repo+"@"+digest, "-o", filepath.Join(t.TempDir(), "x"))
	if code != exitcode.Infrastructure || !strings.Contains(errOut, "connection refused") {
		t.Errorf("pull from a stopped registry: exit %d %s", code, errOut)
	}
}

// TestRunFromRegistry: faultline run REGISTRY/REPO@sha256:... pulls the
// version and runs the scenario it was compiled from: the run's content
// hash is the pushed one. A real 9-second local run.
func TestRunFromRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for 9s")
	}
	reg := registrytest.Start(t)
	slos := "  steady: {errorRate: 5}\n  fault: {errorRate: 5}\n  recovery: {within: 1s, errorRate: 5}"
	dir, _ := runScenario(t, delayFault, slos)
	// compile needs pods for the fault's Chaos Mesh object.
	yml := filepath.Join(dir, "scenario.yaml")
	b, _ := os.ReadFile(yml)
	os.WriteFile(yml, []byte(strings.Replace(string(b), "target:\n", "target:\n  kubernetes: {namespace: shop, selector: {app: demo}}\n", 1)), 0o644)
	if code, out, errOut := faultlineIO(t, dir, "compile", "scenario.yaml", "-o", "out"); code != 0 {
		t.Fatalf("compile: %d %s %s", code, out, errOut)
	}
	code, out, errOut := faultlineIO(t, dir, "push", filepath.Join("out", "run-test", "1.0.0"), reg.Host+"/chaos/run-test")
	if code != 0 {
		t.Fatalf("push: %d %s", code, errOut)
	}
	ref := reg.Host + "/chaos/run-test@" + strings.TrimSpace(out)
	v, err := oci.ReadDir(filepath.Join(dir, "out", "run-test", "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "scenario.yaml")) // nothing local to fall back on
	report := filepath.Join(dir, "report")
	code, out, errOut = faultlineIO(t, t.TempDir(), "run", ref, "--report-dir", report, "--quiet")
	if code != 0 {
		t.Fatalf("run %s: exit %d\n%s\n%s", ref, code, out, errOut)
	}
	if !strings.Contains(errOut, "pulled run-test@1.0.0") {
		t.Errorf("run does not say what it pulled:\n%s", errOut)
	}
	r, err := results.ReadResult(filepath.Join(report, results.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentHash != v.Plan.ContentHash || r.Scenario != "run-test" {
		t.Errorf("ran %s %s, pushed %s", r.Scenario, r.ContentHash, v.Plan.ContentHash)
	}
	if code, _, errOut := faultlineIO(t, t.TempDir(), "run", reg.Host+"/chaos/none@sha256:"+strings.Repeat("0", 64)); code != exitcode.Infrastructure {
		t.Errorf("run of a missing digest: exit %d %s", code, errOut)
	}
}

// repoRoot is the repository's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
