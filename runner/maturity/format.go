package maturity

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// headline is the report's one-line summary.
func (rep *Report) headline() string {
	if rep.Level == 0 {
		return fmt.Sprintf("maturity: level 0 of %d (no level met yet), from %d result(s)", SelfRecovery, rep.Results)
	}
	return fmt.Sprintf("maturity: level %d of %d, %s, from %d result(s)", rep.Level, SelfRecovery, rep.LevelName, rep.Results)
}

// line is one run as a line of evidence.
func (ev Evidence) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s on %s (run %s, %s)", ev.Scenario, ev.Version, strings.ToUpper(ev.Verdict), ev.Backend, ev.RunID, ev.File)
	if ev.TimeScale != 0 {
		fmt.Fprintf(&b, ", shortened ×%g", ev.TimeScale)
	}
	return b.String()
}

// details are the faults, recovery and scrapes of a run.
func (ev Evidence) details() []string {
	var out []string
	for _, f := range ev.Faults {
		out = append(out, fmt.Sprintf("fault %s (%s): effective %s", f.Name, f.Kind, f.Effective))
	}
	if ev.Recovered != nil {
		if *ev.Recovered {
			out = append(out, fmt.Sprintf("back at the steady level %.0fs after the last fault", *ev.RecoverySecs))
		} else {
			out = append(out, "not back at the steady level before the load ended")
		}
	}
	out = append(out, fmt.Sprintf("%d Go runtime scrapes", ev.RuntimeScrapes))
	return out
}

// WriteText writes the report for a terminal.
func (rep *Report) WriteText(w io.Writer) error {
	fmt.Fprintln(w, rep.headline())
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tITEM\tSTATUS\tRUNS\tEVIDENCE")
	for _, st := range rep.Checklist {
		ev := "-"
		if st.Evidence != nil {
			ev = fmt.Sprintf("%s %s %s", st.Evidence.Scenario, st.Evidence.Version, st.Evidence.Verdict)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", st.Level, st.ID, st.Status, st.Runs, ev)
	}
	tw.Flush()
	for _, l := range rep.Levels {
		status := "NOT MET"
		if l.Met {
			status = "MET"
		}
		fmt.Fprintf(w, "\nlevel %d, %s: %s (%d/%d items)\n  %s\n", l.Level, l.Name, status, l.Passed, l.Items, l.Meaning)
		if len(l.Evidence) > 0 {
			fmt.Fprintln(w, "  rests on:")
			for _, ev := range l.Evidence {
				fmt.Fprintf(w, "    %s\n", ev.line())
				for _, d := range ev.details() {
					fmt.Fprintf(w, "      %s\n", d)
				}
				for _, s := range ev.SLOs {
					fmt.Fprintf(w, "      slo %s\n", s)
				}
			}
		}
		if len(l.Missing) > 0 {
			fmt.Fprintln(w, "  missing:")
			for _, m := range l.Missing {
				fmt.Fprintf(w, "    %s\n", m)
			}
		}
	}
	if len(rep.Other) > 0 {
		fmt.Fprintln(w, "\nruns that count for no checklist item:")
		for _, ev := range rep.Other {
			fmt.Fprintf(w, "  %s\n", ev.line())
		}
	}
	return nil
}

// WriteMarkdown writes the report for a pull request or a wiki.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "## Pre-launch maturity: level %d of %d", rep.Level, SelfRecovery)
	if rep.Level > 0 {
		fmt.Fprintf(w, " (%s)", rep.LevelName)
	}
	fmt.Fprintf(w, "\n\nFrom %d result(s).\n\n", rep.Results)
	fmt.Fprintln(w, "| level | | met | items |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, l := range rep.Levels {
		met := "no"
		if l.Met {
			met = "**yes**"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %d/%d |\n", l.Level, l.Name, met, l.Passed, l.Items)
	}
	fmt.Fprintln(w, "\n### Checklist")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| level | item | status | runs | evidence |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, st := range rep.Checklist {
		ev := ""
		if st.Evidence != nil {
			ev = md(st.Evidence.line())
		}
		if len(st.Missing) > 0 {
			if ev != "" {
				ev += "<br>"
			}
			ev += "missing: " + md(strings.Join(st.Missing, "; "))
		}
		fmt.Fprintf(w, "| %d | %s | %s | %d | %s |\n", st.Level, md(st.Title), st.Status, st.Runs, ev)
	}
	for _, l := range rep.Levels {
		fmt.Fprintf(w, "\n### Level %d: %s\n\n%s.\n", l.Level, l.Name, md(l.Meaning))
		if len(l.Evidence) > 0 {
			fmt.Fprintln(w, "\nRests on:")
			fmt.Fprintln(w)
			for _, ev := range l.Evidence {
				fmt.Fprintf(w, "- %s: %s; SLOs: %s\n", md(ev.line()), md(strings.Join(ev.details(), ", ")), md(strings.Join(ev.SLOs, ", ")))
			}
		}
		if len(l.Missing) > 0 {
			fmt.Fprintln(w, "\nMissing:")
			fmt.Fprintln(w)
			for _, m := range l.Missing {
				fmt.Fprintf(w, "- %s\n", md(m))
			}
		}
	}
	return nil
}

// md escapes what would break a Markdown table cell.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
