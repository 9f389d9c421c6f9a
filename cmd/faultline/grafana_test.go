package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"faultline.dev/faultline/runner/report"
)

// TestGrafanaDashboard: `faultline grafana dashboard` prints the shipped
// dashboard, and -f writes the same bytes to a file.
func TestGrafanaDashboard(t *testing.T) {
	want, err := report.Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "grafana", "dashboard").Output()
	if err != nil {
		t.Fatalf("grafana dashboard: %v", err)
	}
	if string(out) != string(want) {
		t.Errorf("stdout is not report.Dashboard()")
	}
	f := filepath.Join(t.TempDir(), "board.json")
	if out, err := exec.Command(binary, "grafana", "dashboard", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("grafana dashboard -f: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(f); err != nil || string(b) != string(want) {
		t.Errorf("-f %s: %v, %d bytes, want %d", f, err, len(b), len(want))
	}
}
