package k6cmd

import (
	"os"
	"slices"
	"testing"
)

func TestPrepare(t *testing.T) {
	oldArgs := os.Args
	t.Cleanup(func() { os.Args = oldArgs })
	// The user's explicit choice wins; unset variables get the default.
	t.Setenv("K6_AUTO_EXTENSION_RESOLUTION", "true")
	t.Setenv("K6_NO_USAGE_REPORT", "")
	os.Unsetenv("K6_NO_USAGE_REPORT")

	Prepare([]string{"run", "--quiet", "script.js"})

	if want := []string{"k6", "run", "--quiet", "script.js"}; !slices.Equal(os.Args, want) {
		t.Errorf("os.Args = %q, want %q", os.Args, want)
	}
	if got := os.Getenv("K6_AUTO_EXTENSION_RESOLUTION"); got != "true" {
		t.Errorf("K6_AUTO_EXTENSION_RESOLUTION = %q, want the user's %q", got, "true")
	}
	if got, ok := os.LookupEnv("K6_NO_USAGE_REPORT"); !ok || got != "true" {
		t.Errorf("K6_NO_USAGE_REPORT = %q (set %v), want the default %q", got, ok, "true")
	}
}
