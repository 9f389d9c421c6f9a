package k6opts

import (
	"fmt"
	"sort"
)

// Option adjusts what Validate knows about the script the options belong to.
type Option func(*config)

type config struct {
	custom  map[string]MetricType
	exports map[string]bool
}

// WithMetric declares a custom metric the script defines (new Trend(name),
// new Counter(name), ...), so thresholds on it validate. Without it only
// k6's built-in metrics are known.
func WithMetric(name string, typ MetricType) Option {
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
// script's options before it starts (see the package documentation). The
// returned error is nil or an *Error listing every problem found, sorted
// by path.
func Validate(optionsJSON []byte, opts ...Option) error {
	_, err := Parse(optionsJSON, opts...)
	return err
}

// Parse validates options like Validate and returns them decoded. When
// there are problems it returns the options decoded as far as they were
// valid (an option or scenario with a problem of its own may be missing),
// and an *Error.
func Parse(optionsJSON []byte, opts ...Option) (*Options, error) {
	c := config{custom: map[string]MetricType{}}
	for _, o := range opts {
		o(&c)
	}
	v := &validator{config: c}
	o := v.run(optionsJSON)
	if len(v.problems) == 0 {
		return o, nil
	}
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Path < v.problems[j].Path })
	return o, &Error{Problems: v.problems}
}

type validator struct {
	config
	problems []Problem
}

// add records a problem at keys; msg is formatted with args.
func (v *validator) add(keys []string, err error, msg string, args ...any) {
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	k := append([]string(nil), keys...)
	v.problems = append(v.problems, Problem{Path: FormatPath(k), Keys: k, Message: msg, Err: err})
}

func (v *validator) run(data []byte) *Options {
	o := &Options{}
	doc, err := decodeJSON(data)
	if err != nil {
		v.add(nil, err, "options must be a JSON object: %v", err)
		return o
	}
	if doc == nil { // "null": no options at all
		doc = map[string]any{}
	}
	m, ok := doc.(map[string]any)
	if !ok {
		v.add(nil, nil, "options must be a JSON object, not %s", describe(doc))
		return o
	}

	// Each option on its own, so a bad value is reported at its key.
	scenariosGiven := false
	for _, key := range sortedKeys(m) {
		raw := m[key]
		switch key {
		case "scenarios":
			scenariosGiven = raw != nil
			o.Scenarios = v.scenarios(raw)
			continue
		case "thresholds":
			o.Thresholds = v.thresholds(raw)
			continue
		}
		dec, known := optionDecoders[key]
		if !known {
			v.add([]string{key}, nil, "%s", unknownOption(key))
			continue
		}
		if raw == nil {
			continue // null leaves an option unset, as in k6
		}
		if err := dec(v, []string{key}, o, raw); err != nil {
			v.add([]string{key}, err, "%v", err)
		}
	}
	v.checkOptions(o)
	v.checkMetrics()

	// The shortcuts stand for one scenario, unless scenarios are given.
	derived := v.shortcuts(o, scenariosGiven)
	scenarios := o.Scenarios
	switch {
	case scenariosGiven:
	case derived != nil:
		scenarios = map[string]Scenario{DefaultScenarioName: *derived}
	default:
		return o
	}
	for _, name := range sortedKeys(scenarios) {
		exec := scenarios[name].WithDefaults().Exec
		if v.exports == nil || v.exports[exec] {
			continue
		}
		keys := []string{"scenarios", name, "exec"}
		if !scenariosGiven {
			keys = nil
		}
		v.add(keys, nil, "the script exports no function %q to run (it exports %s)", exec, quoteList(sortedKeys(v.exports)))
	}
	return o
}
