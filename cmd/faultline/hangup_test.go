package main

// Stopping a local run the ways a terminal does, on a real pty: the
// terminal closed (SIGHUP and EIO on every later write), Ctrl-\ (SIGQUIT),
// a second Ctrl-C during cleanup; and a target port another process holds.
// Every run is faultline on its own pty in its own session, against a demo
// target it starts itself on a free loopback port; "nothing left" means no
// process of that session and no listener on the run's ports.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"faultline.dev/faultline/internal/exitcode"
)

var hangupSeed = flag.Uint64("hangup-seed", 0, "seed of TestRunHangup's moments (0: from the clock; the test logs the seed it used)")

// stopScenario writes a 9-second local scenario (steady [0,3s), fault
// [3s,6s), recovery [6s,9s)) whose target faultline starts from command;
// "PORT" in command and local is the free loopback port it picked.
func stopScenario(t *testing.T, command []string, local, faults string) (path string, port int) {
	t.Helper()
	dir := t.TempDir()
	port = freeLoopbackPort(t)
	argv, _ := json.Marshal(command)
	src := fmt.Sprintf(`name: stop-test
version: 1.0.0
target:
  url: http://127.0.0.1:PORT
  metrics: http://127.0.0.1:PORT/metrics
  local:
    command: %s
    readiness: /healthz
%s
load:
  executor: constant-arrival-rate
  rate: 40
  duration: 9s
  preAllocatedVUs: 10
  maxVUs: 40
  requests:
    - {name: catalog, path: /catalog, expect: {status: 200}}
faults:
%s
slos:
  fault: {errorRate: 100}
`, argv, local, faults)
	src = strings.ReplaceAll(src, "PORT", strconv.Itoa(port))
	path = filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, port
}

var demoTarget = []string{"faultline", "demo-target", "--listen", "127.0.0.1:PORT"}

// ptyRun is faultline on a pty of its own, leading its own session.
type ptyRun struct {
	cmd    *exec.Cmd
	master *os.File
	report string

	mu   sync.Mutex
	out  bytes.Buffer
	read chan struct{} // closed when reading the pty ended
	done chan struct{} // closed when faultline exited
	err  error         // cmd.Wait's
}

// startOnPTY runs `faultline run scenario --report-dir <tmp>` on a new pty.
func startOnPTY(t *testing.T, scenario string) *ptyRun {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	// pty.Open's master is in blocking mode: a Close would wait for a
	// pending Read, and the terminal would not hang up until faultline
	// writes again. A non-blocking duplicate is pollable: closing it hangs
	// the terminal up at once. Close-on-exec, as every other file here:
	// a copy in any child would keep the terminal from hanging up.
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(int(master.Fd()))
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	master.Close()
	if err != nil {
		tty.Close()
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		tty.Close()
		t.Fatal(err)
	}
	r := &ptyRun{master: os.NewFile(uintptr(fd), "/dev/ptmx"), report: filepath.Join(t.TempDir(), "report"),
		read: make(chan struct{}), done: make(chan struct{})}
	r.cmd = exec.Command(binary, "run", scenario, "--report-dir", r.report)
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = tty, tty, tty
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = r.cmd.Start()
	tty.Close()
	if err != nil {
		r.master.Close()
		t.Fatal(err)
	}
	go func() {
		defer close(r.read)
		buf := make([]byte, 4096)
		for {
			n, err := r.master.Read(buf)
			r.mu.Lock()
			r.out.Write(buf[:n])
			r.mu.Unlock()
			if err != nil { // EIO once faultline exited, ErrClosed after a hang-up
				return
			}
		}
	}()
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		// Whatever the test found, leave nothing of this run behind.
		killSession(r.cmd.Process.Pid)
		<-r.done
		killSession(r.cmd.Process.Pid)
		r.master.Close()
		<-r.read
	})
	return r
}

func (r *ptyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// waitFor waits until the terminal shows s, at most d.
func (r *ptyRun) waitFor(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(r.output(), s) {
			return true
		}
		select {
		case <-r.done:
			return strings.Contains(r.output(), s)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// hangUp closes the terminal: the kernel sends SIGHUP to faultline, the
// session's leader, and every later write to the pty fails with EIO.
func (r *ptyRun) hangUp() { r.master.Close() }

// exit waits at most d for faultline to exit and returns its exit code.
func (r *ptyRun) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("faultline did not exit within %s; terminal:\n%s", d, r.output())
	}
	var ee *exec.ExitError
	if r.err != nil && !errors.As(r.err, &ee) {
		t.Fatalf("waiting for faultline: %v", r.err)
	}
	return r.cmd.ProcessState.ExitCode()
}

// runResults is the part of results.json these tests read.
type runResults struct {
	Verdict      string `json:"verdict"`
	Reason       string `json:"reason"`
	CleanupError string `json:"cleanupError"`
	LoadURL      string `json:"loadUrl"`
}

// results reads results.json; nil when the run did not write it.
func (r *ptyRun) results(t *testing.T) *runResults {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.report, "results.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var res runResults
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	return &res
}

// sessionProcesses lists the processes of session sid ("pid state
// command line"), zombies apart: a zombie holds no port and no memory, and
// is its new parent's to reap.
func sessionProcesses(sid int) (live, zombies []string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:])) // state ppid pgrp session ...
		if len(f) < 4 || f[3] != strconv.Itoa(sid) {
			continue
		}
		cl, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		desc := fmt.Sprintf("%d %s %s", pid, f[0], strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " ")))
		if f[0] == "Z" {
			zombies = append(zombies, desc)
		} else {
			live = append(live, desc)
		}
	}
	return live, zombies
}

// killSession kills what is left of a session (a failed test's run).
func killSession(sid int) {
	for range 3 {
		live, _ := sessionProcesses(sid)
		if len(live) == 0 {
			return
		}
		for _, p := range live {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkNothingLeft: no process of the run's session, and the target's and
// the injector's ports free.
func checkNothingLeft(t *testing.T, r *ptyRun, port int, res *runResults) {
	t.Helper()
	live, zombies := sessionProcesses(r.cmd.Process.Pid)
	if len(live) > 0 {
		t.Errorf("processes of the run's session left: %q", live)
	}
	if len(zombies) > 0 {
		t.Logf("zombies of the run's session, not yet reaped by their new parent: %q", zombies)
	}
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	if res != nil && res.LoadURL != "" {
		addrs = append(addrs, strings.TrimPrefix(res.LoadURL, "http://"))
	}
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("port %s still taken after the run: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// TestRunHangup stops local runs at random moments of each part of the
// run, mostly by closing their terminal: faultline exits 6 (aborted, as
// for Ctrl-C) with the verdict aborted, after recovering its faults and
// stopping the target and the load; nothing is left.
func TestRunHangup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	seed := *hangupSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("moments drawn with -hangup-seed=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	faults := delayFault + `
  burn:
    start: 3s
    duration: 3s
    cpuStress: {workers: 1, load: 50}
  freeze:
    start: 3.5s
    duration: 1s
    podFailure: {}`
	const (
		hangup = "close the terminal"
		hup    = "SIGHUP, terminal open"
		quit   = "SIGQUIT"
	)
	trials := []struct {
		name string
		how  string
		// after: the moment is drawn in [from, to) after this line.
		after    string
		from, to time.Duration
	}{
		{"while the target starts", hangup, "running stop-test", 0, 300 * time.Millisecond},
		{"steady load", hangup, "load started", 300 * time.Millisecond, 2700 * time.Millisecond},
		{"during the faults", hangup, "load started", 3200 * time.Millisecond, 5800 * time.Millisecond},
		{"near the end", hangup, "load started", 7500 * time.Millisecond, 8800 * time.Millisecond},
		{"during the faults", hup, "load started", 3200 * time.Millisecond, 5800 * time.Millisecond},
		{"steady load", quit, "load started", 300 * time.Millisecond, 2700 * time.Millisecond},
	}
	for _, tr := range trials {
		at := tr.from + time.Duration(rng.Int64N(int64(tr.to-tr.from)))
		t.Run(tr.how+", "+tr.name, func(t *testing.T) {
			t.Parallel()
			scenario, port := stopScenario(t, demoTarget, "", faults)
			r := startOnPTY(t, scenario)
			if !r.waitFor(tr.after, 60*time.Second) {
				t.Fatalf("no %q within 60s; terminal:\n%s", tr.after, r.output())
			}
			time.Sleep(at)
			t.Logf("%s at %s after %q", tr.how, at.Round(time.Millisecond), tr.after)
			switch tr.how {
			case hangup:
				r.hangUp()
			case hup:
				_ = r.cmd.Process.Signal(syscall.SIGHUP)
			case quit:
				_ = r.cmd.Process.Signal(syscall.SIGQUIT)
			}
			begin := time.Now()
			code := r.exit(t, 60*time.Second)
			t.Logf("exited %s after the signal", time.Since(begin).Round(time.Millisecond))
			if code != exitcode.Aborted {
				t.Errorf("exit %d, want %d (aborted); terminal:\n%s", code, exitcode.Aborted, r.output())
			}
			res := r.results(t)
			checkNothingLeft(t, r, port, res)
			switch {
			case res == nil:
				t.Errorf("no results.json; terminal:\n%s", r.output())
			case res.Verdict != "aborted" || res.CleanupError != "":
				t.Errorf("verdict %s (%s), cleanup error %q; want aborted, none", res.Verdict, res.Reason, res.CleanupError)
			}
			if tr.how != hangup {
				// The terminal stayed open: it shows why faultline stopped,
				// and the result table after cleanup.
				<-r.read
				sig := map[string]string{hup: "SIGHUP", quit: "SIGQUIT"}[tr.how]
				for _, want := range []string{"faultline: " + sig + ": stopping and cleaning up", "report: "} {
					if !strings.Contains(r.output(), want) {
						t.Errorf("the terminal does not show %q:\n%s", want, r.output())
					}
				}
			}
		})
	}
}

// TestRunSecondSignal: a second signal during cleanup. The target ignores
// SIGTERM (its shell does, then a sleep that inherits it), so that cleanup
// waits out its 5s grace before killing it: the second signal arrives
// while cleanup is under way. A second Ctrl-C or Ctrl-\ exits at once and
// still kills the target's process group (the shell, or the sleep it
// became); a second SIGHUP does not cut cleanup short.
func TestRunSecondSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	tests := []struct {
		name          string
		first, second syscall.Signal
		forced        bool
		want          []string // on the terminal
	}{
		{"Ctrl-C twice", syscall.SIGINT, syscall.SIGINT, true, []string{"faultline: SIGINT: stopping and cleaning up (Ctrl-C again", "faultline: SIGINT again: exiting at once"}},
		{"Ctrl-\\ twice", syscall.SIGQUIT, syscall.SIGQUIT, true, []string{"faultline: SIGQUIT again: exiting at once", "goroutine 1 ["}},
		{"SIGHUP twice", syscall.SIGHUP, syscall.SIGHUP, false, []string{"faultline: SIGHUP: still cleaning up after SIGHUP", "report: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stubborn := []string{"sh", "-c", "trap '' TERM; " + binary + " demo-target --listen 127.0.0.1:PORT; exec sleep 30"}
			scenario, port := stopScenario(t, stubborn, "", delayFault)
			r := startOnPTY(t, scenario)
			if !r.waitFor("load started", 60*time.Second) {
				t.Fatalf("no load within 60s; terminal:\n%s", r.output())
			}
			time.Sleep(time.Second)
			_ = r.cmd.Process.Signal(tt.first)
			if !r.waitFor("stopping and cleaning up", 10*time.Second) {
				t.Fatalf("no word of stopping within 10s; terminal:\n%s", r.output())
			}
			time.Sleep(500 * time.Millisecond)
			_ = r.cmd.Process.Signal(tt.second)
			begin := time.Now()
			code := r.exit(t, 60*time.Second)
			took := time.Since(begin)
			t.Logf("exited %s after the second signal", took.Round(time.Millisecond))
			<-r.read
			if code != exitcode.Aborted {
				t.Errorf("exit %d, want %d (aborted); terminal:\n%s", code, exitcode.Aborted, r.output())
			}
			for _, want := range tt.want {
				if !strings.Contains(r.output(), want) {
					t.Errorf("the terminal does not show %q:\n%s", want, r.output())
				}
			}
			res := r.results(t)
			if tt.forced {
				// Out well before the target's grace (5s) ran out. (The
				// kill may let cleanup end and results.json be written
				// just before the exit: its presence proves nothing.)
				if took > 3*time.Second {
					t.Errorf("a second %s took %s to exit", tt.second, took.Round(time.Millisecond))
				}
			} else {
				// Cleanup waited out the target's grace (5s, from 0.5s
				// before the second signal), then wrote the report.
				if took < 3*time.Second {
					t.Errorf("exited %s after a second %s: cleanup was cut short", took.Round(time.Millisecond), tt.second)
				}
				if res == nil || res.Verdict != "aborted" || res.CleanupError != "" {
					t.Errorf("results %+v; want aborted after a complete cleanup", res)
				}
			}
			checkNothingLeft(t, r, port, res)
		})
	}
}

// TestRunPortTaken: a target port some other process listens on stops the
// run before the target starts, exit 7, with the port and the process
// holding it named.
func TestRunPortTaken(t *testing.T) {
	tests := []struct {
		name   string
		local  string // more of target.local
		source string // what the message says the port comes from
		child  bool   // a child process holds the port, not this test
	}{
		{"held by this test, port of target.url", "", "target.url http://127.0.0.1:PORT", false},
		{"held by this test, target.local.port", "    port: PORT", "target.local.port", false},
		{"held by another process", "", "target.url http://127.0.0.1:PORT", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			scenario, port := stopScenario(t, demoTarget, tt.local, delayFault)
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			holder := fmt.Sprintf("pid %d (", os.Getpid())
			if tt.child {
				f, err := ln.(*net.TCPListener).File()
				if err != nil {
					t.Fatal(err)
				}
				sleep := exec.Command("sleep", "30")
				sleep.ExtraFiles = []*os.File{f}
				if err := sleep.Start(); err != nil {
					t.Skipf("no sleep command: %v", err)
				}
				defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()
				f.Close()
				ln.Close()
				holder = fmt.Sprintf("pid %d (sleep 30)", sleep.Process.Pid)
			}
			report := filepath.Join(t.TempDir(), "report")
			cmd := exec.Command(binary, "run", scenario, "--report-dir", report, "--quiet")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			defer killSession(cmd.Process.Pid)
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				killSession(cmd.Process.Pid)
				<-done
				t.Fatalf("faultline did not exit within 60s:\n%s", out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != exitcode.Infrastructure {
				t.Errorf("exit %d, want %d (infrastructure):\n%s", code, exitcode.Infrastructure, out.String())
			}
			want := strings.ReplaceAll(fmt.Sprintf("port %d (%s) is already in use by %s", port, tt.source, holder), "PORT", strconv.Itoa(port))
			if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), ": stop it, or change target.url / target.local.port") {
				t.Errorf("output does not say %q and how to fix it:\n%s", want, out.String())
			}
			if live, _ := sessionProcesses(cmd.Process.Pid); len(live) > 0 {
				t.Errorf("processes of the run's session left: %q", live)
			}
			if b, err := os.ReadFile(filepath.Join(report, "target.log")); err == nil && len(b) > 0 {
				t.Errorf("the target was started anyway; target.log:\n%s", b)
			}
		})
	}
}

// TestRunOutputGone: the reader of faultline's output leaves mid-run
// (faultline run ... 2>&1 | head): every later write fails with EPIPE.
// The run goes on to its own verdict and cleans up; nothing is left.
func TestRunOutputGone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	scenario, port := stopScenario(t, demoTarget, "", delayFault)
	report := filepath.Join(t.TempDir(), "report")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", scenario, "--report-dir", report)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer killSession(cmd.Process.Pid)
	// Read up to the load's start, at most 60s, then leave.
	var seen bytes.Buffer
	got := make(chan bool, 1)
	go func() {
		buf := make([]byte, 4096)
		for !strings.Contains(seen.String(), "load started") {
			n, err := pr.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				got <- false
				return
			}
		}
		got <- true
	}()
	select {
	case ok := <-got:
		if !ok {
			t.Fatalf("output ended before the load started:\n%s", seen.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the load did not start within 60s")
	}
	pr.Close()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("faultline did not finish within 60s of its reader leaving")
	}
	if code := cmd.ProcessState.ExitCode(); code != exitcode.OK {
		t.Errorf("exit %d (%s), want 0: the run's own verdict", code, cmd.ProcessState)
	}
	b, err := os.ReadFile(filepath.Join(report, "results.json"))
	var res runResults
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil || res.Verdict != "pass" {
		t.Errorf("results: %v, verdict %q (%s); want pass", err, res.Verdict, res.Reason)
	}
	if live, _ := sessionProcesses(cmd.Process.Pid); len(live) > 0 {
		t.Errorf("processes of the run's session left: %q", live)
	}
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Errorf("the target's port is still taken: %v", err)
	} else {
		ln.Close()
	}
}
