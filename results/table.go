package results

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the verdict, a table per phase, the SLOs and the faults.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\n%s %s  backend %s  run %s\n", r.Scenario, r.Version, r.Backend, r.RunID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PHASE\tWINDOW\tREQUESTS\tREQ/S\tERRORS\tP50\tP95\tP99\tMAX\tGOROUTINES\tHEAP\t")
	for _, p := range r.Phases {
		gor, heap := "-", "-"
		if p.RuntimeSeen > 0 {
			gor = fmt.Sprintf("%.0f", p.Goroutines)
			heap = fmt.Sprintf("%.1fMB", p.HeapInUse/1e6)
		}
		fmt.Fprintf(tw, "%s\t%.1f-%.1fs\t%d\t%.1f\t%.2f%%\t%.1fms\t%.1fms\t%.1fms\t%.1fms\t%s\t%s\t\n",
			p.Name, p.Start, p.End, p.Requests, p.Throughput, p.ErrorRate, p.P50, p.P95, p.P99, p.Max, gor, heap)
	}
	tw.Flush()
	for _, p := range r.Phases {
		if st := p.Statuses(); st != "" {
			fmt.Fprintf(w, "  %s statuses: %s\n", p.Name, st)
		}
	}
	if len(r.SLOs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLO\tPHASE\tLIMIT\tMEASURED\tSTATUS")
		for _, s := range r.SLOs {
			measured := fmt.Sprintf("%.2f%s", s.Measured, s.Unit)
			if s.Status == StatusNoData {
				measured = "no data"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %.2f%s\t%s\t%s\n", s.SLO, s.Phase, s.Op, s.Limit, s.Unit, measured, strings.ToUpper(s.Status))
		}
		tw.Flush()
	}
	if len(r.Faults) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FAULT\tKIND\tPLANNED\tACTUAL\tEFFECTIVE\tEVIDENCE")
		for _, f := range r.Faults {
			fmt.Fprintf(tw, "%s\t%s\t%s-%s\t%.2f-%.2fs\t%s\t%s\n", f.Fault, f.Kind, f.PlanStart, f.PlanEnd, f.StartOffset, f.EndOffset, f.Effective, f.Evidence)
		}
		tw.Flush()
	}
	if d := r.Goroutines; d != nil && len(d.Stacks) > 0 && goroutineSLOFailed(r) {
		fmt.Fprintf(w, "\ngoroutines grew from %d (%s) to %d (%s); the stacks that grew most:\n", d.Total[0], d.From, d.Total[1], d.To)
		for _, l := range d.Summary() {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if r.Recovery != nil {
		if r.Recovery.Recovered {
			fmt.Fprintf(w, "\nrecovered %.0fs after the last fault ended\n", r.Recovery.Seconds)
		} else {
			fmt.Fprintln(w, "\ndid not return to the steady level before the load ended")
		}
	}
	if r.LoadNote != "" {
		fmt.Fprintf(w, "\nnote: %s\n", r.LoadNote)
	}
	fmt.Fprintf(w, "\nverdict: %s — %s (exit %d)\n", strings.ToUpper(r.Verdict), r.Reason, r.ExitCode)
}

func goroutineSLOFailed(r *Result) bool {
	for _, s := range r.SLOs {
		if s.Status == StatusFail && strings.HasPrefix(s.SLO, "goroutines.") {
			return true
		}
	}
	return false
}
