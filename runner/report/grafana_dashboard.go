package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"faultline.dev/faultline/runner/prom"
)

// The Grafana dashboard faultline ships (`faultline grafana dashboard`):
// the pre-launch board where the fault windows line up with the load and
// the target's Go runtime. Load panels read the k6 remote-write series
// (an in-cluster run's k6 runners, or `faultline run --prometheus-write`);
// the runtime panels read what target.prometheus reads; the fault windows
// come from faultline_fault_active (written by --prometheus-write, and
// after an in-cluster run judged from Prometheus) and from the annotations
// `faultline run --grafana-url` posts (tag "faultline").

// DashboardUID is the dashboard's uid: importing it again replaces it.
const DashboardUID = "faultline-prelaunch"

// DashboardSeries are the series the dashboard's queries may name: those
// faultline writes (k6's and faultline_fault_active) or reads.
var DashboardSeries = []string{
	prom.HTTPReqs, prom.HTTPReqDuration, prom.GRPCReqs, prom.GRPCReqDuration, prom.Checks, prom.FaultActive,
	prom.Goroutines, prom.HeapInUse, prom.RSS,
	prom.GCPauses + "_bucket", prom.GCPausesOld + "_bucket", prom.SchedLatency + "_bucket", prom.GCDuration,
}

// Selectors of the dashboard's queries: one run's load series, and the
// target's Go runtime series; the load panels read HTTP requests and gRPC
// calls together (the series' names matched by a regular expression, as
// results.json counts them together).
const (
	loadSel    = prom.LabelScenario + `=~"$scenario",` + prom.LabelRunID + `=~"$run"`
	runtimeSel = `job=~"$job",namespace=~"$namespace",pod=~"$pod"`

	requestCounters = `__name__=~"` + prom.HTTPReqs + `|` + prom.GRPCReqs + `"`
	durations       = `__name__=~"` + prom.HTTPReqDuration + `|` + prom.GRPCReqDuration + `"`
)

type dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description"`
	Tags          []string    `json:"tags"`
	Editable      bool        `json:"editable"`
	SchemaVersion int         `json:"schemaVersion"`
	Time          timeRange   `json:"time"`
	Refresh       string      `json:"refresh"`
	Annotations   annotations `json:"annotations"`
	Templating    templating  `json:"templating"`
	Panels        []panel     `json:"panels"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type annotations struct {
	List []annotation `json:"list"`
}

type annotation struct {
	Name       string     `json:"name"`
	Datasource datasource `json:"datasource"`
	Enable     bool       `json:"enable"`
	Hide       bool       `json:"hide,omitempty"`
	BuiltIn    int        `json:"builtIn,omitempty"`
	IconColor  string     `json:"iconColor"`
	Type       string     `json:"type,omitempty"`
	// Prometheus annotations.
	Expr        string `json:"expr,omitempty"`
	Step        string `json:"step,omitempty"`
	TitleFormat string `json:"titleFormat,omitempty"`
	TextFormat  string `json:"textFormat,omitempty"`
	TagKeys     string `json:"tagKeys,omitempty"`
	// Grafana's own annotations, by tag.
	Target *annotationTarget `json:"target,omitempty"`
}

type annotationTarget struct {
	Type  string   `json:"type"`
	Tags  []string `json:"tags"`
	Limit int      `json:"limit"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type templating struct {
	List []variable `json:"list"`
}

type variable struct {
	Name       string      `json:"name"`
	Label      string      `json:"label"`
	Type       string      `json:"type"`
	Query      string      `json:"query"`
	Datasource *datasource `json:"datasource,omitempty"`
	Refresh    int         `json:"refresh,omitempty"`
	IncludeAll bool        `json:"includeAll"`
	AllValue   string      `json:"allValue,omitempty"`
	Multi      bool        `json:"multi"`
	Sort       int         `json:"sort,omitempty"`
	Current    *current    `json:"current,omitempty"`
}

type current struct {
	Text  string `json:"text"`
	Value string `json:"value"`
}

type panel struct {
	ID          int          `json:"id"`
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Description string       `json:"description,omitempty"`
	GridPos     gridPos      `json:"gridPos"`
	Datasource  *datasource  `json:"datasource,omitempty"`
	Targets     []target     `json:"targets,omitempty"`
	FieldConfig *fieldConfig `json:"fieldConfig,omitempty"`
	Collapsed   *bool        `json:"collapsed,omitempty"`
	Panels      []panel      `json:"panels,omitempty"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type target struct {
	RefID        string      `json:"refId"`
	Datasource   *datasource `json:"datasource,omitempty"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	Interval     string      `json:"interval,omitempty"`
}

type fieldConfig struct {
	Defaults fieldDefaults `json:"defaults"`
}

type fieldDefaults struct {
	Unit   string            `json:"unit"`
	Custom map[string]string `json:"custom,omitempty"`
}

var promDS = &datasource{Type: "prometheus", UID: "${datasource}"}

// Dashboard returns the dashboard's JSON model, ready for Grafana's
// "Import dashboard" (or its provisioning directory).
func Dashboard() ([]byte, error) {
	varDS := func(name, label, query string, all bool) variable {
		v := variable{Name: name, Label: label, Type: "query", Query: query, Datasource: promDS, Refresh: 2, IncludeAll: all, Sort: 1}
		if all {
			v.AllValue, v.Current = ".*", &current{Text: "All", Value: "$__all"}
		}
		return v
	}
	d := dashboard{
		UID:   DashboardUID,
		Title: "faultline — pre-launch",
		Description: "faultline's fault windows over the load (k6's remote-write series: in-cluster k6 runners, or faultline run --prometheus-write) and the target's Go runtime. " +
			"Fault windows: faultline_fault_active, and the annotations faultline run --grafana-url posts.",
		Tags: []string{"faultline", "k6", "go"}, Editable: true, SchemaVersion: 39,
		Time: timeRange{From: "now-30m", To: "now"}, Refresh: "5s",
		Annotations: annotations{List: []annotation{
			{Name: "Annotations & Alerts", Datasource: datasource{Type: "grafana", UID: "-- Grafana --"}, Enable: true, Hide: true, BuiltIn: 1, IconColor: "rgba(0, 211, 255, 1)", Type: "dashboard"},
			{Name: "faultline faults", Datasource: *promDS, Enable: true, IconColor: "red",
				Expr:        fmt.Sprintf(`max by (fault, kind, %s) (%s{%s}) > 0`, prom.LabelRunID, prom.FaultActive, loadSel),
				Step:        "1s",
				TitleFormat: "fault {{fault}} ({{kind}})",
				TextFormat:  "faultline run {{" + prom.LabelRunID + "}}: the fault's actual window",
				TagKeys:     "fault,kind," + prom.LabelRunID},
			{Name: "faultline faults (annotations API)", Datasource: datasource{Type: "grafana", UID: "-- Grafana --"}, Enable: true, IconColor: "orange",
				Target: &annotationTarget{Type: "tags", Tags: []string{"faultline"}, Limit: 100}},
		}},
		Templating: templating{List: []variable{
			{Name: "datasource", Label: "Prometheus", Type: "datasource", Query: "prometheus"},
			varDS("scenario", "scenario", fmt.Sprintf("label_values({%s}, %s)", requestCounters, prom.LabelScenario), false),
			varDS("run", "run", fmt.Sprintf(`label_values({%s,%s=~"$scenario"}, %s)`, requestCounters, prom.LabelScenario, prom.LabelRunID), true),
			varDS("job", "target job", fmt.Sprintf("label_values(%s, job)", prom.Goroutines), true),
			varDS("namespace", "target namespace", fmt.Sprintf(`label_values(%s{job=~"$job"}, namespace)`, prom.Goroutines), true),
			varDS("pod", "target pod", fmt.Sprintf(`label_values(%s{job=~"$job",namespace=~"$namespace"}, pod)`, prom.Goroutines), true),
		}},
	}
	// sel is one run's series: of a name, or (name "") of the matchers in
	// extra, __name__'s among them.
	sel := func(name, extra string) string {
		s := loadSel
		if extra != "" {
			s += "," + extra
		}
		return name + "{" + s + "}"
	}
	rateOf := func(sel string) string { return fmt.Sprintf("rate(%s[$__rate_interval])", sel) }
	sumBy := func(by, expr string) string { return fmt.Sprintf("sum by (%s) (%s)", by, expr) }
	rate := func(name, extra, by string) string { return sumBy(by, rateOf(sel(name, extra))) }
	quantile := func(q string) target {
		return target{Expr: fmt.Sprintf("histogram_quantile(%s, %s)", q, rate("", durations, prom.LabelPhase)), LegendFormat: "p" + strings.TrimPrefix(q, "0.") + " {{phase}}"}
	}
	// Failed requests: HTTP's expected_response="false" and the script's
	// failed="true" gRPC calls (their label sets never coincide, so "or"
	// keeps both before the sum); a phase without failures reads 0, not
	// no data.
	allRate := rate("", requestCounters, prom.LabelPhase)
	errorRate := "(" + sumBy(prom.LabelPhase, rateOf(sel(prom.HTTPReqs, prom.LabelExpected+`="false"`))+" or "+rateOf(sel(prom.GRPCReqs, prom.LabelFailed+`="true"`))) +
		" or " + allRate + " * 0) / " + allRate
	rtSel := func(name, extra string) string {
		sel := runtimeSel
		if extra != "" {
			sel += "," + extra
		}
		return name + "{" + sel + "}"
	}
	histP99 := func(sel string) string {
		return fmt.Sprintf("histogram_quantile(0.99, sum by (le) (rate(%s[$__rate_interval])))", sel)
	}
	byPod := "namespace, pod, instance"
	rows := []struct {
		title  string
		panels []panel
	}{
		{"Load — k6 series, per phase (every runner summed)", []panel{
			{Title: "Request rate", Description: "HTTP requests (k6_http_reqs_total) and gRPC calls (k6_faultline_grpc_reqs_total), every runner summed: the throughput SLO's figure.", Targets: []target{
				{Expr: rate("", requestCounters, prom.LabelPhase), LegendFormat: "{{phase}}"}}, FieldConfig: unit("reqps")},
			{Title: "Error rate", Description: "Requests counted as failed (HTTP: expected_response=\"false\", k6's http_req_failed; gRPC: failed=\"true\", a status other than the expected one) over all requests: the errorRate SLO's figure.", Targets: []target{
				{Expr: errorRate, LegendFormat: "{{phase}}"}}, FieldConfig: unit("percentunit")},
			{Title: "Latency", Description: "k6_http_req_duration_seconds and k6_grpc_req_duration_seconds (native histograms, merged across runners and protocols, as faultline judges them).", Targets: []target{
				quantile("0.5"), quantile("0.95"), quantile("0.99")}, FieldConfig: unit("s")},
			{Title: "Requests by status", Description: "HTTP status codes; gRPC status codes (0 OK, 14 UNAVAILABLE, ...) from k6_grpc_req_duration_seconds, which k6 does not write for a call that never connected.", Targets: []target{
				{Expr: rate(prom.HTTPReqs, "", "status"), LegendFormat: "HTTP {{status}}"},
				{Expr: sumBy("status", "histogram_count("+rateOf(sel(prom.GRPCReqDuration, ""))+")"), LegendFormat: "gRPC {{status}}"}}, FieldConfig: unit("reqps")},
			{Title: "Checks passed", Description: "k6_faultline_checks_total: the share of checks passed, the checks SLO's figure.", Targets: []target{
				{Expr: "(" + rate(prom.Checks, prom.LabelPassed+`="true"`, prom.LabelPhase) + " or " + rate(prom.Checks, "", prom.LabelPhase) + " * 0) / " + rate(prom.Checks, "", prom.LabelPhase), LegendFormat: "{{phase}}"}}, FieldConfig: unit("percentunit")},
			{Title: "Faults active", Description: "faultline_fault_active: 1 over each fault's actual window.", Targets: []target{
				{Expr: fmt.Sprintf("max by (fault) (%s{%s})", prom.FaultActive, loadSel), LegendFormat: "{{fault}}"}}, FieldConfig: unit("none")},
		}},
		{"Target — Go runtime (the SLIs faultline judges)", []panel{
			{Title: "Goroutines", Description: "Per pod: faultline judges the worst pod.", Targets: []target{
				{Expr: fmt.Sprintf("max by (%s) (%s)", byPod, rtSel(prom.Goroutines, "")), LegendFormat: "{{namespace}}/{{pod}} {{instance}}"}}, FieldConfig: unit("none")},
			{Title: "Heap in use and RSS", Description: "Per pod: faultline judges the worst pod.", Targets: []target{
				{Expr: fmt.Sprintf("max by (%s) (%s)", byPod, rtSel(prom.HeapInUse, "")), LegendFormat: "heap {{namespace}}/{{pod}} {{instance}}"},
				{Expr: fmt.Sprintf("max by (%s) (%s)", byPod, rtSel(prom.RSS, "")), LegendFormat: "rss {{namespace}}/{{pod}} {{instance}}"}}, FieldConfig: unit("bytes")},
			{Title: "GC pauses", Description: "p99 from the runtime/metrics histogram, every pod merged; with client_golang's default collector only, the largest pause of go_gc_duration_seconds (quantile 1): an upper bound of p99, as faultline judges it.", Targets: []target{
				{Expr: histP99(rtSel("", fmt.Sprintf(`__name__=~"%s_bucket|%s_bucket"`, prom.GCPauses, prom.GCPausesOld))), LegendFormat: "p99 (runtime/metrics)"},
				{Expr: fmt.Sprintf("max(%s)", rtSel(prom.GCDuration, `quantile=~"1|1\\.0"`)), LegendFormat: "max pause (default collector; p99 <= this)"}}, FieldConfig: unit("s")},
			{Title: "Scheduler latency", Description: "p99 of go_sched_latencies_seconds, every pod merged: how long runnable goroutines wait.", Targets: []target{
				{Expr: histP99(rtSel(prom.SchedLatency+"_bucket", "")), LegendFormat: "p99"}}, FieldConfig: unit("s")},
		}},
	}
	id, y := 1, 0
	for _, r := range rows {
		collapsed := false
		d.Panels = append(d.Panels, panel{ID: id, Type: "row", Title: r.title, GridPos: gridPos{H: 1, W: 24, X: 0, Y: y}, Collapsed: &collapsed})
		id++
		y++
		for i, p := range r.panels {
			p.ID, p.Type, p.Datasource = id, "timeseries", promDS
			p.GridPos = gridPos{H: 8, W: 12, X: 12 * (i % 2), Y: y + 8*(i/2)}
			for j := range p.Targets {
				p.Targets[j].RefID = string(rune('A' + j))
				p.Targets[j].Datasource = promDS
			}
			d.Panels = append(d.Panels, p)
			id++
		}
		y += 8 * ((len(r.panels) + 1) / 2)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // PromQL's > and <= stay readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unit(u string) *fieldConfig { return &fieldConfig{Defaults: fieldDefaults{Unit: u}} }
