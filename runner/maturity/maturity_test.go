package maturity

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// allPass is one passing run of every checklist item.
var allPass = []string{"baseline-pass", "jitter-pass", "loss-pass", "io-pass", "clock-pass", "memory-pass", "cpu-pass", "lock-pass",
	"downstream-pass", "partition-pass", "dns-pass", "podkill-pass", "multistage-pass"}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		keep := true
		for _, d := range drop {
			keep = keep && s != d
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func load(t *testing.T, names ...string) []Input {
	t.Helper()
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join("testdata", n+".json"))
	}
	in, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestAssess(t *testing.T) {
	cases := []struct {
		name    string
		results []string
		level   int
		status  map[string]string // item → status
		missing []string          // substrings of the missing lines, any level
		other   int
	}{
		{
			name: "everything passed", results: allPass, level: 4,
			status: map[string]string{"baseline": StatusPassed, "lock-contention": StatusPassed, "cpu-starvation": StatusPassed, "multi-stage": StatusPassed},
		},
		{
			name: "baseline only", results: []string{"baseline-pass"}, level: 1,
			status:  map[string]string{"baseline": StatusPassed, "network-jitter": StatusNotRun},
			missing: []string{"network-jitter (network jitter): not run", "pod-kill (pod kill, recovery-time SLO): not run"},
		},
		{
			name: "baseline without runtime metrics", results: []string{"baseline-no-metrics"}, level: 0,
			status:  map[string]string{"baseline": StatusFailed},
			missing: []string{"no Go runtime metrics were scraped"},
		},
		{
			name: "no results count for nothing", results: []string{"bandwidth-pass"}, level: 0, other: 1,
			status: map[string]string{"baseline": StatusNotRun, "network-jitter": StatusNotRun},
		},
		{
			name: "an ineffective fault does not count for level 2", results: append(without(allPass, "jitter-pass"), "jitter-ineffective"), level: 1,
			status:  map[string]string{"network-jitter": StatusFailed, "slow-downstream": StatusPassed},
			missing: []string{"fault jitter (networkDelay) was not shown effective"},
		},
		{
			name: "a passing run counts even when a later one failed", results: append(allPass, "jitter-ineffective", "podkill-breach"), level: 4,
			status: map[string]string{"network-jitter": StatusPassed, "pod-kill": StatusPassed},
		},
		{
			name: "memory pressure needs the leak check", results: append(without(allPass, "memory-pass"), "memory-no-leak-check"), level: 1,
			status:  map[string]string{"memory-pressure": StatusFailed},
			missing: []string{"no goroutine-leak check (slos.recovery.goroutines) after recovery"},
		},
		{
			name: "level 3 needs every dependency scenario", results: without(allPass, "dns-pass"), level: 2,
			status:  map[string]string{"dns-failure": StatusNotRun},
			missing: []string{"dns-failure (DNS failure of a dependency): not run"},
		},
		{
			name: "pod kill that breached", results: append(without(allPass, "podkill-pass"), "podkill-breach"), level: 3,
			status:  map[string]string{"pod-kill": StatusFailed},
			missing: []string{"verdict slo-breach: SLO breached: fault errorRate"},
		},
		{
			name: "multi-stage that never recovered", results: append(without(allPass, "multistage-pass"), "multistage-not-recovered"), level: 3,
			status:  map[string]string{"multi-stage": StatusFailed, "network-jitter": StatusPassed},
			missing: []string{"did not return to its steady level"},
		},
		{
			name: "levels are cumulative", results: without(allPass, "baseline-pass"), level: 0,
			status:  map[string]string{"baseline": StatusNotRun, "multi-stage": StatusPassed},
			missing: []string{"baseline (baseline, no fault): not run"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := Assess(load(t, tc.results...))
			if rep.Level != tc.level {
				t.Errorf("level %d, want %d", rep.Level, tc.level)
			}
			got := map[string]string{}
			for _, st := range rep.Checklist {
				got[st.ID] = st.Status
			}
			for id, want := range tc.status {
				if got[id] != want {
					t.Errorf("item %s: %s, want %s", id, got[id], want)
				}
			}
			var missing []string
			for _, l := range rep.Levels {
				missing = append(missing, l.Missing...)
				if l.Met != (l.Passed == l.Items) {
					t.Errorf("level %d met=%v with %d/%d items", l.Level, l.Met, l.Passed, l.Items)
				}
				if l.Met && len(l.Missing) > 0 {
					t.Errorf("level %d met but missing %v", l.Level, l.Missing)
				}
				if l.Level <= rep.Level && !l.Met {
					t.Errorf("level %d not met below the report's level %d", l.Level, rep.Level)
				}
			}
			all := strings.Join(missing, "\n")
			for _, m := range tc.missing {
				if !strings.Contains(all, m) {
					t.Errorf("missing lines lack %q:\n%s", m, all)
				}
			}
			if len(rep.Other) != tc.other {
				t.Errorf("%d runs counted for no item, want %d", len(rep.Other), tc.other)
			}
		})
	}
}

// TestEvidence: a level names the runs it rests on, their faults' efficacy,
// their SLOs and recovery, and a shortened run says so.
func TestEvidence(t *testing.T) {
	rep := Assess(load(t, allPass...))
	byLevel := map[int]Level{}
	for _, l := range rep.Levels {
		byLevel[l.Level] = l
	}
	l2 := byLevel[ControlledFaults]
	var jitter *Evidence
	for i, ev := range l2.Evidence {
		if ev.Scenario == "network-jitter" {
			jitter = &l2.Evidence[i]
		}
	}
	if jitter == nil {
		t.Fatalf("level 2 does not rest on network-jitter: %+v", l2.Evidence)
	}
	if jitter.File != filepath.Join("testdata", "jitter-pass.json") || jitter.TimeScale != 0.15 || len(jitter.Faults) != 1 ||
		jitter.Faults[0].Kind != "networkDelay" || jitter.Faults[0].Effective != "yes" {
		t.Errorf("jitter evidence: %+v", jitter)
	}
	if !containsAll(strings.Join(jitter.SLOs, "\n"), "fault latency.p99 <= 1000ms: 300ms pass", "recovery goroutines.overSteady <= 20%: 3.5% pass") {
		t.Errorf("jitter SLOs: %v", jitter.SLOs)
	}
	l4 := byLevel[SelfRecovery]
	if len(l4.Evidence) != 2 || l4.Evidence[0].Recovered == nil || !*l4.Evidence[0].Recovered {
		t.Errorf("level 4 evidence: %+v", l4.Evidence)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestFormats: text, markdown and JSON carry the level, the evidence and
// what is missing.
func TestFormats(t *testing.T) {
	rep := Assess(load(t, "baseline-pass", "jitter-pass", "jitter-ineffective", "podkill-breach"))
	var text, mdown bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&mdown); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": text.String(), "markdown": mdown.String()} {
		if !containsAll(out, "level 1", "observable", "network-jitter 1.0.0", "shortened ×0.15", "io-latency", "not run", "verdict slo-breach") {
			t.Errorf("%s output:\n%s", name, out)
		}
	}
	if !strings.HasPrefix(text.String(), "maturity: level 1 of 4, observable, from 4 result(s)") {
		t.Errorf("text headline: %q", strings.SplitN(text.String(), "\n", 2)[0])
	}
	if !strings.Contains(mdown.String(), "| 4 | pod kill, recovery-time SLO | failed | 1 |") {
		t.Errorf("markdown checklist row:\n%s", mdown.String())
	}
	b, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Level != 1 || len(back.Checklist) != len(Checklist) || back.Checklist[1].ID != "network-jitter" || back.Checklist[1].Status != StatusPassed {
		t.Errorf("JSON round trip: %+v", back)
	}
}

// TestLoad: directories are searched for results.json; anything else is an
// error that names the file.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for i, n := range []string{"baseline-pass", "podkill-pass"} {
		b, err := os.ReadFile(filepath.Join("testdata", n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(dir, "out", n, "runs", string(rune('a'+i)))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "results.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// Files beside it that are not results.json are not read.
		if err := os.WriteFile(filepath.Join(sub, "report.md"), []byte("# not json"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err := Load([]string{filepath.Join(dir, "out")})
	if err != nil || len(in) != 2 {
		t.Fatalf("Load(dir) = %d results, %v", len(in), err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"format":"something/else"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{bad}, "bad.json: not a faultline results file"},
		{[]string{filepath.Join(dir, "nope")}, "nope"},
		{[]string{t.TempDir()}, "no results.json below it"},
		{nil, "no results given"},
	} {
		if _, err := Load(tc.paths); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want an error with %q", tc.paths, err, tc.want)
		}
	}
}
