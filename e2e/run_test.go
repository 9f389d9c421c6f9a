package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/e2e/harness"
	"faultline.dev/faultline/internal/testport"
	"faultline.dev/faultline/results"
)

// shopPods are the target pods of the library's cluster scenarios (namespace shop): five
// checkout pods (container "checkout": the scenarios' containerNames) and two payments pods.
func shopPods() []harness.PodSpec {
	var pods []harness.PodSpec
	for i := range 5 {
		pods = append(pods, harness.PodSpec{Name: fmt.Sprintf("checkout-%d", i), Labels: map[string]string{"app": "checkout"}, Containers: []string{"checkout"}})
	}
	for i := range 2 {
		pods = append(pods, harness.PodSpec{Name: fmt.Sprintf("payments-%d", i), Labels: map[string]string{"app": "payments"}, Containers: []string{"payments"}})
	}
	return pods
}

// demoTarget starts `faultline demo-target` on free loopback ports (the load of a kubernetes
// run goes from this machine to target.url; the test points target.url here) and returns its URL.
func demoTarget(t *testing.T) string {
	url, _ := demoTargetGRPC(t)
	return url
}

// demoTargetGRPC is demoTarget with the demo target's gRPC server too; it returns the HTTP URL
// and the gRPC address. A port picked free can be taken before the target binds it (an outgoing
// connection's ephemeral port comes from the same range), so a target that exits before it is up
// is started again on new ports, three times at most.
func demoTargetGRPC(t *testing.T) (string, string) {
	t.Helper()
	var outs []string
	for range 3 {
		url, grpcAddr, out, ok := startDemoTarget(t)
		if ok {
			return url, grpcAddr
		}
		outs = append(outs, out)
	}
	t.Fatalf("demo target not up after 3 starts:\n%s", strings.Join(outs, "\n---\n"))
	return "", ""
}

// startDemoTarget starts one demo target on two distinct free loopback ports and waits up to 20 s
// for its /healthz. It reports false, with the target's output, if the target exited or never
// answered; a target that is up is stopped at the test's end.
func startDemoTarget(t *testing.T) (url, grpcAddr, output string, ok bool) {
	t.Helper()
	// Two distinct ports below the ephemeral range (testport): a CI run got --listen and
	// --grpc-listen both on 127.0.0.1:34097 when they were picked one after the other.
	ports := testport.Loopback(t, 2)
	addr, grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, shared.bins.Faultline, "demo-target", "--listen", addr, "--grpc-listen", grpcAddr)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	out := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() { cancel(); <-exited }
	url = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			stop()
			return "", "", fmt.Sprintf("demo target on %s and %s exited:\n%s", addr, grpcAddr, out.String()), false
		default:
		}
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(stop)
				return url, grpcAddr, "", true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", "", fmt.Sprintf("demo target at %s not up in 20s:\n%s", url, out.String()), false
}

// run is one `faultline run` of the test.
type run struct {
	code   int
	out    string
	res    *results.Result
	report string
}

// runOpts are the ways a test drives a run.
type runOpts struct {
	args []string
	// during is called once the process has started (e.g. to send SIGINT), with the process;
	// faultline returns after it has returned.
	during func(p *os.Process, out *lockedBuffer)
	// timeout bounds the run (default 3 minutes).
	timeout time.Duration
}

// lockedBuffer collects a process's output; Contains may be called while it runs.
type lockedBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// waitFor polls the output until it contains s (true) or timeout passes.
func (b *lockedBuffer) waitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(b.String(), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// faultline runs the faultline binary against the cluster's kubeconfig and reads results.json
// (res is nil when the run wrote none, e.g. a refusal before the run).
func faultline(t *testing.T, o runOpts) run {
	t.Helper()
	timeout := o.timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	report := filepath.Join(t.TempDir(), "report")
	args := append([]string{"run", "--backend", "kubernetes", "--kubeconfig", shared.cluster.Kubeconfig,
		"--report-dir", report}, o.args...)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shared.bins.Faultline, args...)
	cmd.WaitDelay = 10 * time.Second
	out := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	during := make(chan struct{})
	if o.during != nil {
		go func() { defer close(during); o.during(cmd.Process, out) }()
	} else {
		close(during)
	}
	_ = cmd.Wait()
	<-during // its writes are visible to the caller
	if ctx.Err() != nil {
		t.Fatalf("faultline %s: still running after %s:\n%s", strings.Join(args, " "), timeout, out.String())
	}
	r := run{code: cmd.ProcessState.ExitCode(), out: out.String(), report: report}
	if res, err := results.ReadResult(filepath.Join(report, results.ResultsFile)); err == nil {
		r.res = res
	}
	return r
}

// scenarioCopy copies a library scenario into a temp dir with its target URLs pointed at url
// (and its gRPC target at grpcAddr, if given).
func scenarioCopy(t *testing.T, file, url string, grpcAddr ...string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "scenarios", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"http://checkout.shop.svc:8080", "http://127.0.0.1:18080"} {
		src = bytes.ReplaceAll(src, []byte(from), []byte(url))
	}
	for _, g := range grpcAddr {
		src = bytes.ReplaceAll(src, []byte("127.0.0.1:18090"), []byte(g))
	}
	path := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeScenario writes a YAML scenario for a test.
func writeScenario(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// noLeftovers fails the test if any chaos object is left, waiting a little for finalizers.
func noLeftovers(t *testing.T) { t.Helper(); noLeftoversWithin(t, 20*time.Second) }

// noLeftoversWithin is noLeftovers waiting up to d.
func noLeftoversWithin(t *testing.T, d time.Duration) {
	t.Helper()
	var left []string
	var err error
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		left, err = shared.cluster.Leftovers(context.Background())
		if err == nil && len(left) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Errorf("left in the cluster: %v", left)
	// Clean up for the next test (forcing past the finalizer if Chaos Mesh cannot recover).
	if code, out := cleanupAll(t); code != 0 {
		t.Logf("faultline cleanup --all: exit %d: %s", code, out)
	}
}

func cleanupAll(t *testing.T) (int, string) {
	cmd := exec.Command(shared.bins.Faultline, "cleanup", "--all", "--kubeconfig", shared.cluster.Kubeconfig)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

// managerLogOnFailure adds the controller-manager's last log lines to a failed test.
func managerLogOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos-controller-manager log (last 60 lines):\n%s", shared.cluster.ManagerLog(60))
		}
	})
}

// lines returns the lines of s that contain sub.
func lines(s, sub string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
