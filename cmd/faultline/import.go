package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/compiler/importer"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/schema"
)

func newImportCmd() *cobra.Command {
	var out, format, name, namespace string
	var lead, recovery, oneShot time.Duration
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Turn Chaos Mesh manifests into a scenario",
		Long: `import reads Chaos Mesh YAML (chaos objects, multi-document files, and the
chaos templates of a Workflow or a Schedule) and writes one scenario with a
fault for each chaos, every field carried over.

Fault windows come from each chaos's duration, and in a Workflow from the
Serial, Parallel and Suspend templates' order and deadlines; they are shifted
by --lead so that the run has a steady phase. A Schedule's chaos fires once.
A one-shot fault (pod-kill, container-kill) without a duration is written
with just start, as in Chaos Mesh: the kill happens at that instant and is
judged on the 30 s after it; --one-shot-window gives it a duration instead.

The scenario's target.url and load are placeholders: fill them in; vet names
them until you do. A field faultline cannot carry is an error naming the
object, the field and its line: nothing is dropped. Before writing, import
compiles the scenario back and checks that every Chaos Mesh spec comes out
the same (both with Chaos Mesh's defaults filled in).

Exit codes: 0 imported, 3 a manifest cannot be imported, 2 usage error, 1 faultline bug.`,
		Example: `  faultline import chaos/network-delay.yaml -o scenarios/delay.yaml
  faultline import workflow.yaml --format cue -o scenarios/wf.cue
  faultline import a.yaml b.yaml --name checkout-chaos`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if format == "" {
				format = importer.FormatYAML
				if strings.HasSuffix(out, ".cue") {
					format = importer.FormatCUE
				}
			}
			if format != importer.FormatYAML && format != importer.FormatCUE {
				return usageError{fmt.Errorf("--format must be yaml or cue, not %q", format)}
			}
			for _, d := range []struct {
				flag string
				v    time.Duration
			}{{"--lead", lead}, {"--recovery", recovery}, {"--one-shot-window", oneShot}} {
				if d.v < 0 || (d.v == 0 && d.flag == "--recovery") {
					return usageError{fmt.Errorf("%s must be a positive duration, not %s", d.flag, d.v)}
				}
			}
			var files []importer.File
			for _, a := range args {
				data, err := os.ReadFile(a)
				if err != nil {
					return usageError{err}
				}
				files = append(files, importer.File{Name: a, Data: data})
			}
			opts := importer.Options{Name: name, Namespace: namespace, Lead: schema.Duration(lead),
				Recovery: schema.Duration(recovery), OneShot: schema.Duration(oneShot)}
			if lead == 0 {
				opts.Lead = -1
			}
			res, err := importer.Import(cmd.Context(), files, opts)
			if err != nil {
				var es importer.Errors
				if errors.As(err, &es) {
					fmt.Fprintln(stderr, es.Error())
					return exitcode.With(exitcode.Invalid, errSilent)
				}
				return err
			}
			data, err := importer.Write(res, format)
			if err != nil {
				return err
			}
			todo, err := vetImported(cmd.Context(), data, format, out)
			if err != nil {
				return err
			}
			if err := writeOut(stdout, out, data); err != nil {
				return err
			}
			where := out
			if where == "" || where == "-" {
				where = "the scenario"
			}
			fmt.Fprintf(stderr, "imported %d fault(s) into %s (%s); fill in before running:\n", len(res.Scenario.Faults), where, res.Scenario.Name)
			for _, d := range todo {
				fmt.Fprintf(stderr, "  %s: %s\n", d.Path, d.Message)
			}
			for _, n := range res.Notes {
				fmt.Fprintf(stderr, "note: %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write the scenario to (default: standard output); a .cue name writes CUE")
	cmd.Flags().StringVar(&format, "format", "", "yaml or cue (default: from --output's extension, else yaml)")
	cmd.Flags().StringVar(&name, "name", "", "the scenario's name (default: the first file's base name)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of objects without metadata.namespace")
	cmd.Flags().DurationVar(&lead, "lead", 30*time.Second, "steady phase before the first fault (0: none)")
	cmd.Flags().DurationVar(&recovery, "recovery", 30*time.Second, "how long the load runs after the last fault")
	cmd.Flags().DurationVar(&oneShot, "one-shot-window", 0, "duration given to a pod-kill or container-kill without one (0: none, the kill is an instant judged on the 30s after it)")
	return cmd
}

// vetImported loads the written scenario as vet would: the placeholders
// are what is left to fill in; anything else is a faultline bug (the
// importer wrote a scenario its own schema rejects).
func vetImported(ctx context.Context, data []byte, format, out string) (schema.Diagnostics, error) {
	dir, err := os.MkdirTemp("", "faultline-import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	base := "scenario." + format
	if format == importer.FormatCUE {
		// A CUE file loads as a package: give it the schema module.
		if _, err := schema.Vendor(dir); err != nil {
			return nil, fmt.Errorf("vetting the imported scenario: %w", err)
		}
	}
	path := filepath.Join(dir, base)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	loaded, diags, err := schema.NewLoader().Load(ctx, []string{path})
	if err != nil {
		return nil, err
	}
	diags = append(diags, schema.CheckDeploy(loaded)...).Sort()
	var todo, bad schema.Diagnostics
	for _, d := range diags {
		if strings.Contains(d.Message, "faultline import left a placeholder") {
			todo = append(todo, d)
		} else {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		name := out
		if name == "" {
			name = "the imported scenario"
		}
		var b strings.Builder
		for _, d := range bad {
			d.File = name
			b.WriteString("\n  " + d.String())
		}
		return nil, exitcode.With(exitcode.Internal, fmt.Errorf("faultline bug: the imported scenario does not vet (please report this):%s", b.String()))
	}
	return todo, nil
}
