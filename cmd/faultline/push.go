package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/oci"
)

// registryFlags are the flags of every command that talks to a registry.
type registryFlags struct {
	plainHTTP bool
}

func (r *registryFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&r.plainHTTP, "plain-http", false, "talk HTTP, not HTTPS, to the registry (loopback registries such as 127.0.0.1:5000 always use HTTP)")
}

func (r *registryFlags) options(cmd *cobra.Command) oci.Options {
	return oci.Options{PlainHTTP: r.plainHTTP, Progress: cmd.ErrOrStderr()}
}

// registryExit maps a push or pull error to its exit code: 3 for content
// that is not a valid compiled version or a version already pushed with
// other content, 6 for a signal, 7 for the registry (network, auth, server).
func registryExit(ctx context.Context, err error) error {
	var ie *oci.InfraError
	switch {
	case ctx.Err() != nil:
		return exitcode.With(exitcode.Aborted, err)
	case errors.Is(err, oci.ErrInvalid), errors.Is(err, oci.ErrVersionExists):
		return exitcode.With(exitcode.Invalid, err)
	case errors.As(err, &ie):
		return exitcode.With(exitcode.Infrastructure, err)
	}
	return usageError{err}
}

func newPushCmd() *cobra.Command {
	var (
		rf     registryFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "push DIR REGISTRY/REPO",
		Short: "Push a compiled version to an OCI registry, tagged with its version",
		Long: `push uploads a compiled version (the directory faultline compile wrote,
out/<name>/<version>) to an OCI registry as one artifact of type
` + oci.ArtifactType + `: every file as a layer titled
with its path, whose digest is the sha256 plan.json lists, and the
annotations ` + oci.AnnotationScenario + `, ` + oci.AnnotationVersion + `,
` + oci.AnnotationContentHash + ` and ` + oci.AnnotationFaultlineVersion + `.
The tag is the scenario version ('+' written as '_'). The manifest digest
is printed on stdout: REGISTRY/REPO@DIGEST pulls exactly this version.

Every file is checked against plan.json before anything is sent; runs/ (run
reports) is not part of the version and is not pushed.

A compiled version is immutable, in the registry too: pushing different
content under a version that is already there is refused (bump the
version); the same content again is a no-op. Blobs are uploaded first, then
the manifest, then the tag: a push that fails midway leaves no tag.

Credentials come from the Docker config file ($DOCKER_CONFIG/config.json,
else ~/.docker/config.json) and its credential helpers, as docker login and
oras login write them.

Exit codes: 0 pushed or already there, 2 usage, 3 not a valid compiled
version or the version exists with other content, 7 registry error.`,
		Example: `  faultline compile scenarios/checkout-jitter.cue -o out
  faultline push out/checkout-jitter/1.0.0 registry.example.com/chaos/checkout-jitter
  faultline push out/checkout-jitter/1.0.0 127.0.0.1:5000/chaos/checkout-jitter -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "digest" && output != "json" {
				return usageError{fmt.Errorf("--output must be digest or json, not %q", output)}
			}
			ctx := cmd.Context()
			opts := rf.options(cmd)
			if v, err := oci.ReadDir(args[0]); err == nil {
				for _, x := range oci.Extra(args[0], v) {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is not listed in plan.json: not pushed\n", x)
				}
			}
			res, err := oci.Push(ctx, args[0], args[1], opts)
			if err != nil {
				return registryExit(ctx, err)
			}
			if output == "json" {
				b, _ := json.MarshalIndent(res, "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "digest", "what to print on stdout: digest or json")
	return cmd
}
