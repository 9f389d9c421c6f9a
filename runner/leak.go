package runner

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"faultline.dev/faultline/results"
)

// maxStacks and maxFrames bound what the goroutine diff keeps.
const (
	maxStacks = 5
	maxFrames = 12
)

// goroutineGrowth diffs the target's goroutine profiles between the end of
// steady (fault-start; before-load when there was no fault) and the end of
// the run (after-load): the stacks that grew most, with counts. nil when
// the profiles are not there (the target serves no /debug/pprof).
func goroutineGrowth(dir string) (*results.GoroutineDiff, error) {
	from := "fault-start"
	if _, err := os.Stat(profilePath(dir, from)); err != nil {
		from = "before-load"
	}
	before, err := goroutineStacks(profilePath(dir, from))
	if err != nil {
		return nil, err
	}
	after, err := goroutineStacks(profilePath(dir, "after-load"))
	if err != nil || before == nil || after == nil {
		return nil, err
	}
	d := &results.GoroutineDiff{From: from, To: "after-load"}
	for _, n := range before {
		d.Total[0] += n
	}
	for k, n := range after {
		d.Total[1] += n
		if n > before[k] {
			d.Stacks = append(d.Stacks, results.StackGrowth{Stack: strings.Split(k, "\n"), Before: before[k], After: n})
		}
	}
	slices.SortFunc(d.Stacks, func(a, b results.StackGrowth) int {
		if c := cmp.Compare(b.After-b.Before, a.After-a.Before); c != 0 {
			return c
		}
		return cmp.Compare(strings.Join(a.Stack, "\n"), strings.Join(b.Stack, "\n"))
	})
	if len(d.Stacks) > maxStacks {
		d.Stacks = d.Stacks[:maxStacks]
	}
	return d, nil
}

func profilePath(dir, name string) string {
	return filepath.Join(dir, "pprof", name+".goroutine.pb.gz")
}

// goroutineStacks reads a goroutine profile: goroutines by stack (function
// names, innermost first, at most maxFrames, joined by newlines). nil, nil
// when the file does not exist.
func goroutineStacks(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a goroutine profile: %w", filepath.Base(path), err)
	}
	out := map[string]int64{}
	for _, s := range p.Sample {
		var frames []string
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && len(frames) < maxFrames {
					frames = append(frames, l.Function.Name)
				}
			}
		}
		if len(frames) == 0 || len(s.Value) == 0 {
			continue
		}
		out[strings.Join(frames, "\n")] += s.Value[0]
	}
	return out, nil
}
