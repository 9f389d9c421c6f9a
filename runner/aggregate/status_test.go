package aggregate

import (
	"maps"
	"testing"
)

// TestStatuses: statuses are counted per kind and code, and merging adds
// the counts (into an aggregate that had none, too).
func TestStatuses(t *testing.T) {
	a, b, empty := New(), New(), New()
	for _, s := range []Status{{Code: 200}, {Code: 200}, {Code: 0}, {GRPC: true, Code: 0}, {GRPC: true, Code: 14}} {
		a.AddStatus(s)
	}
	b.AddStatus(Status{GRPC: true, Code: 14})
	b.AddStatus(Status{Code: 503})
	a.Merge(b)
	empty.Merge(a)
	want := map[Status]int64{{Code: 200}: 2, {Code: 0}: 1, {Code: 503}: 1, {GRPC: true, Code: 0}: 1, {GRPC: true, Code: 14}: 2}
	for name, got := range map[string]map[Status]int64{"merged": a.Statuses, "merged into an empty one": empty.Statuses} {
		if !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if b.Statuses[Status{GRPC: true, Code: 14}] != 1 {
		t.Errorf("merging changed the source: %v", b.Statuses)
	}
	if New().Statuses != nil {
		t.Error("a new aggregate has statuses")
	}
}
