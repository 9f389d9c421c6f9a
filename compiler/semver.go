package compiler

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"

	"faultline.dev/faultline/schema"
)

// Bump is the semver level a change to a scenario needs.
type Bump int

// Bump levels, in increasing order.
const (
	BumpNone Bump = iota
	BumpPatch
	BumpMinor
	BumpMajor
)

func (b Bump) String() string {
	switch b {
	case BumpNone:
		return "none"
	case BumpPatch:
		return "patch"
	case BumpMinor:
		return "minor"
	case BumpMajor:
		return "major"
	}
	return fmt.Sprintf("Bump(%d)", int(b))
}

// RequiredBump says which version bump the change from old to new needs, and
// why (one reason per changed part, most significant first):
//
//   - major: name, target, load (except the checks of its requests), faults
//     or their timing changed: golden baselines are no longer comparable;
//   - minor: SLOs, checks (request expect), baseline tolerances or guardrails
//     were added or changed;
//   - patch: description, owner or labels changed;
//   - none: nothing changed.
func RequiredBump(old, new *schema.Scenario) (Bump, []string) {
	type change struct {
		bump   Bump
		reason string
	}
	var changes []change
	add := func(b Bump, format string, args ...any) {
		changes = append(changes, change{b, fmt.Sprintf(format, args...)})
	}

	if old.Name != new.Name {
		add(BumpMajor, "name changed (%s → %s)", old.Name, new.Name)
	}
	if !equal(old.Target, new.Target) {
		add(BumpMajor, "target changed")
	}
	if !equal(loadWithoutChecks(old.Load), loadWithoutChecks(new.Load)) {
		add(BumpMajor, "load changed")
	}
	for _, name := range unionKeys(old.Faults, new.Faults) {
		of, inOld := old.Faults[name]
		nf, inNew := new.Faults[name]
		switch {
		case !inOld:
			add(BumpMajor, "fault %s added", name)
		case !inNew:
			add(BumpMajor, "fault %s removed", name)
		default:
			if of.Start != nf.Start || of.Duration != nf.Duration {
				add(BumpMajor, "fault %s: timing changed (start %s → %s, duration %s → %s)", name, of.Start, nf.Start, of.Duration, nf.Duration)
			}
			of.Start, of.Duration, nf.Start, nf.Duration = 0, 0, 0, 0
			if !equal(of, nf) {
				add(BumpMajor, "fault %s changed", name)
			}
		}
	}

	if !equal(old.SLOs, new.SLOs) {
		add(BumpMinor, "SLOs added or changed")
	}
	if !equal(checks(old.Load), checks(new.Load)) {
		add(BumpMinor, "checks (request expect) added or changed")
	}
	if !equal(old.Baseline, new.Baseline) {
		add(BumpMinor, "baseline tolerances added or changed")
	}
	if !equal(old.Guardrails, new.Guardrails) {
		add(BumpMinor, "guardrails added or changed")
	}

	if old.Description != new.Description {
		add(BumpPatch, "description changed")
	}
	if old.Owner != new.Owner {
		add(BumpPatch, "owner changed")
	}
	if !equal(old.Labels, new.Labels) {
		add(BumpPatch, "labels changed")
	}

	slices.SortStableFunc(changes, func(a, b change) int { return int(b.bump) - int(a.bump) })
	need := BumpNone
	reasons := []string{}
	for _, c := range changes {
		need = max(need, c.bump)
		reasons = append(reasons, c.bump.String()+": "+c.reason)
	}
	return need, reasons
}

// equal compares two parts of a scenario by their canonical JSON, the form
// the content hash is taken of (nil and empty optional parts are the same).
func equal(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return reflect.DeepEqual(a, b)
	}
	return string(ja) == string(jb)
}

func loadWithoutChecks(l schema.Load) schema.Load {
	l.Requests = slices.Clone(l.Requests)
	for i := range l.Requests {
		l.Requests[i].Expect = nil
	}
	return l
}

func checks(l schema.Load) []*schema.Expect {
	out := make([]*schema.Expect, len(l.Requests))
	for i, r := range l.Requests {
		out[i] = r.Expect
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Version is a parsed strict semantic version.
type Version struct {
	Major, Minor, Patch uint64
	Pre, Build          string
}

var semverRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$`)

// ParseVersion parses "MAJOR.MINOR.PATCH[-pre][+build]".
func ParseVersion(s string) (Version, error) {
	m := semverRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a strict semantic version (MAJOR.MINOR.PATCH)", s)
	}
	var v Version
	var err error
	for i, p := range []*uint64{&v.Major, &v.Minor, &v.Patch} {
		if *p, err = strconv.ParseUint(m[i+1], 10, 64); err != nil {
			return Version{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	v.Pre, v.Build = m[4], m[5]
	return v, nil
}

// BumpedEnough reports whether newV is above oldV by at least the level
// need: for major a higher MAJOR, for minor a higher MAJOR.MINOR, for patch
// a higher MAJOR.MINOR.PATCH. Pre-release and build suffixes do not count
// (1.0.0-rc.1 → 1.0.0 bumps nothing). Every version is enough for none.
func BumpedEnough(oldV, newV string, need Bump) (bool, error) {
	o, err := ParseVersion(oldV)
	if err != nil {
		return false, err
	}
	n, err := ParseVersion(newV)
	if err != nil {
		return false, err
	}
	oc := [3]uint64{o.Major, o.Minor, o.Patch}
	nc := [3]uint64{n.Major, n.Minor, n.Patch}
	var levels int
	switch need {
	case BumpNone:
		return true, nil
	case BumpMajor:
		levels = 1
	case BumpMinor:
		levels = 2
	default:
		levels = 3
	}
	for i := 0; i < levels; i++ {
		if nc[i] != oc[i] {
			return nc[i] > oc[i], nil
		}
	}
	return false, nil
}
