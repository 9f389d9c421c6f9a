package k6

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// scriptFile is a file name for a plan's script.
func scriptFile(name string) string {
	return regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(name, "_") + ".js"
}

// broken are scripts tsc must reject, each a compiled script with one
// mistake, so the type check is known to catch what it is for.
var broken = []struct {
	file, old, new string
}{
	{"broken-executor.js", `"executor": "constant-arrival-rate"`, `"executor": "constant-arival-rate"`},
	{"broken-option.js", `"summaryTrendStats": [`, `"summaryTrendStat": [`},
	{"broken-api.js", `http.request(p.req.method`, `http.requets(p.req.method`},
	{"broken-check.js", `checkCounted(res, p.checks,`, `checkCounted(res, p.req.checkNames,`},
	{"broken-checks-counter.js", `checksCounted.add(1, {`, `checksCounted.add('1', {`},
	{"broken-request-data.js", `"weight": 1,`, `"weight": "1",`},
}

// brokenGRPC are gRPC scripts tsc must reject: k6/net/grpc used wrongly.
var brokenGRPC = []struct {
	file, old, new string
}{
	{"broken-grpc-invoke.js", `client.invoke(call.method`, `client.invok(call.method`},
	{"broken-grpc-connect.js", `{ plaintext: !grpcTarget.tls, reflect:`, `{ plaintext: !grpcTarget.tls, reflection:`},
	{"broken-grpc-load.js", `client.load(grpcTarget.importPaths, ...grpcTarget.protoFiles)`, `client.load(...grpcTarget.protoFiles)`},
	{"broken-grpc-status.js", `grpc.StatusUnavailable }`, `grpc.StatusUnavailble }`},
	{"broken-grpc-calls.js", `grpcCalls.add(1, Object.assign(`, `grpcCalls.ad(1, Object.assign(`},
	{"broken-grpc-target.js", `"tls": true,`, `"tls": "true",`},
}

// TestTypeCheck: every compiled script (the library, the compiler's test
// scenarios, and every scenario these tests build, HTTP, gRPC and mixed) type-checks with tsc
// --allowJs --checkJs --strict against @types/k6, both pinned in tsc/;
// scripts with a deliberate mistake do not.
func TestTypeCheck(t *testing.T) {
	node, tsc := needTSC(t)
	dir := t.TempDir()
	var files []string
	var sample, grpcSample []byte
	for _, p := range testPlans(t) {
		script := emitted(t, p).Get(ScriptPath)
		if !bytes.Contains(script, []byte("/** @type {import(\"k6/options\").Options} */\nexport const options = ")) {
			t.Errorf("%s: the options are not declared as k6's Options", p.name)
		}
		name := scriptFile(p.name)
		if slices.Contains(files, name) {
			t.Fatalf("two scripts named %s", name)
		}
		files = append(files, name)
		if err := os.WriteFile(filepath.Join(dir, name), script, 0o600); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(script, []byte(`"executor": "constant-arrival-rate"`)) && bytes.Contains(script, []byte(`"weight": 1,`)) && sample == nil {
			sample = script
		}
		if bytes.Contains(script, []byte(`client.load(`)) && bytes.Contains(script, []byte(`"tls": true,`)) {
			grpcSample = script
		}
	}
	if sample == nil || grpcSample == nil {
		t.Fatal("no constant-arrival-rate script or no gRPC script with proto files and TLS to break")
	}
	for _, set := range []struct {
		sample []byte
		cases  []struct{ file, old, new string }
	}{{sample, broken}, {grpcSample, brokenGRPC}} {
		for _, b := range set.cases {
			if !bytes.Contains(set.sample, []byte(b.old)) {
				t.Fatalf("%s: the script has no %q to break", b.file, b.old)
			}
			if err := os.WriteFile(filepath.Join(dir, b.file), bytes.Replace(set.sample, []byte(b.old), []byte(b.new), 1), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	types, err := filepath.Abs(filepath.Join(tscDir, "node_modules", "@types"))
	if err != nil {
		t.Fatal(err)
	}
	tsconfig, _ := json.MarshalIndent(map[string]any{
		"compilerOptions": map[string]any{
			"allowJs": true, "checkJs": true, "noEmit": true, "strict": true,
			"target": "es2020", "module": "es2020", "moduleResolution": "node",
			"lib":       []string{"es2020"},
			"typeRoots": []string{types}, "types": []string{"k6"},
		},
		"include": []string{"*.js"},
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "tsconfig.json"), tsconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), node, tsc, "-p", filepath.Join(dir, "tsconfig.json"), "--pretty", "false")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("tsc checked %d scripts in %s", len(files)+len(broken)+len(brokenGRPC), time.Since(start).Round(time.Millisecond))
	if err != nil && !bytes.Contains(out, []byte("error TS")) {
		t.Fatalf("tsc did not run: %v\n%s", err, out)
	}

	// Every reported error is in a file; group them.
	byFile := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if file, _, ok := strings.Cut(line, "("); ok && strings.Contains(line, "error TS") {
			byFile[file] = append(byFile[file], line)
			continue
		}
		if !strings.HasPrefix(line, " ") { // continuation lines are indented
			byFile[""] = append(byFile[""], line)
		}
	}
	for _, f := range files {
		if errs := byFile[f]; len(errs) > 0 {
			t.Errorf("%s does not type-check against @types/k6:\n%s", f, strings.Join(errs, "\n"))
		}
	}
	for _, b := range slices.Concat(broken, brokenGRPC) {
		if len(byFile[b.file]) == 0 {
			t.Errorf("tsc accepts %s (%s instead of %s)", b.file, b.new, b.old)
		}
	}
	if len(byFile[""]) > 0 {
		t.Errorf("tsc reports:\n%s", strings.Join(byFile[""], "\n"))
	}
}

// TestK6Inspect runs `k6 inspect` on every compiled script when a k6
// binary is on PATH, and checks that k6 reads the options of options.json.
func TestK6Inspect(t *testing.T) {
	k6, err := exec.LookPath("k6")
	if err != nil {
		t.Skip("skipped: no k6 binary on PATH (faultline does not ship k6; install k6 to run `k6 inspect` on every compiled script)")
	}
	dir := t.TempDir()
	for _, p := range testPlans(t) {
		t.Run(p.name, func(t *testing.T) {
			files := emitted(t, p)
			script := filepath.Join(dir, scriptFile(p.name))
			if err := os.WriteFile(script, files.Get(ScriptPath), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), k6, "inspect", script)
			cmd.Env = append(os.Environ(), "K6_NO_USAGE_REPORT=true")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("k6 inspect: %v\n%s", err, stderr.Bytes())
			}
			var got, want struct {
				Scenarios  map[string]json.RawMessage `json:"scenarios"`
				Thresholds map[string]json.RawMessage `json:"thresholds"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("k6 inspect output: %v\n%s", err, stdout.Bytes())
			}
			if err := json.Unmarshal(files.Get(OptionsPath), &want); err != nil {
				t.Fatal(err)
			}
			if _, ok := got.Scenarios[ScenarioName]; !ok || len(got.Scenarios) != 1 {
				t.Errorf("k6 sees scenarios %v, want only %q", sortedKeys(got.Scenarios), ScenarioName)
			}
			if g, w := fmt.Sprint(sortedKeys(got.Thresholds)), fmt.Sprint(sortedKeys(want.Thresholds)); g != w {
				t.Errorf("k6 sees thresholds on %s, options.json has %s", g, w)
			}
		})
	}
}
