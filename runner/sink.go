package runner

import (
	"sync"
	"sync/atomic"
	"time"

	"faultline.dev/faultline/load"
	"faultline.dev/faultline/runner/aggregate"
)

// sinkShards is how many accumulators the engine's VUs share: VU i adds
// to shard i mod sinkShards, so VUs seldom wait for each other.
const sinkShards = 16

// FlushInterval is how often the sink hands its slots to the collector.
const FlushInterval = 250 * time.Millisecond

// sink is the engine's Sink: each request goes into the aggregate of the
// slot it started in (and, when later, the slot it ended in) in its VU's
// shard; flush moves the shards' slots into the collector.
type sink struct {
	tl *Timeline
	// origin is the load's start in Unix milliseconds: slots tile the
	// run's seconds from it. Set before the first sample.
	origin atomic.Int64
	shards [sinkShards]shard
	// pw, when set, gets every sample too (--prometheus-write).
	pw *promTee
}

type shard struct {
	mu      sync.Mutex
	pending map[aggregate.Key]*aggregate.Agg
}

func newSink(tl *Timeline) *sink {
	s := &sink{tl: tl}
	for i := range s.shards {
		s.shards[i].pending = map[aggregate.Key]*aggregate.Agg{}
	}
	return s
}

// Add implements load.Sink.
func (s *sink) Add(vu int, smp *load.Sample) {
	o := s.origin.Load()
	k := aggregate.Key{Start: aggregate.SlotFrom(o, smp.Start.UnixMilli())}
	if e := aggregate.SlotFrom(o, smp.End.UnixMilli()); e != k.Start {
		k.End = e
	}
	k.Segment, k.EndSegment = s.tl.Segment(smp.Start), s.tl.Segment(smp.End)
	ms := float64(smp.End.Sub(smp.Start)) / float64(time.Millisecond)
	sh := &s.shards[uint(vu)%sinkShards]
	sh.mu.Lock()
	a := sh.pending[k]
	if a == nil {
		a = aggregate.New()
		sh.pending[k] = a
	}
	a.AddRequest(ms, smp.Failed)
	a.AddChecks(smp.ChecksPassed, smp.ChecksTotal)
	a.AddStatus(sampleStatus(smp))
	sh.mu.Unlock()
	if s.pw != nil {
		s.pw.add(vu, smp, k.Segment)
	}
}

// sampleStatus is a sample's status: its HTTP status, or its gRPC code.
func sampleStatus(smp *load.Sample) aggregate.Status {
	if smp.GRPC {
		return aggregate.Status{GRPC: true, Code: smp.GRPCCode}
	}
	return aggregate.Status{Code: smp.Status}
}

// flush moves every pending slot into c.
func (s *sink) flush(c *Collector) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		pending := sh.pending
		if len(pending) == 0 {
			sh.mu.Unlock()
			continue
		}
		sh.pending = make(map[aggregate.Key]*aggregate.Agg, len(pending))
		sh.mu.Unlock()
		for k, a := range pending {
			c.add(k, a)
		}
	}
}
