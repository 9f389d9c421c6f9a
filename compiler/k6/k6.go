// Package k6 compiles a scenario's plan into what k6 runs: a script with the
// request mix, tags that place every request on the timeline, checks and a
// summary of its own; the k6 options (one scenario from the load section,
// thresholds from the SLOs per phase); and, for clusters, a k6-operator
// TestRun with the ConfigMap holding the script.
//
// Output is deterministic: the same plan always compiles to byte-identical
// files. Every string that comes from the scenario enters the script as
// JSON data (HTML-safe, ASCII-only), never as JavaScript source.
//
// # Phases and tags
//
// Every request carries a `phase` tag (steady, fault, recovery, or
// recovery-grace for the `slos.recovery.within` allowance after the last
// fault, which no threshold counts) and a `fault` tag (the active faults'
// names joined with "+", or "none"), both derived from the time elapsed
// since the k6 scenario started when the iteration begins.
//
// # Thresholds
//
// Per phase with SLOs, as sub-metrics tagged with the phase:
//
//	latency p50/p90/p95/p99/avg/max  http_req_duration{phase:X}  p(99)<1000 (ms)
//	errorRate (percent)              http_req_failed{phase:X}    rate<=0.01
//	checks (percent)                 checks{phase:X}             rate>=0.99
//	throughput (req/s)               http_reqs{phase:X}          count>=N*L/parallelism
//	any SLO                          http_reqs{phase:X}          count>0
//
// Limits are upper bounds as the schema states them ("the highest allowed"):
// errorRate is `rate<=`, so errorRate 0 means no failed request and can
// pass; latencies are strict (`<`), as in the scenarios' docs.
//
// k6 thresholds always cover the whole test, so `rate` on http_reqs would
// divide a phase's requests by the length of the whole run. A phase's
// throughput is therefore a count: at least N requests per second over the
// phase's judged length L (from judgeFrom to its end), per k6 runner. The
// script's summary reports the measured rate (count / L).
//
// A tagged sub-metric with no samples passes every threshold in k6; the
// `count>0` threshold makes a phase that has SLOs but got no requests fail
// the run (exit code 99), and the summary names it.
//
// The Go runtime SLIs (goroutines, heapInUse, gcPause, schedLatency) are
// judged by the runner from the target's /metrics, not by k6: they are not
// thresholds.
//
// With abortOnBreach, a phase's latency, errorRate and checks thresholds get
// abortOnFail, with delayAbortEval set to the phase's judgeFrom plus
// AbortDelay (k6 counts delayAbortEval from the start of the test), so a
// handful of early samples cannot abort the run.
package k6

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// File paths, relative to the scenario's output directory.
const (
	ScriptPath    = "k6/script.js"
	OptionsPath   = "k6/options.json"
	TestRunPath   = "k6/testrun.yaml"
	ConfigMapPath = "k6/configmap.yaml"
)

// ScenarioName is the name of the one k6 scenario the load compiles to.
const ScenarioName = "load"

// SummaryEnv names the environment variable that, when set, makes the
// script's handleSummary also write its JSON summary to that path.
const SummaryEnv = "FAULTLINE_SUMMARY"

// TargetEnv names the environment variable that, when set, replaces
// target.url as the base of every request (the runner points the load at
// its fault injector this way).
const TargetEnv = "FAULTLINE_TARGET_URL"

// GRPCTargetEnv names the environment variable that, when set, replaces
// target.grpc as the address of every gRPC call.
const GRPCTargetEnv = "FAULTLINE_TARGET_GRPC"

// GracePhase is the phase tag of requests in the recovery phase before its
// judgeFrom (slos.recovery.within): they count against no threshold.
const GracePhase = "recovery-grace"

// AbortDelay is how long after a phase's judgeFrom an abortOnFail threshold
// starts to be evaluated.
const AbortDelay = 5 * time.Second

// defaultParallelism is the schema's default of load.parallelism.
const defaultParallelism = 1

// File is one emitted file.
type File struct {
	// Path is relative to the scenario's output directory, e.g. "k6/script.js".
	Path string
	Data []byte
}

// Files are the emitted files, sorted by path.
type Files []File

// Get returns the data of the file at path, or nil.
func (fs Files) Get(path string) []byte {
	for _, f := range fs {
		if f.Path == path {
			return f.Data
		}
	}
	return nil
}

// Error is returned by Emit and CompileLoad when the compiled options fail
// k6's rules. Problems whose Path is in the load section carry the
// scenario's field path in Field.
type Error struct {
	Scenario string
	Problems []Problem
}

// Problem is one k6 options problem and, when known, the scenario field it
// comes from ("load.maxVUs"; "" when it cannot be traced back).
type Problem struct {
	k6opts.Problem
	Field string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "k6: scenario %s compiles to options k6 rejects:", e.Scenario)
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		if p.Field != "" {
			b.WriteString(p.Field + ": ")
		}
		b.WriteString(p.Problem.String())
	}
	return b.String()
}

// Emit compiles a plan into the k6 files: script, options, TestRun and
// ConfigMap. The options are validated with k6's rules (compiler/k6opts);
// an *Error lists what k6 would reject.
func Emit(p *plan.Plan) (Files, error) {
	c, err := compile(p)
	if err != nil {
		return nil, err
	}
	optionsJS, err := marshalJS(c.options, "  ")
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: encoding options: %w", p.Scenario, err)
	}
	// options.json is a file of its own: the same options, without the
	// HTML escapes the script needs (the options hold no scenario strings).
	optionsFile, err := marshalPlain(c.options)
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: encoding options: %w", p.Scenario, err)
	}
	script, err := c.script(optionsJS)
	if err != nil {
		return nil, err
	}
	testRun, configMap, err := c.kubernetes(script)
	if err != nil {
		return nil, err
	}
	files := Files{
		{Path: ConfigMapPath, Data: configMap},
		{Path: OptionsPath, Data: optionsFile},
		{Path: ScriptPath, Data: script},
		{Path: TestRunPath, Data: testRun},
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// compile builds a plan's compilation and validates its options with
// k6's rules, mapping each problem back to the scenario field it comes
// from.
func compile(p *plan.Plan) (*compilation, error) {
	if p == nil || p.Source == nil {
		return nil, errors.New("k6: plan without its scenario")
	}
	c, err := newCompilation(p)
	if err != nil {
		return nil, err
	}
	optionsJSON, err := marshalPlain(c.options)
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: encoding options: %w", p.Scenario, err)
	}
	if err := k6opts.Validate(optionsJSON, scriptRules(&c.load)...); err != nil {
		var oe *k6opts.Error
		if !errors.As(err, &oe) {
			return nil, fmt.Errorf("k6: scenario %s: %w", p.Scenario, err)
		}
		e := &Error{Scenario: p.Scenario}
		for _, pr := range oe.Problems {
			e.Problems = append(e.Problems, Problem{Problem: pr, Field: loadField(pr.Keys)})
		}
		return nil, e
	}
	return c, nil
}

// scriptRules are what k6 knows of the script when it checks the options:
// its export, and the custom metrics of a load with gRPC calls
// (thresholds.go).
func scriptRules(l *Load) []k6opts.Option {
	opts := []k6opts.Option{k6opts.WithExports(k6opts.DefaultExec)}
	if l.GRPC != nil {
		opts = append(opts, k6opts.WithMetric(GRPCFailedMetric, k6opts.Rate), k6opts.WithMetric(RequestsMetric, k6opts.Counter))
	}
	return opts
}

// EmitLoaded compiles a loaded scenario: plan, then Emit. Problems that can
// be traced to the scenario (k6 rejecting a load parameter, a header value
// HTTP cannot carry) come back as diagnostics pointing into the user's file;
// anything else is an error (a compiler bug).
func EmitLoaded(l *schema.Loaded) (Files, schema.Diagnostics, error) {
	p, err := plan.New(l.Scenario)
	if err != nil {
		return nil, nil, err
	}
	files, err := Emit(p)
	var e *Error
	if errors.As(err, &e) {
		var ds schema.Diagnostics
		var rest []Problem
		for _, pr := range e.Problems {
			if pr.Field == "" {
				rest = append(rest, pr)
				continue
			}
			ds = append(ds, l.Pos(pr.Field, "k6 rejects the load: "+pr.Message))
		}
		if len(rest) > 0 {
			return nil, ds.Sort(), &Error{Scenario: e.Scenario, Problems: rest}
		}
		return nil, ds.Sort(), nil
	}
	if err != nil {
		return nil, nil, err
	}
	return files, nil, nil
}

// loadField maps the keys of an options problem to the scenario field it
// comes from: scenarios.load.X → load.X.
func loadField(keys []string) string {
	if len(keys) < 3 || keys[0] != "scenarios" || keys[1] != ScenarioName {
		return ""
	}
	return "load." + strings.Join(keys[2:], ".")
}

// compilation is one plan being compiled.
type compilation struct {
	p        *plan.Plan
	s        *schema.Scenario
	options  k6opts.Options
	load     Load
	segments []segment
	phases   []phaseInfo
}

func newCompilation(p *plan.Plan) (*compilation, error) {
	c := &compilation{p: p, s: p.Source}
	sc, err := loadScenario(c.s.Load)
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: %w", p.Scenario, err)
	}
	c.load = Load{Scenario: sc, Requests: c.requests(), GRPC: c.grpcTarget()}
	c.options = k6opts.Options{
		Scenarios:         map[string]k6opts.Scenario{ScenarioName: sc},
		SummaryTrendStats: []string{"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"},
	}
	if err := c.thresholds(); err != nil {
		return nil, err
	}
	c.timeline()
	return c, nil
}
