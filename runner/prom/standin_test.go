package prom

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// k6RunnerStandIn is a STAND-IN for one k6-operator runner with k6's
// experimental-prometheus-rw output (K6_PROMETHEUS_RW_TREND_AS_NATIVE_
// HISTOGRAM=true, 1s pushes) running faultline's compiled script: no k6
// binary can run here. It writes what k6's documentation and behaviour say
// that output writes — a Counter as k6_<name>_total, a time Trend as the
// native histogram k6_<name>_seconds (client_golang, bucket factor 1.1)
// per distinct tag set, cumulative since the runner started, each pushed
// with its latest sample's time — with k6's tags (system tags, the
// script's phase/fault, the test-wide faultline_* tags, the operator's
// instance_id) as labels: for HTTP requests k6_http_reqs_total and
// k6_http_req_duration_seconds; for gRPC calls k6_grpc_req_duration_seconds
// (k6's gRPC system tags) and the script's Counter
// k6_faultline_grpc_reqs_total (its tags name, phase, fault, failed); for
// checks the script's Counter k6_faultline_checks_total (phase, fault,
// passed).
type k6RunnerStandIn struct {
	t      testing.TB
	url    string
	vu     map[string]string // test-wide and VU tags: on every sample
	series map[string]*standInSeries
}

type standInSeries struct {
	labels map[string]string // with __name__
	v      float64
	h      prometheus.Histogram // nil for a counter
	latest int64
	dirty  bool
}

func newK6RunnerStandIn(t testing.TB, url string, instance int, testWide map[string]string) *k6RunnerStandIn {
	vu := maps.Clone(testWide)
	vu["instance_id"] = fmt.Sprint(instance)
	vu["testrun_name"] = testWide[LabelScenario]
	vu["scenario"] = "default"
	return &k6RunnerStandIn{t: t, url: url, vu: vu, series: map[string]*standInSeries{}}
}

func (k *k6RunnerStandIn) labels(kv ...string) map[string]string {
	l := maps.Clone(k.vu)
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return l
}

// sample adds v to a counter, or observes it in a histogram, at end.
func (k *k6RunnerStandIn) sample(name string, l map[string]string, end time.Time, v float64, hist bool) {
	l["__name__"] = name
	key := labelKey(l)
	s := k.series[key]
	if s == nil {
		s = &standInSeries{labels: l}
		if hist {
			s.h = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", NativeHistogramBucketFactor: 1.1})
		}
		k.series[key] = s
	}
	if hist {
		s.h.Observe(v)
	} else {
		s.v += v
	}
	s.latest = max(s.latest, end.UnixMilli())
	s.dirty = true
}

// add records one HTTP request that ended at end.
func (k *k6RunnerStandIn) add(end time.Time, ms float64, failed bool, phase, fault string) {
	status, expected := "200", "true"
	if failed {
		status, expected = "503", "false"
	}
	l := func() map[string]string {
		return k.labels("proto", "HTTP/1.1", "method", "GET", "name", "GET /", "url", "http://target.shop.svc/",
			LabelPhase, phase, LabelFault, fault, "status", status, LabelExpected, expected)
	}
	k.sample(HTTPReqs, l(), end, 1, false)
	k.sample(HTTPReqDuration, l(), end, ms/1000, true)
}

// addGRPC records one gRPC call that ended at end, as k6's gRPC module
// and the script write it; ms < 0 is a call that never connected (no
// grpc_req_duration sample, counted failed with UNAVAILABLE).
func (k *k6RunnerStandIn) addGRPC(end time.Time, ms float64, failed bool, phase, fault string) {
	const method = "faultline.demo.v1.Shop/Checkout"
	if ms >= 0 {
		status := "0"
		if failed {
			status = "14"
		}
		k.sample(GRPCReqDuration, k.labels("method", method, "name", method, "url", "grpc://checkout.shop.svc:9090/"+method,
			"rpc_type", "unary", "status", status, LabelPhase, phase, LabelFault, fault), end, ms/1000, true)
	}
	k.sample(GRPCReqs, k.labels("name", method, LabelPhase, phase, LabelFault, fault, LabelFailed, fmt.Sprint(failed)), end, 1, false)
}

// addCheck records one check of the script's.
func (k *k6RunnerStandIn) addCheck(end time.Time, passed bool, phase, fault string) {
	k.sample(Checks, k.labels(LabelPhase, phase, LabelFault, fault, LabelPassed, fmt.Sprint(passed)), end, 1, false)
}

// push sends every series that changed.
func (k *k6RunnerStandIn) push(ctx context.Context) error {
	var pts []Point
	for _, s := range k.series {
		if !s.dirty {
			continue
		}
		s.dirty = false
		p := Point{Labels: maps.Clone(s.labels), T: s.latest, V: s.v}
		if s.h != nil {
			var m dto.Metric
			if err := s.h.Write(&m); err != nil {
				k.t.Fatal(err)
			}
			p.Hist = fromDTO(m.Histogram)
		}
		pts = append(pts, p)
	}
	if len(pts) == 0 {
		return nil
	}
	return Push(ctx, nil, k.url, pts)
}

// fromDTO reads client_golang's native histogram.
func fromDTO(h *dto.Histogram) *Hist {
	out := NewHist(h.GetSchema())
	out.Count, out.Sum = float64(h.GetSampleCount()), h.GetSampleSum()
	out.ZeroThreshold, out.ZeroCount = h.GetZeroThreshold(), float64(h.GetZeroCount())
	idx, c := int32(0), int64(0)
	d := 0
	for _, sp := range h.PositiveSpan {
		idx += sp.GetOffset()
		for range sp.GetLength() {
			c += h.PositiveDelta[d]
			d++
			out.Buckets[idx] = float64(c)
			idx++
		}
	}
	return out
}
