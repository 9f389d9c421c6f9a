package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/schema"
)

func newVetCmd() *cobra.Command {
	var output string
	var allowEmpty bool
	cmd := &cobra.Command{
		Use:   "vet PATH...",
		Short: "Validate scenarios against the schema and faultline's deeper checks",
		Long: `vet loads scenarios and reports every problem as file:line:col: field.path: message.

PATH is a directory (its CUE package and its .yaml/.yml/.json files; "DIR/..."
for the tree below it), a .cue file, or a .yaml, .yml or .json file.

A CUE file declares scenarios under "scenarios" with the schema:

  package scenarios
  import "faultline.dev/schema"
  scenarios: schema.#Scenarios & {"checkout-jitter": {version: "1.0.0", ...}}

A YAML or JSON file holds one scenario at its top level.

vet also runs the checks compile makes when it emits Chaos Mesh objects and
the k6 script (a fault needs pods to act on, whole percentages, ...), so what
vet accepts compiles. A directory without scenario files is an error unless
--allow-empty is given.

Exit codes: 0 all scenarios valid, 3 a scenario is invalid (or none was
found), 2 usage error.`,
		Example: `  faultline vet scenarios/
  faultline vet ./...
  faultline vet -o json scenarios/checkout-jitter.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", output)}
			}
			defer lessGC(cmd.Context())()
			loaded, diags, err := schema.NewLoader().Load(cmd.Context(), args)
			if err != nil {
				return exitcode.With(exitcode.Aborted, err)
			}
			// What compile refuses, vet refuses too.
			diags = append(diags, schema.CheckDeploy(loaded)...)
			if allowEmpty {
				diags = slices.DeleteFunc(diags, schema.Diagnostic.NoScenarios)
			}
			diags = diags.Sort()
			loaded = slices.DeleteFunc(loaded, func(l *schema.Loaded) bool {
				return slices.ContainsFunc(diags, func(d schema.Diagnostic) bool { return d.File == l.File && d.Scenario == l.Scenario.Name })
			})
			// Notes (defaults that differ from Chaos Mesh's) on the valid
			// scenarios: said, never failing.
			notes := schema.Notes(loaded)
			if output == "json" {
				err = writeVetJSON(cmd.OutOrStdout(), loaded, diags, notes)
			} else {
				err = writeVetText(cmd.OutOrStdout(), cmd.ErrOrStderr(), loaded, diags, notes)
			}
			if err != nil {
				return err
			}
			if len(diags) > 0 {
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&allowEmpty, "allow-empty", false, "accept a directory that holds no scenario files (exit 0 instead of 3)")
	return cmd
}

func writeVetText(stdout, stderr io.Writer, loaded []*schema.Loaded, diags, notes schema.Diagnostics) error {
	for _, d := range append(slices.Clone(diags), notes...) {
		if _, err := fmt.Fprintln(stderr, d.String()); err != nil {
			return err
		}
	}
	for _, l := range loaded {
		if _, err := fmt.Fprintf(stdout, "ok  %s@%s\t%s\n", l.Scenario.Name, l.Scenario.Version, l.File); err != nil {
			return err
		}
	}
	if len(diags) > 0 {
		fmt.Fprintf(stderr, "%d problem(s)\n", len(diags))
	}
	return nil
}

type vetScenario struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	File    string `json:"file"`
}

type vetReport struct {
	Valid     bool                `json:"valid"`
	Scenarios []vetScenario       `json:"scenarios"`
	Errors    []schema.Diagnostic `json:"errors"`
	// Notes do not make a scenario invalid (severity "note"); errors carry
	// severity "error".
	Notes []schema.Diagnostic `json:"notes"`
}

func writeVetJSON(w io.Writer, loaded []*schema.Loaded, diags, notes schema.Diagnostics) error {
	r := vetReport{Valid: len(diags) == 0, Scenarios: []vetScenario{}, Errors: []schema.Diagnostic{}, Notes: []schema.Diagnostic{}}
	for _, l := range loaded {
		r.Scenarios = append(r.Scenarios, vetScenario{Name: l.Scenario.Name, Version: l.Scenario.Version, File: l.File})
	}
	for _, d := range diags {
		if d.Severity == "" {
			d.Severity = schema.SeverityError
		}
		r.Errors = append(r.Errors, d)
	}
	r.Notes = append(r.Notes, notes...)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
