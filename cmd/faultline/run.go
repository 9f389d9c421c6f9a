package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/local"
	"faultline.dev/faultline/schema"
)

func newRunCmd() *cobra.Command {
	var (
		backend   string
		reportDir string
		name      string
		quiet     bool
		output    string
	)
	cmd := &cobra.Command{
		Use:   "run PATH",
		Short: "Run a scenario: load, faults on the plan's clock, per-phase SLO verdict",
		Long: `run executes one scenario: it starts the load with the embedded k6, injects and
recovers each fault at its offset through the backend, records the actual
fault windows, scrapes the target's Go runtime metrics, and judges every SLO
per phase. Whatever happens (Ctrl-C, a crash), every fault is recovered and
every child process stopped before faultline exits.

Backends:
  local       no cluster: a fault injector in front of the target on loopback,
              CPU/memory stress beside it, kill/stop of the target process when
              target.local.command starts it
  kubernetes  Chaos Mesh objects in a cluster (not available in this version)

The report directory (default out/<name>/<version>/runs/<run-id>) receives
results.json, k6.log, the compiled k6 script and pprof snapshots of the target.

Exit codes: 0 pass, 4 SLO breach, 6 aborted, 7 infrastructure error (including
a phase without samples), 2 usage (e.g. a fault the backend cannot run),
3 invalid scenario.`,
		Example: `  faultline run scenarios/checkout-jitter.cue
  faultline run scenarios/ --scenario checkout-jitter --report-dir out/run1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("--output must be table or json, not %q", output)}
			}
			ctx := cmd.Context()
			loaded, diags, err := schema.NewLoader().Load(ctx, args)
			if err != nil {
				return exitcode.With(exitcode.Aborted, err)
			}
			if len(diags) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), diags.Error())
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			l, err := pick(loaded, name, args[0])
			if err != nil {
				return err
			}
			p, err := plan.New(l.Scenario)
			if err != nil {
				return exitcode.With(exitcode.Invalid, err)
			}
			files, kdiags, err := k6.EmitLoaded(l)
			if len(kdiags) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), kdiags.Error())
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			if err != nil {
				return err
			}
			runID := newRunID()
			if reportDir == "" {
				reportDir = filepath.Join("out", l.Scenario.Name, l.Scenario.Version, "runs", runID)
			}
			script := filepath.Join(reportDir, k6.ScriptPath)
			if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(script, files.Get(k6.ScriptPath), 0o644); err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var b runner.Backend
			switch backend {
			case "local":
				tlog, err := os.Create(filepath.Join(reportDir, "target.log"))
				if err != nil {
					return err
				}
				defer tlog.Close()
				b = local.New(l.Scenario, self, tlog)
			case "kubernetes":
				return exitcode.With(exitcode.Usage, fmt.Errorf("the kubernetes backend is not available in this version of faultline; run with --backend local, or compile with `faultline compile` and apply the Chaos Mesh manifests"))
			default:
				return usageError{fmt.Errorf("--backend must be local or kubernetes, not %q", backend)}
			}
			stderr := cmd.ErrOrStderr()
			var progress io.Writer
			if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !quiet {
				progress = stderr
			}
			var log io.Writer = stderr
			if quiet {
				log = nil
			}
			fmt.Fprintf(stderr, "running %s %s on %s (run %s, report %s)\n", l.Scenario.Name, l.Scenario.Version, backend, runID, reportDir)
			res, err := runner.Run(ctx, p, b, runner.Options{Script: script, ReportDir: reportDir, Self: self, Progress: progress, Log: log, RunID: runID})
			if progress != nil {
				fmt.Fprintln(stderr)
			}
			if err != nil && res == nil {
				return exitcode.With(exitcode.Infrastructure, err)
			}
			if output == "json" {
				b, _ := os.ReadFile(filepath.Join(reportDir, runner.ResultsFile))
				cmd.OutOrStdout().Write(b)
			} else {
				res.WriteTable(cmd.OutOrStdout())
				fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(reportDir, runner.ResultsFile))
			}
			if err != nil {
				fmt.Fprintln(stderr, "writing the report:", err)
			}
			if res.Unsupported != "" {
				return exitcode.With(exitcode.Usage, errSilent)
			}
			if res.ExitCode != 0 {
				return exitcode.With(res.ExitCode, errSilent)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&backend, "backend", "local", "where faults are injected: local or kubernetes")
	f.StringVar(&reportDir, "report-dir", "", "directory for results.json and the rest of the report (default out/<name>/<version>/runs/<run-id>)")
	f.StringVar(&name, "scenario", "", "the scenario to run when PATH holds several")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress and no event lines on stderr")
	f.StringVarP(&output, "output", "o", "table", "result on stdout: table or json")
	return cmd
}

// pick chooses the one scenario to run.
func pick(loaded []*schema.Loaded, name, path string) (*schema.Loaded, error) {
	if name != "" {
		for _, l := range loaded {
			if l.Scenario.Name == name {
				return l, nil
			}
		}
		return nil, usageError{fmt.Errorf("no scenario %q in %s", name, path)}
	}
	switch len(loaded) {
	case 0:
		return nil, exitcode.With(exitcode.Invalid, fmt.Errorf("no scenario in %s", path))
	case 1:
		return loaded[0], nil
	}
	var names []string
	for _, l := range loaded {
		names = append(names, l.Scenario.Name)
	}
	return nil, usageError{fmt.Errorf("%s holds %d scenarios (%v): choose one with --scenario", path, len(loaded), names)}
}

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}
