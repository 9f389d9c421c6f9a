package schema

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOneShotInstant: a podKill or containerKill may have just start; its
// window is the instant, judged on the OneShotWindow after it. A fault with
// a duration keeps it.
func TestOneShotInstant(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(`name: shop
version: 1.0.0
target:
  url: http://127.0.0.1:8080
  kubernetes: {namespace: shop, selector: {app: shop}}
load: {executor: constant-vus, vus: 2, duration: 60s, requests: [{path: /}]}
faults:
  kill: {start: 10s, podKill: {gracePeriod: 5}}
  ckill: {start: 30s, containerKill: {containerNames: [app]}}
  kill-window: {start: 5s, duration: 10s, podKill: {}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, diags, err := NewLoader().Load(context.Background(), []string{p})
	if err != nil || len(diags) > 0 || len(l) != 1 {
		t.Fatalf("load: %v %v", err, diags)
	}
	for _, tc := range []struct {
		name    string
		instant bool
		end     time.Duration
	}{
		{"kill", true, 40 * time.Second},
		{"ckill", true, 60 * time.Second},
		{"kill-window", false, 15 * time.Second},
	} {
		f := l[0].Scenario.Faults[tc.name]
		if f.Instant() != tc.instant || f.End().Std() != tc.end {
			t.Errorf("%s: instant %v, end %s; want %v, %s", tc.name, f.Instant(), f.End(), tc.instant, tc.end)
		}
	}
}
