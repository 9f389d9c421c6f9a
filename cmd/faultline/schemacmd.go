package main

import (
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/schema"
)

func newSchemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Work with the scenario schema: vendor it, export it, print it",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "vendor [DIR]",
		Short: "Write the schema into DIR/cue.mod so that `cue vet -c ./...` checks scenarios offline",
		Long: `vendor writes faultline's scenario schema into DIR/cue.mod/pkg/faultline.dev/schema
(DIR defaults to the current directory), creating DIR/cue.mod/module.cue when it
is missing. Run it again after upgrading faultline: "faultline vet" reports a
stale vendored copy.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			written, err := schema.Vendor(dir)
			if err != nil {
				return fmt.Errorf("vendoring the schema into %s: %w", dir, err)
			}
			for _, f := range written {
				fmt.Fprintln(cmd.ErrOrStderr(), "wrote", f)
			}
			return nil
		},
	})
	var out string
	js := &cobra.Command{
		Use:   "jsonschema",
		Short: "Export the schema as JSON Schema for YAML editors (yaml-language-server)",
		Example: `  faultline schema jsonschema -f .faultline/scenario.schema.json
  # then, first line of a scenario YAML file:
  # yaml-language-server: $schema=.faultline/scenario.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := schema.NewLoader().JSONSchema()
			if err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, b)
		},
	}
	js.Flags().StringVarP(&out, "file", "f", "", "write to this file instead of standard output")
	cmd.AddCommand(js)
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the CUE schema",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fs.WalkDir(schema.Files(), ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := fs.ReadFile(schema.Files(), p)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			})
		},
	})
	return cmd
}
