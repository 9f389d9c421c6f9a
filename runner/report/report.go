// Package report renders a run's results.json as the files CI and people
// read: junit.xml (a test case per SLO and per baseline metric), report.md
// (a pull-request comment) and report.html (one self-contained page with the
// charts, the fault windows shaded, the SLO table and the baseline diff).
package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"faultline.dev/faultline/golden"
	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/internal/atomicfile"
	"faultline.dev/faultline/results"
)

// File names in the report directory.
const (
	JUnitFile    = "junit.xml"
	MarkdownFile = "report.md"
	HTMLFile     = "report.html"
)

// WriteAll writes junit.xml, report.md and report.html into dir, each
// atomically; it writes every file it can and returns the errors joined.
func WriteAll(dir string, res *results.Result) error {
	var errs []error
	for _, f := range []struct {
		name  string
		write func(io.Writer, *results.Result) error
	}{{JUnitFile, JUnit}, {MarkdownFile, Markdown}, {HTMLFile, HTML}} {
		var buf bytes.Buffer
		if err := f.write(&buf, res); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			continue
		}
		if err := writeFile(filepath.Join(dir, f.name), buf.Bytes()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeFile(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }

// value prints a value in its unit.
func value(v float64, unit string) string { return golden.FormatValue(v, unit) }

// signed prints a change: "+12.3ms", "-0.50 points".
func signed(v float64, unit string) string {
	s := value(v, unit)
	if unit == "%" {
		s = strings.TrimSuffix(s, "%") + " points"
	}
	if v >= 0 {
		return "+" + s
	}
	return s
}

// change prints a metric's change, absolute and relative.
func change(m diff.Metric) string {
	if m.Status == diff.StatusNoData {
		return "-"
	}
	s := signed(m.Change, m.Unit)
	if m.ChangePercent != nil {
		s += fmt.Sprintf(", %+.1f%%", *m.ChangePercent)
	}
	return s
}

// sloValue prints an SLO's measured value or limit.
func sloValue(v float64, unit string) string {
	if unit == "bytes" {
		return value(v, unit)
	}
	return num(v) + unit
}

func statusIcon(s string) string {
	switch s {
	case results.StatusPass, diff.StatusOK:
		return "✅"
	case results.StatusFail, diff.StatusRegression:
		return "❌"
	case diff.StatusImproved:
		return "⬆️"
	case results.StatusNoData:
		return "⚪"
	}
	return ""
}

func verdictIcon(v string) string {
	switch v {
	case results.VerdictPass:
		return "✅"
	case results.VerdictSLOBreach:
		return "❌"
	case results.VerdictRegression:
		return "📉"
	case results.VerdictAborted:
		return "⏹️"
	}
	return "⚠️"
}
