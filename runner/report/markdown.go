package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"faultline.dev/faultline/golden"
	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/results"
)

// Markdown writes report.md, meant for a pull-request comment: the verdict
// first, then what went wrong (regressions first, then SLO breaches), then
// a table per phase with every metric next to its SLO and its baseline, then
// the faults with their actual windows.
func Markdown(w io.Writer, res *results.Result) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("## %s %s — %s %s\n\n", verdictIcon(res.Verdict), strings.ToUpper(res.Verdict), res.Scenario, res.Version)
	p("**%s** (exit %d)\n\n", mdEscape(res.Reason), res.ExitCode)
	p("backend `%s` · target `%s` · run `%s` · faultline `%s`", res.Backend, res.Target, res.RunID, res.FaultlineVersion)
	if b := res.Baseline; b != nil {
		p(" · baseline `%s` (%s, blessed %s)", b.Baseline, b.BaselineVersion, b.BaselineCreated)
	} else {
		p(" · no golden baseline")
	}
	p("\n\n")

	if b := res.Baseline; b != nil {
		if regs := b.RegressedMetrics(); len(regs) > 0 {
			p("### Regressions against the golden baseline\n\n")
			p("| phase | metric | measured | baseline | change | allowed |\n|---|---|--:|--:|--:|--:|\n")
			for _, m := range regs {
				p("| %s | **%s** | %s | %s | %s | %s |\n", m.Phase, m.Metric, value(m.Measured, m.Unit), value(m.Baseline, m.Unit), change(m), signed(worseSign(m)*m.Allowed, m.Unit))
			}
			p("\n")
		}
		if b.Updated {
			p("The golden baseline was updated from this run (`--update-golden`).\n\n")
		}
	}
	var breaches []results.SLOResult
	for _, s := range res.SLOs {
		if s.Status != results.StatusPass {
			breaches = append(breaches, s)
		}
	}
	if len(breaches) > 0 {
		p("### SLO breaches\n\n| phase | SLO | measured | expected | status |\n|---|---|--:|--:|---|\n")
		for _, s := range breaches {
			meas := sloValue(s.Measured, s.Unit)
			if s.Status == results.StatusNoData {
				meas = "no data"
			}
			p("| %s | **%s** | %s | %s %s | %s %s |\n", s.Phase, s.SLO, meas, mdOp(s.Op), sloValue(s.Limit, s.Unit), statusIcon(s.Status), s.Status)
		}
		p("\n")
	}

	for _, ph := range res.Phases {
		p("### %s · %.1f–%.1f s · %d requests · %.1f req/s\n\n", ph.Name, ph.Start, ph.End, ph.Requests, ph.Throughput)
		if st := ph.Statuses(); st != "" {
			p("Statuses: %s\n\n", mdEscape(st))
		}
		rows := phaseRows(res, ph)
		if res.Baseline != nil {
			p("| metric | measured | SLO | baseline | change | allowed | status |\n|---|--:|--:|--:|--:|--:|---|\n")
		} else {
			p("| metric | measured | SLO | status |\n|---|--:|--:|---|\n")
		}
		for _, r := range rows {
			if res.Baseline != nil {
				p("| %s | %s | %s | %s | %s | %s | %s |\n", r.mdName(), r.Measured, r.SLO, r.Baseline, r.Change, r.Allowed, r.mdStatus())
			} else {
				p("| %s | %s | %s | %s |\n", r.mdName(), r.Measured, r.SLO, r.mdStatus())
			}
		}
		p("\n")
	}

	if len(res.Faults) > 0 {
		p("### Faults\n\n| fault | kind | planned | actual | effective | evidence |\n|---|---|---|---|---|---|\n")
		for _, f := range res.Faults {
			actual := fmt.Sprintf("%.2f–%.2f s", f.StartOffset, f.EndOffset)
			if f.End.IsZero() {
				actual = fmt.Sprintf("%.2f s – (not recovered)", f.StartOffset)
			}
			p("| %s | %s | %s–%s | %s | %s | %s |\n", f.Fault, f.Kind, f.PlanStart, f.PlanEnd, actual, f.Effective, mdEscape(f.Evidence))
		}
		p("\n")
	}
	if r := res.Recovery; r != nil {
		if r.Recovered {
			p("Recovered %.0f s after the last fault ended.\n\n", r.Seconds)
		} else {
			p("Did not return to the steady level before the load ended.\n\n")
		}
	}
	if d := res.Goroutines; d != nil && len(d.Stacks) > 0 {
		p("### Goroutines that grew\n\nfrom %d at %s to %d at %s; the stacks that grew most:\n\n", d.Total[0], d.From, d.Total[1], d.To)
		for _, l := range d.Summary() {
			p("- `%s`\n", strings.ReplaceAll(l, "`", "'"))
		}
		p("\n")
	}
	var notes []string
	if res.Baseline != nil {
		notes = append(notes, res.Baseline.Notes...)
	}
	notes = append(notes, res.Warnings...)
	if len(notes) > 0 {
		p("<details><summary>Notes</summary>\n\n")
		for _, n := range notes {
			p("- %s\n", mdEscape(n))
		}
		p("\n</details>\n")
	}
	return bw.Flush()
}

// row is one line of a phase table.
type row struct {
	Name, Measured, SLO, Baseline, Change, Allowed string
	// Statuses are the row's SLO status and baseline status, if any.
	Statuses  []badge
	Regressed bool
}

// badge is one status: Kind is pass, fail, no-data, ok, regression or
// improved; Text what to print.
type badge struct{ Kind, Text string }

func (r row) mdName() string {
	if r.Regressed {
		return "**" + r.Name + "**"
	}
	return r.Name
}

func (r row) mdStatus() string {
	var s []string
	for _, b := range r.Statuses {
		s = append(s, statusIcon(b.Kind)+" "+b.Text)
	}
	return strings.Join(s, " · ")
}

// sloMetric maps an SLO to the baseline metric it measures, if any.
var sloMetric = map[string]string{
	"latency.p50": "p50", "latency.p90": "p90", "latency.p95": "p95", "latency.p99": "p99",
	"latency.avg": "avg", "latency.max": "max", "errorRate": "errorRate", "checks": "checks", "throughput": "throughput",
}

// phaseRows merges a phase's metrics, its SLOs and its baseline diff.
func phaseRows(res *results.Result, ph results.PhaseResult) []row {
	slos := map[string][]results.SLOResult{}
	var extra []results.SLOResult
	for _, s := range res.SLOs {
		if s.Phase != ph.Name {
			continue
		}
		if m, ok := sloMetric[s.SLO]; ok {
			slos[m] = append(slos[m], s)
		} else {
			extra = append(extra, s)
		}
	}
	diffs := map[string]diff.Metric{}
	if res.Baseline != nil {
		for _, p := range res.Baseline.Phases {
			if p.Phase == ph.Name {
				for _, m := range p.Metrics {
					diffs[m.Metric] = m
				}
			}
		}
	}
	measured := golden.Measure(ph)
	var rows []row
	for _, def := range golden.Metrics {
		s := measured[def.Name]
		d, hasDiff := diffs[def.Name]
		if s.Samples == 0 && len(slos[def.Name]) == 0 && (!hasDiff || d.BaselineSamples == 0) && !golden.NotExposed(ph, def.Name) {
			continue
		}
		r := row{Name: def.Name, Measured: value(s.Value, def.Unit), SLO: "-", Baseline: "-", Change: "-", Allowed: "-"}
		if s.Samples == 0 {
			r.Measured = "no data"
			if golden.NotExposed(ph, def.Name) {
				r.Measured = "not exposed"
			}
		}
		for _, o := range slos[def.Name] {
			r.SLO = mdOp(o.Op) + " " + sloValue(o.Limit, o.Unit)
			r.Statuses = append(r.Statuses, badge{o.Status, "SLO " + o.Status})
		}
		if hasDiff {
			if d.BaselineSamples > 0 {
				r.Baseline = value(d.Baseline, d.Unit)
			}
			r.Change = change(d)
			r.Allowed = signed(worseSign(d)*d.Allowed, d.Unit)
			r.Statuses = append(r.Statuses, badge{d.Status, d.Status})
			r.Regressed = d.Status == diff.StatusRegression
		}
		rows = append(rows, r)
	}
	for _, o := range extra {
		meas := sloValue(o.Measured, o.Unit)
		if o.Status == results.StatusNoData {
			meas = "no data"
		}
		rows = append(rows, row{Name: o.SLO, Measured: meas, SLO: mdOp(o.Op) + " " + sloValue(o.Limit, o.Unit),
			Baseline: "-", Change: "-", Allowed: "-", Statuses: []badge{{o.Status, "SLO " + o.Status}}})
	}
	return rows
}

func mdOp(op string) string {
	switch op {
	case "<=":
		return "≤"
	case ">=":
		return "≥"
	}
	return op
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
