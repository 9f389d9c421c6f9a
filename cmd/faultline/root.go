package main

import (
	"errors"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/internal/buildinfo"
)

// errSilent marks an error whose details the command already printed.
var errSilent = errors.New("already reported")

// usageError marks an error in the command line itself (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func isUsageError(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	// cobra's own flag and argument errors.
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "bad flag syntax"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "faultline",
		Short: "Typed chaos scenarios for Go services: vet, compile, run, judge",
		Long: `faultline turns one typed scenario (load, faults, timing, SLOs) into Chaos Mesh
manifests and a k6 script, runs them together, and judges the result against
the scenario's SLOs and a golden baseline.

Exit codes:
  0  success (vet clean, run passed)
  1  internal error
  2  usage error (bad flags or arguments)
  3  invalid scenario
  4  SLO breach
  5  regression against the golden baseline
  6  aborted (signal or abort condition)
  7  infrastructure error (cluster, load, target or injector)`,
		Version:       buildinfo.Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(
		withVersionCheck(newVersionCmd()),
		newVetCmd(),
		newSchemaCmd(),
		newListCmd(),
		newCompileCmd(),
		newRunCmd(),
		newCleanupCmd(),
		newPlanCmd(),
		newDemoTargetCmd(),
		newGoldenCmd(),
		newDiffCmd(),
		newReportCmd(),
		newInitCmd(),
		newImportCmd(),
		newPushCmd(),
		newPullCmd(),
		newMaturityCmd(),
		newGrafanaCmd(),
		newStressWorkerCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print faultline's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), "faultline "+buildinfo.Version()+"\n")
			return err
		},
	}
}
