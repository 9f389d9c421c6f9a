package k6

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// phaseInfo describes a phase for the script's summary.
type phaseInfo struct {
	Name       string          `json:"name"`
	Start      float64         `json:"start"`
	End        float64         `json:"end"`
	JudgeFrom  float64         `json:"judgeFrom"`
	HasSLOs    bool            `json:"hasSLOs"`
	Throughput *float64        `json:"throughput,omitempty"`
	Thresholds []thresholdInfo `json:"thresholds"`
	// RunnerSLOs are the SLOs the runner judges from /metrics.
	RunnerSLOs []string `json:"runnerSLOs"`
}

type thresholdInfo struct {
	SLO       string `json:"slo"`
	Metric    string `json:"metric"`
	Threshold string `json:"threshold"`
}

// phaseSLO returns the SLOs stated for a phase, or nil.
func (c *compilation) phaseSLO(name string) *schema.PhaseSLO {
	if c.s.SLOs == nil {
		return nil
	}
	switch name {
	case plan.Steady:
		return c.s.SLOs.Steady
	case plan.FaultPhase:
		return c.s.SLOs.Fault
	case plan.Recovery:
		if c.s.SLOs.Recovery != nil {
			return &c.s.SLOs.Recovery.PhaseSLO
		}
	}
	return nil
}

func (c *compilation) thresholds() error {
	th := map[string][]k6opts.Threshold{}
	parallelism := c.s.Load.Parallelism
	if parallelism == 0 {
		parallelism = defaultParallelism
	}
	kinds := c.metrics()
	for _, name := range []string{plan.Steady, plan.FaultPhase, plan.Recovery} {
		slo := c.phaseSLO(name)
		ph, ok := c.p.Phase(name)
		if slo == nil {
			if ok {
				c.phases = append(c.phases, c.phaseInfo(ph, false))
			}
			continue
		}
		if !ok {
			return fmt.Errorf("k6: scenario %s: slos.%s: the timeline has no %s phase", c.p.Scenario, name, name)
		}
		info := c.phaseInfo(ph, true)
		abort := func(expr string) k6opts.Threshold {
			if !slo.AbortOnBreach {
				return k6opts.Threshold{Threshold: expr}
			}
			delay := k6opts.Duration(ph.JudgeFrom.Std() + AbortDelay)
			return k6opts.Threshold{Threshold: expr, AbortOnFail: true, DelayAbortEval: &delay}
		}
		add := func(sloName, metric string, t k6opts.Threshold) {
			key := metric + "{phase:" + name + "}"
			th[key] = append(th[key], t)
			info.Thresholds = append(info.Thresholds, thresholdInfo{SLO: sloName, Metric: key, Threshold: t.Threshold})
		}
		if lat := slo.Latency; lat != nil {
			for _, q := range []struct {
				slo, agg string
				d        schema.Duration
			}{
				{"p50", "p(50)", lat.P50}, {"p90", "p(90)", lat.P90}, {"p95", "p(95)", lat.P95},
				{"p99", "p(99)", lat.P99}, {"avg", "avg", lat.Avg}, {"max", "max", lat.Max},
			} {
				if q.d == 0 {
					continue
				}
				for _, m := range kinds.durations {
					add("latency."+q.slo, m, abort(q.agg+"<"+num(float64(q.d)/float64(time.Millisecond))))
				}
			}
		}
		if slo.ErrorRate != nil {
			for _, m := range kinds.failed {
				add("errorRate", m, abort("rate<="+num(*slo.ErrorRate/100)))
			}
		}
		if slo.Checks != nil {
			add("checks", "checks", abort("rate>="+num(*slo.Checks/100)))
		}
		if slo.Throughput != nil {
			seconds := (ph.End - ph.JudgeFrom).Std().Seconds()
			add("throughput", kinds.reqs, k6opts.Threshold{Threshold: "count>=" + num(*slo.Throughput*seconds/float64(parallelism))})
		}
		add("samples", kinds.reqs, k6opts.Threshold{Threshold: "count>0"})
		for _, r := range []struct {
			name string
			set  bool
		}{
			{"goroutines", slo.Goroutines != nil}, {"heapInUse", slo.HeapInUse != nil},
			{"gcPause", slo.GCPause != nil}, {"schedLatency", slo.SchedLatency != nil},
		} {
			if r.set {
				info.RunnerSLOs = append(info.RunnerSLOs, r.name)
			}
		}
		if slo.Throughput != nil {
			info.Throughput = slo.Throughput
		}
		c.phases = append(c.phases, info)
	}
	if len(th) > 0 {
		c.options.Thresholds = th
	}
	slices.SortFunc(c.phases, func(a, b phaseInfo) int { return int(a.Start - b.Start) })
	return nil
}

// Metrics of gRPC calls in the script: k6's grpc_req_duration, and the
// script's own Rate of calls whose status is not the expected one (k6 has
// no failure metric for gRPC) and Counter of every request, HTTP and gRPC
// (k6 counts no gRPC calls).
const (
	GRPCDurationMetric = "grpc_req_duration"
	GRPCFailedMetric   = "grpc_req_failed"
	RequestsMetric     = "faultline_reqs"
	// GRPCCallsMetric counts each gRPC call at its end, tagged failed
	// "true" or "false": the windowable count of calls and failures that
	// k6's Prometheus remote-write output gives as k6_faultline_grpc_reqs_total.
	GRPCCallsMetric = "faultline_grpc_reqs"
)

// ChecksMetric is the script's Counter of every check, tagged phase, fault
// and passed ("true" or "false"): k6's own checks metric is a Rate, which
// its Prometheus remote-write output writes as a ratio since the start.
const ChecksMetric = "faultline_checks"

// metricSet names the metrics a load's thresholds are on.
type metricSet struct {
	durations []string // latency: one threshold per metric
	failed    []string // errorRate: one threshold per metric
	reqs      string   // throughput and samples: one count of every request
}

// metrics are the metrics of the load's request kinds. With HTTP requests
// only, k6's http_req_duration, http_req_failed and http_reqs. With gRPC
// calls, grpc_req_duration and grpc_req_failed too (or instead), and the
// requests are counted by faultline_reqs. A latency or error-rate SLO of a
// mixed load is then a threshold on each kind: both passing means the
// union passes too (its p99 is at most the larger of the two p99s, its
// error rate at most the larger rate), so the thresholds are never more
// lenient than the SLO; they can be stricter.
func (c *compilation) metrics() metricSet {
	var hasHTTP, hasGRPC bool
	for _, r := range c.load.Requests {
		if r.GRPC != nil {
			hasGRPC = true
		} else {
			hasHTTP = true
		}
	}
	if !hasGRPC {
		return metricSet{durations: []string{"http_req_duration"}, failed: []string{"http_req_failed"}, reqs: "http_reqs"}
	}
	m := metricSet{reqs: RequestsMetric}
	if hasHTTP {
		m.durations, m.failed = []string{"http_req_duration"}, []string{"http_req_failed"}
	}
	m.durations = append(m.durations, GRPCDurationMetric)
	m.failed = append(m.failed, GRPCFailedMetric)
	return m
}

func (c *compilation) phaseInfo(ph plan.Phase, hasSLOs bool) phaseInfo {
	return phaseInfo{
		Name: ph.Name, Start: ms(ph.Start), End: ms(ph.End), JudgeFrom: ms(ph.JudgeFrom),
		HasSLOs: hasSLOs, Thresholds: []thresholdInfo{}, RunnerSLOs: []string{},
	}
}

// num writes a threshold number in plain decimal, rounding away float noise
// (0.1/100 is 0.001, not 0.0010000000000000002).
func num(v float64) string {
	r := math.Round(v*1e9) / 1e9
	if r == 0 && v != 0 {
		r = v
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}
