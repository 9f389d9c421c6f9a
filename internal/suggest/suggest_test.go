package suggest

import "testing"

func TestClosest(t *testing.T) {
	cands := []string{"preAllocatedVUs", "maxVUs", "duration", "rate"}
	for _, tc := range []struct{ in, want string }{
		{"maxVU", "maxVUs"},
		{"duraton", "duration"},
		{"preallocatedVUs", "preAllocatedVUs"},
		{"rat", "rate"},
		{"threshold", ""}, // nothing near
		{"", ""},
	} {
		if got := Closest(tc.in, cands); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"same", "same", 0}} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
