package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
	typo "faultline.dev/faultline/internal/suggest"
)

// cueErr is one CUE error, its path made relative to the scenario.
type cueErr struct {
	rel       []string
	format    string
	args      []any
	msg       string
	positions []token.Pos
	line, col int // when the error has no position but names a line
}

var lineMsgRE = regexp.MustCompile(`^(?:.*?:)?(?:line )?(\d+):(?:(\d+):)? ?(.*)$`)

// cueDiagnostics turns CUE's errors into diagnostics in the user's terms:
// positions in the user's files (also for missing fields), the schema's
// internal rules (kind count, fault window) in words, one line for a wrong
// enum value instead of one per alternative. prefix is the path of the
// scenario in its file ("scenarios", name) or nil for a data file; v, when it
// exists, is the scenario value, for suggestions.
func cueDiagnostics(err error, pf posFinder, prefix []string, scenario, fallback string, v ...cue.Value) Diagnostics {
	var errs []cueErr
	for _, e := range cueerrors.Errors(err) {
		p := e.Path()
		rel := make([]string, 0, len(p))
		for _, s := range p {
			if u, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
				s = u
			}
			rel = append(rel, s)
		}
		if len(rel) >= len(prefix) && slices.Equal(rel[:len(prefix)], prefix) {
			rel = rel[len(prefix):]
		}
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		ce := cueErr{rel: rel, format: format, args: args, msg: msg, positions: cueerrors.Positions(e)}
		if msg == "" {
			// YAML syntax errors carry their text, and line, only in Error().
			ce.format, ce.args, ce.msg = "%s", nil, e.Error()
			if m := lineMsgRE.FindStringSubmatch(ce.msg); m != nil {
				ce.line, _ = strconv.Atoi(m[1])
				ce.col, _ = strconv.Atoi(m[2])
				ce.msg = m[3]
			}
		}
		errs = append(errs, ce)
	}

	// A path with a visible error makes derived errors below its parent
	// noise: an invalid kind block makes the kind count look empty, an
	// invalid load makes the fault windows incomplete.
	visible := map[string]bool{}
	for _, e := range errs {
		if hiddenAt(e.rel) < 0 && !strings.Contains(e.msg, "in empty disjunction") {
			for i := 0; i <= len(e.rel); i++ {
				visible[strings.Join(e.rel[:i], ".")] = true
			}
		}
	}

	var out Diagnostics
	done := map[string]bool{}
	for i, e := range errs {
		key := strings.Join(e.rel, ".")
		if strings.Contains(e.msg, "in empty disjunction") {
			continue // the alternatives follow as their own errors
		}
		if h := hiddenAt(e.rel); h >= 0 {
			owner := e.rel[:h]
			if d, ok := hiddenRule(e, owner, visible, pf, prefix, scenario); ok {
				out = append(out, d)
			}
			continue
		}
		if len(prefix) > 0 && key == "name" && strings.HasPrefix(e.format, "conflicting values") && len(e.args) == 2 {
			if done[key] {
				continue
			}
			done[key] = true
			given, scen := fmt.Sprint(e.args[0]), fmt.Sprint(e.args[1])
			if len(prefix) > 1 && strconv.Quote(prefix[len(prefix)-1]) == given {
				given, scen = scen, given
			}
			out = append(out, place(pf, prefix, e.rel, scenario, fallback, e.positions,
				fmt.Sprintf("name %s differs from the scenario's key %s: in a CUE file the key names the scenario; remove name or make the two equal", given, scen)))
			continue
		}
		if strings.HasPrefix(e.format, "conflicting values") && len(e.args) == 2 {
			if done[key] {
				continue
			}
			// Gather every alternative reported for the same path.
			var alts []cueErr
			for _, o := range errs[i:] {
				if strings.Join(o.rel, ".") == key && strings.HasPrefix(o.format, "conflicting values") && len(o.args) == 2 {
					alts = append(alts, o)
				}
			}
			if len(alts) > 1 {
				done[key] = true
				out = append(out, place(pf, prefix, e.rel, scenario, fallback, e.positions, enumMessage(alts)))
				continue
			}
		}
		if e.msg == "field not allowed" && len(e.rel) > 0 {
			rel := firstDisallowed(e.rel, v...)
			k := "unknown\x00" + strings.Join(rel, ".")
			if done[k] {
				continue
			}
			done[k] = true
			d := placeKey(pf, prefix, rel, scenario, fallback, e.positions, unknownField(rel, v...))
			out = append(out, d)
			continue
		}
		d := place(pf, prefix, e.rel, scenario, fallback, e.positions, humanize(e, v...))
		if d.Line == 0 && e.line > 0 {
			d.Line, d.Column = e.line, max(e.col, 1)
		}
		out = append(out, d)
	}
	// One problem per field: a bad duration also fails the schema's
	// pattern, and the first message is the precise one. An import that
	// cannot be found is not also "not used".
	seen := map[string]bool{}
	badImport := map[string]bool{}
	for _, d := range out {
		if strings.HasPrefix(d.Message, "cannot find package") {
			badImport[fmt.Sprintf("%s:%d", d.File, d.Line)] = true
		}
	}
	kept := out[:0]
	for _, d := range out {
		if strings.HasPrefix(d.Message, "imported and not used") && badImport[fmt.Sprintf("%s:%d", d.File, d.Line)] {
			continue
		}
		k := d.Scenario + "\x00" + d.Path
		if d.Path != "" && seen[k] {
			continue
		}
		seen[k] = true
		kept = append(kept, d)
	}
	return kept
}

// hiddenAt returns the index of the first hidden label in a path, or -1.
func hiddenAt(p []string) int {
	for i, s := range p {
		if strings.HasPrefix(s, "_") {
			return i
		}
	}
	return -1
}

var boundRE = regexp.MustCompile(`invalid value (-?\d+) \(out of bound <=(-?\d+)\)`)

// faultKinds lists the kind blocks of #Fault, in the schema's order.
var faultKinds = []string{"networkDelay", "networkLoss", "networkDuplicate", "networkCorrupt", "networkBandwidth", "networkPartition", "netem", "ioLatency", "ioFault", "ioAttrOverride", "ioMistake", "timeSkew", "cpuStress", "memoryStress", "stressNG", "podKill", "podFailure", "containerKill", "httpFault", "dnsFault", "grpcFault"}

// hiddenRule explains an error of one of the schema's hidden rules.
func hiddenRule(e cueErr, owner []string, visible map[string]bool, pf posFinder, prefix []string, scenario string) (Diagnostic, bool) {
	ownerKey := strings.Join(owner, ".")
	// Derived from an error the user already sees?
	for k := range visible {
		if k != "" && (k == ownerKey || strings.HasPrefix(k, ownerKey+".")) && len(strings.Split(k, ".")) > len(owner) {
			return Diagnostic{}, false
		}
	}
	rule := e.rel[len(owner)]
	switch {
	case rule == "_faultKinds" && strings.Contains(e.msg, "MinItems"):
		return diagAt(pf, prefix, owner, scenario,
			"a fault needs exactly one kind block; add one of "+strings.Join(faultKinds, ", ")), true
	case rule == "_faultKinds" && strings.Contains(e.msg, "MaxItems"):
		var found []string
		for _, k := range faultKinds {
			if strings.Contains(e.msg, `"`+k+`"`) {
				found = append(found, k)
			}
		}
		return diagAt(pf, prefix, owner, scenario,
			fmt.Sprintf("a fault has exactly one kind block, found %s: split it into one fault per kind", strings.Join(found, " and "))), true
	case rule == "_name":
		return diagAt(pf, prefix, owner, scenario, fmt.Sprintf("invalid fault name %q: want a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit", owner[len(owner)-1])), true
	case rule == "_endNS":
		if m := boundRE.FindStringSubmatch(e.msg); m != nil {
			end, _ := strconv.ParseInt(m[1], 10, 64)
			total, _ := strconv.ParseInt(m[2], 10, 64)
			dur := append(slices.Clone(owner), "duration")
			if _, depth := pf.find(append(slices.Clone(prefix), dur...)); depth < len(prefix)+len(dur) {
				// No duration: a one-shot fault judged on OneShotWindow.
				return diagAt(pf, prefix, owner, scenario,
					fmt.Sprintf("a podKill or containerKill without duration is judged on the %s after its start, until %s, after the load ends at %s: start it earlier, give it a shorter duration, or lengthen the load",
						OneShotWindow, Duration(end), Duration(total))), true
			}
			return diagAt(pf, prefix, dur, scenario,
				fmt.Sprintf("the fault window ends at %s, after the load ends at %s: start the fault earlier, shorten it, or lengthen the load",
					Duration(end), Duration(total))), true
		}
		return Diagnostic{}, false
	}
	// Other hidden values (the load's total length) only fail when a
	// visible field failed; if none did, say what broke in plain words.
	if len(visible) > 0 {
		return Diagnostic{}, false
	}
	return diagAt(pf, prefix, owner, scenario, e.msg), true
}

// place positions a message for a scenario-relative path.
func place(pf posFinder, prefix, rel []string, scenario, fallback string, positions []token.Pos, msg string) Diagnostic {
	d := Diagnostic{Scenario: scenario, Path: strings.Join(rel, "."), Message: msg, File: fallback}
	if len(pf.files) > 0 && (len(rel) > 0 || len(prefix) > 0) {
		pos, depth := pf.find(append(slices.Clone(prefix), rel...))
		if depth > 0 || (len(prefix) == 0 && pos.IsValid()) {
			setPos(&d, pos)
			return d
		}
		if len(prefix) == 0 {
			// A field missing at the top of a data file: its first line.
			d.File, d.Line, d.Column = relPath(pf.files[0].Filename), 1, 1
			return d
		}
	}
	// No path into the user's files (a syntax error): take CUE's first
	// position outside the schema.
	for _, p := range positions {
		if p.IsValid() && !strings.Contains(p.Filename(), "/cue.mod/") && !strings.HasPrefix(p.Filename(), "/faultline-schema") {
			setPos(&d, p)
			return d
		}
	}
	return d
}

// placeKey is place, at the key of the field rather than its value.
func placeKey(pf posFinder, prefix, rel []string, scenario, fallback string, positions []token.Pos, msg string) Diagnostic {
	if len(pf.files) > 0 && len(rel) > 0 {
		if pos, depth := pf.findKey(append(slices.Clone(prefix), rel...)); depth == len(prefix)+len(rel) && pos.IsValid() {
			d := Diagnostic{Scenario: scenario, Path: strings.Join(rel, "."), Message: msg}
			setPos(&d, pos)
			return d
		}
	}
	return place(pf, prefix, rel, scenario, fallback, positions, msg)
}

// lookupRel finds a scenario-relative path in the scenario value.
func lookupRel(v cue.Value, rel []string) cue.Value {
	sels := make([]cue.Selector, len(rel))
	for i, p := range rel {
		if n, err := strconv.Atoi(p); err == nil && v.LookupPath(cue.MakePath(sels[:i]...)).IncompleteKind() == cue.ListKind {
			sels[i] = cue.Index(n)
		} else {
			sels[i] = cue.Str(p)
		}
	}
	return v.LookupPath(cue.MakePath(sels...))
}

// schemaAt finds a scenario-relative path in the schema's #Scenario,
// through pattern constraints (fault names, label keys) and list elements.
// It reports false when the schema has no such field.
func schemaAt(def cue.Value, rel []string) (cue.Value, bool) {
	cur := def
	for _, p := range rel {
		if cur.IncompleteKind() == cue.ListKind {
			n, err := strconv.Atoi(p)
			if err != nil {
				return cue.Value{}, false
			}
			next := cur.LookupPath(cue.MakePath(cue.Index(n)))
			if !next.Exists() {
				next = cur.LookupPath(cue.MakePath(cue.AnyIndex))
			}
			cur = next
		} else {
			if !cur.Allows(cue.Str(p)) {
				return cue.Value{}, false
			}
			next := cur.LookupPath(cue.MakePath(cue.Str(p).Optional()))
			if !next.Exists() {
				next = cur.LookupPath(cue.MakePath(cue.AnyString))
			}
			cur = next
		}
		if !cur.Exists() {
			return cue.Value{}, false
		}
	}
	return cur, true
}

// firstDisallowed shortens the path of an unknown field to its first
// element the schema does not allow: a misspelt kind block makes each of
// its children unknown, and the typo is the block's name.
func firstDisallowed(rel []string, v ...cue.Value) []string {
	if len(v) < 2 || !v[1].Exists() {
		return rel
	}
	for i := 1; i < len(rel); i++ {
		if _, ok := schemaAt(v[1], rel[:i]); !ok {
			return rel[:i]
		}
	}
	return rel
}

// unknownField says why a key is not allowed: a key of a map with a
// pattern (label keys, header and variable names, metric names) is a bad
// name; any other is an unknown field, with the closest allowed one.
func unknownField(rel []string, v ...cue.Value) string {
	name := rel[len(rel)-1]
	parent := rel[:len(rel)-1]
	at := func(i int) string {
		if i < len(parent) && i >= 0 {
			return parent[i]
		}
		return ""
	}
	last, prev := at(len(parent)-1), at(len(parent)-2)
	switch {
	case last == "labels" || strings.Join(parent, ".") == "target.kubernetes.selector":
		return fmt.Sprintf("invalid label key %q: want a Kubernetes label key such as app or example.com/tier (letters, digits, '-', '_', '.', an optional DNS prefix and '/')", name)
	case last == "headers" && prev != "replace":
		return fmt.Sprintf("invalid header name %q: want an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~; no spaces or colons)", name)
	case last == "requestHeaders" || last == "responseHeaders":
		return fmt.Sprintf("invalid header name %q: want an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~; no spaces or colons)", name)
	case last == "nodeSelectors":
		return fmt.Sprintf("invalid label key %q: want a Kubernetes node label key such as topology.kubernetes.io/zone (letters, digits, '-', '_', '.', an optional DNS prefix and '/')", name)
	case last == "fieldSelectors":
		return fmt.Sprintf("invalid field selector %q: want a pod field path such as metadata.name or spec.nodeName", name)
	case last == "queries" && prev == "replace":
		return fmt.Sprintf("invalid name %q: a query parameter name must not be empty", name)
	case last == "annotationSelectors":
		return fmt.Sprintf("invalid annotation key %q: an annotation key must not be empty", name)
	case last == "pods":
		return fmt.Sprintf("invalid namespace %q: want a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	case last == "env":
		return fmt.Sprintf("invalid environment variable name %q: want letters, digits and '_', not starting with a digit", name)
	case prev == "baseline" && (last == "steady" || last == "fault" || last == "recovery"):
		return fmt.Sprintf("unknown metric %q%s", name, suggestFrom(name, metricNames))
	}
	return fmt.Sprintf("unknown field %q%s", name, suggest(name, parent, v...))
}

var metricNames = []string{"p50", "p90", "p95", "p99", "avg", "max", "errorRate", "checks", "throughput", "goroutines", "heapInUse", "gcPause", "schedLatency"}

// suggestFrom proposes the closest of a fixed list, or lists them all.
func suggestFrom(name string, all []string) string {
	best, bestD := "", 1+len(name)/3
	for _, f := range all {
		if d := typo.Distance(strings.ToLower(name), strings.ToLower(f)); d < bestD {
			best, bestD = f, d
		}
	}
	if best != "" {
		return fmt.Sprintf(": did you mean %q?", best)
	}
	return "; want one of " + strings.Join(all, ", ")
}

// enumMessage says which of the listed alternatives a value should be.
func enumMessage(alts []cueErr) string {
	// The user's value is the operand common to every conflict.
	count := map[string]int{}
	var order []string
	for _, a := range alts {
		for _, x := range a.args {
			s := fmt.Sprint(x)
			if count[s] == 0 {
				order = append(order, s)
			}
			count[s]++
		}
	}
	got := ""
	for _, s := range order {
		if count[s] == len(alts) {
			got = s
			break
		}
	}
	var want []string
	for _, s := range order {
		if s != got {
			want = append(want, s)
		}
	}
	slices.Sort(want)
	if len(want) == 1 {
		return fmt.Sprintf("invalid value %s: want %s", shortValue(got), want[0])
	}
	hint := ""
	if u, err := strconv.Unquote(got); err == nil {
		best, bestD := "", 1+len(u)/3
		for _, w := range want {
			if wu, err := strconv.Unquote(w); err == nil {
				if d := typo.Distance(strings.ToLower(u), strings.ToLower(wu)); d < bestD {
					best, bestD = w, d
				}
			}
		}
		if best != "" {
			hint = fmt.Sprintf(": did you mean %s? want one of", best)
		}
	}
	if hint == "" {
		hint = ": want one of"
	}
	return fmt.Sprintf("invalid value %s%s %s", shortValue(got), hint, strings.Join(want, ", "))
}

// patterns maps fragments of the schema's regular expressions to what they
// ask for, so that a failed pattern reads as a request, not a regexp.
var patterns = []struct{ fragment, want string }{
	{`*/[A-Za-z_][A-Za-z0-9_]*$`, "want a gRPC method's full name \"package.Service/Method\", such as \"shop.v1.Checkout/Pay\""},
	{`\\[[0-9A-Fa-f:.]+\\]`, "want a host and port such as \"127.0.0.1:9090\" or \"checkout.shop:9090\""},
	{`\\.proto$`, "want the path of a .proto file"},
	{`\\.(0|[1-9][0-9]*)\\.(0|`, "want a strict semantic version MAJOR.MINOR.PATCH such as 1.2.0 (no leading v)"},
	{`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, "want a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit"},
	{`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`, "want a DNS-1123 subdomain (a Kubernetes object name): lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"},
	{`^[-._a-zA-Z0-9]{1,253}$`, "want a key of a Secret's data, such as tls.crt: letters, digits, '-', '_' or '.'"},
	{`^https?://`, "want an absolute http:// or https:// URL"},
	{`!~"^[-+]?[0.]+`, "want a non-zero offset such as -5m or 2h"},
	{`!~"^[0.]+`, "want a duration greater than zero"},
	{`=~"^[0-9]"`, "want a non-negative duration such as 500ms or 1m30s"},
	{`(B|KB|MB|GB`, "want a size such as 256MB or 1GiB"},
	{`([1-9][0-9]?|100)%`, "want a size such as 256MB or 1GiB, or a percentage such as 50%"},
	{`bps|kbps`, "want a rate such as 500kbps, 1mbps or 10gbps"},
	{`=~"^/"`, "want an absolute path starting with /"},
	{`^[A-Za-z_][A-Za-z0-9_]*$`, "want an environment variable name"},
	{`^[!#$%&`, "want an HTTP header name"},
	{`[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`, "want a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.'"},
	{`[-a-z0-9.]*[a-z0-9])?/)?`, "want a Kubernetes label key such as app or example.com/tier"},
}

var (
	runesRE      = regexp.MustCompile(`^invalid value (.*) \(does not satisfy strings\.(Max|Min)Runes\((\d+)\)\)$`)
	listLenRE    = regexp.MustCompile(`^incompatible list lengths \((\d+) and (\d+)\)$`)
	combineRE    = regexp.MustCompile(`^cannot combine regular field "([^"]*)" with (.*)$`)
	numberRE     = regexp.MustCompile(`^parse error: illegal number start "(?:number & )?(.*)"$`)
	referenceRE  = regexp.MustCompile(`^reference "([^"]*)" not found$`)
	disjunctRE   = regexp.MustCompile(`^unresolved disjunction (.*) \(type [a-z]+\)$`)
	incompleteRE = regexp.MustCompile(`^(?:incomplete value|non-concrete value) (.*)$`)
)

// shortValue shortens a value for a message: long values are cut, with
// their length.
func shortValue(s string) string {
	if n := utf8.RuneCountInString(s); n > 40 {
		r := []rune(s)
		if r[0] == '"' {
			return string(r[:33]) + `…"`
		}
		return string(r[:32]) + "…"
	}
	return s
}

// kindWords names a CUE kind the way a YAML user knows it.
func kindWords(k any) string {
	switch s := fmt.Sprint(k); s {
	case "struct":
		return "a mapping"
	case "list":
		return "a list"
	case "float", "number":
		return "a number"
	case "int":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "null":
		return "null"
	case "bytes":
		return "binary data"
	default:
		return s
	}
}

// typeValue shows a value of a wrong type: scalars as written (cut when
// long), mappings and lists by their kind.
func typeValue(val, kind any) string {
	s := fmt.Sprint(val)
	k := fmt.Sprint(kind)
	if k == "struct" || k == "list" || s == k || strings.ContainsAny(s, "#(&|") {
		return kindWords(kind)
	}
	return fmt.Sprintf("%s %s", k, shortValue(s))
}

func fieldName(rel []string) string {
	if len(rel) == 0 {
		return "the field"
	}
	return rel[len(rel)-1]
}

// humanize rewrites one CUE message in the user's terms.
func humanize(e cueErr, v ...cue.Value) string {
	if m := runesRE.FindStringSubmatch(e.msg); m != nil {
		n, _ := strconv.Atoi(m[3])
		got := m[1]
		count := utf8.RuneCountInString(got) - 2
		if u, err := strconv.Unquote(got); err == nil {
			count = utf8.RuneCountInString(u)
		}
		if m[2] == "Max" {
			return fmt.Sprintf("invalid value %s: too long, %d characters; at most %d are allowed", shortValue(got), count, n)
		}
		if n == 1 {
			return "empty string: write at least one character, or leave the field out"
		}
		return fmt.Sprintf("invalid value %s: too short; at least %d characters are needed", shortValue(got), n)
	}
	if m := listLenRE.FindStringSubmatch(e.msg); m != nil && m[1] == "0" {
		return fmt.Sprintf("empty list: give at least %s item, or leave %s out", m[2], fieldName(e.rel))
	}
	if m := combineRE.FindStringSubmatch(e.msg); m != nil {
		if m[2] == "null" {
			return fmt.Sprintf("%s is empty (null): give it its fields, or remove the line", fieldName(e.rel))
		}
		return fmt.Sprintf("wrong type: got %s, want a mapping (with fields such as %s)", shortValue(m[2]), m[1])
	}
	if m := numberRE.FindStringSubmatch(e.msg); m != nil {
		switch strings.TrimLeft(m[1], "+-") {
		case "Inf", "NaN":
			return fmt.Sprintf("%s is not a number faultline accepts: write a finite number", shortValue(m[1]))
		}
		return fmt.Sprintf("invalid number %s: it is too large or malformed; write a number such as 10", shortValue(m[1]))
	}
	if m := referenceRE.FindStringSubmatch(e.msg); m != nil {
		return fmt.Sprintf("undefined name %s: define it, or quote it (%q) if you mean a string", m[1], m[1])
	}
	if m := disjunctRE.FindStringSubmatch(e.msg); m != nil {
		return fmt.Sprintf("more than one value is possible (%s): choose one", shortValue(m[1]))
	}
	if m := incompleteRE.FindStringSubmatch(e.msg); m != nil {
		return fmt.Sprintf("%s has no concrete value: write a value, not only a type or a bound", fieldName(e.rel))
	}
	if strings.HasPrefix(e.format, "conflicting values") && len(e.args) == 2 {
		a, b := fmt.Sprint(e.args[0]), fmt.Sprint(e.args[1])
		return fmt.Sprintf("%s is given two different values, %s and %s: keep one", fieldName(e.rel), shortValue(b), shortValue(a))
	}
	if strings.HasPrefix(e.format, "builtin package %q undefined") && len(e.args) == 1 {
		return fmt.Sprintf("cannot find package %q: check the import path; the scenario schema is imported as %q", e.args[0], ImportPath)
	}
	if strings.HasPrefix(e.msg, "invalid map key") {
		return "a key must be a plain name, not a list or a mapping: write a plain key"
	}
	switch {
	case e.msg == "field is required but not present":
		if len(e.rel) == 3 && e.rel[0] == "faults" && e.rel[2] == "duration" {
			return `missing required field "duration": a fault lasts for a window (only a podKill or containerKill, which acts once at start, may leave it out)`
		}
		if len(e.rel) > 0 {
			return fmt.Sprintf("missing required field %q", e.rel[len(e.rel)-1])
		}
	case e.msg == "field not allowed":
		if len(e.rel) > 0 {
			name := e.rel[len(e.rel)-1]
			return fmt.Sprintf("unknown field %q%s", name, suggest(name, e.rel[:len(e.rel)-1], v...))
		}
	case strings.Contains(e.format, "(mismatched types") && len(e.args) == 4:
		// One operand is the user's value, the other the schema's type.
		got, want, gotKind, wantKind := e.args[0], e.args[1], e.args[2], e.args[3]
		if fmt.Sprint(got) == fmt.Sprint(gotKind) && fmt.Sprint(want) != fmt.Sprint(wantKind) {
			got, want, gotKind, wantKind = want, got, wantKind, gotKind
		}
		if fmt.Sprint(gotKind) == "null" || fmt.Sprint(wantKind) == "null" {
			// The schema has no null: the user left the field empty.
			return fmt.Sprintf("%s is empty (null): give it a value, or remove the line", fieldName(e.rel))
		}
		w := kindWords(wantKind)
		if s := fmt.Sprint(want); s != fmt.Sprint(wantKind) && !strings.ContainsAny(s, "#(&|{[") && len(s) < 40 {
			w = s
		}
		return fmt.Sprintf("wrong type: got %s, want %s", typeValue(got, gotKind), w)
	case strings.Contains(e.msg, "does not satisfy time.Duration"):
		return fmt.Sprintf("invalid duration %v: want a Go duration such as 500ms, 30s or 1m30s", e.args[0])
	case strings.HasPrefix(e.format, "invalid value %v (out of bound %") && len(e.args) == 2:
		bound := fmt.Sprint(e.args[1])
		if len(e.rel) >= 2 && e.rel[len(e.rel)-2] == "memoryStress" && e.rel[len(e.rel)-1] == "size" {
			return fmt.Sprintf("invalid value %v: want a size such as 256MB or 1GiB, or a percentage of the container's memory such as 50%%", e.args[0])
		}
		for _, p := range patterns {
			if strings.Contains(bound, p.fragment) {
				return fmt.Sprintf("invalid value %v: %s", e.args[0], p.want)
			}
		}
		return fmt.Sprintf("invalid value %v: want %s", shortValue(fmt.Sprint(e.args[0])), bound)
	}
	return e.msg
}

// suggest proposes the closest field the schema allows at parent, if any is
// close enough to be a typo.
func suggest(name string, parent []string, v ...cue.Value) string {
	if len(v) < 2 || !v[1].Exists() {
		return ""
	}
	pv, ok := schemaAt(v[1], parent)
	if !ok {
		return ""
	}
	it, err := pv.Fields(cue.Optional(true))
	if err != nil {
		return ""
	}
	best, bestD := "", 1+len(name)/3
	var all []string
	for it.Next() {
		sel := it.Selector()
		if sel.LabelType() != cue.StringLabel {
			continue // a pattern constraint or an index, not a field name
		}
		if !pv.Allows(sel) {
			continue // the user's own unknown field
		}
		f := sel.Unquoted()
		if strings.HasPrefix(f, "_") || strings.HasPrefix(f, "#") || f == name {
			continue
		}
		all = append(all, f)
		if d := typo.Distance(strings.ToLower(name), strings.ToLower(f)); d < bestD {
			best, bestD = f, d
		}
	}
	if best != "" {
		return fmt.Sprintf(": did you mean %q?", best)
	}
	if len(all) > 0 && len(all) <= 20 {
		return "; allowed: " + strings.Join(all, ", ")
	}
	return ""
}
