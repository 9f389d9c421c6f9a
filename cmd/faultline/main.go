// Command faultline compiles typed chaos scenarios into Chaos Mesh manifests
// and k6 scripts, runs them, and judges the result against SLOs and golden
// baselines. The command is thin: flags are parsed here, the work is done by
// the library packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"golang.org/x/term"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"faultline.dev/faultline/internal/exitcode"
)

func main() {
	// Chaos Mesh's validation code logs through controller-runtime, which
	// prints a warning and a stack trace when no logger was set.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr *os.File) int {
	out, errOut := newOutputWriter(stdout), newOutputWriter(stderr)
	ctx, stop := notifyStop(errOut, term.IsTerminal(int(stderr.Fd())))
	defer stop()

	root := newRootCmd(out, errOut)
	root.SetArgs(args[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	var ee *exitcode.Error
	if errors.As(err, &ee) {
		if ee.Err != nil && !errors.Is(ee.Err, errSilent) {
			fmt.Fprintln(errOut, "Error:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(errOut, "Error:", err)
	if isUsageError(err) {
		return exitcode.Usage
	}
	return exitcode.Internal
}

// Signals. The first SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal was
// closed) or SIGQUIT (Ctrl-\) cancels the command's context: a run
// recovers every fault and stops every process it started, writes its
// report and exits 6 (aborted), whichever of the four it was. Until the
// command returns:
//
//   - another SIGINT or SIGQUIT (someone at the keyboard, again) exits at
//     once, exit code 6: the processes this one started are killed with
//     their process groups (SIGKILL); faults on a cluster stay until their
//     own duration ends (faultline cleanup --run-id ID removes them). A
//     second SIGQUIT also prints every goroutine's stack, as Go's default
//     would (where a cleanup hung).
//   - another SIGTERM or SIGHUP is only noted: a closing terminal may send
//     SIGHUP more than once, and a supervisor that wants the process gone
//     sends SIGKILL.
//
// SIGPIPE is caught too, so that a write to a closed pipe on stdout or
// stderr fails with EPIPE (outputWriter drops it) instead of killing the
// process, as Go's default would.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// notifyStop returns the context the first stop signal cancels, and the
// function that stops watching. Messages go to stderr (after a newline
// when it is a terminal, which may hold a progress line).
func notifyStop(stderr io.Writer, tty bool) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) // never read: only caught
	sigs := make(chan os.Signal, len(stopSignals))
	signal.Notify(sigs, stopSignals...)
	done := make(chan struct{})
	go func() {
		nl := ""
		if tty {
			nl = "\n"
		}
		var first os.Signal
		for {
			var s os.Signal
			select {
			case <-done:
				return
			case s = <-sigs:
			}
			switch {
			case first == nil:
				first = s
				fmt.Fprintf(stderr, "%sfaultline: %s: stopping and cleaning up (Ctrl-C again to exit at once, leaving what is not cleaned up yet)\n", nl, signalName(s))
				cancel(fmt.Errorf("stopped by %s", signalName(s)))
			case s == os.Interrupt || s == syscall.SIGQUIT:
				fmt.Fprintf(stderr, "%sfaultline: %s again: exiting at once; the processes it started are killed; faults on a cluster stay until their own duration ends (faultline cleanup --run-id ID removes them)\n", nl, signalName(s))
				// The stacks first: they show where the cleanup hangs, and
				// the kill may let a cleanup that waited for the children
				// end, and the process exit with its report, before a dump
				// after it (a CI run printed no stack that way).
				if s == syscall.SIGQUIT {
					buf := make([]byte, 1<<20)
					stderr.Write(buf[:runtime.Stack(buf, true)])
				}
				killChildren()
				os.Exit(exitcode.Aborted)
			default:
				fmt.Fprintf(stderr, "%sfaultline: %s: still cleaning up after %s (Ctrl-C to exit at once)\n", nl, signalName(s), signalName(first))
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
}

// killChildren kills every process this one started, each with its
// process group when it leads one (the target and the load run in their
// own groups, out of reach of the terminal's Ctrl-C). Linux only (/proc);
// elsewhere it kills nothing.
func killChildren() {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, pgid, ok := procParent(pid)
		if !ok || ppid != self {
			continue
		}
		if pgid == pid {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		} else {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// procParent reads a process's parent and process group from
// /proc/<pid>/stat ("pid (comm) state ppid pgrp ...", comm may hold
// spaces and parentheses).
func procParent(pid int) (ppid, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	return ppid, pgid, err1 == nil && err2 == nil
}
