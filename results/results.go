// Package results holds the types of results.json — everything one run
// produced: its phases, SLO verdicts, fault windows, series and runtime
// scrapes — with reading, writing and the terminal table. It is data only:
// the runner fills a Result, and golden, the reports and maturity read one,
// without importing the runner.
package results

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/internal/atomicfile"
	"faultline.dev/faultline/schema"
)

// ResultsFile is the name of the results file in the report directory.
const ResultsFile = "results.json"

// ResultsFormat versions results.json.
const ResultsFormat = "faultline.dev/results/v1"

// Result is everything a run produced: results.json.
type Result struct {
	Format           string    `json:"format"`
	Scenario         string    `json:"scenario"`
	Version          string    `json:"version"`
	ContentHash      string    `json:"contentHash"`
	RunID            string    `json:"runId"`
	Backend          string    `json:"backend"`
	Target           string    `json:"target"`
	LoadURL          string    `json:"loadUrl,omitempty"`
	FaultlineVersion string    `json:"faultlineVersion"`
	StartedAt        time.Time `json:"startedAt"`
	LoadStart        time.Time `json:"loadStart"`
	EndedAt          time.Time `json:"endedAt"`
	PlannedLoad      float64   `json:"plannedLoadSeconds"`
	// TimeScale is the factor the scenario's timeline was scaled by
	// (`faultline run --time-scale`); absent when it ran as written.
	TimeScale float64 `json:"timeScale,omitempty"`

	Verdict  string `json:"verdict"`
	Reason   string `json:"reason"`
	ExitCode int    `json:"exitCode"`

	Phases   []PhaseResult `json:"phases"`
	SLOs     []SLOResult   `json:"slos"`
	Faults   []FaultResult `json:"faults"`
	Recovery *Recovery     `json:"recovery,omitempty"`

	Series  []Point        `json:"series"`
	Runtime []RuntimePoint `json:"runtime"`

	// Load is "in-cluster" when the backend ran the load (a k6-operator TestRun); absent when
	// faultline's engine ran it. LoadNote then says what cannot be judged, LoadOutcome how it ended.
	Load        string       `json:"load,omitempty"`
	LoadNote    string       `json:"loadNote,omitempty"`
	LoadOutcome *LoadOutcome `json:"loadOutcome,omitempty"`
	// Engine is what faultline's load engine knows of the load it ran.
	Engine *Engine `json:"engine,omitempty"`

	AbortedOnBreach bool `json:"abortedOnBreach,omitempty"`
	// Breach is the evidence of an abortOnBreach stop.
	Breach                *Breach `json:"breach,omitempty"`
	LateRequests          int64   `json:"lateRequests,omitempty"`
	RecoveryGraceRequests int64   `json:"recoveryGraceRequests,omitempty"`
	// TransitionRequests started before the first fault and ended after it
	// was injected: judged in neither phase.
	TransitionRequests int64    `json:"transitionRequests,omitempty"`
	Profiles           []string `json:"profiles,omitempty"`
	// Goroutines is the goroutine profile diff between steady and the end
	// of the run, when the target serves /debug/pprof.
	Goroutines   *GoroutineDiff `json:"goroutineGrowth,omitempty"`
	Unsupported  string         `json:"unsupported,omitempty"`
	CleanupError string         `json:"cleanupError,omitempty"`
	Warnings     []string       `json:"warnings,omitempty"`

	// Tolerances are the scenario's baseline section, kept so that
	// `faultline diff` can judge these results later without the scenario.
	Tolerances *schema.Baseline `json:"tolerances,omitempty"`
	// Baseline is this run compared with its golden baseline, when one
	// exists for the scenario's major version.
	Baseline *diff.Report `json:"baseline,omitempty"`
}

// Recovery is how long the service took to return to its steady level
// after the last fault ended.
type Recovery struct {
	Recovered bool    `json:"recovered"`
	Seconds   float64 `json:"seconds"`
}

// RuntimePoint is one scrape of the target's Go runtime.
type RuntimePoint struct {
	Offset     float64 `json:"t"`
	Goroutines float64 `json:"goroutines"`
	HeapInUse  float64 `json:"heapInUse"`
	RSS        float64 `json:"rss"`
}

// GoroutineDiff compares the target's goroutine profiles of two moments
// of the run: the stacks whose goroutines grew most between them.
type GoroutineDiff struct {
	// From and To name the snapshots (pprof/<name>.goroutine.pb.gz):
	// fault-start is the end of steady, after-load the end of the run.
	From   string        `json:"from"`
	To     string        `json:"to"`
	Total  [2]int64      `json:"total"` // goroutines in From and To
	Stacks []StackGrowth `json:"stacks"`
}

// Summary is one line per stack: how many more goroutines, and the
// innermost frames worth reading (runtime internals skipped).
func (d *GoroutineDiff) Summary() []string {
	var out []string
	for _, s := range d.Stacks {
		var frames []string
		for _, f := range s.Stack {
			if strings.HasPrefix(f, "runtime.") && len(s.Stack) > 1 {
				continue
			}
			if frames = append(frames, f); len(frames) == 3 {
				break
			}
		}
		out = append(out, fmt.Sprintf("+%d (%d → %d)  %s", s.After-s.Before, s.Before, s.After, strings.Join(frames, " ← ")))
	}
	return out
}

// StackGrowth is one goroutine stack and how many goroutines had it.
type StackGrowth struct {
	// Stack holds function names, the innermost first.
	Stack  []string `json:"stack"`
	Before int64    `json:"before"`
	After  int64    `json:"after"`
}

// Engine is what faultline's load engine reports: k6's counters for the
// executor that ran, and the VUs over time.
type Engine struct {
	Executor string `json:"executor"`
	// Iterations completed (each one request of the mix).
	Iterations int64 `json:"iterations"`
	// DroppedIterations found no free VU (arrival-rate executors at
	// maxVUs): k6's dropped_iterations. The target got less load than
	// planned.
	DroppedIterations int64 `json:"droppedIterations"`
	// InterruptedIterations were cut by gracefulStop, gracefulRampDown or
	// the end of the run; they have no sample.
	InterruptedIterations int64 `json:"interruptedIterations"`
	// MaxVUs is the most VUs held at once.
	MaxVUs int64 `json:"maxVUs"`
	// VUs has one point a second.
	VUs []VUPoint `json:"vus"`
}

// VUPoint is the engine's state at one instant of the run.
type VUPoint struct {
	Offset float64 `json:"t"` // seconds since the load start
	// VUs held by the executor and Busy running an iteration.
	VUs  int64 `json:"vus"`
	Busy int64 `json:"busy"`
	// Dropped iterations since the previous point.
	Dropped int64 `json:"dropped"`
}

// Point is one second of the run, for charts and the recovery time.
type Point struct {
	Offset float64 `json:"t"` // seconds since the load start
	// Requests started in this second, Failed of them (latencies too are
	// of the requests started in it).
	Requests int64 `json:"n"`
	Failed   int64 `json:"failed"`
	// Ended requests ended in this second, FailedEnded of them failed:
	// where a failure is seen (a kill fails the requests in flight at its
	// instant, though they started before it).
	Ended       int64   `json:"ended"`
	FailedEnded int64   `json:"failedEnded"`
	P50         float64 `json:"p50"`
	P95         float64 `json:"p95"`
	P99         float64 `json:"p99"`
	Max         float64 `json:"max"`
	Phase       string  `json:"phase"`
}

// Write writes results.json into dir atomically.
func (r *Result) Write(dir string) error {
	r.Format = ResultsFormat
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ResultsFile), append(b, '\n'), 0o644)
}

// ReadResult reads a results.json.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Format != ResultsFormat {
		return nil, fmt.Errorf("%s: not a faultline results file (format %q)", path, r.Format)
	}
	return &r, nil
}
