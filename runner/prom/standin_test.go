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
// HISTOGRAM=true, 1s pushes): no k6 binary can run here. It writes what
// k6's documentation and behaviour say that output writes — a Counter
// k6_http_reqs_total and a native histogram k6_http_req_duration_seconds
// (client_golang, bucket factor 1.1) per distinct tag set, cumulative
// since the runner started, each pushed with its latest sample's time —
// with k6's tags (system tags, the script's phase/fault, the test-wide
// faultline_* tags, the operator's instance_id) as labels.
type k6RunnerStandIn struct {
	t      testing.TB
	url    string
	tags   map[string]string
	series map[string]*standInSeries
}

type standInSeries struct {
	labels map[string]string
	reqs   float64
	h      prometheus.Histogram
	latest int64
	dirty  bool
}

func newK6RunnerStandIn(t testing.TB, url string, instance int, testWide map[string]string) *k6RunnerStandIn {
	tags := maps.Clone(testWide)
	tags["instance_id"] = fmt.Sprint(instance)
	tags["testrun_name"] = testWide[LabelScenario]
	tags["scenario"] = "default"
	tags["proto"] = "HTTP/1.1"
	tags["method"] = "GET"
	tags["name"] = "GET /"
	tags["url"] = "http://target.shop.svc/"
	return &k6RunnerStandIn{t: t, url: url, tags: tags, series: map[string]*standInSeries{}}
}

// add records one request that ended at end.
func (k *k6RunnerStandIn) add(end time.Time, ms float64, failed bool, phase, fault string) {
	l := maps.Clone(k.tags)
	l[LabelPhase], l[LabelFault] = phase, fault
	l["status"], l[LabelExpected] = "200", "true"
	if failed {
		l["status"], l[LabelExpected] = "503", "false"
	}
	key := labelKey(l)
	s := k.series[key]
	if s == nil {
		s = &standInSeries{labels: l, h: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", NativeHistogramBucketFactor: 1.1})}
		k.series[key] = s
	}
	s.reqs++
	s.h.Observe(ms / 1000)
	s.latest = max(s.latest, end.UnixMilli())
	s.dirty = true
}

// push sends every series that changed.
func (k *k6RunnerStandIn) push(ctx context.Context) error {
	var pts []Point
	for _, s := range k.series {
		if !s.dirty {
			continue
		}
		s.dirty = false
		var m dto.Metric
		if err := s.h.Write(&m); err != nil {
			k.t.Fatal(err)
		}
		rl, hl := maps.Clone(s.labels), maps.Clone(s.labels)
		rl["__name__"], hl["__name__"] = HTTPReqs, HTTPReqDuration
		pts = append(pts, Point{Labels: rl, T: s.latest, V: s.reqs}, Point{Labels: hl, T: s.latest, Hist: fromDTO(m.Histogram)})
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
