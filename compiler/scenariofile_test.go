package compiler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// TestScenarioFile: every compiled version carries its scenario as
// scenario.json, whose sha256 is the content hash, and which the schema
// loader reads back into the same scenario (same content hash): what
// `faultline run REGISTRY/REPO@sha256:...` runs.
func TestScenarioFile(t *testing.T) {
	out := t.TempDir()
	for _, l := range load(t, sources...) {
		t.Run(l.Scenario.Name, func(t *testing.T) {
			res, err := CompileWith(context.Background(), l, out, Options{Emitters: []Emitter{}})
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(res.Dir, ScenarioFileName)
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if got := "sha256:" + hex.EncodeToString(sum[:]); got != res.Plan.ContentHash {
				t.Errorf("sha256(%s) = %s, content hash %s", ScenarioFileName, got, res.Plan.ContentHash)
			}
			back, diags, err := schema.NewLoader().Load(context.Background(), []string{name})
			if err != nil || len(diags) > 0 || len(back) != 1 {
				t.Fatalf("loading %s: %v %v (%d scenarios)", name, err, diags, len(back))
			}
			h, err := plan.ContentHash(back[0].Scenario)
			if err != nil || h != res.Plan.ContentHash {
				t.Errorf("reloaded content hash %s (%v), want %s", h, err, res.Plan.ContentHash)
			}
		})
	}
}
