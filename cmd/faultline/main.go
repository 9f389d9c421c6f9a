// Command faultline compiles typed chaos scenarios into Chaos Mesh manifests
// and k6 scripts, runs them, and judges the result against SLOs and golden
// baselines. The command is thin: flags are parsed here, the work is done by
// the library packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/internal/k6cmd"
)

func main() {
	// Chaos Mesh's validation code logs through controller-runtime, which
	// prints a warning and a stack trace when no logger was set.
	ctrllog.SetLogger(logr.Discard())
	// Invoked through a link (or copy) named k6: be k6.
	if filepath.Base(os.Args[0]) == k6cmd.Name {
		k6cmd.Main(os.Args[1:]) // never returns
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr *os.File) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCmd(stdout, stderr)
	root.SetArgs(args[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	var ee *exitcode.Error
	if errors.As(err, &ee) {
		if ee.Err != nil && !errors.Is(ee.Err, errSilent) {
			fmt.Fprintln(stderr, "Error:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "Error:", err)
	if isUsageError(err) {
		return exitcode.Usage
	}
	return exitcode.Internal
}
