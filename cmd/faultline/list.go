package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/schema"
)

func newListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list PATH...",
		Aliases: []string{"ls"},
		Short:   "List scenarios: name, version, load, faults and their windows",
		Example: `  faultline list scenarios/`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			loaded, diags, err := schema.NewLoader().Load(cmd.Context(), args)
			if err != nil {
				return exitcode.With(exitcode.Aborted, err)
			}
			for _, d := range diags {
				fmt.Fprintln(cmd.ErrOrStderr(), d)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVERSION\tLOAD\tFAULTS\tDESCRIPTION")
			for _, l := range loaded {
				s := l.Scenario
				var faults []string
				for _, n := range sortedFaults(s) {
					f := s.Faults[n]
					faults = append(faults, fmt.Sprintf("%s(%s %s-%s)", n, f.Kind(), f.Start, f.End()))
				}
				if len(faults) == 0 {
					faults = []string{"-"}
				}
				fmt.Fprintf(w, "%s\t%s\t%s %s\t%s\t%s\n", s.Name, s.Version, s.Load.Executor, schema.Duration(s.LoadLength()), strings.Join(faults, ", "), s.Description)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(diags) > 0 {
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			return nil
		},
	}
}

func sortedFaults(s *schema.Scenario) []string {
	names := make([]string, 0, len(s.Faults))
	for n := range s.Faults {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := s.Faults[a].Start - s.Faults[b].Start; c != 0 {
			return int(c / 1e6)
		}
		return strings.Compare(a, b)
	})
	return names
}
