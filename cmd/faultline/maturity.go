package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/runner/maturity"
)

func newMaturityCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "maturity RESULTS...",
		Short: "Summarise a service's runs as pre-launch maturity levels, with the evidence and what is missing",
		Long: `maturity reads results.json files (or directories searched for them) and
checks them against the pre-launch checklist: baseline; network jitter,
packet loss, IO latency, clock skew, memory pressure, CPU starvation, lock
contention; slow downstream, partition from a dependency, DNS failure; pod
kill, multi-stage incident. A run counts for an item by its faults' kinds, so
a service's own scenarios count as well as the library's.

Levels (each needs every item of its own and of the levels below):
  1 observable                 a baseline run passed with Go runtime metrics scraped
  2 controlled faults          network/resource faults ran, were effective, SLOs held
  3 dependency fallbacks hold  slow downstream, partition and DNS scenarios passed
  4 recovers by itself         pod kill and multi-stage passed with recovery SLOs,
                               a return to the steady level and the goroutine-leak check

Each level lists the runs it rests on (verdict, faults and their efficacy,
SLOs) and what is missing. It exits 0 whatever the level: it is a report.`,
		Example: `  faultline maturity out/
  faultline maturity out/*/*/runs/*/results.json -o markdown >> "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" && output != "markdown" {
				return usageError{fmt.Errorf("-o must be text, json or markdown, not %q", output)}
			}
			in, err := maturity.Load(args)
			if err != nil {
				return usageError{err}
			}
			rep := maturity.Assess(in)
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				b, err := rep.JSON()
				if err != nil {
					return err
				}
				_, err = out.Write(b)
				return err
			case "markdown":
				return rep.WriteMarkdown(out)
			}
			return rep.WriteText(out)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or markdown")
	return cmd
}
