package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"faultline.dev/faultline/internal/exitcode"
)

var updatePlanGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// runInProcess runs the command line in-process and returns the exit code
// run would return, stdout and stderr.
func runInProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := exitcode.OK
	if err != nil {
		var ee *exitcode.Error
		switch {
		case errors.As(err, &ee):
			code = ee.Code
		case isUsageError(err):
			code = exitcode.Usage
		default:
			code = exitcode.Internal
		}
		if !errors.Is(err, errSilent) {
			errb.WriteString(err.Error())
		}
	}
	return code, out.String(), errb.String()
}

// TestPlanGolden: `faultline plan` draws each library scenario's timeline.
func TestPlanGolden(t *testing.T) {
	for _, name := range []string{"checkout-jitter.cue", "pod-kill.cue", "baseline.cue", "slow-downstream.yaml"} {
		t.Run(name, func(t *testing.T) {
			code, out, stderr := runInProcess(t, "plan", filepath.Join("..", "..", "scenarios", name))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden := filepath.Join("testdata", "plan-"+strings.TrimSuffix(name, filepath.Ext(name))+".golden")
			if *updatePlanGolden {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("plan output:\n%s\nwant:\n%s", out, want)
			}
		})
	}
	code, out, _ := runInProcess(t, "plan", "-o", "json", "../../scenarios/pod-kill.cue")
	if code != 0 || !strings.Contains(out, `"contentHash"`) || !strings.Contains(out, `"judgeFrom": "1m30s"`) {
		t.Errorf("plan -o json: exit %d\n%s", code, out)
	}
}

// TestVersionCheck: which bump a change needs, exit 3 when NEW is not
// bumped enough, and `faultline version` itself still works.
func TestVersionCheck(t *testing.T) {
	dir := t.TempDir()
	orig, err := os.ReadFile("../../scenarios/slow-downstream.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, from, to string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(orig), from, to)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("old.yaml", "", "")
	tests := []struct {
		name, from, to string
		code           int
		want           string
	}{
		{"same", "", "", 0, "needs none bump: ok"},
		{"slo not bumped", "errorRate: 5", "errorRate: 4", 3, "needs minor bump: NOT BUMPED ENOUGH"},
		{"slo bumped", "errorRate: 5\n", "errorRate: 4\n# x\n", 3, "minor: SLOs"},
		{"timing not bumped", "start: 15s", "start: 20s", 3, "major: fault slow-payments: timing changed"},
		{"description patch", "description: Responses", "description: The responses", 3, "needs patch bump"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := write("new.yaml", tt.from, tt.to)
			code, out, stderr := runInProcess(t, "version", "check", old, nw)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, stderr)
			}
		})
	}
	nw := write("new.yaml", "version: 1.0.0", "version: 1.1.0")
	nw2 := strings.ReplaceAll(string(must(os.ReadFile(nw))), "errorRate: 5", "errorRate: 4")
	os.WriteFile(nw, []byte(nw2), 0o644)
	if code, out, _ := runInProcess(t, "version", "check", old, nw); code != 0 || !strings.Contains(out, "1.0.0 → 1.1.0: needs minor bump: ok") {
		t.Errorf("bumped minor: exit %d\n%s", code, out)
	}
	if code, out, _ := runInProcess(t, "version"); code != 0 || !strings.HasPrefix(out, "faultline ") {
		t.Errorf("faultline version: exit %d %q", code, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestCompileCmd: compile writes the tree, a second run is a no-op, and
// changed content under the same version exits 3 with the bump message.
func TestCompileCmd(t *testing.T) {
	out := t.TempDir()
	// One scenario per library file.
	n := len(must(filepath.Glob("../../scenarios/*.cue"))) + len(must(filepath.Glob("../../scenarios/*.yaml")))
	code, stdout, stderr := runInProcess(t, "compile", "../../scenarios", "-o", out)
	if code != 0 || strings.Count(stdout, "compiled ") != n {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "checkout-jitter", "1.0.0", "chaos", "01-jitter.yaml")); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runInProcess(t, "compile", "../../scenarios", "-o", out)
	if code != 0 || strings.Count(stdout, "unchanged") != n {
		t.Fatalf("second compile: exit %d\n%s", code, stdout)
	}
	src := filepath.Join(t.TempDir(), "slow-downstream.yaml")
	data := strings.ReplaceAll(string(must(os.ReadFile("../../scenarios/slow-downstream.yaml"))), "delay: 800ms", "delay: 900ms")
	os.WriteFile(src, []byte(data), 0o644)
	code, _, stderr = runInProcess(t, "compile", src, "-o", out)
	if code != exitcode.Invalid || !strings.Contains(stderr, "bump the version") {
		t.Fatalf("changed content: exit %d\n%s", code, stderr)
	}
}

// TestPlanInstantKill: a podKill with just start is drawn over the window
// it is judged in, and said to act once at its start.
func TestPlanInstantKill(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(`name: kill
version: 1.0.0
target:
  url: http://127.0.0.1:8080
  kubernetes: {namespace: shop, selector: {app: shop}}
load: {executor: constant-vus, vus: 1, duration: 60s, requests: [{path: /}]}
faults:
  kill: {start: 10s, podKill: {}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runInProcess(t, "plan", p)
	if code != 0 || !strings.Contains(out, "10s → 40s  podKill (once at 10s, judged until 40s)") {
		t.Errorf("exit %d: %s%s", code, out, stderr)
	}
	code, out, _ = runInProcess(t, "plan", "-o", "json", p)
	if code != 0 || !strings.Contains(out, `"instant": true`) {
		t.Errorf("plan -o json: exit %d\n%s", code, out)
	}
}
