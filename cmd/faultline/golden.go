package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/golden"
	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/report"
	"faultline.dev/faultline/schema"
)

func newGoldenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "golden",
		Short: "Manage golden baselines: bless a run as the baseline of its scenario",
		Long: `A golden baseline holds, per phase and per metric, what a blessed run
measured and how many samples it rests on, plus the environment it ran in.
It lives at <dir>/<scenario>/v<major>.json (default dir: golden): baselines
are keyed by the scenario's MAJOR version, so a major bump asks for a new
baseline.`,
	}
	var dir string
	bless := &cobra.Command{
		Use:   "bless RESULTS",
		Short: "Make a run's results.json the golden baseline of its scenario's major version",
		Example: `  faultline golden bless out/checkout-jitter/1.0.0/runs/20260101T120000-abcdef/results.json
  faultline golden bless results.json --dir testdata/golden`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := results.ReadResult(resultsPath(args[0]))
			if err != nil {
				return usageError{err}
			}
			path, err := golden.Bless(res, dir)
			if err != nil {
				return exitcode.With(exitcode.Invalid, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "blessed %s %s (run %s) as %s\n", res.Scenario, res.Version, res.RunID, path)
			return nil
		},
	}
	bless.Flags().StringVar(&dir, "dir", golden.DefaultDir, "directory of the golden baselines")
	cmd.AddCommand(bless)
	return cmd
}

func newDiffCmd() *cobra.Command {
	var (
		dir    string
		output string
	)
	cmd := &cobra.Command{
		Use:   "diff RESULTS [BASELINE]",
		Short: "Compare a run with its golden baseline",
		Long: `diff compares a run's results.json with the golden baseline of its scenario's
major version (<dir>/<scenario>/v<major>.json, or the BASELINE file given),
per phase and per metric, under the tolerances of the scenario's baseline
section (recorded in results.json; default: 15% relative, with a noise floor
per metric). A change is a regression only when it exceeds every limit set.

Exit codes: 0 within tolerance, 5 regression, 3 no baseline or a baseline
refused (another major version: re-bless it), 2 usage.`,
		Example: `  faultline diff out/run1/results.json
  faultline diff out/run1/results.json golden/checkout-jitter/v1.json -o markdown`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" && output != "markdown" {
				return usageError{fmt.Errorf("-o must be text, json or markdown, not %q", output)}
			}
			res, err := results.ReadResult(resultsPath(args[0]))
			if err != nil {
				return usageError{err}
			}
			var base *golden.Baseline
			var path string
			if len(args) == 2 {
				path = args[1]
				base, err = golden.Load(path)
			} else {
				base, path, err = golden.LoadFor(dir, res.Scenario, res.Version)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return exitcode.With(exitcode.Invalid, fmt.Errorf("no golden baseline for %s %s at %s: bless one with `faultline golden bless %s`", res.Scenario, res.Version, path, args[0]))
			}
			if err != nil {
				return exitcode.With(exitcode.Invalid, err)
			}
			rep, err := golden.Diff(res, base, path, res.Tolerances)
			if err != nil {
				return exitcode.With(exitcode.Invalid, err)
			}
			golden.Judge(res, rep)
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				b, _ := json.MarshalIndent(rep, "", "  ")
				_, err = out.Write(append(b, '\n'))
			case "markdown":
				err = report.Markdown(out, res)
			default:
				err = golden.WriteText(out, rep)
			}
			if err != nil {
				return err
			}
			if rep.Status == diff.StatusRegression {
				return exitcode.With(exitcode.Regression, errSilent)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", golden.DefaultDir, "directory of the golden baselines")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or markdown")
	return cmd
}

func newReportCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "report RESULTS",
		Short: "Regenerate junit.xml, report.md and report.html from a results.json",
		Example: `  faultline report out/run1/results.json
  faultline report out/run1/results.json -o /tmp/report`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := resultsPath(args[0])
			res, err := results.ReadResult(path)
			if err != nil {
				return usageError{err}
			}
			if dir == "" {
				dir = filepath.Dir(path)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := report.WriteAll(dir, res); err != nil {
				return err
			}
			for _, f := range []string{report.JUnitFile, report.MarkdownFile, report.HTMLFile} {
				fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, f))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write the reports to (default: the directory of RESULTS)")
	return cmd
}

// resultsPath accepts a results.json or the report directory holding it.
func resultsPath(p string) string {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return filepath.Join(p, results.ResultsFile)
	}
	return p
}

// afterRun is what `faultline run` does once the run is judged: the golden
// diff, --update-golden, the Grafana annotations.
type afterRun struct {
	goldenDir    string
	updateGolden bool
	grafanaURL   string
	grafanaToken string
}

func (a *afterRun) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.goldenDir, "golden-dir", golden.DefaultDir, "directory of the golden baselines (<dir>/<scenario>/v<major>.json)")
	f.BoolVar(&a.updateGolden, "update-golden", false, "bless this run as the golden baseline when its SLOs were met")
	f.StringVar(&a.grafanaURL, "grafana-url", "", "post each fault's actual window to this Grafana as an annotation (e.g. http://grafana:3000)")
	f.StringVar(&a.grafanaToken, "grafana-token", "", "Grafana API token (default $GRAFANA_TOKEN)")
}

// apply compares the run with its golden baseline (when one exists for the
// scenario's major version), turns a passing run that regressed into a
// regression (exit 5), re-blesses with --update-golden, posts the Grafana
// annotations and rewrites results.json. Problems here are warnings: they
// never turn a verdict into a pass or a failure.
func (a *afterRun) apply(ctx context.Context, stderr io.Writer, res *results.Result, s *schema.Scenario, reportDir string) {
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(stderr, "warning:", msg)
		res.Warnings = append(res.Warnings, msg)
	}
	res.Tolerances = s.Baseline
	judged := res.Unsupported == "" && (res.Verdict == results.VerdictPass || res.Verdict == results.VerdictSLOBreach)
	if judged {
		base, path, err := golden.LoadFor(a.goldenDir, res.Scenario, res.Version)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !a.updateGolden {
				fmt.Fprintf(stderr, "no golden baseline at %s (bless this run with --update-golden or `faultline golden bless`)\n", path)
			}
		case err != nil:
			warn("golden baseline not used: %v", err)
		default:
			rep, err := golden.Diff(res, base, path, res.Tolerances)
			if err != nil {
				warn("golden baseline not used: %v", err)
				break
			}
			rep.Updated = a.updateGolden && res.Verdict == results.VerdictPass
			golden.Judge(res, rep)
			fmt.Fprintf(stderr, "golden baseline %s: %d regression(s), %d improvement(s)\n", path, rep.Regressions, rep.Improvements)
		}
		if a.updateGolden {
			if res.Verdict != results.VerdictPass {
				warn("--update-golden: not blessed, the run ended %s", res.Verdict)
			} else if p, err := golden.Bless(res, a.goldenDir); err != nil {
				warn("--update-golden: %v", err)
			} else {
				fmt.Fprintf(stderr, "blessed this run as the golden baseline %s\n", p)
			}
		}
	}
	if a.grafanaURL != "" {
		token := a.grafanaToken
		if token == "" {
			token = os.Getenv("GRAFANA_TOKEN")
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := report.Annotate(actx, nil, a.grafanaURL, token, res); err != nil {
			warn("grafana annotations: %v", err)
		}
		cancel()
	}
	if err := res.Write(reportDir); err != nil {
		fmt.Fprintln(stderr, "warning: rewriting results.json:", err)
	}
}
