// Package plan turns a validated scenario into its Plan: the typed timeline
// every emitter and the runner work from — the load window, each fault's
// [start, end), the phases, and the segments of the timeline with the faults
// active in each.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"faultline.dev/faultline/schema"
)

// Phase names.
const (
	Steady     = schema.PhaseSteady
	FaultPhase = schema.PhaseFault
	Recovery   = schema.PhaseRecovery
)

// Plan is the compiled timeline of one scenario. All offsets count from the
// start of the load.
type Plan struct {
	Scenario string `json:"scenario"`
	Version  string `json:"version"`
	// ContentHash is the sha256 of the scenario's canonical JSON: the same
	// content under the same version always hashes the same.
	ContentHash string `json:"contentHash"`
	// LoadEnd is the planned length of the load.
	LoadEnd Duration `json:"loadEnd"`
	// Faults in the order they start (then by name); Index numbers them.
	Faults []Fault `json:"faults"`
	// Phases present in this timeline, in order; a phase that would be
	// empty is left out (no steady phase when a fault starts at 0).
	Phases []Phase `json:"phases"`
	// Segments split the timeline at every fault boundary.
	Segments []Segment `json:"segments"`
	// TimeScale is the factor the scenario's timeline was scaled by (see
	// Scale) before this plan was made; 0 when it was not.
	TimeScale float64 `json:"timeScale,omitempty"`

	// Source is the scenario the plan was made from.
	Source *schema.Scenario `json:"-"`
}

// Fault is one fault's place on the timeline.
type Fault struct {
	Index int      `json:"index"`
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Start Duration `json:"start"`
	End   Duration `json:"end"`
	// Instant is true for a one-shot fault written with just start: it
	// acts at Start, and [Start, End) is the window its effect is judged
	// in (schema.OneShotWindow).
	Instant bool `json:"instant,omitempty"`
}

// Phase is one phase's window. For recovery, JudgeFrom is where its SLOs
// start to be judged: the end of the last fault plus slos.recovery.within.
type Phase struct {
	Name      string   `json:"name"`
	Start     Duration `json:"start"`
	End       Duration `json:"end"`
	JudgeFrom Duration `json:"judgeFrom"`
}

// Segment is a stretch of the timeline with one set of active faults.
type Segment struct {
	Start  Duration `json:"start"`
	End    Duration `json:"end"`
	Phase  string   `json:"phase"`
	Active []string `json:"active"`
}

// Duration is a time.Duration that marshals as a Go duration string.
type Duration = schema.Duration

// New makes the plan of a validated scenario.
func New(s *schema.Scenario) (*Plan, error) {
	hash, err := ContentHash(s)
	if err != nil {
		return nil, err
	}
	p := &Plan{Scenario: s.Name, Version: s.Version, ContentHash: hash, LoadEnd: Duration(s.LoadLength()), Source: s}
	for name, f := range s.Faults {
		p.Faults = append(p.Faults, Fault{Name: name, Kind: f.Kind(), Start: f.Start, End: f.End(), Instant: f.Instant()})
	}
	slices.SortFunc(p.Faults, func(a, b Fault) int {
		if a.Start != b.Start {
			return int((a.Start - b.Start) / Duration(time.Millisecond))
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i := range p.Faults {
		p.Faults[i].Index = i + 1
		if p.Faults[i].End > p.LoadEnd {
			return nil, fmt.Errorf("fault %s ends at %s, after the load (%s)", p.Faults[i].Name, p.Faults[i].End, p.LoadEnd)
		}
	}

	// Segments: cut at every boundary.
	cuts := []Duration{0, p.LoadEnd}
	for _, f := range p.Faults {
		cuts = append(cuts, f.Start, f.End)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	first, last := p.LoadEnd, Duration(0)
	for _, f := range p.Faults {
		first, last = min(first, f.Start), max(last, f.End)
	}
	for i := 0; i+1 < len(cuts); i++ {
		seg := Segment{Start: cuts[i], End: cuts[i+1], Active: []string{}}
		for _, f := range p.Faults {
			if f.Start <= seg.Start && seg.End <= f.End {
				seg.Active = append(seg.Active, f.Name)
			}
		}
		switch {
		case len(p.Faults) == 0 || seg.End <= first:
			seg.Phase = Steady
		case seg.Start >= last:
			seg.Phase = Recovery
		default:
			seg.Phase = FaultPhase
		}
		p.Segments = append(p.Segments, seg)
	}

	// Phases.
	if len(p.Faults) == 0 {
		p.Phases = []Phase{{Name: Steady, Start: 0, End: p.LoadEnd}}
		return p, nil
	}
	if first > 0 {
		p.Phases = append(p.Phases, Phase{Name: Steady, Start: 0, End: first})
	}
	p.Phases = append(p.Phases, Phase{Name: FaultPhase, Start: first, End: last, JudgeFrom: first})
	if last < p.LoadEnd {
		judge := last
		if s.SLOs != nil && s.SLOs.Recovery != nil {
			judge = min(last+s.SLOs.Recovery.Within, p.LoadEnd)
		}
		p.Phases = append(p.Phases, Phase{Name: Recovery, Start: last, End: p.LoadEnd, JudgeFrom: judge})
	}
	for i := range p.Phases {
		if p.Phases[i].Name == Steady {
			p.Phases[i].JudgeFrom = p.Phases[i].Start
		}
	}
	return p, nil
}

// Phase returns the named phase and whether the timeline has it.
func (p *Plan) Phase(name string) (Phase, bool) {
	for _, ph := range p.Phases {
		if ph.Name == name {
			return ph, true
		}
	}
	return Phase{}, false
}

// At returns the segment active at offset t (the last one at or after the end).
func (p *Plan) At(t time.Duration) Segment {
	for _, s := range p.Segments {
		if Duration(t) < s.End {
			return s
		}
	}
	return p.Segments[len(p.Segments)-1]
}

// ContentHash is the sha256 of the scenario's canonical JSON (map keys
// sorted, defaults not filled in): "sha256:<hex>".
func ContentHash(s *schema.Scenario) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("hashing scenario %s: %w", s.Name, err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
