// Package maturity reads the results of a service's runs (results.json) and
// says how far along the pre-launch checklist it is: which checklist items it
// ran and passed, and which maturity level that evidence supports.
//
// The levels build on each other:
//
//  1. observable: a baseline run (no fault) passed with the Go runtime
//     metrics scraped.
//  2. controlled faults: the network and resource faults (jitter, packet
//     loss, IO latency, clock skew, memory pressure, CPU starvation, lock
//     contention) ran, were effective, and their SLOs held.
//  3. dependency fallbacks hold: a slow downstream, a partition from a
//     dependency and a DNS failure were handled within the SLOs.
//  4. recovers by itself: after a pod kill and a multi-stage incident the
//     service met its recovery SLOs, was back at its steady level, and its
//     goroutine-leak check passed.
//
// A run counts for a checklist item by its faults' kinds (and, for lock
// contention, its name), so a service's own scenarios count as well as the
// library's. Each level states the runs it rests on and what is missing.
package maturity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"faultline.dev/faultline/results"
)

// Levels.
const (
	Observable       = 1
	ControlledFaults = 2
	Fallbacks        = 3
	SelfRecovery     = 4
)

// LevelNames names each level.
var LevelNames = map[int]string{
	Observable:       "observable",
	ControlledFaults: "controlled faults",
	Fallbacks:        "dependency fallbacks hold",
	SelfRecovery:     "recovers by itself",
}

// levelMeaning says what each level asserts.
var levelMeaning = map[int]string{
	Observable:       "a baseline run (no fault) passed with the Go runtime metrics scraped",
	ControlledFaults: "network and resource faults ran, were effective, and their SLOs held",
	Fallbacks:        "a slow, partitioned or unresolvable dependency was handled within the SLOs",
	SelfRecovery:     "after a pod kill and a multi-stage incident the service met its recovery SLOs, was back at its steady level and leaked no goroutines",
}

// Item is one entry of the pre-launch checklist.
type Item struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Level int    `json:"level"`
	// Scenario is the library scenario that covers it.
	Scenario string `json:"scenario"`
	// Kinds are the fault kinds a run must use (only these, at least one)
	// to count for the item; empty for the baseline (no fault).
	Kinds []string `json:"kinds,omitempty"`

	match func(*results.Result) bool
	needs func(*results.Result) []string
}

// Checklist is the pre-launch checklist, in level order.
var Checklist = []Item{
	{ID: "baseline", Title: "baseline, no fault", Level: Observable, Scenario: "baseline",
		match: func(r *results.Result) bool { return len(r.Faults) == 0 }, needs: needRuntime},
	{ID: "network-jitter", Title: "network jitter", Level: ControlledFaults, Scenario: "network-jitter", Kinds: []string{"networkDelay"}},
	{ID: "packet-loss", Title: "packet loss", Level: ControlledFaults, Scenario: "packet-loss", Kinds: []string{"networkLoss", "networkDuplicate", "networkCorrupt"}},
	{ID: "io-latency", Title: "IO latency on a volume", Level: ControlledFaults, Scenario: "io-latency", Kinds: []string{"ioLatency", "ioFault", "ioAttrOverride"}},
	{ID: "clock-skew", Title: "clock skew", Level: ControlledFaults, Scenario: "clock-skew", Kinds: []string{"timeSkew"}},
	{ID: "memory-pressure", Title: "memory pressure, goroutine-leak check after recovery", Level: ControlledFaults, Scenario: "memory-pressure",
		Kinds: []string{"memoryStress"}, needs: needLeakCheck},
	{ID: "cpu-starvation", Title: "CPU starvation, scheduler-latency SLO", Level: ControlledFaults, Scenario: "cpu-starvation", Kinds: []string{"cpuStress"},
		match: func(r *results.Result) bool { return !isLockContention(r) }, needs: needSchedLatency},
	{ID: "lock-contention", Title: "lock contention under CPU stress", Level: ControlledFaults, Scenario: "lock-contention", Kinds: []string{"cpuStress"},
		match: isLockContention},
	{ID: "slow-downstream", Title: "slow downstream (HTTP fault)", Level: Fallbacks, Scenario: "slow-downstream", Kinds: []string{"httpFault"}},
	{ID: "dependency-partition", Title: "partition from a dependency", Level: Fallbacks, Scenario: "dependency-partition", Kinds: []string{"networkPartition"}},
	{ID: "dns-failure", Title: "DNS failure of a dependency", Level: Fallbacks, Scenario: "dns-failure", Kinds: []string{"dnsFault"}},
	{ID: "pod-kill", Title: "pod kill, recovery-time SLO", Level: SelfRecovery, Scenario: "pod-kill", Kinds: killKinds, needs: needRecovery},
	{ID: "multi-stage", Title: "multi-stage incident (delay → kill → recovery)", Level: SelfRecovery, Scenario: "multi-stage",
		match: isMultiStage, needs: needRecovery},
}

var killKinds = []string{"podKill", "podFailure", "containerKill"}

// isLockContention: a CPU stress run named for lock contention.
func isLockContention(r *results.Result) bool {
	return strings.Contains(r.Scenario, "contention") || strings.Contains(r.Scenario, "lock")
}

// isMultiStage: two faults or more, one of them a kill, one of them not.
func isMultiStage(r *results.Result) bool {
	kill, other := false, false
	for _, f := range r.Faults {
		if slices.Contains(killKinds, f.Kind) {
			kill = true
		} else {
			other = true
		}
	}
	return len(r.Faults) >= 2 && kill && other
}

// Matches says whether a run counts for the item.
func (it Item) Matches(r *results.Result) bool {
	if len(it.Kinds) > 0 {
		if len(r.Faults) == 0 {
			return false
		}
		for _, f := range r.Faults {
			if !slices.Contains(it.Kinds, f.Kind) {
				return false
			}
		}
	}
	return it.match == nil || it.match(r)
}

// Input is one results.json.
type Input struct {
	Path   string
	Result *results.Result
}

// Load reads results: each path is a results.json, or a directory searched
// recursively for files named results.json.
func Load(paths []string) ([]Input, error) {
	var out []Input
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			r, err := results.ReadResult(p)
			if err != nil {
				return nil, err
			}
			out = append(out, Input{Path: p, Result: r})
			continue
		}
		n := len(out)
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || d.Name() != results.ResultsFile {
				return nil
			}
			r, err := results.ReadResult(q)
			if err != nil {
				return err
			}
			out = append(out, Input{Path: q, Result: r})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: no %s below it", p, results.ResultsFile)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no results given")
	}
	return out, nil
}

// Report is the assessment of a set of runs.
type Report struct {
	// Level is the highest level met, every level below it met too; 0 for
	// none.
	Level     int          `json:"level"`
	LevelName string       `json:"levelName,omitempty"`
	Results   int          `json:"results"`
	Levels    []Level      `json:"levels"`
	Checklist []ItemStatus `json:"checklist"`
	// Other are runs that count for no checklist item.
	Other []Evidence `json:"other,omitempty"`
}

// Level is one level's verdict and the evidence it rests on.
type Level struct {
	Level   int    `json:"level"`
	Name    string `json:"name"`
	Meaning string `json:"meaning"`
	Met     bool   `json:"met"`
	// Passed and Items count the level's checklist items.
	Passed   int        `json:"passed"`
	Items    int        `json:"items"`
	Evidence []Evidence `json:"evidence"`
	Missing  []string   `json:"missing"`
}

// Item statuses.
const (
	StatusPassed = "passed"
	StatusFailed = "failed"
	StatusNotRun = "not-run"
)

// ItemStatus is one checklist item: whether it was run and passed, the run
// it rests on, and what is missing.
type ItemStatus struct {
	Item
	Status string `json:"status"`
	// Runs is how many of the results count for the item.
	Runs int `json:"runs"`
	// Evidence is the run the status rests on: the latest that counts,
	// else the latest that was tried.
	Evidence *Evidence `json:"evidence,omitempty"`
	Missing  []string  `json:"missing,omitempty"`
}

// Evidence is one run, as the assessment reads it.
type Evidence struct {
	File      string          `json:"file"`
	Scenario  string          `json:"scenario"`
	Version   string          `json:"version"`
	RunID     string          `json:"runId"`
	Backend   string          `json:"backend"`
	Verdict   string          `json:"verdict"`
	TimeScale float64         `json:"timeScale,omitempty"`
	Faults    []FaultEvidence `json:"faults,omitempty"`
	// SLOs are the objectives the run judged, as "phase slo op limit:
	// measured status".
	SLOs []string `json:"slos"`
	// RuntimeScrapes is the number of Go runtime scrapes.
	RuntimeScrapes int      `json:"runtimeScrapes"`
	Recovered      *bool    `json:"recovered,omitempty"`
	RecoverySecs   *float64 `json:"recoverySeconds,omitempty"`
	// Problems say why the run does not count for its item; empty when it
	// does.
	Problems []string `json:"problems,omitempty"`
}

// FaultEvidence is one fault of a run.
type FaultEvidence struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Effective string `json:"effective"`
	Evidence  string `json:"evidence,omitempty"`
}

// Assess reads the runs against the checklist.
func Assess(in []Input) *Report {
	rep := &Report{Results: len(in)}
	counted := make([]bool, len(in))
	for _, it := range Checklist {
		st := ItemStatus{Item: it, Status: StatusNotRun}
		var best, tried *Evidence
		var bestAt, triedAt string
		for i, x := range in {
			if !it.Matches(x.Result) {
				continue
			}
			counted[i] = true
			st.Runs++
			ev := evidence(x)
			ev.Problems = problems(it, x.Result)
			at := x.Result.EndedAt.UTC().Format("20060102T150405.000000000") + x.Path
			if len(ev.Problems) == 0 {
				if best == nil || at > bestAt {
					best, bestAt = &ev, at
				}
			} else if tried == nil || at > triedAt {
				tried, triedAt = &ev, at
			}
		}
		switch {
		case best != nil:
			st.Status, st.Evidence = StatusPassed, best
		case tried != nil:
			st.Status, st.Evidence = StatusFailed, tried
			st.Missing = tried.Problems
		default:
			st.Missing = []string{notRun(it)}
		}
		rep.Checklist = append(rep.Checklist, st)
	}
	for i, x := range in {
		if !counted[i] {
			rep.Other = append(rep.Other, evidence(x))
		}
	}
	met := true
	for lv := Observable; lv <= SelfRecovery; lv++ {
		l := Level{Level: lv, Name: LevelNames[lv], Meaning: levelMeaning[lv], Evidence: []Evidence{}, Missing: []string{}}
		for _, st := range rep.Checklist {
			if st.Level != lv {
				continue
			}
			l.Items++
			if st.Status == StatusPassed {
				l.Passed++
				l.Evidence = append(l.Evidence, *st.Evidence)
				continue
			}
			l.Missing = append(l.Missing, fmt.Sprintf("%s (%s): %s", st.ID, st.Title, strings.Join(st.Missing, "; ")))
		}
		l.Met = l.Passed == l.Items
		if met && l.Met {
			rep.Level, rep.LevelName = lv, l.Name
		} else {
			met = false
		}
		rep.Levels = append(rep.Levels, l)
	}
	return rep
}

// notRun says what to run for an item no result counts for.
func notRun(it Item) string {
	what := "a run without faults"
	if len(it.Kinds) > 0 {
		what = "a run whose faults are " + strings.Join(it.Kinds, " or ")
	}
	switch it.ID {
	case "multi-stage":
		what = "a run with two faults or more, one of them a pod kill"
	case "lock-contention":
		what = "a cpuStress run of a scenario named for lock contention"
	}
	return fmt.Sprintf("not run: run the library's %s scenario (or %s)", it.Scenario, what)
}

func evidence(x Input) Evidence {
	r := x.Result
	ev := Evidence{File: x.Path, Scenario: r.Scenario, Version: r.Version, RunID: r.RunID, Backend: r.Backend, Verdict: r.Verdict,
		TimeScale: r.TimeScale, SLOs: []string{}, RuntimeScrapes: runtimeScrapes(r)}
	for _, f := range r.Faults {
		ev.Faults = append(ev.Faults, FaultEvidence{Name: f.Fault, Kind: f.Kind, Effective: f.Effective, Evidence: f.Evidence})
	}
	for _, s := range r.SLOs {
		ev.SLOs = append(ev.SLOs, fmt.Sprintf("%s %s %s %g%s: %s %s", s.Phase, s.SLO, s.Op, s.Limit, s.Unit, measured(s), s.Status))
	}
	if r.Recovery != nil {
		rec, secs := r.Recovery.Recovered, r.Recovery.Seconds
		ev.Recovered = &rec
		if rec {
			ev.RecoverySecs = &secs
		}
	}
	return ev
}

func measured(s results.SLOResult) string {
	if s.Status == results.StatusNoData {
		return "no data"
	}
	return fmt.Sprintf("%.4g%s", s.Measured, s.Unit)
}

func runtimeScrapes(r *results.Result) int {
	n := 0
	for _, p := range r.Phases {
		n += p.RuntimeSeen
	}
	return max(n, len(r.Runtime))
}

// problems says why a run that matches an item does not count for it.
func problems(it Item, r *results.Result) []string {
	var out []string
	switch r.Verdict {
	case results.VerdictPass:
	case results.VerdictRegression:
		out = append(out, "its SLOs held but it regressed against its golden baseline: "+r.Reason)
	default:
		out = append(out, fmt.Sprintf("verdict %s: %s", r.Verdict, r.Reason))
	}
	if len(r.SLOs) == 0 {
		out = append(out, "it judged no SLO: a run without objectives proves nothing")
	}
	for _, s := range r.SLOs {
		if s.Status != results.StatusPass && r.Verdict == results.VerdictPass {
			out = append(out, fmt.Sprintf("%s %s: %s", s.Phase, s.SLO, s.Status))
		}
	}
	for _, f := range r.Faults {
		if f.EndOffset <= f.StartOffset {
			out = append(out, fmt.Sprintf("fault %s (%s) has no actual window: it was never injected", f.Fault, f.Kind))
		}
	}
	switch it.Level {
	case ControlledFaults:
		if !hasSLO(r, "fault", "") {
			out = append(out, "no SLO on the fault phase")
		}
		for _, f := range r.Faults {
			if f.Effective != "yes" {
				out = append(out, fmt.Sprintf("fault %s (%s) was not shown effective (%s: %s)", f.Fault, f.Kind, f.Effective, f.Evidence))
			}
		}
	case Fallbacks:
		if !hasSLO(r, "fault", "") {
			out = append(out, "no SLO on the fault phase")
		}
	}
	if it.needs != nil {
		out = append(out, it.needs(r)...)
	}
	return out
}

// hasSLO: the run judged an SLO of the phase whose name starts with prefix.
func hasSLO(r *results.Result, phase, prefix string) bool {
	for _, s := range r.SLOs {
		if s.Phase == phase && strings.HasPrefix(s.SLO, prefix) {
			return true
		}
	}
	return false
}

func needRuntime(r *results.Result) []string {
	var out []string
	if runtimeScrapes(r) == 0 {
		out = append(out, "no Go runtime metrics were scraped: set target.metrics to the service's /metrics")
	}
	if !hasSLO(r, "steady", "") {
		out = append(out, "no SLO on the steady phase")
	}
	return out
}

func needSchedLatency(r *results.Result) []string {
	if !hasSLO(r, "fault", "schedLatency") {
		return []string{"no scheduler-latency SLO (slos.fault.schedLatency) on the fault phase"}
	}
	return nil
}

func needLeakCheck(r *results.Result) []string {
	if !hasSLO(r, "recovery", "goroutines") {
		return []string{"no goroutine-leak check (slos.recovery.goroutines) after recovery"}
	}
	return nil
}

func needRecovery(r *results.Result) []string {
	var out []string
	if !hasSLO(r, "recovery", "") {
		out = append(out, "no recovery SLOs (slos.recovery, with within as the recovery time)")
	}
	out = append(out, needLeakCheck(r)...)
	switch {
	case r.Recovery == nil:
		out = append(out, "no recovery was measured (no fault ended before the load did)")
	case !r.Recovery.Recovered:
		out = append(out, "the service did not return to its steady level before the load ended")
	}
	return out
}

// JSON writes the report as indented JSON.
func (rep *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
