package results

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"faultline.dev/faultline/internal/exitcode"
)

// Verdicts.
const (
	VerdictPass       = "pass"
	VerdictSLOBreach  = "slo-breach"
	VerdictRegression = "regression"
	VerdictAborted    = "aborted"
	VerdictError      = "error" // infrastructure: the run could not be judged
)

// ExitCode maps a verdict to the process exit code.
func ExitCode(verdict string) int {
	switch verdict {
	case VerdictPass:
		return exitcode.OK
	case VerdictSLOBreach:
		return exitcode.SLOBreach
	case VerdictRegression:
		return exitcode.Regression
	case VerdictAborted:
		return exitcode.Aborted
	}
	return exitcode.Infrastructure
}

// SLO statuses.
const (
	StatusPass   = "pass"
	StatusFail   = "fail"
	StatusNoData = "no-data"
)

// SLOResult is one objective of one phase, judged.
type SLOResult struct {
	Phase    string  `json:"phase"`
	SLO      string  `json:"slo"`
	Op       string  `json:"op"` // "<=" or ">="
	Limit    float64 `json:"limit"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Status   string  `json:"status"`
	Note     string  `json:"note,omitempty"`
}

// PhaseResult summarizes one phase.
type PhaseResult struct {
	Name        string  `json:"name"`
	Start       float64 `json:"startSeconds"`
	End         float64 `json:"endSeconds"`
	JudgedFrom  float64 `json:"judgedFromSeconds"`
	Requests    int64   `json:"requests"`
	Failed      int64   `json:"failed"`
	ErrorRate   float64 `json:"errorRate"`
	ChecksRate  float64 `json:"checksRate"`
	Throughput  float64 `json:"throughput"`
	P50         float64 `json:"p50Ms"`
	P90         float64 `json:"p90Ms"`
	P95         float64 `json:"p95Ms"`
	P99         float64 `json:"p99Ms"`
	Avg         float64 `json:"avgMs"`
	Max         float64 `json:"maxMs"`
	Goroutines  float64 `json:"goroutinesMean"`
	GoroutMax   float64 `json:"goroutinesMax"`
	HeapInUse   float64 `json:"heapInUseMeanBytes"`
	HeapMax     float64 `json:"heapInUseMaxBytes"`
	RSSMax      float64 `json:"rssMaxBytes"`
	GCPauseP99  float64 `json:"gcPauseP99Ms"`
	SchedP99    float64 `json:"schedLatencyP99Ms"`
	RuntimeSeen int     `json:"runtimeSamples"`
	// GCPauseSeen and SchedSeen count the scrapes that carried GC pause
	// and scheduler latency data: a target can expose the Go runtime's
	// goroutines and heap without them (0 of RuntimeSeen: not exposed).
	GCPauseSeen int `json:"gcPauseSamples"`
	SchedSeen   int `json:"schedLatencySamples"`
	// HTTPStatus counts the phase's HTTP requests by response status
	// ("200", "503"; "0": no response), GRPCStatus its gRPC calls by status
	// code name ("OK", "UNAVAILABLE"); absent when the phase had none (and
	// when the load's samples did not reach the runner).
	HTTPStatus map[string]int64 `json:"httpStatus,omitempty"`
	GRPCStatus map[string]int64 `json:"grpcStatus,omitempty"`
}

// Breach is the evidence an abortOnBreach stop rests on.
type Breach struct {
	Phase string `json:"phase"`
	// SLOs breached, each with its measured value and limit.
	SLOs []string `json:"slos"`
	// Requests of the phase judged, over Seconds of it.
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	// At is when the run was stopped, in seconds since the load start.
	At float64 `json:"atSeconds"`
}

// FaultResult is one fault: its planned and actual window and whether it
// visibly moved what it targets.
type FaultResult struct {
	Window
	Requests  int64   `json:"requests"`
	P50       float64 `json:"p50Ms"`
	P99       float64 `json:"p99Ms"`
	ErrorRate float64 `json:"errorRate"`
	Effective string  `json:"effective"` // yes, no, unknown
	Evidence  string  `json:"evidence"`
}

// Window is one fault's actual window; End is zero while the fault is active.
type Window struct {
	Fault       string    `json:"fault"`
	Kind        string    `json:"kind"`
	PlanStart   string    `json:"plannedStart"`
	PlanEnd     string    `json:"plannedEnd"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	StartOffset float64   `json:"startOffsetSeconds"`
	EndOffset   float64   `json:"endOffsetSeconds"`
	// Error is set when injecting or recovering failed.
	Error string `json:"error,omitempty"`
	// CutShort is set when the run stopped (an abort, a signal, an error)
	// while the fault was active: End is the instant it stopped, and the
	// fault was recovered by the cleanup that followed.
	CutShort bool `json:"cutShort,omitempty"`
}

// Statuses writes the phase's status counts in one line, HTTP then gRPC:
// "HTTP 200×950 503×12 no response×3 · gRPC OK×900 UNAVAILABLE×45" (HTTP
// by code, requests without a response last; gRPC OK first, then by name);
// "" when there are none.
func (p PhaseResult) Statuses() string {
	var parts []string
	if len(p.HTTPStatus) > 0 {
		keys := sortedStatusKeys(p.HTTPStatus, func(a, b string) bool {
			if (a == "0") != (b == "0") {
				return b == "0" // no response last
			}
			na, _ := strconv.Atoi(a)
			nb, _ := strconv.Atoi(b)
			return na < nb
		})
		var b strings.Builder
		b.WriteString("HTTP")
		for _, k := range keys {
			name := k
			if k == "0" {
				name = "no response"
			}
			fmt.Fprintf(&b, " %s×%d", name, p.HTTPStatus[k])
		}
		parts = append(parts, b.String())
	}
	if len(p.GRPCStatus) > 0 {
		keys := sortedStatusKeys(p.GRPCStatus, func(a, b string) bool {
			if (a == "OK") != (b == "OK") {
				return a == "OK"
			}
			return a < b
		})
		var b strings.Builder
		b.WriteString("gRPC")
		for _, k := range keys {
			fmt.Fprintf(&b, " %s×%d", k, p.GRPCStatus[k])
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " · ")
}

func sortedStatusKeys(m map[string]int64, less func(a, b string) bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	return keys
}
