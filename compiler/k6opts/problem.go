package k6opts

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the options.
type Problem struct {
	// Path is the options path in a JavaScript-like notation: object keys
	// that are identifiers are joined with dots, other keys are quoted in
	// brackets, array indices are in brackets. "" means the whole document.
	// Examples: "scenarios.load.maxVUs", "stages[1].target",
	// `thresholds["http_req_duration{phase:fault}"][0]`.
	Path string
	// Keys is Path as raw elements: object keys unquoted, array indices in
	// decimal. Use it to walk back into the source document.
	Keys []string
	// Message says what is wrong and, where it helps, how to fix it.
	Message string
	// Err is the underlying error, when there is one: a JSON syntax error,
	// or ErrInvalidThreshold for every threshold problem.
	Err error
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error is the error Validate returns: every problem found, sorted by path.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	switch len(e.Problems) {
	case 0:
		return "invalid k6 options"
	case 1:
		return "invalid k6 options: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid k6 options (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns the problems' underlying errors, so errors.Is and
// errors.As see them (e.g. ErrInvalidThreshold).
func (e *Error) Unwrap() []error {
	var errs []error
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}
