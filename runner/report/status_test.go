package report

import (
	"bytes"
	"strings"
	"testing"
)

// TestStatuses: a phase's status counts (HTTP codes, gRPC code names) are
// shown under the phase in report.md, the HTML report and the terminal
// table; a phase without any shows none.
func TestStatuses(t *testing.T) {
	res := fixture(t)
	res.Phases[0].HTTPStatus = map[string]int64{"200": 150, "0": 2, "503": 8}
	res.Phases[1].GRPCStatus = map[string]int64{"UNAVAILABLE": 45, "OK": 900, "DEADLINE_EXCEEDED": 3}
	res.Phases[1].HTTPStatus = map[string]int64{"200": 10}
	want := map[string]string{
		"steady": "HTTP 200×150 503×8 no response×2",
		"fault":  "HTTP 200×10 · gRPC OK×900 DEADLINE_EXCEEDED×3 UNAVAILABLE×45",
	}
	var md, html, table bytes.Buffer
	if err := Markdown(&md, res); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, res); err != nil {
		t.Fatal(err)
	}
	res.WriteTable(&table)
	for phase, w := range want {
		if got := strings.Count(md.String(), "Statuses: "+w+"\n"); got != 1 {
			t.Errorf("report.md has %q %d times, want once:\n%s", "Statuses: "+w, got, md.String())
		}
		if !strings.Contains(html.String(), `<p class="statuses">Statuses: `+w+`</p>`) {
			t.Errorf("the HTML report lacks the %s statuses %q", phase, w)
		}
		if !strings.Contains(table.String(), "  "+phase+" statuses: "+w+"\n") {
			t.Errorf("the table lacks the %s statuses %q:\n%s", phase, w, table.String())
		}
	}
	if n := strings.Count(md.String(), "Statuses: "); n != len(want) {
		t.Errorf("report.md has %d status lines, want %d (the recovery phase has none)", n, len(want))
	}
}
