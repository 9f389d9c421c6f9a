// Package k6opts checks k6 options (the JSON form of a script's
// `export const options`) with k6's own types and rules, in-process and
// offline: lib.Options, the executor configs of lib/executor, and threshold
// expressions validated against k6's built-in metrics.
//
// Every problem names the options path it concerns, such as
// `scenarios.load.maxVUs` or `thresholds["http_req_duration{phase:fault}"][0]`,
// so a caller can map it back to the position in the scenario it compiled from.
package k6opts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/lib/executor" // also registers the executor config types
	"go.k6.io/k6/metrics"
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
	// Message says what is wrong, in k6's words where k6 has them.
	Message string
	// Err is k6's own error, when there is one.
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

// Unwrap returns k6's underlying errors, so errors.Is and errors.As see them
// (e.g. metrics.ErrInvalidThreshold).
func (e *Error) Unwrap() []error {
	var errs []error
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// Option adjusts what Validate knows about the script the options belong to.
type Option func(*config)

type config struct {
	custom  map[string]metrics.MetricType
	exports map[string]bool
}

// WithMetric declares a custom metric the script defines (new Trend(name),
// new Counter(name), ...), so thresholds on it validate. Without it only
// k6's built-in metrics are known.
func WithMetric(name string, typ metrics.MetricType) Option {
	return func(c *config) { c.custom[name] = typ }
}

// WithExports declares the functions the script exports. With it, each
// scenario's `exec` (default "default") must name one of them, as k6 checks
// after loading the script. Without it `exec` is not checked.
func WithExports(names ...string) Option {
	return func(c *config) {
		if c.exports == nil {
			c.exports = map[string]bool{}
		}
		for _, n := range names {
			c.exports[n] = true
		}
	}
}

// Validate checks k6 options given as JSON the way `k6 run` checks a
// script's options before it starts: it decodes them into lib.Options and
// the executor configs, derives scenarios from the shortcuts (vus, duration,
// iterations, stages), validates the options and every scenario, and parses
// and validates every threshold against k6's built-in metrics (including
// tagged sub-metrics such as `http_req_duration{phase:fault}`).
//
// Unlike k6, which only warns, unknown option names are problems too.
//
// The returned error is nil or an *Error listing every problem found.
func Validate(optionsJSON []byte, opts ...Option) error {
	c := config{custom: map[string]metrics.MetricType{}}
	for _, o := range opts {
		o(&c)
	}
	v := validator{config: c}
	v.run(optionsJSON)
	if len(v.problems) == 0 {
		return nil
	}
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Path < v.problems[j].Path })
	return &Error{Problems: v.problems}
}

type validator struct {
	config
	problems []Problem
}

func (v *validator) add(keys []string, err error, msg string) {
	if msg == "" && err != nil {
		msg = err.Error()
	}
	k := append([]string(nil), keys...)
	v.problems = append(v.problems, Problem{Path: FormatPath(k), Keys: k, Message: msg, Err: err})
}

// optionKeys maps each JSON name lib.Options accepts to its Go field name.
var optionKeys = func() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[lib.Options]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Name
	}
	return m
}()

func (v *validator) run(data []byte) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		v.add(nil, err, "options must be a JSON object: "+err.Error())
		return
	}
	if doc == nil { // "null"
		doc = map[string]json.RawMessage{}
	}

	// Decode each option on its own first, so a bad value is reported at
	// its key; then decode the good ones together.
	good := map[string]json.RawMessage{}
	for _, key := range sortedKeys(doc) {
		raw := doc[key]
		switch key {
		case "scenarios", "thresholds":
			continue // decoded piecewise below
		}
		if _, ok := optionKeys[key]; !ok {
			v.add([]string{key}, nil, fmt.Sprintf("unknown k6 option %q", key))
			continue
		}
		var o lib.Options
		single, _ := json.Marshal(map[string]json.RawMessage{key: raw})
		if err := json.Unmarshal(single, &o); err != nil {
			v.add([]string{key}, err, describeJSONError(err))
			continue
		}
		good[key] = raw
	}
	var o lib.Options
	all, _ := json.Marshal(good)
	if err := json.Unmarshal(all, &o); err != nil {
		v.add(nil, err, "") // cannot happen: each key decoded alone
		return
	}

	scenariosOK := true
	if raw, ok := doc["scenarios"]; ok {
		o.Scenarios, scenariosOK = v.scenarios(raw)
	}
	if raw, ok := doc["thresholds"]; ok {
		v.thresholds(raw)
	}

	if _, err := metrics.GetResolversForTrendColumns(o.SummaryTrendStats); err != nil {
		v.add([]string{"summaryTrendStats"}, err, "")
	}

	// Options.Validate also validates every scenario; do that separately
	// below so each problem names its scenario and field.
	rest := o
	rest.Scenarios = nil
	for _, err := range rest.Validate() {
		v.add(optionsErrorKeys(err), err, "")
	}

	derived, err := executor.DeriveScenariosFromShortcuts(o, discardLogger())
	if err != nil {
		v.add(conflictKeys(err), err, "")
		return
	}
	// With no scenario given (or none that decoded), k6 derives one named
	// "default" from the shortcut options.
	fromShortcuts := len(o.Scenarios) == 0
	if fromShortcuts && !scenariosOK {
		return // the scenarios given were all broken: reported above
	}
	for _, name := range sortedKeys(derived.Scenarios) {
		sc := derived.Scenarios[name]
		for _, err := range sc.Validate() {
			field := scenarioField(err.Error())
			if fromShortcuts {
				v.add(shortcutKeys(field), err, "")
			} else {
				v.add(append([]string{"scenarios", name}, splitField(field)...), err, "")
			}
		}
		if v.exports != nil && !v.exports[sc.GetExec()] {
			keys := []string{"scenarios", name, "exec"}
			if fromShortcuts {
				keys = nil
			}
			v.add(keys, nil, fmt.Sprintf("function %q not found in the script's exports", sc.GetExec()))
		}
	}
}

// scenarios decodes each scenario on its own. It returns the ones that
// decoded (non-nil unless raw is null) and whether all of them did.
func (v *validator) scenarios(raw json.RawMessage) (lib.ScenarioConfigs, bool) {
	base := []string{"scenarios"}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, true
	}
	var protos map[string]json.RawMessage
	if err := json.Unmarshal(raw, &protos); err != nil {
		v.add(base, err, "scenarios must be an object of scenario name to scenario: "+describeJSONError(err))
		return nil, false
	}
	result := make(lib.ScenarioConfigs, len(protos))
	ok := true
	for _, name := range sortedKeys(protos) {
		keys := []string{"scenarios", name}
		var head struct {
			Executor string `json:"executor"`
		}
		if err := json.Unmarshal(protos[name], &head); err != nil {
			v.add(keys, err, "a scenario must be an object: "+describeJSONError(err))
			ok = false
			continue
		}
		if head.Executor == "" {
			v.add(append(keys, "executor"), nil, "the scenario has no executor")
			ok = false
			continue
		}
		sc, err := lib.GetParsedExecutorConfig(name, head.Executor, protos[name])
		if err != nil {
			if strings.HasPrefix(err.Error(), "unknown executor type") {
				v.add(append(keys, "executor"), err, "")
			} else {
				v.add(append(keys, jsonErrorKeys(err)...), err, describeJSONError(err))
			}
			ok = false
			continue
		}
		result[name] = sc
	}
	return result, ok
}

// thresholds checks every threshold the way k6 does before a run: parse the
// expression, check the metric exists and supports the aggregation, and
// parse the sub-metric's tags.
func (v *validator) thresholds(raw json.RawMessage) {
	base := []string{"thresholds"}
	var byMetric map[string]json.RawMessage
	if err := json.Unmarshal(raw, &byMetric); err != nil {
		v.add(base, err, "thresholds must be an object of metric name to a list of thresholds: "+describeJSONError(err))
		return
	}
	registry := metrics.NewRegistry()
	metrics.RegisterBuiltinMetrics(registry)
	for _, name := range sortedKeys(v.custom) {
		if _, err := registry.NewMetric(name, v.custom[name]); err != nil {
			v.add(nil, err, fmt.Sprintf("custom metric %q: %v", name, err))
		}
	}

	for _, name := range sortedKeys(byMetric) {
		keys := []string{"thresholds", name}
		var ts metrics.Thresholds
		if err := json.Unmarshal(byMetric[name], &ts); err != nil {
			v.add(keys, err, "a metric's thresholds must be a list of expressions or {threshold, abortOnFail, delayAbortEval} objects: "+describeJSONError(err))
			continue
		}

		metricName, _, err := metrics.ParseMetricName(name)
		if err != nil {
			v.add(keys, err, "")
			continue
		}
		metric := registry.Get(metricName)
		if metric == nil {
			v.add(keys, metrics.ErrInvalidThreshold, fmt.Sprintf("unknown metric %q: not a k6 built-in metric nor a declared custom metric", metricName))
			continue
		}
		if _, tags, ok := strings.Cut(name, "{"); ok {
			// The metrics engine does this when the run starts.
			if _, err := metric.AddSubmetric(strings.TrimSuffix(tags, "}")); err != nil {
				v.add(keys, err, "")
				continue
			}
		}

		for i, t := range ts.Thresholds {
			one := metrics.Thresholds{Thresholds: []*metrics.Threshold{t}}
			ikeys := append(append([]string(nil), keys...), strconv.Itoa(i))
			if err := one.Parse(); err != nil {
				v.add(ikeys, err, fmt.Sprintf("threshold %q: %v", t.Source, err))
				continue
			}
			if err := one.Validate(name, registry); err != nil {
				v.add(ikeys, err, "")
			}
		}
	}
}

func discardLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// scenarioFields maps fragments of lib/executor's validation messages to the
// scenario field they are about. Order matters: the first match wins.
var scenarioFields = []struct{ fragment, field string }{
	{"maxVUs can't be less than preAllocatedVUs", "maxVUs"},
	{"number of active VUs", "vus"},
	{"preAllocatedVUs", "preAllocatedVUs"},
	{"startVUs exceed", "startVUs"},
	{"number of start VUs", "startVUs"},
	{"either startVUs or one of the stages", "stages"},
	{"at least one stage", "stages"},
	{"number of iterations", "iterations"},
	{"number of VUs", "vus"},
	{"iteration rate", "rate"},
	{"startRate", "startRate"},
	{"timeUnit", "timeUnit"},
	{"maxDuration", "maxDuration"},
	{"startTime", "startTime"},
	{"gracefulStop", "gracefulStop"},
	{"exec value", "exec"},
	{"type field", "executor"},
	{"scenario name", ""},
	{"the duration", "duration"},
}

var stageRe = regexp.MustCompile(`stage (\d+)`)

// scenarioField returns the field (possibly "stages[i].target") a scenario
// validation message is about, or "" for the scenario as a whole.
func scenarioField(msg string) string {
	if m := stageRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		field := "stages[" + strconv.Itoa(n-1) + "]"
		switch {
		case strings.Contains(msg, "duration"):
			field += ".duration"
		case strings.Contains(msg, "target"):
			field += ".target"
		}
		return field
	}
	for _, f := range scenarioFields {
		if strings.Contains(msg, f.fragment) {
			return f.field
		}
	}
	return ""
}

// splitField turns "stages[1].target" into {"stages", "1", "target"}.
func splitField(field string) []string {
	if field == "" {
		return nil
	}
	var keys []string
	for _, part := range strings.Split(field, ".") {
		name, idx, ok := strings.Cut(part, "[")
		keys = append(keys, name)
		if ok {
			keys = append(keys, strings.TrimSuffix(idx, "]"))
		}
	}
	return keys
}

// shortcutKeys maps a field of the scenario derived from the shortcut
// options (vus, duration, iterations, stages) back to the shortcut.
func shortcutKeys(field string) []string {
	keys := splitField(field)
	if len(keys) == 0 {
		return nil
	}
	switch keys[0] {
	case "maxDuration":
		keys[0] = "duration"
	case "startVUs":
		keys[0] = "vus"
	}
	return keys
}

var backticked = regexp.MustCompile("`([A-Za-z]+)`")

// conflictKeys names the first option an ExecutionConflictError mentions.
func conflictKeys(err error) []string {
	if m := backticked.FindStringSubmatch(err.Error()); m != nil {
		return []string{m[1]}
	}
	return nil
}

// optionsErrorKeys names the option an lib.Options.Validate error is about.
func optionsErrorKeys(err error) []string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "segment"):
		return []string{"executionSegment"}
	case strings.HasPrefix(msg, "setupTimeout"):
		return []string{"setupTimeout"}
	}
	for key := range optionKeys {
		if strings.HasPrefix(msg, key+" ") {
			return []string{key}
		}
	}
	return nil
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]+)"`)

// jsonErrorKeys extracts the field path from an encoding/json error.
func jsonErrorKeys(err error) []string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return strings.Split(te.Field, ".")
	}
	if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
		return []string{m[1]}
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got a JSON %s", te.Type, te.Value)
	}
	return err.Error()
}

var identRe = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// FormatPath renders raw path keys in the notation of Problem.Path: the
// first key as is, identifier keys after a dot, decimal indices of lists in
// brackets, and any other key quoted in brackets. Threshold metric names are
// always quoted, as they usually contain braces or colons.
func FormatPath(keys []string) string {
	var b strings.Builder
	for i, k := range keys {
		isIndex := i > 0 && isDecimal(k) && !(i == 1 && (keys[0] == "scenarios" || keys[0] == "thresholds"))
		switch {
		case i == 0:
			b.WriteString(k)
		case i == 1 && keys[0] == "thresholds":
			b.WriteString("[" + strconv.Quote(k) + "]")
		case isIndex:
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
