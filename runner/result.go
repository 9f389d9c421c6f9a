package runner

import (
	"strconv"

	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/scrape"
	"faultline.dev/faultline/schema"
)

// statusCounts are an aggregate's requests by status: HTTP by code, gRPC
// by code name; nil maps when there are none.
func statusCounts(a *aggregate.Agg) (httpStatus, grpcStatus map[string]int64) {
	for s, n := range a.Statuses {
		if s.GRPC {
			if grpcStatus == nil {
				grpcStatus = map[string]int64{}
			}
			grpcStatus[schema.GRPCCodeName(s.Code)] += n
			continue
		}
		if httpStatus == nil {
			httpStatus = map[string]int64{}
		}
		httpStatus[strconv.Itoa(s.Code)] += n
	}
	return httpStatus, grpcStatus
}

// summarize fills a phase's numbers.
func summarize(p results.PhaseResult, a *aggregate.Agg, rt *scrape.Phase) results.PhaseResult {
	if a != nil {
		p.Requests, p.Failed = a.Requests, a.Failed
		p.ErrorRate, p.ChecksRate = nan0(a.ErrorRate()), nan0(a.ChecksRate())
		p.P50, p.P90, p.P95, p.P99 = nan0(a.Quantile(0.5)), nan0(a.Quantile(0.9)), nan0(a.Quantile(0.95)), nan0(a.Quantile(0.99))
		p.Avg, p.Max = nan0(a.AvgMS()), a.MaxMS
		if d := p.End - p.JudgedFrom; d > 0 {
			p.Throughput = float64(a.Requests) / d
		}
		p.HTTPStatus, p.GRPCStatus = statusCounts(a)
	}
	if rt != nil && rt.Samples > 0 {
		p.RuntimeSeen, p.GCPauseSeen, p.SchedSeen = rt.Samples, rt.GCPauseSeen, rt.SchedSeen
		p.Goroutines, p.GoroutMax = nan0(rt.GoroutinesMean), nan0(rt.GoroutinesMax)
		p.HeapInUse, p.HeapMax, p.RSSMax = nan0(rt.HeapMean), nan0(rt.HeapMax), nan0(rt.RSSMax)
		p99, _ := rt.GCPauseP99()
		p.GCPauseP99 = nan0(1000 * p99)
		p.SchedP99 = nan0(1000 * rt.SchedLatency().Quantile(0.99))
	}
	return p
}
