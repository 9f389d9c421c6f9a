package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"

	"faultline.dev/faultline/golden/diff"
	"faultline.dev/faultline/results"
)

// Chart geometry (SVG user units).
const (
	chartW, chartH                  = 960.0, 200.0
	padL, padR, padT, padB          = 64.0, 16.0, 26.0, 28.0
	plotW, plotH                    = chartW - padL - padR, chartH - padT - padB
	colP50, colP95, colP99, colMain = "#4c9be8", "#f0a030", "#d6453d", "#3b7d4f"
)

type chart struct {
	ID, Title, Unit string
	W, H            float64
	Plot            struct{ X, Y, W, H float64 }
	Lines           []line
	Faults          []faultRect
	Phases          []phaseMark
	YTicks, XTicks  []tick
	Empty           bool
}

type line struct {
	Class, Color, Label string
	Points              string
	N                   int
}

type faultRect struct {
	Name                   string
	X, W                   float64
	Start, End             string
	LabelX, LabelY         float64
	Effective, Description string
}

type phaseMark struct {
	Name string
	X    float64
}

type tick struct {
	Pos   float64
	Label string
}

type htmlData struct {
	R         *results.Result
	Title     string
	Verdict   string
	Class     string
	Charts    []chart
	Regressed []diff.Metric
	Breaches  []results.SLOResult
	Rows      map[string][]row
	Notes     []string
}

// HTML writes report.html: one self-contained page (inline CSS and SVG, no
// script, nothing fetched) with latency p50/p95/p99, error rate, requests
// per second, goroutines and heap over time, each fault's actual window
// shaded, the phase boundaries marked, then the SLO table, the baseline
// diff and the faults.
func HTML(w io.Writer, res *results.Result) error {
	d := htmlData{R: res, Title: res.Scenario + " " + res.Version,
		Verdict: strings.ToUpper(res.Verdict), Class: "v-" + res.Verdict, Rows: map[string][]row{}}
	if res.Baseline != nil {
		d.Regressed = res.Baseline.RegressedMetrics()
		d.Notes = append(d.Notes, res.Baseline.Notes...)
	}
	d.Notes = append(d.Notes, res.Warnings...)
	for _, s := range res.SLOs {
		if s.Status != results.StatusPass {
			d.Breaches = append(d.Breaches, s)
		}
	}
	for _, ph := range res.Phases {
		d.Rows[ph.Name] = phaseRows(res, ph)
	}
	d.Charts = charts(res)
	return pageTmpl.Execute(w, d)
}

// charts builds the time-series charts from the per-second series.
func charts(res *results.Result) []chart {
	xmax := res.PlannedLoad
	for _, p := range res.Series {
		xmax = math.Max(xmax, p.Offset+1)
	}
	for _, p := range res.Runtime {
		xmax = math.Max(xmax, p.Offset)
	}
	for _, f := range res.Faults {
		xmax = math.Max(xmax, f.EndOffset)
	}
	if xmax <= 0 {
		xmax = 1
	}
	type pt struct{ x, y float64 }
	var p50, p95, p99, errs, rps, gor, heap []pt
	for _, s := range res.Series {
		x := s.Offset + 0.5 // the middle of its second
		rps = append(rps, pt{x, float64(s.Requests)})
		// Errors are drawn where they happened: by the second requests
		// ended in (results of an older faultline have only the start).
		switch {
		case s.Ended > 0:
			errs = append(errs, pt{x, 100 * float64(s.FailedEnded) / float64(s.Ended)})
		case s.Requests > 0:
			errs = append(errs, pt{x, 100 * float64(s.Failed) / float64(s.Requests)})
		}
		if s.Requests == 0 {
			continue
		}
		p50 = append(p50, pt{x, s.P50})
		p95 = append(p95, pt{x, s.P95})
		p99 = append(p99, pt{x, s.P99})
	}
	for _, r := range res.Runtime {
		gor = append(gor, pt{r.Offset, r.Goroutines})
		heap = append(heap, pt{r.Offset, r.HeapInUse / 1e6})
	}
	mk := func(id, title, unit string, minTop float64, series ...struct {
		class, color, label string
		pts                 []pt
	}) chart {
		c := chart{ID: id, Title: title, Unit: unit, W: chartW, H: chartH}
		c.Plot.X, c.Plot.Y, c.Plot.W, c.Plot.H = padL, padT, plotW, plotH
		top := minTop
		n := 0
		for _, s := range series {
			for _, p := range s.pts {
				top = math.Max(top, p.y)
			}
			n += len(s.pts)
		}
		c.Empty = n == 0
		top, step := niceScale(top * 1.05)
		X := func(x float64) float64 { return padL + plotW*x/xmax }
		Y := func(y float64) float64 { return padT + plotH*(1-y/top) }
		for i := 0; float64(i)*step <= top+step/1e6; i++ {
			v := clean(float64(i) * step)
			c.YTicks = append(c.YTicks, tick{Pos: Y(v), Label: axisLabel(v, unit)})
		}
		_, xstep := niceScale(xmax)
		for i := 0; float64(i)*xstep <= xmax+xstep/1e6; i++ {
			v := clean(float64(i) * xstep)
			c.XTicks = append(c.XTicks, tick{Pos: X(v), Label: strconv.FormatFloat(v, 'f', -1, 64) + "s"})
		}
		for _, s := range series {
			var b strings.Builder
			for i, p := range s.pts {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", X(p.x), Y(p.y))
			}
			c.Lines = append(c.Lines, line{Class: s.class, Color: s.color, Label: s.label, Points: b.String(), N: len(s.pts)})
		}
		for i, f := range res.Faults {
			end := f.EndOffset
			if f.End.IsZero() || end < f.StartOffset {
				end = xmax
			}
			fr := faultRect{Name: f.Fault, X: X(f.StartOffset), W: math.Max(1, X(end)-X(f.StartOffset)),
				Start: fmt.Sprintf("%.2f", f.StartOffset), End: fmt.Sprintf("%.2f", end), Effective: f.Effective}
			fr.LabelX, fr.LabelY = fr.X+4, padT+12+12*float64(i%3)
			fr.Description = fmt.Sprintf("%s (%s): actual %.2f–%.2f s, planned %s–%s, effective: %s", f.Fault, f.Kind, f.StartOffset, end, f.PlanStart, f.PlanEnd, f.Effective)
			c.Faults = append(c.Faults, fr)
		}
		for _, ph := range res.Phases {
			if ph.Start > 0 {
				c.Phases = append(c.Phases, phaseMark{Name: ph.Name, X: X(ph.Start)})
			}
		}
		return c
	}
	type s = struct {
		class, color, label string
		pts                 []pt
	}
	out := []chart{
		mk("latency", "Latency", "ms", 1, s{"p50", colP50, "p50", p50}, s{"p95", colP95, "p95", p95}, s{"p99", colP99, "p99", p99}),
		mk("errors", "Error rate", "%", 1, s{"errorRate", colP99, "errors", errs}),
		mk("rps", "Requests per second", "req/s", 1, s{"rps", colMain, "req/s", rps}),
		mk("goroutines", "Goroutines (target)", "", 1, s{"goroutines", "#7b5bb6", "goroutines", gor}),
	}
	if len(heap) > 0 {
		out = append(out, mk("heap", "Heap in use (target)", "MB", 1, s{"heap", "#2a8c8c", "heap", heap}))
	}
	return out
}

// niceScale returns a round top at or above v and a tick step (about 4 ticks).
func niceScale(v float64) (top, step float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	raw := v / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return clean(math.Ceil(v/step-1e-9) * step), step
}

// clean drops floating-point noise: 0.30000000000000004 → 0.3.
func clean(v float64) float64 {
	c, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 10, 64), 64)
	return c
}

func axisLabel(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if math.Abs(v-math.Round(v)) > 1e-9 {
		s = strconv.FormatFloat(v, 'f', 2, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if unit == "req/s" || unit == "" {
		return s
	}
	return s + unit
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"value":  value,
	"signed": signed,
	"change": change,
	"sloval": sloValue,
	"op":     mdOp,
	"allowed": func(m diff.Metric) string {
		return signed(worseSign(m)*m.Allowed, m.Unit)
	},
	"f1":    func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"f2":    func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"add":   func(a, b float64) float64 { return a + b },
	"sub":   func(a, b float64) float64 { return a - b },
	"upper": strings.ToUpper,
	"fmtTime": func(r *results.Result) string {
		if r.StartedAt.IsZero() {
			return ""
		}
		return r.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>faultline: {{.Title}} — {{.Verdict}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1000px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
.banner{padding:14px 18px;border-radius:8px;color:#fff;margin-bottom:16px}
.v-pass{background:#2f8a4c}.v-slo-breach{background:#c23b33}.v-regression{background:#c2701f}.v-aborted,.v-error{background:#6b6f7a}
.meta{color:#e9ecf2;font-size:13px}
.card{background:#fff;border:1px solid #dfe3ea;border-radius:8px;padding:10px 12px;margin:10px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 8px;text-align:left}
th{background:#eef1f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td,tr.regression td{background:#fdecea}tr.improved td{background:#eaf6ee}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#555}
svg .title{font-size:13px;font-weight:600;fill:#1d2330}
svg .grid{stroke:#e6e9ef;stroke-width:1}
svg .axis{stroke:#9aa1ad;stroke-width:1}
svg rect.fault{fill:#e5484d;fill-opacity:.15;stroke:#e5484d;stroke-opacity:.5;stroke-dasharray:3 3}
svg text.fault-label{fill:#b3261e;font-weight:600}
svg line.phase{stroke:#7a8190;stroke-dasharray:2 4}
svg polyline{fill:none;stroke-width:1.8;stroke-linejoin:round}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:5px}
.legend i.fault{height:10px;background:#e5484d;opacity:.3}
.empty{fill:#999;font-style:italic}
.b{display:inline-block;padding:0 6px;border-radius:9px;font-size:12px;background:#e6e9ef;color:#333}
.b-pass,.b-ok{background:#dcf1e3;color:#1f6b3a}.b-fail,.b-regression{background:#f9d7d4;color:#a12a22;font-weight:600}
.b-improved{background:#d9ecfb;color:#1b5e94}.b-no-data{background:#eee;color:#666}
</style>
</head>
<body>
<main>
<div class="banner {{.Class}}" id="verdict">
<h1>{{.Verdict}} — {{.Title}}</h1>
<div>{{.R.Reason}} (exit {{.R.ExitCode}})</div>
<div class="meta">backend {{.R.Backend}} · target {{.R.Target}} · run {{.R.RunID}} · faultline {{.R.FaultlineVersion}}{{with fmtTime .R}} · started {{.}}{{end}}{{if .R.Baseline}} · baseline {{.R.Baseline.Baseline}} ({{.R.Baseline.BaselineVersion}}){{end}}</div>
</div>

{{if .Regressed}}
<h2>Regressions against the golden baseline</h2>
<table id="regressions"><tr><th>phase</th><th>metric</th><th>measured</th><th>baseline</th><th>change</th><th>allowed</th></tr>
{{range .Regressed}}<tr class="regression"><td>{{.Phase}}</td><td><b>{{.Metric}}</b></td><td class="n">{{value .Measured .Unit}}</td><td class="n">{{value .Baseline .Unit}}</td><td class="n">{{change .}}</td><td class="n">{{allowed .}}</td></tr>
{{end}}</table>
{{end}}
{{if .Breaches}}
<h2>SLO breaches</h2>
<table id="breaches"><tr><th>phase</th><th>SLO</th><th>measured</th><th>expected</th><th>status</th></tr>
{{range .Breaches}}<tr class="fail"><td>{{.Phase}}</td><td><b>{{.SLO}}</b></td><td class="n">{{if eq .Status "no-data"}}no data{{else}}{{sloval .Measured .Unit}}{{end}}</td><td class="n">{{op .Op}} {{sloval .Limit .Unit}}</td><td><span class="b b-{{.Status}}">{{.Status}}</span></td></tr>
{{end}}</table>
{{end}}

<h2>Over time</h2>
<div class="legend"><span><i style="background:#4c9be8"></i>p50</span><span><i style="background:#f0a030"></i>p95</span><span><i style="background:#d6453d"></i>p99</span><span><i class="fault"></i>fault (actual window)</span><span>┆ phase boundary</span></div>
{{range .Charts}}{{$c := .}}
<div class="card">
<svg id="chart-{{.ID}}" class="chart" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
<text class="title" x="{{.Plot.X}}" y="15">{{.Title}}{{if .Unit}} ({{.Unit}}){{end}}</text>
{{range .YTicks}}<line class="grid" x1="{{$c.Plot.X}}" x2="{{add $c.Plot.X $c.Plot.W}}" y1="{{f1 .Pos}}" y2="{{f1 .Pos}}"/><text x="{{sub $c.Plot.X 6}}" y="{{f1 (add .Pos 4)}}" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<text x="{{f1 .Pos}}" y="{{f1 (add (add $c.Plot.Y $c.Plot.H) 16)}}" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .Faults}}<rect class="fault" data-fault="{{.Name}}" data-start="{{.Start}}" data-end="{{.End}}" x="{{f1 .X}}" y="{{$c.Plot.Y}}" width="{{f1 .W}}" height="{{$c.Plot.H}}"><title>{{.Description}}</title></rect><text class="fault-label" x="{{f1 .LabelX}}" y="{{f1 .LabelY}}">{{.Name}}</text>
{{end}}{{range .Phases}}<line class="phase" x1="{{f1 .X}}" x2="{{f1 .X}}" y1="{{$c.Plot.Y}}" y2="{{add $c.Plot.Y $c.Plot.H}}"><title>{{.Name}} starts</title></line>
{{end}}<line class="axis" x1="{{.Plot.X}}" x2="{{add .Plot.X .Plot.W}}" y1="{{add .Plot.Y .Plot.H}}" y2="{{add .Plot.Y .Plot.H}}"/>
{{range .Lines}}<polyline class="series {{.Class}}" data-points="{{.N}}" stroke="{{.Color}}" points="{{.Points}}"><title>{{.Label}}</title></polyline>
{{end}}{{if .Empty}}<text class="empty" x="{{add .Plot.X 10}}" y="{{add .Plot.Y 30}}">no samples</text>{{end}}
</svg>
</div>
{{end}}

<h2>SLOs</h2>
<table id="slos"><tr><th>phase</th><th>SLO</th><th>expected</th><th>measured</th><th>status</th></tr>
{{range .R.SLOs}}<tr class="{{.Status}}"><td>{{.Phase}}</td><td>{{.SLO}}</td><td class="n">{{op .Op}} {{sloval .Limit .Unit}}</td><td class="n">{{if eq .Status "no-data"}}no data{{else}}{{sloval .Measured .Unit}}{{end}}</td><td><span class="b b-{{.Status}}">{{.Status}}</span></td></tr>
{{else}}<tr><td colspan="5">no SLOs</td></tr>
{{end}}</table>

<h2>Phases{{if .R.Baseline}} and the golden baseline{{end}}</h2>
{{if .R.Baseline}}<p>Compared with <code>{{.R.Baseline.Baseline}}</code>, blessed from {{.R.Scenario}} {{.R.Baseline.BaselineVersion}} at {{.R.Baseline.BaselineCreated}}: {{.R.Baseline.Regressions}} regression(s), {{.R.Baseline.Improvements}} improvement(s).</p>{{else}}<p>No golden baseline for this scenario's major version: bless one with <code>faultline golden bless results.json</code>.</p>{{end}}
{{$rows := .Rows}}{{$hasBase := .R.Baseline}}
<div id="baseline">
{{range .R.Phases}}
<h3>{{.Name}} · {{f1 .Start}}–{{f1 .End}} s · {{.Requests}} requests · {{f1 .Throughput}} req/s</h3>
{{with .Statuses}}<p class="statuses">Statuses: {{.}}</p>{{end}}
<table class="phase" data-phase="{{.Name}}"><tr><th>metric</th><th>measured</th><th>SLO</th>{{if $hasBase}}<th>baseline</th><th>change</th><th>allowed</th>{{end}}<th>status</th></tr>
{{range index $rows .Name}}<tr{{if .Regressed}} class="regression"{{end}}><td>{{if .Regressed}}<b>{{.Name}}</b>{{else}}{{.Name}}{{end}}</td><td class="n">{{.Measured}}</td><td class="n">{{.SLO}}</td>{{if $hasBase}}<td class="n">{{.Baseline}}</td><td class="n">{{.Change}}</td><td class="n">{{.Allowed}}</td>{{end}}<td>{{range .Statuses}}<span class="b b-{{.Kind}}">{{.Text}}</span> {{end}}</td></tr>
{{end}}</table>
{{end}}
</div>

{{if .R.Faults}}
<h2>Faults</h2>
<table id="faults"><tr><th>fault</th><th>kind</th><th>planned</th><th>actual</th><th>effective</th><th>evidence</th></tr>
{{range .R.Faults}}<tr><td>{{.Fault}}</td><td>{{.Kind}}</td><td>{{.PlanStart}}–{{.PlanEnd}}</td><td class="n">{{f2 .StartOffset}}–{{f2 .EndOffset}} s</td><td>{{.Effective}}</td><td>{{.Evidence}}{{if .Error}} — {{.Error}}{{end}}</td></tr>
{{end}}</table>
{{end}}
{{with .R.Goroutines}}{{if .Stacks}}<h2>Goroutines that grew</h2>
<p>from {{index .Total 0}} at {{.From}} to {{index .Total 1}} at {{.To}}; the stacks that grew most:</p>
<ul class="stacks">{{range .Summary}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}{{end}}
{{with .R.Recovery}}<p>{{if .Recovered}}Recovered {{printf "%.0f" .Seconds}} s after the last fault ended.{{else}}Did not return to the steady level before the load ended.{{end}}</p>{{end}}
{{if .Notes}}<h2>Notes</h2><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p style="color:#888;font-size:12px">faultline {{.R.FaultlineVersion}} · {{.R.Format}}</p>
</main>
</body>
</html>
`
