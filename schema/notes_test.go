package schema

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestNotes: a networkPartition without direction gets a note at its line
// (faultline's default "both" differs from Chaos Mesh's "to"); with a
// direction, or on another kind, there is none.
func TestNotes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault string
		want  string // "" for no note
	}{
		{"partition default", `networkPartition: {peer: {selector: {labels: {app: db}}}}`,
			`s.yaml:11:5: note: faults.f.networkPartition: direction is not set, so the partition cuts traffic both ways (faultline's default, "both"); Chaos Mesh's default is "to", which cuts only the target's traffic to the peer: write direction "both" to keep this, or "to" for Chaos Mesh's`},
		{"partition both", `networkPartition: {direction: both}`, ""},
		{"partition to", `networkPartition: {direction: to}`, ""},
		{"delay default", `networkDelay: {latency: 10ms}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "s.yaml")
			data := `name: shop
version: 1.0.0
target:
  url: http://127.0.0.1:8080
  kubernetes: {namespace: shop, selector: {app: shop}}
load: {executor: constant-vus, vus: 1, duration: 60s, requests: [{path: /}]}
faults:
  f:
    start: 10s
    duration: 10s
    ` + tc.fault + "\n"
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			l, diags, err := NewLoader().Load(context.Background(), []string{"s.yaml"})
			if err != nil || len(diags) > 0 {
				t.Fatalf("load: %v %v", err, diags)
			}
			notes := Notes(l)
			got := ""
			if len(notes) > 0 {
				got = notes.Error()
				if notes[0].Severity != SeverityNote {
					t.Errorf("severity %q", notes[0].Severity)
				}
			}
			if got != tc.want {
				t.Errorf("notes:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
