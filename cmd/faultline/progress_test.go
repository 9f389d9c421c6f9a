package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// screen renders terminal output the way a terminal draws it, for what a
// progress line does: "\r" returns to the start of the line, "\033[K"
// clears to its end, "\n" starts a new line; other escapes are dropped.
func screen(out string) []string {
	var lines []string
	var cur []rune
	col := 0
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\r':
			col = 0
		case r == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		case r == '\033' && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && (rs[j] < '@' || rs[j] > '~') {
				j++
			}
			if j < len(rs) && rs[j] == 'K' {
				cur = cur[:min(col, len(cur))]
			}
			i = j
		default:
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
		}
	}
	return append(lines, string(cur))
}

// TestScreen checks the renderer itself on what a terminal would show.
func TestScreen(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc\rxy", "xyc"},
		{"abcdef\r\033[Kxy", "xy"},
		{"live 1\r\033[Klive 2\r\033[Kevent\nlive 3", "event|live 3"},
		{"live 12345\revent\n", "event12345|"}, // an event printed over a longer live line without clearing it
	} {
		if got := strings.Join(screen(tc.in), "|"); got != tc.want {
			t.Errorf("screen(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestProgressAndEvents runs faultline on a pty, as a terminal user does:
// the live progress line is redrawn every second and the event lines
// (injected, recovered) are printed between redraws. On the rendered
// screen every event line must stand alone — never mixed with what was
// left of the progress line — and the progress line must show.
func TestProgressAndEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load")
	}
	scen, _ := stopScenario(t, demoTarget, "", `  jitter:
    start: 2500ms
    duration: 3s
    mode: all
    networkDelay: {latency: 20ms}`)
	r := startOnPTY(t, scen)
	if code := r.exit(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	lines := screen(r.output())
	event := regexp.MustCompile(`^ *\d+\.\d\ds  (injected  jitter|recovered jitter)`)
	var events, live int
	for _, l := range lines {
		mentions := strings.Contains(l, "injected  jitter") || strings.Contains(l, "recovered jitter")
		isLive := strings.Contains(l, "req/s") && strings.Contains(l, "faults:")
		switch {
		case mentions && !event.MatchString(l):
			t.Errorf("an event line does not stand at the start of its line: %q", l)
		case mentions && isLive:
			t.Errorf("an event line shares its line with the progress line: %q", l)
		case mentions:
			events++
		}
		if isLive {
			live++
		}
	}
	if events != 2 {
		t.Errorf("%d event lines on the screen, want 2 (injected, recovered):\n%s", events, strings.Join(lines, "\n"))
	}
	if live == 0 && !strings.Contains(r.output(), "req/s") {
		t.Errorf("no progress line was drawn:\n%q", r.output())
	}
}
