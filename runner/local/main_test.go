package local

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/testport"
	"faultline.dev/faultline/runner/local/stress"
	"faultline.dev/faultline/schema"
)

// The test binary stands in for faultline: started with testRoleEnv=target
// it is a small HTTP target, started as "stress-worker" with stress's
// WorkerEnv it is a stress worker.
const testRoleEnv = "FAULTLINE_LOCAL_TEST_ROLE"

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(stress.WorkerEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "stress-worker":
		os.Exit(stressWorkerMain(os.Args[2:]))
	case os.Getenv(testRoleEnv) == "target":
		os.Exit(targetMain())
	}
	os.Exit(m.Run())
}

func stressWorkerMain(args []string) int {
	var c stress.WorkerConfig
	fs := flag.NewFlagSet("stress-worker", flag.ContinueOnError)
	fs.IntVar(&c.CPUWorkers, "cpu-workers", 0, "")
	fs.Float64Var(&c.Load, "load", 100, "")
	fs.IntVar(&c.MemoryWorkers, "memory-workers", 0, "")
	fs.Int64Var(&c.MemoryBytes, "memory-bytes", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := stress.Worker(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fileTiming is what the test target's /file answers: how long each of
// its own file system calls took, and the error of the first that failed.
type fileTiming struct {
	WriteMs float64 `json:"writeMs"`
	ReadMs  float64 `json:"readMs"`
	Err     string  `json:"err,omitempty"`
	Errno   int     `json:"errno,omitempty"`
}

// targetMain serves /healthz, /pid and /file (writes and reads back a file
// in $FAULTLINE_DATA_DIR, timing its own calls) on $ADDR until SIGTERM.
func targetMain() int {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/pid", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, os.Getpid()) })
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Join(os.Getenv(DataDirEnv), r.URL.Query().Get("name"))
		var t fileTiming
		fail := func(err error) {
			t.Err = err.Error()
			var errno syscall.Errno
			if ok := asErrno(err, &errno); ok {
				t.Errno = int(errno)
			}
		}
		start := time.Now()
		if err := os.WriteFile(name, []byte("faultline\n"), 0o644); err != nil {
			fail(err)
		} else {
			t.WriteMs = float64(time.Since(start)) / 1e6
			start = time.Now()
			if _, err := os.ReadFile(name); err != nil {
				fail(err)
			}
			t.ReadMs = float64(time.Since(start)) / 1e6
		}
		_ = json.NewEncoder(w).Encode(t)
	})
	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.Close()
	}()
	_ = srv.Serve(ln)
	return 0
}

func asErrno(err error, e *syscall.Errno) bool {
	for err != nil {
		if x, ok := err.(syscall.Errno); ok {
			*e = x
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// testBackend is a local backend whose target is this test binary on a
// free loopback port, with faults by name.
func testBackend(t *testing.T, faults map[string]schema.Fault, env map[string]string) (*Backend, *plan.Plan, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testport.Loopback(t, 1)[0])
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]string{testRoleEnv: "target", "ADDR": addr}
	for k, v := range env {
		e[k] = v
	}
	s := &schema.Scenario{Name: "t", Version: "1.0.0", Faults: faults,
		Target: schema.Target{URL: "http://" + addr, Local: &schema.LocalTarget{Command: []string{self}, Env: e, Readiness: "/healthz"}}}
	p := &plan.Plan{}
	for name := range faults {
		p.Faults = append(p.Faults, plan.Fault{Name: name})
	}
	b := New(s, self, os.Stderr)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Cleanup(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return b, p, addr
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

// procStatus is one field of /proc/<pid>/status.
func procStatus(pid int, field string) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procCgroups is /proc/<pid>/cgroup.
func procCgroups(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	return string(b)
}
