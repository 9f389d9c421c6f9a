package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Diagnostic is one problem in a scenario source, pointing into the user's
// file: what is wrong, where, and (in the message) how to fix it.
type Diagnostic struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	// Scenario is the name of the scenario the problem is in, when known.
	Scenario string `json:"scenario,omitempty"`
	// Path is the field path inside the scenario, such as
	// "faults.jitter.networkDelay.latency".
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Severity is SeverityError (a problem: vet fails) or SeverityNote
	// (worth knowing, not wrong: vet passes). Empty means an error.
	Severity string `json:"severity,omitempty"`

	empty bool // no scenario files at a path
}

// NoScenarios reports whether the diagnostic says that a path holds no
// scenario files at all (vet --allow-empty accepts that).
func (d Diagnostic) NoScenarios() bool { return d.empty }

// Severities of a diagnostic.
const (
	SeverityError = "error"
	SeverityNote  = "note"
)

// String formats the diagnostic as file:line:col: path: message, a note as
// file:line:col: note: path: message.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
	}
	b.WriteString(": ")
	if d.Severity == SeverityNote {
		b.WriteString("note: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is a list of problems; as an error it prints one per line.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the diagnostics by file, line, column, path and message, and
// removes duplicates.
func (ds Diagnostics) Sort() Diagnostics {
	slices.SortFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(ds)
}
