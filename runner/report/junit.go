package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/results"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnit writes junit.xml: a test case per SLO per phase (suite "<scenario>
// slos") and per baseline metric per phase (suite "<scenario> baseline");
// failures carry the measured and the expected values in their message. A
// run that could not be judged (error, aborted) adds a failing "verdict"
// case, so CI never shows it green.
func JUnit(w io.Writer, res *results.Result) error {
	secs := fmt.Sprintf("%.3f", res.EndedAt.Sub(res.StartedAt).Seconds())
	if res.EndedAt.IsZero() || res.StartedAt.IsZero() {
		secs = "0"
	}
	ts := ""
	if !res.StartedAt.IsZero() {
		ts = res.StartedAt.UTC().Format("2006-01-02T15:04:05")
	}
	props := []junitProperty{
		{"scenario", res.Scenario}, {"version", res.Version}, {"runId", res.RunID}, {"backend", res.Backend},
		{"target", res.Target}, {"faultlineVersion", res.FaultlineVersion}, {"verdict", res.Verdict},
		{"reason", res.Reason}, {"exitCode", fmt.Sprint(res.ExitCode)},
	}
	slos := junitSuite{Name: res.Scenario + " " + res.Version + " slos", Time: secs, Timestamp: ts, Properties: props}
	verdict := junitCase{Name: "verdict", Classname: res.Scenario, Time: "0"}
	switch res.Verdict {
	case results.VerdictError, results.VerdictAborted:
		verdict.Error = &junitProblem{Message: fmt.Sprintf("run %s: %s", res.Verdict, res.Reason), Type: res.Verdict}
		slos.Errors++
	}
	slos.Cases = append(slos.Cases, verdict)
	for _, s := range res.SLOs {
		c := junitCase{Name: fmt.Sprintf("%s %s %s%s", s.SLO, s.Op, num(s.Limit), s.Unit), Classname: res.Scenario + "." + s.Phase, Time: "0"}
		msg := fmt.Sprintf("%s %s: measured %s%s, expected %s %s%s", s.Phase, s.SLO, num(s.Measured), s.Unit, s.Op, num(s.Limit), s.Unit)
		switch s.Status {
		case results.StatusFail:
			c.Failure = &junitProblem{Message: msg, Type: "slo-breach", Text: note(s.Note)}
			slos.Failures++
		case results.StatusNoData:
			c.Error = &junitProblem{Message: fmt.Sprintf("%s %s: no data to judge (expected %s %s%s)", s.Phase, s.SLO, s.Op, num(s.Limit), s.Unit), Type: "no-data"}
			slos.Errors++
		}
		slos.Cases = append(slos.Cases, c)
	}
	slos.Tests = len(slos.Cases)
	suites := junitSuites{Name: "faultline " + res.Scenario, Time: secs, Suites: []junitSuite{slos}}
	if b := res.Baseline; b != nil {
		bs := junitSuite{Name: res.Scenario + " " + res.Version + " baseline", Time: "0", Timestamp: ts,
			Properties: []junitProperty{{"baseline", b.Baseline}, {"baselineVersion", b.BaselineVersion}, {"baselineCreated", b.BaselineCreated}}}
		for _, p := range b.Phases {
			for _, m := range p.Metrics {
				c := junitCase{Name: m.Metric + " vs baseline", Classname: res.Scenario + ".baseline." + m.Phase, Time: "0"}
				switch m.Status {
				case diff.StatusRegression:
					c.Failure = &junitProblem{Type: "regression", Message: RegressionMessage(m), Text: "rule: " + m.Rule + "; direction: " + m.Direction}
					bs.Failures++
				case diff.StatusNoData:
					c.Skipped = &junitProblem{Message: fmt.Sprintf("%s %s: no data (baseline %d samples, this run %d)", m.Phase, m.Metric, m.BaselineSamples, m.MeasuredSamples)}
					bs.Skipped++
				}
				bs.Cases = append(bs.Cases, c)
			}
		}
		bs.Tests = len(bs.Cases)
		suites.Suites = append(suites.Suites, bs)
	}
	for _, s := range suites.Suites {
		suites.Tests += s.Tests
		suites.Failures += s.Failures
		suites.Errors += s.Errors
		suites.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suites); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// RegressionMessage says what regressed, where, by how much and what was
// allowed: "fault p99 regressed: measured 130.3ms, baseline 13.0ms (+117.3ms,
// +900.0%), allowed +20.0ms (30% of baseline, 20.0ms, floor 2.0ms)".
func RegressionMessage(m diff.Metric) string {
	return fmt.Sprintf("%s %s regressed: measured %s, baseline %s (%s), allowed %s (%s)",
		m.Phase, m.Metric, value(m.Measured, m.Unit), value(m.Baseline, m.Unit), change(m), signed(worseSign(m)*m.Allowed, m.Unit), m.Rule)
}

// worseSign is the sign of a change in the worse direction.
func worseSign(m diff.Metric) float64 {
	if m.Direction == diff.HigherIsBetter {
		return -1
	}
	return 1
}

func note(s string) string {
	if s == "" {
		return ""
	}
	return s
}

func num(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}
