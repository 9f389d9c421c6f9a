package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.k6.io/k6/errext/exitcodes"
)

// binary is the faultline binary built once for the k6 tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "faultline-k6-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "faultline")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building faultline:", err)
		return 1
	}
	return m.Run()
}

// trap stands in for every proxy: k6 (through Go's net/http) sends any
// request to a non-loopback host to it, so any request it sees is network
// access beyond loopback.
type trap struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string
}

func newTrap(t *testing.T) *trap {
	tr := &trap{}
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.got = append(tr.got, r.Method+" "+r.Host+r.URL.Path)
		tr.mu.Unlock()
		http.Error(w, "no network in tests", http.StatusForbidden)
	}))
	t.Cleanup(tr.srv.Close)
	return tr
}

func (tr *trap) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.got) > 0 {
		t.Errorf("k6 tried to reach the network beyond loopback: %q", tr.got)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs path with args in an isolated environment (no K6_* or
// proxy settings from the caller, fresh config and cache directories, every
// proxy pointing at tr) and returns its exit code and output.
func runBinary(t *testing.T, tr *trap, path string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = 5 * time.Second
	home := t.TempDir()
	cmd.Dir = home
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "K6_") || strings.HasSuffix(strings.ToUpper(k), "_PROXY") ||
			strings.HasPrefix(k, "XDG_") || k == "HOME" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"NO_COLOR=1",
	)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		cmd.Env = append(cmd.Env, k+"="+tr.srv.URL)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish in time: %v\nstderr:\n%s", path, args, err, stderr.String())
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running %s %q: %v", path, args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func writeScript(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.js")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const validScript = `
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  vus: 1,
  iterations: 3,
  thresholds: {
    'http_reqs{phase:steady}': ['count==3'],
    'http_req_duration{phase:steady}': ['p(99)<5000'],
    checks: ['rate==1'],
  },
};

export default function () {
  const res = http.get(__ENV.TARGET, { tags: { phase: 'steady' } });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
`

func TestK6Version(t *testing.T) {
	tr := newTrap(t)
	r := runBinary(t, tr, binary, "k6", "version")
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "v1.8.1") {
		t.Errorf("stdout %q does not contain k6's version v1.8.1", r.stdout)
	}
	tr.check(t)
}

func TestK6Help(t *testing.T) {
	tr := newTrap(t)
	// --help goes to k6, not to faultline's cobra.
	r := runBinary(t, tr, binary, "k6", "--help")
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Grafana k6") || !strings.Contains(r.stdout, "inspect") {
		t.Errorf("stdout is not k6's help:\n%s", r.stdout)
	}
}

func TestK6Inspect(t *testing.T) {
	tr := newTrap(t)
	script := writeScript(t, validScript)
	r := runBinary(t, tr, binary, "k6", "inspect", script)
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	var opts struct {
		VUs        int                 `json:"vus"`
		Iterations int                 `json:"iterations"`
		Thresholds map[string][]string `json:"thresholds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &opts); err != nil {
		t.Fatalf("stdout is not JSON options: %v\n%s", err, r.stdout)
	}
	if opts.VUs != 1 || opts.Iterations != 3 {
		t.Errorf("vus=%d iterations=%d, want 1 and 3", opts.VUs, opts.Iterations)
	}
	if got := opts.Thresholds["http_reqs{phase:steady}"]; len(got) != 1 || got[0] != "count==3" {
		t.Errorf(`thresholds["http_reqs{phase:steady}"] = %q, want ["count==3"]`, got)
	}
	tr.check(t)
}

func TestK6InvalidScript(t *testing.T) {
	tr := newTrap(t)
	tests := []struct {
		name, src string
	}{
		{"syntax error", "export default function () { let x = ; }\n"},
		{"unknown module", "import http from 'k6/htp';\nexport default function () {}\n"},
		// With automatic extension resolution on, k6 would ask a build
		// service on the network for a binary with this extension.
		{"extension not built in", "import foo from 'k6/x/foo';\nexport default function () {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := writeScript(t, tt.src)
			for _, cmd := range []string{"inspect", "run"} {
				args := []string{"k6", cmd}
				if cmd == "run" {
					args = append(args, "--no-usage-report", "--address=")
				}
				r := runBinary(t, tr, binary, append(args, script)...)
				if r.code == 0 {
					t.Fatalf("k6 %s: exit code 0, want non-zero; stdout:\n%s", cmd, r.stdout)
				}
				if r.code != int(exitcodes.ScriptException) {
					t.Errorf("k6 %s: exit code %d, want %d (script exception); stderr:\n%s",
						cmd, r.code, exitcodes.ScriptException, r.stderr)
				}
			}
		})
	}
	tr.check(t)
}

func TestK6Symlink(t *testing.T) {
	tr := newTrap(t)
	link := filepath.Join(t.TempDir(), "k6")
	if err := os.Symlink(binary, link); err != nil {
		t.Skipf("cannot create a symlink: %v", err)
	}
	r := runBinary(t, tr, link, "version")
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "v1.8.1") {
		t.Errorf("stdout %q does not contain k6's version v1.8.1", r.stdout)
	}
	tr.check(t)
}

func TestK6Run(t *testing.T) {
	tests := []struct {
		name       string
		thresholds string // replaces the script's thresholds
		extraArgs  []string
		wantCode   int
	}{
		{name: "thresholds pass", wantCode: 0},
		{
			name:       "threshold crossed",
			thresholds: `'http_reqs{phase:steady}': ['count>100']`,
			wantCode:   int(exitcodes.ThresholdsHaveFailed),
		},
		{
			// Without --no-usage-report: faultline's default
			// K6_NO_USAGE_REPORT=true must keep k6 off the network.
			name:      "no usage report by default",
			extraArgs: []string{"--address="},
			wantCode:  0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrap(t)
			var hits atomic.Int64
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				_, _ = w.Write([]byte("ok"))
			}))
			defer target.Close()

			src := validScript
			if tt.thresholds != "" {
				start := strings.Index(src, "thresholds: {")
				end := strings.Index(src[start:], "},") + start
				src = src[:start] + "thresholds: {" + tt.thresholds + src[end:]
			}
			script := writeScript(t, src)
			args := []string{"k6", "run", "--quiet", "--env", "TARGET=" + target.URL}
			if tt.extraArgs == nil {
				// --address= turns k6's REST API off, so parallel runs do
				// not fight over localhost:6565.
				args = append(args, "--no-usage-report", "--address=")
			} else {
				args = append(args, tt.extraArgs...)
			}
			start := time.Now()
			r := runBinary(t, tr, binary, append(args, script)...)
			t.Logf("k6 run took %s", time.Since(start).Round(time.Millisecond))
			if r.code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if got := hits.Load(); got != 3 {
				t.Errorf("target got %d requests, want 3", got)
			}
			tr.check(t)
		})
	}
}
