package grafanacheck

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// fill gives the dashboard's variables values, as Grafana does before it
// sends a query.
var fill = strings.NewReplacer("$__rate_interval", "1m", "$scenario", "checkout", "$run", "r1", "$job", ".*", "$namespace", ".*", "$pod", ".*")

// names are the series a selector can match: its metric name, or the
// alternatives of a __name__ regex (which must be a plain list).
func names(t *testing.T, q string, ms []*labels.Matcher, name string) []string {
	var out []string
	if name != "" {
		out = append(out, name)
	}
	for _, m := range ms {
		if m.Name != labels.MetricName {
			continue
		}
		switch m.Type {
		case labels.MatchEqual:
			out = append(out, m.Value)
		case labels.MatchRegexp:
			for _, alt := range strings.Split(m.Value, "|") {
				if !regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`).MatchString(alt) {
					t.Errorf("%s: __name__ regex %q is not a list of names", q, m.Value)
				}
				out = append(out, alt)
			}
		default:
			t.Errorf("%s: __name__ %s matcher", q, m.Type)
		}
	}
	return out
}

// TestDashboardQueries: every panel's and annotation's expression parses
// with Prometheus' PromQL parser, every variable's label_values selector
// parses as a selector, and each selector names only series faultline
// writes or reads.
func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile("../testdata/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.ReadFile("../testdata/grafana-series.txt")
	if err != nil {
		t.Fatal(err)
	}
	known := strings.Fields(string(sb))
	var d struct {
		Annotations struct{ List []struct{ Name, Expr string } }
		Templating  struct {
			List []struct{ Name, Type, Query string }
		}
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	check := func(where, q string, got []string) {
		if len(got) == 0 {
			t.Errorf("%s: %s names no series", where, q)
		}
		for _, n := range got {
			if !slices.Contains(known, n) {
				t.Errorf("%s: %s names %s, which faultline neither writes nor reads", where, q, n)
			}
		}
	}
	var exprs [][2]string
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			exprs = append(exprs, [2]string{"annotation " + a.Name, a.Expr})
		}
	}
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			exprs = append(exprs, [2]string{"panel " + pn.Title, tg.Expr})
		}
	}
	if len(exprs) < 12 {
		t.Fatalf("%d expressions", len(exprs))
	}
	for _, e := range exprs {
		expr, err := p.ParseExpr(fill.Replace(e[1]))
		if err != nil {
			t.Errorf("%s: %s: %v", e[0], e[1], err)
			continue
		}
		var got []string
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				got = append(got, names(t, e[1], vs.LabelMatchers, vs.Name)...)
			}
			return nil
		})
		check(e[0], e[1], got)
	}
	lv := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)
	n := 0
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, v.Query)
			continue
		}
		ms, err := p.ParseMetricSelector(fill.Replace(m[1]))
		if err != nil {
			t.Errorf("variable %s: %s: %v", v.Name, m[1], err)
			continue
		}
		check("variable "+v.Name, m[1], names(t, m[1], ms, ""))
		n++
	}
	if n != 5 {
		t.Errorf("%d query variables, want 5", n)
	}
}
