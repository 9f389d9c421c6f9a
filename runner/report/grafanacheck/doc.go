// Package grafanacheck parses every query of the Grafana dashboard
// faultline ships (../testdata/grafana-dashboard.json, which
// runner/report's TestDashboardGolden keeps equal to report.Dashboard())
// with Prometheus' own PromQL parser, and checks that it names only the
// series faultline writes or reads (../testdata/grafana-series.txt). It is
// a module of its own so that the prometheus/prometheus module stays out of
// faultline's go.mod: run it with `cd runner/report/grafanacheck && go test`.
package grafanacheck
