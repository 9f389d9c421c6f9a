package k6opts

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"faultline.dev/faultline/internal/suggest"
)

// ErrInvalidThreshold is what every threshold problem's Err is, so
// errors.Is(err, ErrInvalidThreshold) tells threshold problems apart.
var ErrInvalidThreshold = errors.New("invalid threshold")

// MetricType is the type of a k6 metric, which decides the aggregations a
// threshold can use on it.
type MetricType int

// The four metric types.
const (
	Counter MetricType = iota + 1 // a sum: count, rate (per second)
	Gauge                         // the latest value: value
	Rate                          // the share of non-zero values: rate
	Trend                         // a distribution: avg, min, max, med, p(N)
)

func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Rate:
		return "rate"
	case Trend:
		return "trend"
	}
	return "MetricType(" + strconv.Itoa(int(t)) + ")"
}

// Aggregations lists the aggregations a threshold can use on a metric of
// this type; "p(N)" stands for every percentile.
func (t MetricType) Aggregations() []string {
	switch t {
	case Counter:
		return []string{"count", "rate"}
	case Gauge:
		return []string{"value"}
	case Rate:
		return []string{"rate"}
	case Trend:
		return []string{"avg", "min", "max", "med", "p(N)"}
	}
	return nil
}

// builtinMetrics are the metrics k6 itself emits, by k6's documentation.
var builtinMetrics = map[string]MetricType{
	// Every test.
	"checks":             Rate,
	"data_received":      Counter,
	"data_sent":          Counter,
	"dropped_iterations": Counter,
	"iteration_duration": Trend,
	"iterations":         Counter,
	"vus":                Gauge,
	"vus_max":            Gauge,
	"group_duration":     Trend,
	// HTTP.
	"http_reqs":                Counter,
	"http_req_failed":          Rate,
	"http_req_duration":        Trend,
	"http_req_blocked":         Trend,
	"http_req_connecting":      Trend,
	"http_req_tls_handshaking": Trend,
	"http_req_sending":         Trend,
	"http_req_waiting":         Trend,
	"http_req_receiving":       Trend,
	// WebSockets.
	"ws_connecting":       Trend,
	"ws_msgs_received":    Counter,
	"ws_msgs_sent":        Counter,
	"ws_ping":             Trend,
	"ws_session_duration": Trend,
	"ws_sessions":         Counter,
	// gRPC.
	"grpc_req_duration":          Trend,
	"grpc_streams":               Counter,
	"grpc_streams_msgs_received": Counter,
	"grpc_streams_msgs_sent":     Counter,
}

// BuiltinMetric returns the type of one of k6's built-in metrics.
func BuiltinMetric(name string) (MetricType, bool) {
	t, ok := builtinMetrics[name]
	return t, ok
}

// BuiltinMetrics lists k6's built-in metrics, sorted.
func BuiltinMetrics() []string { return sortedKeys(builtinMetrics) }

// metricNameRe is what a custom metric name may be: ASCII letters, digits
// and underscores, not starting with a digit, at most 128 characters.
var metricNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Threshold is one threshold of a metric: an expression such as
// "p(99)<300", and whether crossing it aborts the run, after how long.
type Threshold struct {
	Threshold      string    `json:"threshold"`
	AbortOnFail    bool      `json:"abortOnFail,omitempty"`
	DelayAbortEval *Duration `json:"delayAbortEval,omitempty"`
}

// Tag is one tag of a sub-metric filter.
type Tag struct{ Key, Value string }

// ParseMetricName splits a threshold's metric name into the metric and the
// tags of its sub-metric filter: "http_req_duration{phase:fault,x:y}" is
// http_req_duration with phase=fault and x=y. A tag's value is everything
// after the first colon, spaces around keys and values trimmed and one
// pair of quotes removed; keys and values must not be empty.
func ParseMetricName(name string) (metric string, tags []Tag, err error) {
	metric, filter, hasFilter := strings.Cut(name, "{")
	if !hasFilter {
		if strings.Contains(name, "}") {
			return "", nil, errors.New("a \"}\" without \"{\"")
		}
		return name, nil, nil
	}
	body, ok := strings.CutSuffix(filter, "}")
	if !ok {
		return "", nil, errors.New("the sub-metric filter must end the name with \"}\"")
	}
	if strings.ContainsAny(body, "{}") {
		return "", nil, errors.New("a sub-metric filter is one {...} at the end of the name")
	}
	if strings.TrimSpace(body) == "" {
		return "", nil, errors.New("the sub-metric filter {} is empty: list tags as {key:value,...}")
	}
	for _, pair := range strings.Split(body, ",") {
		k, val, ok := strings.Cut(pair, ":")
		k, val = strings.TrimSpace(k), unquote(strings.TrimSpace(val))
		if !ok || k == "" || val == "" {
			return "", nil, fmt.Errorf("malformed tag %q in the sub-metric filter: want key:value", strings.TrimSpace(pair))
		}
		tags = append(tags, Tag{Key: k, Value: val})
	}
	return metric, tags, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// Expression is a parsed threshold expression: Aggregation Operator Value.
type Expression struct {
	// Aggregation is count, rate, value, avg, min, max, med, or p for a
	// percentile (Percentile holds N of p(N)).
	Aggregation string
	Percentile  float64
	Operator    string
	Value       float64
}

// Operators are the comparisons a threshold expression may use.
var Operators = []string{">", ">=", "<", "<=", "==", "===", "!="}

var aggregations = []string{"count", "rate", "value", "avg", "min", "max", "med"}

// ParseExpression parses a threshold expression such as "p(99) < 300":
// an aggregation (count, rate, value, avg, min, max, med or p(N) with N
// from 0 to 100), an operator (>, >=, <, <=, ==, ===, !=) and a finite
// number, with optional spaces between them.
func ParseExpression(s string) (Expression, error) {
	var e Expression
	rest := strings.TrimSpace(s)
	if after, ok := strings.CutPrefix(rest, "p("); ok {
		n, tail, ok := strings.Cut(after, ")")
		if !ok {
			return e, errors.New("p( without a closing parenthesis")
		}
		f, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return e, fmt.Errorf("the percentile in p(%s) must be a number from 0 to 100", n)
		}
		e.Aggregation, e.Percentile, rest = "p", f, tail
	} else {
		i := strings.IndexFunc(rest, func(r rune) bool { return r < 'a' || r > 'z' })
		if i < 0 {
			i = len(rest)
		}
		e.Aggregation, rest = rest[:i], rest[i:]
		if !slices.Contains(aggregations, e.Aggregation) {
			return e, fmt.Errorf("no aggregation at the start: want %s or p(N)", strings.Join(aggregations, ", "))
		}
	}
	rest = strings.TrimLeft(rest, " ")
	for _, op := range []string{"===", "==", "!=", ">=", "<=", ">", "<"} { // longest first
		if after, ok := strings.CutPrefix(rest, op); ok {
			e.Operator, rest = op, after
			break
		}
	}
	if e.Operator == "" {
		return e, fmt.Errorf("no operator after %s: want one of %s", e.Aggregation, strings.Join(Operators, " "))
	}
	num := strings.TrimSpace(rest)
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return e, fmt.Errorf("%q is not a number to compare with (durations are plain milliseconds: 300, not 300ms)", num)
	}
	e.Value = f
	return e, nil
}

// appliesTo says whether the expression's aggregation exists for a metric
// type.
func (e Expression) appliesTo(t MetricType) bool {
	agg := e.Aggregation
	if agg == "p" {
		agg = "p(N)"
	}
	return slices.Contains(t.Aggregations(), agg)
}

// checkTrendStat checks one summaryTrendStats entry.
func checkTrendStat(s string) error {
	switch s {
	case "avg", "min", "med", "max", "count":
		return nil
	}
	if n, ok := strings.CutPrefix(s, "p("); ok {
		if n, ok := strings.CutSuffix(n, ")"); ok {
			if f, err := strconv.ParseFloat(n, 64); err == nil && f >= 0 && f <= 100 {
				return nil
			}
		}
	}
	return fmt.Errorf("%q is not a trend stat: use avg, min, med, max, count or p(N) with N from 0 to 100", s)
}

// checkMetrics checks the custom metrics declared with WithMetric.
func (v *validator) checkMetrics() {
	for _, name := range sortedKeys(v.custom) {
		typ := v.custom[name]
		if !metricNameRe.MatchString(name) {
			v.add(nil, nil, "custom metric name %q: a metric name holds only ASCII letters, digits and \"_\", does not start with a digit, and has at most 128 characters", name)
		}
		if b, ok := builtinMetrics[name]; ok && b != typ {
			v.add(nil, nil, "custom metric %q: k6's built-in %s is a %s, it cannot be declared a %s", name, name, b, typ)
		}
		if typ < Counter || typ > Trend {
			v.add(nil, nil, "custom metric %q: unknown metric type %d", name, int(typ))
		}
	}
}

// metricType returns the type of a metric a threshold names.
func (v *validator) metricType(name string) (MetricType, bool) {
	if t, ok := v.custom[name]; ok {
		return t, true
	}
	t, ok := builtinMetrics[name]
	return t, ok
}

// thresholds checks every threshold as k6 does before a run, and returns
// those of the metrics without problems.
func (v *validator) thresholds(raw any) map[string][]Threshold {
	base := []string{"thresholds"}
	if raw == nil {
		return nil
	}
	byMetric, err := toObject(raw)
	if err != nil {
		v.add(base, ErrInvalidThreshold, "thresholds must be an object of metric name to a list of thresholds, not %s", describe(raw))
		return nil
	}
	out := map[string][]Threshold{}
	for _, name := range sortedKeys(byMetric) {
		keys := join(base, name)
		n := len(v.problems)
		ts := v.metricThresholds(keys, name, byMetric[name])
		if len(v.problems) == n && ts != nil {
			out[name] = ts
		}
	}
	return out
}

func (v *validator) metricThresholds(keys []string, name string, raw any) []Threshold {
	bad := func(keys []string, msg string, args ...any) { v.add(keys, ErrInvalidThreshold, msg, args...) }
	if raw == nil {
		return nil
	}
	list, err := toList(raw)
	if err != nil {
		bad(keys, "a metric's thresholds must be a list of expressions or {threshold, abortOnFail, delayAbortEval} objects, not %s", describe(raw))
		return nil
	}
	metric, _, err := ParseMetricName(name)
	if err != nil {
		bad(keys, "malformed metric name %q: %v", name, err)
		return nil
	}
	typ, known := v.metricType(metric)
	if !known {
		msg := fmt.Sprintf("unknown metric %q: not one of k6's built-in metrics", metric)
		if len(v.custom) > 0 {
			msg += " nor a declared custom metric (" + quoteList(sortedKeys(v.custom)) + ")"
		}
		if s := suggest.Closest(metric, slices.Concat(BuiltinMetrics(), sortedKeys(v.custom))); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		bad(keys, "%s", msg)
		return nil
	}
	ts := make([]Threshold, 0, len(list))
	for i, item := range list {
		ikeys := join(keys, strconv.Itoa(i))
		t, ok := v.threshold(ikeys, item)
		if !ok {
			continue
		}
		e, err := ParseExpression(t.Threshold)
		switch {
		case err != nil:
			bad(ikeys, "threshold %q: %v", t.Threshold, err)
			continue
		case !e.appliesTo(typ):
			agg := e.Aggregation
			if agg == "p" {
				agg = fmt.Sprintf("p(%g)", e.Percentile)
			}
			bad(ikeys, "threshold %q: %s is a %s metric, which has no %s; use %s", t.Threshold, metric, typ, agg, strings.Join(typ.Aggregations(), ", "))
			continue
		}
		ts = append(ts, t)
	}
	return ts
}

// threshold decodes one threshold: an expression, or an object.
func (v *validator) threshold(keys []string, item any) (Threshold, bool) {
	var t Threshold
	if s, ok := item.(string); ok {
		t.Threshold = s
		return t, true
	}
	m, err := toObject(item)
	if err != nil {
		v.add(keys, ErrInvalidThreshold, "a threshold must be an expression such as \"p(99)<300\" or {threshold, abortOnFail, delayAbortEval}, not %s", describe(item))
		return t, false
	}
	ok := true
	for _, k := range sortedKeys(m) {
		var err error
		switch k {
		case "threshold":
			t.Threshold, err = toString(m[k])
		case "abortOnFail":
			t.AbortOnFail, err = toBool(m[k])
		case "delayAbortEval":
			var d Duration
			if d, err = toDuration(m[k]); err == nil {
				t.DelayAbortEval = &d
				if d < 0 {
					err = fmt.Errorf("must not be negative, not %s", d)
				}
			}
		default:
			err = errors.New("unknown field: a threshold object has threshold, abortOnFail and delayAbortEval")
		}
		if err != nil {
			v.add(join(keys, k), ErrInvalidThreshold, "%s: %v", k, err)
			ok = false
		}
	}
	if _, has := m["threshold"]; !has {
		v.add(keys, ErrInvalidThreshold, "the threshold object has no threshold expression")
		ok = false
	}
	return t, ok
}
