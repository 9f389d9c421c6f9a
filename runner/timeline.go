package runner

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/results"
)

// Timeline records what actually happened: when the load started and when
// each fault was actually injected and recovered. Phases are judged on these
// actual windows, not on the plan.
type Timeline struct {
	mu        sync.Mutex
	plan      *plan.Plan
	loadStart time.Time
	windows   map[string]*results.Window
	// marks are the instants the runner was about to inject or recover a
	// fault, and the instant the backend then reported: they split the
	// run into segments that samples are keyed by. marked is their
	// instants, for lock-free lookups by the load's sink.
	marks  []mark
	marked atomic.Pointer[[]time.Time]
}

type mark struct{ at, actual time.Time }

// Mark records that a fault event starts now, before the backend is asked:
// requests from now on are in a new segment. It returns the mark's index
// for Settle.
func (t *Timeline) Mark(at time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.marks = append(t.marks, mark{at: at})
	times := make([]time.Time, len(t.marks))
	for i, m := range t.marks {
		times[i] = m.at
	}
	t.marked.Store(&times)
	return len(t.marks) - 1
}

// Settle records the instant the backend reported for mark i.
func (t *Timeline) Settle(i int, actual time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i >= 0 && i < len(t.marks) {
		t.marks[i].actual = actual
	}
}

// Segment is the number of marks at or before at.
func (t *Timeline) Segment(at time.Time) int32 {
	p := t.marked.Load()
	if p == nil {
		return 0
	}
	n, _ := slices.BinarySearchFunc(*p, at, func(m, at time.Time) int {
		if m.After(at) {
			return 1
		}
		return -1
	})
	return int32(n)
}

// startPoint is the instant that stands for the requests of segment seg
// that started in the slot [slot, slot+width): the slot's start, or, when
// the segment began inside the slot, the event's actual instant (clipped to
// the slot: an event that took effect later, as on a cluster, leaves them
// before it).
func (t *Timeline) startPoint(slot time.Time, width time.Duration, seg int32) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seg == 0 || int(seg) > len(t.marks) {
		return slot
	}
	m := t.marks[seg-1]
	if m.at.Before(slot) {
		return slot
	}
	at := m.actual
	if at.IsZero() || at.Before(m.at) {
		at = m.at
	}
	if last := slot.Add(width - time.Nanosecond); at.After(last) {
		at = last
	}
	return at
}

// endPoint is the latest instant the requests of segment seg that ended
// in the slot [slot, slot+width) can have ended at: the slot's end, or
// just before the next mark when it falls inside the slot.
func (t *Timeline) endPoint(slot time.Time, width time.Duration, seg int32) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	end := slot.Add(width - time.Nanosecond)
	if int(seg) < len(t.marks) {
		if next := t.marks[seg].at; !next.Before(slot) && next.Before(end) {
			end = next.Add(-time.Nanosecond)
		}
	}
	return end
}

// NewTimeline starts a timeline for a plan.
func NewTimeline(p *plan.Plan) *Timeline {
	return &Timeline{plan: p, windows: map[string]*results.Window{}}
}

// SetLoadStart records the instant the load started.
func (t *Timeline) SetLoadStart(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.loadStart = at
}

// LoadStart returns the instant the load started (zero before).
func (t *Timeline) LoadStart() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.loadStart
}

// Injected records a fault's actual start.
func (t *Timeline) Injected(f plan.Fault, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.windows[f.Name] = &results.Window{Fault: f.Name, Kind: f.Kind, PlanStart: f.Start.String(), PlanEnd: f.End.String(), Start: at,
		StartOffset: at.Sub(t.loadStart).Seconds()}
}

// Recovered records a fault's actual end.
func (t *Timeline) Recovered(name string, at time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windows[name]
	if w == nil {
		return
	}
	w.End = at
	w.EndOffset = at.Sub(t.loadStart).Seconds()
	if err != nil {
		w.Error = err.Error()
	}
}

// CutShort ends, at the instant at, every window still open: the run
// stopped while those faults were active.
func (t *Timeline) CutShort(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.windows {
		if w.End.IsZero() {
			w.End, w.EndOffset, w.CutShort = at, at.Sub(t.loadStart).Seconds(), true
		}
	}
}

// Windows returns the recorded windows in plan order.
func (t *Timeline) Windows() []results.Window {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []results.Window
	for _, f := range t.plan.Faults {
		if w := t.windows[f.Name]; w != nil {
			out = append(out, *w)
		}
	}
	return out
}

// Active returns the faults active now.
func (t *Timeline) Active() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, f := range t.plan.Faults {
		if w := t.windows[f.Name]; w != nil && w.End.IsZero() {
			out = append(out, f.Name)
		}
	}
	return out
}

// Classification of an instant.
type Classification struct {
	// Phase is steady, fault or recovery; Grace is true inside recovery's
	// `within` allowance, which recovery SLOs do not judge.
	Phase  string
	Grace  bool
	Faults []string // faults active at that instant
}

// Classify says which phase an instant belongs to, by the actual windows.
func (t *Timeline) Classify(at time.Time) Classification {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c Classification
	var lastEnd time.Time
	started, allEnded := 0, true
	for _, f := range t.plan.Faults {
		w := t.windows[f.Name]
		if w == nil {
			allEnded = false
			continue
		}
		if !at.Before(w.Start) {
			started++
		}
		if !at.Before(w.Start) && (w.End.IsZero() || at.Before(w.End)) {
			c.Faults = append(c.Faults, f.Name)
		}
		if w.End.IsZero() {
			allEnded = false
		} else if w.End.After(lastEnd) {
			lastEnd = w.End
		}
	}
	switch {
	case len(c.Faults) > 0:
		c.Phase = plan.FaultPhase
	case started == 0:
		c.Phase = plan.Steady
	case allEnded && !at.Before(lastEnd):
		c.Phase = plan.Recovery
		if rec, ok := t.plan.Phase(plan.Recovery); ok {
			grace := time.Duration(rec.JudgeFrom - rec.Start)
			c.Grace = at.Before(lastEnd.Add(grace))
		}
	default:
		c.Phase = plan.FaultPhase // between two faults
	}
	return c
}

// LastFaultEnd is the actual end of the last fault (zero if any is still
// active or none ran).
func (t *Timeline) LastFaultEnd() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last time.Time
	for _, w := range t.windows {
		if w.End.IsZero() {
			return time.Time{}
		}
		if w.End.After(last) {
			last = w.End
		}
	}
	return last
}

// isFirstInjection reports whether exactly one fault has been injected.
func (t *Timeline) isFirstInjection() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.windows) == 1
}
