package runner

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/load"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/aggregate"
	"faultline.dev/faultline/runner/prom"
)

// PromWriteInterval is how often the engine's series are pushed (k6's
// K6_PROMETHEUS_RW_PUSH_INTERVAL as faultline compiles it).
const PromWriteInterval = time.Second

// promTee writes the engine's requests, gRPC calls and checks, as the sink
// receives them, to Prometheus (Options.PromWrite) as the compiled script's
// remote-write series in k6, with the labels they carry there: k6's system
// tags (an HTTP request's name, method, status, url, proto, scenario and
// expected_response; a gRPC call's name, method, status, url and rpc_type),
// the phase and fault of the PLANNED segment it started in (the script's
// tags), and the test-wide faultline_scenario, _version and _run_id. Beside
// them, every fault's faultline_fault_active gauge over its ACTUAL window.
type promTee struct {
	w        *prom.EngineWriter
	reqs     []k6.Request
	testWide map[string]string
	base     string
	grpcAddr string // target.grpc
	segments []teeSegment
	origin   func() int64 // the load's start, Unix ms (0 before it)

	stop chan struct{}
	done chan struct{}
	err  error

	mu     sync.Mutex
	failed int // pushes that failed
	last   error
}

// teeSegment is a planned segment as the compiled script tags it: recovery
// split at its judgeFrom into recovery-grace and recovery.
type teeSegment struct {
	end          time.Duration
	phase, fault string
}

// teeKey is a series of the engine's, before labels: an HTTP request's
// (status, failed), a gRPC call's duration (status: its code) or count
// (failed), a check count (failed: not passed).
type teeKey struct {
	kind             teeKind
	req, status, seg int
	failed           bool
}

type teeKind uint8

const (
	teeHTTP teeKind = iota
	teeGRPCDuration
	teeGRPCCalls
	teeChecks
)

// newPromTee starts writing to url (a remote-write endpoint).
func (r *run) newPromTee(url string, compiled *k6.Load, loadURL string, origin func() int64) *promTee {
	t := &promTee{reqs: compiled.Requests, base: strings.TrimSuffix(loadURL, "/"), segments: scriptSegments(r.p), origin: origin,
		stop: make(chan struct{}), done: make(chan struct{})}
	if compiled.GRPC != nil {
		t.grpcAddr = compiled.GRPC.Address
	}
	testWide := map[string]string{prom.LabelScenario: r.p.Scenario, prom.LabelVersion: r.p.Version, prom.LabelRunID: r.o.RunID}
	t.testWide = testWide
	t.w = &prom.EngineWriter{URL: url, Cuts: r.tl.cuts, Gauges: func(at int64) []prom.Point { return r.tl.faultActive(at, testWide) },
		// A request counts at the instant the collector classifies it at
		// (its slot's start, or the event's actual instant inside it), so
		// Prometheus' windows hold exactly results.json's phases.
		At: func(start int64, seg int32) int64 {
			slot := aggregate.SlotFrom(origin(), start/1e6)
			return r.tl.startPoint(time.UnixMilli(slot), slotWidth, seg).UnixNano()
		},
		AtWithin: slotWidth}
	go func() {
		defer close(t.done)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-t.stop; cancel() }()
		t.err = t.w.Run(ctx, PromWriteInterval, func(err error) {
			t.mu.Lock()
			first := t.failed == 0
			t.failed++
			t.last = err
			t.mu.Unlock()
			if first {
				r.logf("prometheus write: %v (retrying every %s)", err, PromWriteInterval)
			}
		})
	}()
	return t
}

// scriptSegments are the plan's segments as compiler/k6's timeline tags
// them.
func scriptSegments(p *plan.Plan) []teeSegment {
	judge := time.Duration(-1)
	if ph, ok := p.Phase(plan.Recovery); ok && ph.JudgeFrom > ph.Start {
		judge = ph.JudgeFrom.Std()
	}
	var out []teeSegment
	for _, s := range p.Segments {
		fault := "none"
		if len(s.Active) > 0 {
			fault = strings.Join(s.Active, "+")
		}
		if s.Phase == plan.Recovery && judge > s.Start.Std() {
			out = append(out, teeSegment{min(judge, s.End.Std()), k6.GracePhase, fault})
			if judge >= s.End.Std() {
				continue
			}
		}
		out = append(out, teeSegment{s.End.Std(), s.Phase, fault})
	}
	return out
}

// segment is the index of the planned segment an offset is in (the last
// one past the plan's end).
func (t *promTee) segment(off time.Duration) int {
	i := sort.Search(len(t.segments), func(i int) bool { return t.segments[i].end > off })
	return min(i, len(t.segments)-1)
}

// add tees one sample; seg is the timeline segment it started in. An HTTP
// request is one k6_http_reqs_total and one k6_http_req_duration_seconds
// observation; a gRPC call one k6_grpc_req_duration_seconds and one
// k6_faultline_grpc_reqs_total (failed true/false), as the compiled
// script's; its checks count in k6_faultline_checks_total (passed
// true/false). Unlike k6, which has no duration for a call that never
// connected, the engine observes every call's, as results.json does.
func (t *promTee) add(vu int, smp *load.Sample, seg int32) {
	if len(t.segments) == 0 {
		return
	}
	k := teeKey{req: smp.Request, seg: t.segment(time.Duration(smp.Start.UnixMilli()-t.origin()) * time.Millisecond)}
	seconds := smp.End.Sub(smp.Start).Seconds()
	tee := func(k teeKey, n float64) {
		t.w.Add(vu, k, func() prom.Desc { return t.desc(k) }, smp.Start, seg, n, seconds)
	}
	if smp.GRPC {
		d, c := k, k
		d.kind, d.status = teeGRPCDuration, smp.GRPCCode
		c.kind, c.failed = teeGRPCCalls, smp.Failed
		tee(d, 1)
		tee(c, 1)
	} else {
		h := k
		h.kind, h.status, h.failed = teeHTTP, smp.Status, smp.Failed
		tee(h, 1)
	}
	if smp.ChecksTotal > 0 {
		c := k
		c.kind, c.req = teeChecks, 0 // checks carry no request name, as the script's
		if smp.ChecksPassed > 0 {
			tee(c, float64(smp.ChecksPassed))
		}
		if n := smp.ChecksTotal - smp.ChecksPassed; n > 0 {
			c.failed = true
			tee(c, float64(n))
		}
	}
}

// desc is a series' names and labels: k6's system tags for the kind, the
// script's tags (name, phase, fault; failed or passed for its Counters) and
// the test-wide faultline_* tags.
func (t *promTee) desc(k teeKey) prom.Desc {
	rq := t.reqs[k.req]
	seg := t.segments[k.seg]
	l := map[string]string{"scenario": prom.K6Scenario, prom.LabelPhase: seg.phase, prom.LabelFault: seg.fault}
	maps.Copy(l, t.testWide)
	d := prom.Desc{Labels: l}
	switch k.kind {
	case teeHTTP:
		l["name"], l["method"], l["status"], l["url"], l["proto"] = rq.Name, rq.Method, strconv.Itoa(k.status), t.base+rq.Path, prom.K6Proto
		l[prom.LabelExpected] = strconv.FormatBool(!k.failed)
		if t.base == "" {
			l["url"] = rq.URL
		}
		d = prom.HTTPDesc(l)
	case teeGRPCDuration:
		l["name"], l["method"], l["status"], l["rpc_type"] = rq.Name, rq.GRPC.Method, strconv.Itoa(k.status), "unary"
		l["url"] = "grpc://" + t.grpcAddr + "/" + rq.GRPC.Method
		d.Histogram = prom.GRPCReqDuration
	case teeGRPCCalls:
		l["name"], l[prom.LabelFailed] = rq.Name, strconv.FormatBool(k.failed)
		d.Counter = prom.GRPCReqs
	case teeChecks:
		l[prom.LabelPassed] = strconv.FormatBool(!k.failed)
		d.Counter = prom.Checks
	}
	return d
}

// finish stops the writer after the load, pushes what is left and says
// how it went: a push that never got through is an infrastructure error
// (the run's series are incomplete in Prometheus), never a pass.
func (t *promTee) finish(r *run) {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	<-t.done
	t.mu.Lock()
	failed, last := t.failed, t.last
	t.mu.Unlock()
	switch {
	case t.err != nil:
		r.infra(fmt.Sprintf("writing the load's series to Prometheus %s: %v", t.w.URL, t.err))
	case t.w.Dropped() > 0:
		r.infra(fmt.Sprintf("writing the load's series to Prometheus %s: %d points dropped (%v)", t.w.URL, t.w.Dropped(), last))
	case failed > 0:
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("prometheus write to %s: %d pushes failed and were retried; every point got through (%d found stored already when sent again; last error: %v)", t.w.URL, failed, t.w.Resent(), last))
	}
	if n := t.w.Late(); n > 0 {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("prometheus write: %d requests took longer than the writer's lag and count at a later instant in Prometheus than in results.json", n))
	}
}

// cuts are the instants (Unix ns) the phase and fault windows are read at:
// each fault's actual start and end (as an instant and as the offset
// results.json holds), recovery's judgeFrom, and the marks.
func (t *Timeline) cuts() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loadStart.IsZero() {
		return nil
	}
	at := func(off float64) int64 { return t.loadStart.Add(time.Duration(off * float64(time.Second))).UnixNano() }
	var out []int64
	for _, m := range t.marks {
		out = append(out, m.at.UnixNano())
		if !m.actual.IsZero() {
			out = append(out, m.actual.UnixNano())
		}
	}
	last, allEnded := 0.0, len(t.windows) == len(t.plan.Faults)
	for _, w := range t.windows {
		out = append(out, w.Start.UnixNano(), at(w.StartOffset))
		if w.End.IsZero() {
			allEnded = false
			continue
		}
		out = append(out, w.End.UnixNano(), at(w.EndOffset))
		last = math.Max(last, w.EndOffset)
	}
	if rec, ok := t.plan.Phase(plan.Recovery); ok && allEnded && len(t.windows) > 0 {
		out = append(out, at(last+time.Duration(rec.JudgeFrom-rec.Start).Seconds()))
	}
	return out
}

// faultActive is every planned fault's faultline_fault_active at an
// instant: 1 inside its actual window, else 0.
func (t *Timeline) faultActive(at int64, testWide map[string]string) []prom.Point {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loadStart.IsZero() {
		return nil
	}
	out := make([]prom.Point, 0, len(t.plan.Faults))
	for _, f := range t.plan.Faults {
		v := 0.0
		if w := t.windows[f.Name]; w != nil && at >= w.Start.UnixMilli() && (w.End.IsZero() || at < w.End.UnixMilli()) {
			v = 1
		}
		l := map[string]string{"__name__": prom.FaultActive, "fault": f.Name, "kind": f.Kind}
		for k, x := range testWide {
			l[k] = x
		}
		out = append(out, prom.Point{Labels: l, T: at, V: v})
	}
	return out
}

// writeFaultActive writes, after an in-cluster run, every fault's
// faultline_fault_active over the run (a point a second, and at each
// window's bounds), so the dashboard shows its fault windows as it does a
// local run's. The k6 runners' remote write already needs the receiver.
func (r *run) writeFaultActive(ctx context.Context, url string, windows []results.Window) error {
	start := r.tl.LoadStart()
	if start.IsZero() || len(windows) == 0 {
		return nil
	}
	stamps := []int64{}
	for t := start; t.Before(r.res.EndedAt); t = t.Add(time.Second) {
		stamps = append(stamps, t.UnixMilli())
	}
	stamps = append(stamps, r.res.EndedAt.UnixMilli())
	for _, w := range windows {
		stamps = append(stamps, w.Start.UnixMilli())
		if !w.End.IsZero() {
			stamps = append(stamps, w.End.UnixMilli())
		}
	}
	slices.Sort(stamps)
	stamps = slices.Compact(stamps)
	testWide := map[string]string{prom.LabelScenario: r.p.Scenario, prom.LabelVersion: r.p.Version, prom.LabelRunID: r.o.RunID}
	var pts []prom.Point
	for _, at := range stamps {
		pts = append(pts, r.tl.faultActive(at, testWide)...)
	}
	for len(pts) > 0 {
		n := min(len(pts), 5000)
		if err := prom.Push(ctx, nil, url, pts[:n]); err != nil {
			return err
		}
		pts = pts[n:]
	}
	return nil
}
