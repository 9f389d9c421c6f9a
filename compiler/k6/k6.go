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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
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

// GracePhase is the phase tag of requests in the recovery phase before its
// judgeFrom (slos.recovery.within): they count against no threshold.
const GracePhase = "recovery-grace"

// AbortDelay is how long after a phase's judgeFrom an abortOnFail threshold
// starts to be evaluated.
const AbortDelay = 5 * time.Second

// Defaults from the schema's comments.
const (
	defaultTimeUnit         = time.Second
	defaultStartVUs         = 1
	defaultMaxDuration      = 10 * time.Minute
	defaultGracefulStop     = 30 * time.Second
	defaultGracefulRampDown = 30 * time.Second
	defaultParallelism      = 1
)

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

// Error is returned by Emit when the compiled options fail k6's own
// validation. Problems whose Path is in the load section carry the
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
// ConfigMap. The options are validated with k6's own rules; an *Error lists
// what k6 rejects.
func Emit(p *plan.Plan) (Files, error) {
	if p == nil || p.Source == nil {
		return nil, errors.New("k6: emit: plan without its scenario")
	}
	c, err := newCompilation(p)
	if err != nil {
		return nil, err
	}
	optionsJSON, err := marshalJS(c.options, "  ")
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: encoding options: %w", p.Scenario, err)
	}
	// options.json is a file of its own: the same options, without the
	// HTML escapes the script needs (the options hold no scenario strings).
	optionsFile, err := marshalPlain(c.options)
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: encoding options: %w", p.Scenario, err)
	}
	if err := k6opts.Validate(optionsJSON, k6opts.WithExports("default")); err != nil {
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
	script, err := c.script(optionsJSON)
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

// EmitLoaded compiles a loaded scenario: plan, then Emit. Problems that can
// be traced to the scenario (k6 rejecting a load parameter, a header value
// HTTP cannot carry) come back as diagnostics pointing into the user's file;
// anything else is an error (a compiler bug).
func EmitLoaded(l *schema.Loaded) (Files, schema.Diagnostics, error) {
	if ds := checkScenario(l); len(ds) > 0 {
		return nil, ds.Sort(), nil
	}
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

// checkScenario finds what the schema lets through but a request cannot
// carry: line breaks and NUL in header values.
func checkScenario(l *schema.Loaded) schema.Diagnostics {
	var ds schema.Diagnostics
	for i, r := range l.Scenario.Load.Requests {
		for _, k := range sortedKeys(r.Headers) {
			if strings.ContainsAny(r.Headers[k], "\r\n\x00") {
				ds = append(ds, l.Pos(fmt.Sprintf("load.requests.%d.headers.%s", i, k),
					fmt.Sprintf("header %s contains a line break or NUL, which HTTP does not allow in a header value: remove it", k)))
			}
		}
	}
	return ds
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
	options  options
	segments []segment
	phases   []phaseInfo
}

type options struct {
	Scenarios         map[string]scenario    `json:"scenarios"`
	Thresholds        map[string][]threshold `json:"thresholds,omitempty"`
	SummaryTrendStats []string               `json:"summaryTrendStats"`
}

// scenario is a k6 scenario; which fields are set depends on the executor.
type scenario struct {
	Executor         string  `json:"executor"`
	StartRate        *int    `json:"startRate,omitempty"`
	Rate             int     `json:"rate,omitempty"`
	TimeUnit         string  `json:"timeUnit,omitempty"`
	Duration         string  `json:"duration,omitempty"`
	StartVUs         *int    `json:"startVUs,omitempty"`
	Stages           []stage `json:"stages,omitempty"`
	PreAllocatedVUs  int     `json:"preAllocatedVUs,omitempty"`
	MaxVUs           int     `json:"maxVUs,omitempty"`
	VUs              int     `json:"vus,omitempty"`
	Iterations       int     `json:"iterations,omitempty"`
	MaxDuration      string  `json:"maxDuration,omitempty"`
	GracefulRampDown string  `json:"gracefulRampDown,omitempty"`
	GracefulStop     string  `json:"gracefulStop"`
	Exec             string  `json:"exec"`
}

type stage struct {
	Duration string `json:"duration"`
	Target   int    `json:"target"`
}

// threshold is a k6 threshold: a plain expression, or an object when it
// aborts the run.
type threshold struct {
	Expr           string
	AbortOnFail    bool
	DelayAbortEval string
}

// MarshalJSON writes the threshold without HTML escapes; an encoder that
// escapes HTML applies them to this output.
func (t threshold) MarshalJSON() ([]byte, error) {
	var v any = t.Expr
	if t.AbortOnFail {
		v = struct {
			Threshold      string `json:"threshold"`
			AbortOnFail    bool   `json:"abortOnFail"`
			DelayAbortEval string `json:"delayAbortEval"`
		}{t.Expr, true, t.DelayAbortEval}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// segment is a stretch of the timeline as the script sees it, in ms.
type segment struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Phase string  `json:"phase"`
	Fault string  `json:"fault"`
}

// phaseInfo describes a phase for the script's summary.
type phaseInfo struct {
	Name       string          `json:"name"`
	Start      float64         `json:"start"`
	End        float64         `json:"end"`
	JudgeFrom  float64         `json:"judgeFrom"`
	HasSLOs    bool            `json:"hasSLOs"`
	Throughput *float64        `json:"throughput,omitempty"`
	Thresholds []thresholdInfo `json:"thresholds"`
	// RunnerSLOs are the SLOs the runner judges from /metrics.
	RunnerSLOs []string `json:"runnerSLOs"`
}

type thresholdInfo struct {
	SLO       string `json:"slo"`
	Metric    string `json:"metric"`
	Threshold string `json:"threshold"`
}

func newCompilation(p *plan.Plan) (*compilation, error) {
	c := &compilation{p: p, s: p.Source}
	sc, err := loadScenario(c.s.Load)
	if err != nil {
		return nil, fmt.Errorf("k6: scenario %s: %w", p.Scenario, err)
	}
	c.options = options{
		Scenarios:         map[string]scenario{ScenarioName: sc},
		SummaryTrendStats: []string{"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"},
	}
	if err := c.thresholds(); err != nil {
		return nil, err
	}
	c.timeline()
	return c, nil
}

func loadScenario(l schema.Load) (scenario, error) {
	sc := scenario{Executor: l.Executor, Exec: "default", GracefulStop: dur(defaultGracefulStop)}
	if l.GracefulStop != nil {
		sc.GracefulStop = dur(l.GracefulStop.Std())
	}
	timeUnit := dur(defaultTimeUnit)
	if l.TimeUnit != 0 {
		timeUnit = dur(l.TimeUnit.Std())
	}
	maxVUs := l.MaxVUs
	if maxVUs == 0 {
		maxVUs = l.PreAllocatedVUs
	}
	maxDuration := dur(defaultMaxDuration)
	if l.MaxDuration != 0 {
		maxDuration = dur(l.MaxDuration.Std())
	}
	stages := make([]stage, len(l.Stages))
	for i, s := range l.Stages {
		stages[i] = stage{Duration: dur(s.Duration.Std()), Target: s.Target}
	}
	switch l.Executor {
	case schema.ConstantArrivalRate:
		sc.Rate, sc.TimeUnit, sc.Duration = l.Rate, timeUnit, dur(l.Duration.Std())
		sc.PreAllocatedVUs, sc.MaxVUs = l.PreAllocatedVUs, maxVUs
	case schema.RampingArrivalRate:
		startRate := 0
		if l.StartRate != nil {
			startRate = *l.StartRate
		}
		sc.StartRate, sc.TimeUnit, sc.Stages = &startRate, timeUnit, stages
		sc.PreAllocatedVUs, sc.MaxVUs = l.PreAllocatedVUs, maxVUs
	case schema.ConstantVUs:
		sc.VUs, sc.Duration = l.VUs, dur(l.Duration.Std())
	case schema.RampingVUs:
		startVUs := defaultStartVUs
		if l.StartVUs != nil {
			startVUs = *l.StartVUs
		}
		sc.StartVUs, sc.Stages = &startVUs, stages
		sc.GracefulRampDown = dur(defaultGracefulRampDown)
		if l.GracefulRampDown != nil {
			sc.GracefulRampDown = dur(l.GracefulRampDown.Std())
		}
	case schema.PerVUIterations, schema.SharedIterations:
		sc.VUs, sc.Iterations, sc.MaxDuration = l.VUs, l.Iterations, maxDuration
	default:
		return sc, fmt.Errorf("unknown executor %q", l.Executor)
	}
	return sc, nil
}

// phaseSLO returns the SLOs stated for a phase, or nil.
func (c *compilation) phaseSLO(name string) *schema.PhaseSLO {
	if c.s.SLOs == nil {
		return nil
	}
	switch name {
	case plan.Steady:
		return c.s.SLOs.Steady
	case plan.FaultPhase:
		return c.s.SLOs.Fault
	case plan.Recovery:
		if c.s.SLOs.Recovery != nil {
			return &c.s.SLOs.Recovery.PhaseSLO
		}
	}
	return nil
}

func (c *compilation) thresholds() error {
	th := map[string][]threshold{}
	parallelism := c.s.Load.Parallelism
	if parallelism == 0 {
		parallelism = defaultParallelism
	}
	for _, name := range []string{plan.Steady, plan.FaultPhase, plan.Recovery} {
		slo := c.phaseSLO(name)
		ph, ok := c.p.Phase(name)
		if slo == nil {
			if ok {
				c.phases = append(c.phases, c.phaseInfo(ph, false))
			}
			continue
		}
		if !ok {
			return fmt.Errorf("k6: scenario %s: slos.%s: the timeline has no %s phase", c.p.Scenario, name, name)
		}
		info := c.phaseInfo(ph, true)
		abort := func(expr string) threshold {
			if !slo.AbortOnBreach {
				return threshold{Expr: expr}
			}
			return threshold{Expr: expr, AbortOnFail: true, DelayAbortEval: dur(ph.JudgeFrom.Std() + AbortDelay)}
		}
		add := func(sloName, metric string, t threshold) {
			key := metric + "{phase:" + name + "}"
			th[key] = append(th[key], t)
			info.Thresholds = append(info.Thresholds, thresholdInfo{SLO: sloName, Metric: key, Threshold: t.Expr})
		}
		if lat := slo.Latency; lat != nil {
			for _, q := range []struct {
				slo, agg string
				d        schema.Duration
			}{
				{"p50", "p(50)", lat.P50}, {"p90", "p(90)", lat.P90}, {"p95", "p(95)", lat.P95},
				{"p99", "p(99)", lat.P99}, {"avg", "avg", lat.Avg}, {"max", "max", lat.Max},
			} {
				if q.d != 0 {
					add("latency."+q.slo, "http_req_duration", abort(q.agg+"<"+num(float64(q.d)/float64(time.Millisecond))))
				}
			}
		}
		if slo.ErrorRate != nil {
			add("errorRate", "http_req_failed", abort("rate<="+num(*slo.ErrorRate/100)))
		}
		if slo.Checks != nil {
			add("checks", "checks", abort("rate>="+num(*slo.Checks/100)))
		}
		if slo.Throughput != nil {
			seconds := (ph.End - ph.JudgeFrom).Std().Seconds()
			add("throughput", "http_reqs", threshold{Expr: "count>=" + num(*slo.Throughput*seconds/float64(parallelism))})
		}
		add("samples", "http_reqs", threshold{Expr: "count>0"})
		for _, r := range []struct {
			name string
			set  bool
		}{
			{"goroutines", slo.Goroutines != nil}, {"heapInUse", slo.HeapInUse != nil},
			{"gcPause", slo.GCPause != nil}, {"schedLatency", slo.SchedLatency != nil},
		} {
			if r.set {
				info.RunnerSLOs = append(info.RunnerSLOs, r.name)
			}
		}
		if slo.Throughput != nil {
			info.Throughput = slo.Throughput
		}
		c.phases = append(c.phases, info)
	}
	if len(th) > 0 {
		c.options.Thresholds = th
	}
	slices.SortFunc(c.phases, func(a, b phaseInfo) int { return int(a.Start - b.Start) })
	return nil
}

func (c *compilation) phaseInfo(ph plan.Phase, hasSLOs bool) phaseInfo {
	return phaseInfo{
		Name: ph.Name, Start: ms(ph.Start), End: ms(ph.End), JudgeFrom: ms(ph.JudgeFrom),
		HasSLOs: hasSLOs, Thresholds: []thresholdInfo{}, RunnerSLOs: []string{},
	}
}

// timeline makes the script's segments: the plan's, with the recovery
// phase split at its judgeFrom into recovery-grace and recovery.
func (c *compilation) timeline() {
	judge := plan.Duration(-1)
	if ph, ok := c.p.Phase(plan.Recovery); ok && ph.JudgeFrom > ph.Start {
		judge = ph.JudgeFrom
	}
	for _, s := range c.p.Segments {
		fault := "none"
		if len(s.Active) > 0 {
			fault = strings.Join(s.Active, "+")
		}
		if s.Phase == plan.Recovery && judge > s.Start {
			if judge >= s.End {
				c.segments = append(c.segments, segment{ms(s.Start), ms(s.End), GracePhase, fault})
				continue
			}
			c.segments = append(c.segments, segment{ms(s.Start), ms(judge), GracePhase, fault})
			s.Start = judge
		}
		c.segments = append(c.segments, segment{ms(s.Start), ms(s.End), s.Phase, fault})
	}
}

// dur writes a duration the way k6 parses it (Go duration syntax, shortest).
func dur(d time.Duration) string { return schema.Duration(d).String() }

// ms is a plan offset in milliseconds.
func ms(d plan.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// num writes a threshold number in plain decimal, rounding away float noise
// (0.1/100 is 0.001, not 0.0010000000000000002).
func num(v float64) string {
	r := math.Round(v*1e9) / 1e9
	if r == 0 && v != 0 {
		r = v
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// marshalJS encodes v as JSON that is safe to embed in JavaScript source
// and in YAML block scalars: HTML-escaped (<, >, &), U+2028 and U+2029
// escaped, and every other non-ASCII rune written as \u escapes, so the
// text is pure printable ASCII.
func marshalJS(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return asciiOnly(b), nil
}

// marshalPlain encodes v as indented JSON with a final newline.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return asciiOnly(buf.Bytes()), nil
}

// asciiOnly rewrites non-ASCII runes (which in JSON output appear only in
// strings) and DEL as \u escapes, with surrogate pairs above U+FFFF.
func asciiOnly(b []byte) []byte {
	ascii := true
	for _, c := range b {
		if c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < 0x7f:
			out.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		}
	}
	return out.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
