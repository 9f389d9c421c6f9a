package golden

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"faultline.dev/faultline/golden/diff"
)

// WriteText prints a diff for a terminal: the regressions first, then a
// table per phase, then the notes.
func WriteText(w io.Writer, rep *diff.Report) error {
	fmt.Fprintf(w, "%s %s vs baseline %s (%s, blessed %s)\n", rep.Scenario, rep.MeasuredVersion, rep.Baseline, rep.BaselineVersion, rep.BaselineCreated)
	if regs := rep.RegressedMetrics(); len(regs) > 0 {
		fmt.Fprintf(w, "\n%d regression(s):\n", len(regs))
		for _, m := range regs {
			fmt.Fprintf(w, "  %s %s: %s → %s (%s), allowed %s\n", m.Phase, m.Metric, FormatValue(m.Baseline, m.Unit), FormatValue(m.Measured, m.Unit), changeText(m), allowedText(m))
		}
	}
	for _, p := range rep.Phases {
		fmt.Fprintf(w, "\n%s\n", p.Phase)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  METRIC\tBASELINE\tMEASURED\tCHANGE\tALLOWED\tSTATUS")
		for _, m := range p.Metrics {
			base, meas := FormatValue(m.Baseline, m.Unit), FormatValue(m.Measured, m.Unit)
			if m.BaselineSamples == 0 {
				base = "-"
			}
			if m.MeasuredSamples == 0 {
				meas = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", m.Metric, base, meas, changeText(m), allowedText(m), strings.ToUpper(m.Status))
		}
		tw.Flush()
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "\nbaseline: %s — %d regression(s), %d improvement(s)\n", strings.ToUpper(rep.Status), rep.Regressions, rep.Improvements)
	return err
}

func changeText(m diff.Metric) string {
	if m.Status == diff.StatusNoData {
		return "-"
	}
	s := FormatChange(m.Change, m.Unit)
	if m.ChangePercent != nil {
		s += fmt.Sprintf(" (%+.1f%%)", *m.ChangePercent)
	}
	return s
}

func allowedText(m diff.Metric) string {
	v := m.Allowed
	if m.Direction == diff.HigherIsBetter {
		v = -v
	}
	return FormatChange(v, m.Unit)
}
