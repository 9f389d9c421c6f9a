package k6opts

import (
	"regexp"
	"strconv"
	"strings"
)

var identRe = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// FormatPath renders raw path keys in the notation of Problem.Path: the
// first key as is, identifier keys after a dot, decimal indices of lists in
// brackets, and any other key quoted in brackets. Threshold metric names are
// always quoted, as they usually contain braces or colons.
func FormatPath(keys []string) string {
	var b strings.Builder
	for i, k := range keys {
		// The second key of scenarios and thresholds is a name, never an
		// index, even when it is all digits.
		named := i == 1 && (keys[0] == "scenarios" || keys[0] == "thresholds")
		switch {
		case i == 0:
			b.WriteString(k)
		case i == 1 && keys[0] == "thresholds":
			b.WriteString("[" + strconv.Quote(k) + "]")
		case !named && isDecimal(k):
			b.WriteString("[" + k + "]")
		case identRe.MatchString(k):
			b.WriteString("." + k)
		default:
			b.WriteString("[" + strconv.Quote(k) + "]")
		}
	}
	return b.String()
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// join returns keys followed by more, in a new slice.
func join(keys []string, more ...string) []string {
	out := make([]string, 0, len(keys)+len(more))
	return append(append(out, keys...), more...)
}
