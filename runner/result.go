package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/internal/atomicfile"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/scrape"
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
	// the embedded k6 ran it. LoadNote then says what cannot be judged, LoadOutcome how it ended.
	Load        string       `json:"load,omitempty"`
	LoadNote    string       `json:"loadNote,omitempty"`
	LoadOutcome *LoadOutcome `json:"loadOutcome,omitempty"`

	K6ExitCode            int   `json:"k6ExitCode"`
	AbortedOnBreach       bool  `json:"abortedOnBreach,omitempty"`
	LateRequests          int64 `json:"lateRequests,omitempty"`
	RecoveryGraceRequests int64 `json:"recoveryGraceRequests,omitempty"`
	// TransitionRequests started before the first fault and ended after it
	// was injected: judged in neither phase.
	TransitionRequests int64    `json:"transitionRequests,omitempty"`
	Profiles           []string `json:"profiles,omitempty"`
	Unsupported        string   `json:"unsupported,omitempty"`
	CleanupError       string   `json:"cleanupError,omitempty"`
	Warnings           []string `json:"warnings,omitempty"`

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

// summarize fills a phase's numbers.
func summarize(p PhaseResult, a *aggregate.Agg, rt *scrape.Phase) PhaseResult {
	if a != nil {
		p.Requests, p.Failed = a.Requests, a.Failed
		p.ErrorRate, p.ChecksRate = nan0(a.ErrorRate()), nan0(a.ChecksRate())
		p.P50, p.P90, p.P95, p.P99 = nan0(a.Quantile(0.5)), nan0(a.Quantile(0.9)), nan0(a.Quantile(0.95)), nan0(a.Quantile(0.99))
		p.Avg, p.Max = nan0(a.AvgMS()), a.MaxMS
		if d := p.End - p.JudgedFrom; d > 0 {
			p.Throughput = float64(a.Requests) / d
		}
	}
	if rt != nil && rt.Samples > 0 {
		p.RuntimeSeen = rt.Samples
		p.Goroutines, p.GoroutMax = nan0(rt.GoroutinesMean), nan0(rt.GoroutinesMax)
		p.HeapInUse, p.HeapMax, p.RSSMax = nan0(rt.HeapMean), nan0(rt.HeapMax), nan0(rt.RSSMax)
		p.GCPauseP99 = nan0(1000 * rt.GCPauses().Quantile(0.99))
		p.SchedP99 = nan0(1000 * rt.SchedLatency().Quantile(0.99))
	}
	return p
}

// WriteTable prints the verdict, a table per phase, the SLOs and the faults.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\n%s %s  backend %s  run %s\n", r.Scenario, r.Version, r.Backend, r.RunID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PHASE\tWINDOW\tREQUESTS\tREQ/S\tERRORS\tP50\tP95\tP99\tMAX\tGOROUTINES\tHEAP\t")
	for _, p := range r.Phases {
		gor, heap := "-", "-"
		if p.RuntimeSeen > 0 {
			gor = fmt.Sprintf("%.0f", p.Goroutines)
			heap = fmt.Sprintf("%.1fMB", p.HeapInUse/1e6)
		}
		fmt.Fprintf(tw, "%s\t%.1f-%.1fs\t%d\t%.1f\t%.2f%%\t%.1fms\t%.1fms\t%.1fms\t%.1fms\t%s\t%s\t\n",
			p.Name, p.Start, p.End, p.Requests, p.Throughput, p.ErrorRate, p.P50, p.P95, p.P99, p.Max, gor, heap)
	}
	tw.Flush()
	if len(r.SLOs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLO\tPHASE\tLIMIT\tMEASURED\tSTATUS")
		for _, s := range r.SLOs {
			measured := fmt.Sprintf("%.2f%s", s.Measured, s.Unit)
			if s.Status == StatusNoData {
				measured = "no data"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %.2f%s\t%s\t%s\n", s.SLO, s.Phase, s.Op, s.Limit, s.Unit, measured, strings.ToUpper(s.Status))
		}
		tw.Flush()
	}
	if len(r.Faults) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FAULT\tKIND\tPLANNED\tACTUAL\tEFFECTIVE\tEVIDENCE")
		for _, f := range r.Faults {
			fmt.Fprintf(tw, "%s\t%s\t%s-%s\t%.2f-%.2fs\t%s\t%s\n", f.Fault, f.Kind, f.PlanStart, f.PlanEnd, f.StartOffset, f.EndOffset, f.Effective, f.Evidence)
		}
		tw.Flush()
	}
	if r.Recovery != nil {
		if r.Recovery.Recovered {
			fmt.Fprintf(w, "\nrecovered %.0fs after the last fault ended\n", r.Recovery.Seconds)
		} else {
			fmt.Fprintln(w, "\ndid not return to the steady level before the load ended")
		}
	}
	if r.LoadNote != "" {
		fmt.Fprintf(w, "\nnote: %s\n", r.LoadNote)
	}
	fmt.Fprintf(w, "\nverdict: %s — %s (exit %d)\n", strings.ToUpper(r.Verdict), r.Reason, r.ExitCode)
}
