// Package golden stores golden baselines of runs and compares runs with them.
//
// A baseline is a versioned JSON file, <dir>/<scenario>/v<major>.json, that
// holds per phase and per metric the value a blessed run measured and how
// many samples it rests on, plus the environment it was measured in. Baselines
// are keyed by the scenario's MAJOR version: a change that invalidates
// comparisons bumps major, and a baseline of another major is refused.
package golden

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/internal/atomicfile"
	"faultline.dev/faultline/results"
)

// Format versions the baseline file itself.
const Format = "faultline.dev/golden/v1"

// DefaultDir is where baselines live, relative to the working directory.
const DefaultDir = "golden"

// Baseline is one golden baseline file.
type Baseline struct {
	Format   string `json:"format"`
	Scenario string `json:"scenario"`
	// Version is the scenario version the baseline was blessed from; Major
	// its major, the key of the file.
	Version     string      `json:"version"`
	Major       int         `json:"major"`
	CreatedAt   time.Time   `json:"createdAt"`
	Environment Environment `json:"environment"`
	Phases      []Phase     `json:"phases"`
}

// Environment is where and how the blessed run was measured.
type Environment struct {
	FaultlineVersion string    `json:"faultlineVersion"`
	Backend          string    `json:"backend"`
	Target           string    `json:"target"`
	RunID            string    `json:"runId,omitempty"`
	ContentHash      string    `json:"contentHash,omitempty"`
	RunStartedAt     time.Time `json:"runStartedAt"`
	PlannedLoad      float64   `json:"plannedLoadSeconds"`
	// TimeScale is the run's --time-scale, absent when it ran as written.
	TimeScale float64 `json:"timeScale,omitempty"`
}

// Phase is one phase of the blessed run.
type Phase struct {
	Name    string            `json:"name"`
	Seconds float64           `json:"seconds"`
	Metrics map[string]Sample `json:"metrics"`
}

// Sample is one metric's value and the number of samples behind it.
type Sample struct {
	Value   float64 `json:"value"`
	Samples int64   `json:"samples"`
	Unit    string  `json:"unit"`
}

// Path is the baseline file of a scenario version: <dir>/<scenario>/v<major>.json.
func Path(dir, scenario, version string) (string, error) {
	major, err := Major(version)
	if err != nil {
		return "", err
	}
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, scenario, fmt.Sprintf("v%d.json", major)), nil
}

// Major returns the major of a semantic version such as "1.2.3-rc.1".
func Major(version string) (int, error) {
	s, _, ok := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("version %q is not a semantic version (major.minor.patch)", version)
	}
	return n, nil
}

// FromResult makes a baseline of a run's results.
func FromResult(res *results.Result, now time.Time) (*Baseline, error) {
	major, err := Major(res.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", res.Scenario, err)
	}
	b := &Baseline{
		Format: Format, Scenario: res.Scenario, Version: res.Version, Major: major, CreatedAt: now.UTC(),
		Environment: Environment{FaultlineVersion: res.FaultlineVersion, Backend: res.Backend, Target: res.Target,
			RunID: res.RunID, ContentHash: res.ContentHash, RunStartedAt: res.StartedAt, PlannedLoad: res.PlannedLoad, TimeScale: res.TimeScale},
	}
	for _, p := range res.Phases {
		ph := Phase{Name: p.Name, Seconds: round(p.End-p.JudgedFrom, 3), Metrics: map[string]Sample{}}
		for name, s := range Measure(p) {
			if s.Samples > 0 {
				ph.Metrics[name] = s
			}
		}
		b.Phases = append(b.Phases, ph)
	}
	return b, nil
}

// Bless writes a baseline of the run into dir (default "golden") at
// <dir>/<scenario>/v<major>.json, atomically, and returns its path. Only
// runs whose SLOs were met can be blessed (verdict pass or regression).
func Bless(res *results.Result, dir string) (string, error) {
	if res.Verdict != results.VerdictPass && res.Verdict != results.VerdictRegression {
		return "", fmt.Errorf("run %s of %s ended %q (%s): only a run whose SLOs were met can become the golden baseline", res.RunID, res.Scenario, res.Verdict, res.Reason)
	}
	if len(res.Phases) == 0 {
		return "", fmt.Errorf("run %s of %s has no phases to bless", res.RunID, res.Scenario)
	}
	b, err := FromResult(res, time.Now())
	if err != nil {
		return "", err
	}
	path, err := Path(dir, res.Scenario, res.Version)
	if err != nil {
		return "", err
	}
	return path, b.Write(path)
}

// Write writes the baseline to path atomically (a temporary file renamed
// over it), creating the directory.
func (b *Baseline) Write(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// Load reads a baseline file.
func Load(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b.Format != Format {
		return nil, fmt.Errorf("%s: not a faultline baseline of format %s (format %q): re-bless it with `faultline golden bless RESULTS`", path, Format, b.Format)
	}
	if m, err := Major(b.Version); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	} else if m != b.Major {
		return nil, fmt.Errorf("%s: major %d does not match version %s: re-bless it with `faultline golden bless RESULTS`", path, b.Major, b.Version)
	}
	return &b, nil
}

// LoadFor reads the baseline of a scenario version from dir; the error
// wraps fs.ErrNotExist when there is none.
func LoadFor(dir, scenario, version string) (*Baseline, string, error) {
	path, err := Path(dir, scenario, version)
	if err != nil {
		return nil, "", err
	}
	b, err := Load(path)
	return b, path, err
}

// MajorError refuses a baseline of another major version.
type MajorError struct {
	Path                    string
	Scenario                string
	Baseline, Measured      string
	BaselineMaj, MeasuredMj int
}

func (e *MajorError) Error() string {
	return fmt.Sprintf("baseline %s was blessed from %s %s (major %d) but this run is %s (major %d): a new major version invalidates comparisons; re-bless with `faultline golden bless RESULTS`",
		e.Path, e.Scenario, e.Baseline, e.BaselineMaj, e.Measured, e.MeasuredMj)
}

// ErrRefused is wrapped by every refusal to compare (another major, another scenario).
var ErrRefused = errors.New("baseline refused")

func (e *MajorError) Unwrap() error { return ErrRefused }

// Judge attaches a diff to a result and, when the run's SLOs were met but it
// regressed against its baseline, turns the verdict into "regression" (exit
// code 5). A run that breached an SLO keeps its verdict.
func Judge(res *results.Result, rep *diff.Report) {
	res.Baseline = rep
	if rep == nil || rep.Status != diff.StatusRegression || rep.Updated || res.Verdict != results.VerdictPass {
		return
	}
	var names []string
	for _, m := range rep.RegressedMetrics() {
		names = append(names, fmt.Sprintf("%s %s %s → %s (allowed %s)", m.Phase, m.Metric, FormatValue(m.Baseline, m.Unit), FormatValue(m.Measured, m.Unit), FormatChange(m.Allowed, m.Unit)))
	}
	res.Verdict = results.VerdictRegression
	res.Reason = "every SLO met, but worse than the golden baseline: " + strings.Join(names, "; ")
	res.ExitCode = results.ExitCode(res.Verdict)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
