package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/compiler"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/oci"
)

func newPullCmd() *cobra.Command {
	var (
		rf     registryFlags
		dir    string
		format string
	)
	cmd := &cobra.Command{
		Use:   "pull REGISTRY/REPO:VERSION | REGISTRY/REPO@sha256:DIGEST",
		Short: "Pull a compiled version from an OCI registry, every file checked against plan.json",
		Long: `pull downloads a compiled version that faultline push uploaded and writes
it into DIR (-o; default out/<name>/<version>, where faultline compile
writes), byte for byte. Every file is checked against the sha256 plan.json
lists, and the manifest's annotations against plan.json; anything that does
not match is refused and nothing is written. A pull by digest
(REGISTRY/REPO@sha256:...) gets exactly the version that digest names.

DIR must not exist, be empty, or already hold the same version (then
nothing changes). The manifest digest is printed on stdout.

Credentials as for push: the Docker config file and its credential helpers.

Exit codes: 0 pulled, 2 usage, 3 not a valid compiled version, 7 registry
error (unreachable, denied, not found).`,
		Example: `  faultline pull registry.example.com/chaos/checkout-jitter:1.0.0
  faultline pull 127.0.0.1:5000/chaos/checkout-jitter@sha256:0123... -o /tmp/cj
  faultline run registry.example.com/chaos/checkout-jitter@sha256:0123...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "digest" && format != "json" {
				return usageError{fmt.Errorf("--format must be digest or json, not %q", format)}
			}
			ctx := cmd.Context()
			res, err := oci.Pull(ctx, args[0], dir, rf.options(cmd))
			if err != nil {
				return registryExit(ctx, err)
			}
			state := "pulled"
			if res.Unchanged {
				state = "already there:"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s %s@%s into %s (%d files)\n", state, res.Scenario, res.Version, res.Dir, res.Files)
			if format == "json" {
				b, _ := json.MarshalIndent(res, "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write the version into (default out/<name>/<version>)")
	cmd.Flags().StringVar(&format, "format", "digest", "what to print on stdout: digest or json")
	return cmd
}

// runSource turns run's PATH argument into paths the schema loader reads:
// a registry reference (REGISTRY/REPO@sha256:... or :VERSION) is pulled
// into a temporary directory, every file verified, and its scenario.json
// (the scenario it was compiled from; its sha256 is the content hash) is
// run. Anything else is a local path and passes through. done removes the
// temporary directory.
func runSource(cmd *cobra.Command, arg string, rf *registryFlags) (paths []string, done func(), err error) {
	done = func() {}
	if _, statErr := os.Stat(arg); statErr == nil || !oci.LooksLikeReference(arg) {
		return []string{arg}, done, nil
	}
	ctx := cmd.Context()
	v, d, err := oci.Fetch(ctx, arg, rf.options(cmd))
	if err != nil {
		return nil, done, registryExit(ctx, err)
	}
	if v.Get(compiler.ScenarioFileName) == nil {
		return nil, done, exitcode.With(exitcode.Invalid, fmt.Errorf("%s (%s@%s, compiled by faultline %s) carries no %s, so it cannot be run from the registry: compile it with this faultline and push it as a new version",
			arg, v.Plan.Scenario, v.Plan.Version, v.Plan.Faultline.Version, compiler.ScenarioFileName))
	}
	tmp, err := os.MkdirTemp("", "faultline-pull-")
	if err != nil {
		return nil, done, err
	}
	done = func() { os.RemoveAll(tmp) }
	dir := filepath.Join(tmp, v.Plan.Scenario, v.Plan.Version)
	if _, err := oci.WriteDir(v, dir); err != nil {
		done()
		return nil, func() {}, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "pulled %s@%s (%s, content %s)\n", v.Plan.Scenario, v.Plan.Version, d, v.Plan.ContentHash)
	return []string{filepath.Join(dir, compiler.ScenarioFileName)}, done, nil
}
