package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"faultline.dev/faultline/internal/promtest"
	"faultline.dev/faultline/runner/prom"
)

// dashboardQueries walks the dashboard's JSON: every panel target's and
// annotation's expr, and every query variable's label_values selector.
func dashboardQueries(t *testing.T, b []byte) (exprs []string, selectors []string) {
	t.Helper()
	var d struct {
		Annotations struct {
			List []struct {
				Name, Expr string
			}
		}
		Templating struct {
			List []struct {
				Name, Type, Query string
			}
		}
		Panels []struct {
			Title   string
			Type    string
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			exprs = append(exprs, a.Expr)
		}
	}
	lv := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query)
			continue
		}
		selectors = append(selectors, m[1])
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs, selectors
}

// TestDashboardGolden: the dashboard's JSON is testdata/grafana-dashboard.json
// (go test -update rewrites it, and testdata/grafana-series.txt, the series
// its queries may name, which the promql-parser check in grafanacheck/
// reads); every query names only series faultline writes or reads.
func TestDashboardGolden(t *testing.T) {
	b, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	series := slices.Sorted(slices.Values(DashboardSeries))
	goldenFile(t, "grafana-dashboard.json", b)
	goldenFile(t, "grafana-series.txt", []byte(strings.Join(series, "\n")+"\n"))
	exprs, sels := dashboardQueries(t, b)
	if len(exprs) < 12 || len(sels) != 5 {
		t.Fatalf("%d queries, %d variable selectors", len(exprs), len(sels))
	}
	// A metric name: an identifier followed by { or ( not a function or
	// keyword; __name__ regexes list alternatives.
	name := regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	alt := regexp.MustCompile(`__name__=~"([^"]+)"`)
	bare := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	for _, q := range append(exprs, sels...) {
		var names []string
		for _, m := range name.FindAllStringSubmatch(q, -1) {
			names = append(names, m[1])
		}
		if bare.MatchString(q) {
			names = append(names, q)
		}
		for _, m := range alt.FindAllStringSubmatch(q, -1) {
			names = append(names, strings.Split(m[1], "|")...)
		}
		if len(names) == 0 {
			t.Errorf("%s: names no series", q)
		}
		for _, n := range names {
			if !slices.Contains(series, n) {
				t.Errorf("%s: names %s, which faultline neither writes nor reads", q, n)
			}
		}
	}
}

// goldenFile compares b with testdata/name, or rewrites it with -update.
func goldenFile(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(b) {
		t.Errorf("%s differs from the golden file (go test -update to accept)", path)
	}
}

// runtimeService is a Go service exposing client_golang's Go collector
// with the runtime/metrics histograms (GC pauses, scheduler latencies),
// the default collector's go_gc_duration_seconds, and the process
// collector's RSS, collecting garbage often.
func runtimeService(t *testing.T) string {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/(gc|sched)/.*`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promtest.GoService(t, reg, 50*time.Millisecond)
}

// TestDashboardQueriesReturnData: every query of the dashboard, its
// variables filled in, is evaluated by a real Prometheus (2.42, its own
// PromQL parser) over a run the engine's writer wrote and a Go service it
// scraped, and returns data: the load panels from the k6 series (per
// phase), the fault annotation over the fault's window only, the runtime
// panels from the scraped service.
func TestDashboardQueriesReturnData(t *testing.T) {
	svc := runtimeService(t)
	srv := promtest.Start(t, promtest.Target{Addr: svc, Labels: map[string]string{"namespace": "shop", "pod": "checkout-0"}})
	ctx := context.Background()
	now := time.Now()
	base := now.Add(-20 * time.Second).Truncate(time.Second)
	faultFrom, faultTo := base.Add(8*time.Second), base.Add(14*time.Second)
	w := &prom.EngineWriter{URL: srv.WriteURL(), Lag: time.Second,
		Cuts: func() []int64 { return []int64{faultFrom.UnixNano(), faultTo.UnixNano()} },
		Gauges: func(at int64) []prom.Point {
			v := 0.0
			if at >= faultFrom.UnixMilli() && at < faultTo.UnixMilli() {
				v = 1
			}
			return []prom.Point{{Labels: map[string]string{"__name__": prom.FaultActive, "fault": "jitter", "kind": "networkDelay",
				prom.LabelScenario: "checkout", prom.LabelRunID: "d1"}, T: at, V: v}}
		}}
	// Run d1: HTTP requests, gRPC calls and their checks; run g1: gRPC
	// calls only (every load panel must show a gRPC-only scenario too).
	type key struct {
		run, kind, phase string
		failed           bool
	}
	desc := func(k key) prom.Desc {
		l := map[string]string{prom.LabelScenario: "checkout", prom.LabelVersion: "1.0.0", prom.LabelRunID: k.run, prom.LabelPhase: k.phase}
		switch k.kind {
		case "http":
			l["status"], l[prom.LabelExpected], l["name"] = map[bool]string{true: "503", false: "200"}[k.failed], fmt.Sprint(!k.failed), "catalog"
			return prom.HTTPDesc(l)
		case "grpc-duration":
			l["status"], l["name"] = map[bool]string{true: "14", false: "0"}[k.failed], "checkout"
			return prom.Desc{Labels: l, Histogram: prom.GRPCReqDuration}
		case "grpc-calls":
			l[prom.LabelFailed], l["name"] = fmt.Sprint(k.failed), "checkout"
			return prom.Desc{Labels: l, Counter: prom.GRPCReqs}
		default:
			l[prom.LabelPassed] = fmt.Sprint(!k.failed)
			return prom.Desc{Labels: l, Counter: prom.Checks}
		}
	}
	i := 0
	for at := base; at.Before(now); at = at.Add(5 * time.Millisecond) {
		phase := "steady"
		if !at.Before(faultFrom) && at.Before(faultTo) {
			phase = "fault"
		} else if !at.Before(faultTo) {
			phase = "recovery"
		}
		i++
		failed := i%20 <= 1 // one HTTP request (i%20 == 1) and one gRPC call (i%20 == 0, i%4 == 0) in 20: 10%
		ms := 2.0 + float64(i%7)
		if phase == "fault" {
			ms += 50
		}
		kinds := []string{"http"}
		if i%4 == 0 {
			kinds = []string{"grpc-duration", "grpc-calls"}
		}
		for _, run := range []string{"d1", "g1"} {
			if run == "g1" && kinds[0] == "http" {
				continue
			}
			for _, kind := range append(kinds, "checks") {
				k := key{run: run, kind: kind, phase: phase, failed: failed}
				w.Add(i, k, func() prom.Desc { return desc(k) }, at, 0, 1, ms/1000)
			}
		}
		if at.Sub(base)%time.Second == 0 {
			if err := w.Flush(ctx, at, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(ctx, now, true); err != nil {
		t.Fatal(err)
	}
	// Scrapes of the runtime service over a few seconds.
	time.Sleep(5 * time.Second)
	b, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	exprs, sels := dashboardQueries(t, b)
	fill := strings.NewReplacer("$__rate_interval", "4s", "$scenario", "checkout", "$run", "d1", "$job", ".*", "$namespace", ".*", "$pod", ".*")
	grpcOnly := strings.NewReplacer("$__rate_interval", "4s", "$scenario", "checkout", "$run", "g1")
	end := time.Now()
	for _, q := range exprs {
		res := queryRange(t, srv.URL, fill.Replace(q), base, end)
		if len(res) == 0 {
			t.Errorf("%s: no data", q)
			continue
		}
		// A load panel shows a gRPC-only run too (all but the HTTP status
		// target and the fault gauge, which g1 has none of).
		if strings.Contains(q, "$run") && !strings.Contains(q, prom.FaultActive) && !strings.HasPrefix(q, "sum by (status) (rate("+prom.HTTPReqs) {
			if len(queryRange(t, srv.URL, grpcOnly.Replace(q), base, end)) == 0 {
				t.Errorf("%s: no data for a gRPC-only run", q)
			}
		}
		if strings.Contains(q, prom.FaultActive) && strings.Contains(q, "> 0") {
			// The annotation: points only inside the fault's window.
			for _, s := range res {
				for _, v := range s.Values {
					if at := time.UnixMilli(int64(v.T * 1000)); at.Before(faultFrom) || !at.Before(faultTo) {
						t.Errorf("%s: a point at %s, outside the fault [%s, %s)", q, at.Format(time.StampMilli), faultFrom.Format(time.StampMilli), faultTo.Format(time.StampMilli))
					}
				}
			}
		}
		if strings.Contains(q, prom.LabelExpected+`="false"`) {
			// The error rate: HTTP's failures and gRPC's summed, 10% of all.
			for _, s := range res {
				for _, v := range s.Values {
					if x, err := strconv.ParseFloat(v.V, 64); err != nil || x < 0.05 || x > 0.15 {
						t.Errorf("%s: %s at %.3f, want about 0.10", q, v.V, v.T)
					}
				}
			}
		}
		if strings.Contains(q, prom.HTTPReqDuration) || strings.Contains(q, prom.LabelPhase) {
			phases := map[string]bool{}
			for _, s := range res {
				phases[s.Metric[prom.LabelPhase]] = true
			}
			if !phases["steady"] || !phases["fault"] || !phases["recovery"] {
				t.Errorf("%s: phases %v", q, phases)
			}
		}
		t.Logf("%d series: %s", len(res), q)
	}
	for _, s := range sels {
		u := srv.URL + "/api/v1/series?" + url.Values{"match[]": {fill.Replace(s)}, "start": {fmt.Sprint(base.Unix())}}.Encode()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status string
			Data   []map[string]string
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || body.Status != "success" || len(body.Data) == 0 {
			t.Errorf("variable selector %s: %v %s, %d series", s, err, body.Status, len(body.Data))
		}
	}
}

type rangeSeries struct {
	Metric map[string]string
	Values []struct {
		T float64
		V string
	}
}

func (r *rangeSeries) UnmarshalJSON(b []byte) error {
	var raw struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	r.Metric = raw.Metric
	for _, v := range raw.Values {
		f, _ := v[0].(float64)
		s, _ := v[1].(string)
		if s == "NaN" || s == "" {
			continue
		}
		if x, err := parseFloat(s); err != nil || math.IsNaN(x) {
			continue
		}
		r.Values = append(r.Values, struct {
			T float64
			V string
		}{f, s})
	}
	return nil
}

func parseFloat(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return f, err
}

// queryRange evaluates q every second over [from, to] and returns the
// series with at least one number.
func queryRange(t *testing.T, base, q string, from, to time.Time) []rangeSeries {
	t.Helper()
	u := base + "/api/v1/query_range?" + url.Values{"query": {q}, "start": {fmt.Sprint(from.Unix())}, "end": {fmt.Sprint(to.Unix())}, "step": {"1"}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []rangeSeries
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if body.Status != "success" {
		t.Errorf("%s: %s", q, body.Error)
		return nil
	}
	var out []rangeSeries
	for _, s := range body.Data.Result {
		if len(s.Values) > 0 {
			out = append(out, s)
		}
	}
	return out
}
