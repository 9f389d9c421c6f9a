package main

import (
	"github.com/spf13/cobra"

	"faultline.dev/faultline/runner/report"
)

func newGrafanaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grafana",
		Short: "Grafana support: the pre-launch dashboard faultline ships",
	}
	var out string
	dash := &cobra.Command{
		Use:   "dashboard",
		Short: "Print the Grafana dashboard (JSON) for faultline's series and the target's Go runtime",
		Long: `dashboard prints a Grafana dashboard (JSON model, for Dashboards > Import or a
provisioning directory) over a Prometheus data source:

  - per phase: request rate, error rate and p50/p95/p99 latency from the k6
    remote-write series (an in-cluster run's k6 runners, or faultline run
    --prometheus-write), every runner summed;
  - the target's goroutines, heap and RSS per pod, GC pauses (runtime/metrics
    p99, or the default collector's largest pause, an upper bound of p99) and
    scheduler latency;
  - each fault's actual window as an annotation: from faultline_fault_active
    (written by --prometheus-write, and after an in-cluster run judged from
    Prometheus), and the annotations faultline run --grafana-url posts.

Its variables choose the scenario, the run, and the target's job, namespace
and pod.`,
		Example: `  faultline grafana dashboard > board.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := report.Dashboard()
			if err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, b)
		},
	}
	dash.Flags().StringVarP(&out, "file", "f", "", "write to this file instead of standard output")
	cmd.AddCommand(dash)
	return cmd
}
