package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"faultline.dev/faultline/schema"
)

// ErrUnsupported is wrapped by Set for a fault the local injector cannot
// apply: a kind that does not act on the load's connections or requests
// (cpuStress, ioLatency, podKill, ...) or a network fault limited to a peer
// (the injector sees only the load's own traffic with the target).
var ErrUnsupported = errors.New("not supported by the local injector")

// RetransmitTimeout is the stall a lost chunk costs: Linux's minimum TCP
// retransmission timeout (TCP_RTO_MIN). Each further loss of the same chunk
// doubles it, as TCP's exponential backoff does.
const RetransmitTimeout = 200 * time.Millisecond

const (
	// segmentSize is the TCP payload of one packet on an Ethernet path; a
	// chunk of n bytes stands for ceil(n/segmentSize) packets when loss is
	// drawn.
	segmentSize = 1448
	// maxRetransmits consecutive losses of one chunk hold it until the
	// fault ends (TCP would keep backing off for minutes).
	maxRetransmits = 6
)

// direction is the way data flows on a connection, named from the
// target's side as Chaos Mesh names it.
type direction int

const (
	// dirTo is traffic the target sends: responses ("to", the default of
	// networkDelay, networkLoss and networkBandwidth).
	dirTo direction = iota
	// dirFrom is traffic the target receives: requests ("from").
	dirFrom
)

func (d direction) String() string {
	if d == dirTo {
		return "to"
	}
	return "from"
}

// directions maps a schema direction to the directions it covers.
func directions(s, def string) ([]direction, error) {
	if s == "" {
		s = def
	}
	switch s {
	case schema.DirectionTo:
		return []direction{dirTo}, nil
	case schema.DirectionFrom:
		return []direction{dirFrom}, nil
	case schema.DirectionBoth:
		return []direction{dirTo, dirFrom}, nil
	}
	return nil, fmt.Errorf("direction %q: want %q, %q or %q", s, schema.DirectionTo, schema.DirectionFrom, schema.DirectionBoth)
}

// netFault is one network fault acting on one direction. Its state (random
// source, correlation memory, token bucket) is shared by every connection,
// as a qdisc's is shared by every flow through an interface.
type netFault struct {
	name string
	live atomic.Bool // false once the fault is cleared or replaced

	delay *schema.NetworkDelay
	loss  *schema.NetworkLoss
	rate  float64 // bandwidth, bytes per second; 0 when not a bandwidth fault
	burst float64 // bandwidth bucket size, bytes
	limit int     // bandwidth queue limit, bytes

	mu     sync.Mutex
	rng    *rand.Rand
	lastU  float64   // previous correlated jitter draw, in [-1, 1]
	lastL  float64   // previous correlated loss draw, in [0, 1]
	tokens float64   // token bucket level, bytes (negative: debt)
	last   time.Time // token bucket clock
}

func newNetFault(name string) *netFault {
	f := &netFault{name: name, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	f.lastL = 0.5
	f.live.Store(true)
	return f
}

// delaySample draws one chunk's delay: latency + jitter·u with u in
// [-1, 1], u = c·u_prev + (1-c)·uniform, netem's correlation.
func (f *netFault) delaySample() time.Duration {
	u := f.rng.Float64()*2 - 1
	if c := f.delay.Correlation / 100; c > 0 {
		u = c*f.lastU + (1-c)*u
	}
	f.lastU = u
	d := f.delay.Latency.Std() + time.Duration(u*float64(f.delay.Jitter.Std()))
	return max(d, 0)
}

func (f *netFault) lossDraw() float64 {
	u := f.rng.Float64()
	if c := f.loss.Correlation / 100; c > 0 {
		u = c*f.lastL + (1-c)*u
	}
	f.lastL = u
	return u
}

// lossStall decides the fate of a chunk of n bytes: each of its packets is
// lost with the configured probability; a chunk with a lost packet is
// retransmitted after RetransmitTimeout, doubling per further loss. hold
// reports a chunk that would never get through (loss 100%, or more than
// maxRetransmits losses in a row).
func (f *netFault) lossStall(n int) (stall time.Duration, hold bool) {
	p := f.loss.Loss / 100
	if p <= 0 {
		return 0, false
	}
	if p >= 1 {
		return 0, true
	}
	lost := false
	for range (n + segmentSize - 1) / segmentSize {
		if f.lossDraw() < p {
			lost = true
		}
	}
	if !lost {
		return 0, false
	}
	k := 1
	for f.lossDraw() < p {
		if k++; k > maxRetransmits {
			return 0, true
		}
	}
	return RetransmitTimeout * time.Duration(1<<k-1), false
}

// shape passes n bytes arriving at t through the token bucket and returns
// when they leave it.
func (f *netFault) shape(t time.Time, n int) time.Time {
	if f.last.IsZero() {
		f.tokens, f.last = f.burst, t
	}
	if t.Before(f.last) {
		t = f.last
	}
	f.tokens = min(f.burst, f.tokens+t.Sub(f.last).Seconds()*f.rate)
	f.last = t
	f.tokens -= float64(n)
	if f.tokens >= 0 {
		return t
	}
	return t.Add(time.Duration(-f.tokens / f.rate * float64(time.Second)))
}

// httpFault is one compiled httpFault.
type httpFault struct {
	name     string
	live     atomic.Bool
	response bool // target "response"
	path     *regexp.Regexp
	method   string
	code     int
	abort    bool
	delay    time.Duration
	replace  *schema.HTTPReplace
	// reqHeaders and respHeaders select by header value (Chaos Mesh's
	// request_headers, response_headers).
	reqHeaders, respHeaders map[string]string
	patch                   *schema.HTTPPatch
	patchBody               any // patch.body.value parsed: a JSON merge patch
}

// fault is one named fault as Set received it, compiled.
type fault struct {
	net  []*netFault // one per direction it acts on: dirTo first
	dir0 direction   // the direction of net[0] when there is one
	// netDirs, when set, is the direction of each of net (a netem fault:
	// several impairments per direction).
	netDirs []direction
	part    []direction // networkPartition: the directions cut
	http    *httpFault
	grpc    *grpcFault
}

func (f *fault) kill() {
	for _, n := range f.net {
		n.live.Store(false)
	}
	if f.http != nil {
		f.http.live.Store(false)
	}
	if f.grpc != nil {
		f.grpc.live.Store(false)
	}
}

// faultSet is an immutable snapshot of the active faults. Faults swaps it
// atomically; changed is closed when it is replaced.
type faultSet struct {
	byName    map[string]*fault
	net       [2][]*netFault // per direction: delays, then losses, then bandwidth
	partition [2]bool
	limit     [2]int // smallest bandwidth queue limit per direction, 0 if none
	http      []*httpFault
	grpc      []*grpcFault
	changed   chan struct{}
}

func newFaultSet(byName map[string]*fault) *faultSet {
	s := &faultSet{byName: byName, changed: make(chan struct{})}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := byName[n]
		for _, d := range f.part {
			s.partition[d] = true
		}
		if f.http != nil {
			s.http = append(s.http, f.http)
		}
		if f.grpc != nil {
			s.grpc = append(s.grpc, f.grpc)
		}
	}
	for d := range s.net {
		for _, pass := range []func(*netFault) bool{
			func(f *netFault) bool { return f.delay != nil },
			func(f *netFault) bool { return f.loss != nil },
			func(f *netFault) bool { return f.rate > 0 },
		} {
			for _, n := range names {
				for i, nf := range byName[n].net {
					if !pass(nf) || byName[n].netDir(i) != direction(d) {
						continue
					}
					s.net[d] = append(s.net[d], nf)
					if nf.limit > 0 && (s.limit[d] == 0 || nf.limit < s.limit[d]) {
						s.limit[d] = nf.limit
					}
				}
			}
		}
	}
	return s
}

// netDir is the direction of f.net[i]: compile stores dirTo first.
func (f *fault) netDir(i int) direction {
	if f.netDirs != nil {
		return f.netDirs[i]
	}
	if len(f.net) == 2 {
		return direction(i)
	}
	return f.dir0
}

// active reports whether any network fault acts on d.
func (s *faultSet) active(d direction) bool { return len(s.net[d]) > 0 || s.partition[d] }

// partitioned reports whether new connections are refused.
func (s *faultSet) partitioned() bool { return s.partition[dirTo] || s.partition[dirFrom] }

// compile checks a schema fault and builds what the injector runs.
func compile(name string, sf schema.Fault) (*fault, error) {
	if name == "" {
		return nil, errors.New("fault name is empty")
	}
	kind := sf.Kind()
	peer := func(p *schema.NetworkPeer) error {
		if p != nil {
			return fmt.Errorf("fault %q: %s.peer: %w: the local injector only sees the load's own traffic with the target", name, kind, ErrUnsupported)
		}
		return nil
	}
	pct := func(field string, v float64) error {
		if v < 0 || v > 100 || math.IsNaN(v) {
			return fmt.Errorf("fault %q: %s.%s is %v: want a percentage from 0 to 100", name, kind, field, v)
		}
		return nil
	}
	f := &fault{}
	var dirs []direction
	var err error
	switch kind {
	case "networkDelay":
		d := sf.NetworkDelay
		if err := peer(d.Peer); err != nil {
			return nil, err
		}
		if d.Latency <= 0 || d.Jitter < 0 {
			return nil, fmt.Errorf("fault %q: networkDelay: latency must be positive and jitter not negative (latency %v, jitter %v)", name, d.Latency, d.Jitter)
		}
		if err := pct("correlation", d.Correlation); err != nil {
			return nil, err
		}
		if dirs, err = directions(d.Direction, schema.DirectionTo); err != nil {
			return nil, fmt.Errorf("fault %q: networkDelay.%w", name, err)
		}
		for range dirs {
			nf := newNetFault(name)
			nf.delay = d
			f.net = append(f.net, nf)
		}
	case "networkLoss":
		d := sf.NetworkLoss
		if err := peer(d.Peer); err != nil {
			return nil, err
		}
		if err := pct("loss", d.Loss); err != nil {
			return nil, err
		}
		if err := pct("correlation", d.Correlation); err != nil {
			return nil, err
		}
		if dirs, err = directions(d.Direction, schema.DirectionTo); err != nil {
			return nil, fmt.Errorf("fault %q: networkLoss.%w", name, err)
		}
		for range dirs {
			nf := newNetFault(name)
			nf.loss = d
			f.net = append(f.net, nf)
		}
	case "networkBandwidth":
		d := sf.NetworkBandwidth
		if err := peer(d.Peer); err != nil {
			return nil, err
		}
		rate, err := ParseRate(d.Rate)
		if err != nil {
			return nil, fmt.Errorf("fault %q: networkBandwidth.rate: %w", name, err)
		}
		if d.Limit < 1 || d.Buffer < 1 {
			return nil, fmt.Errorf("fault %q: networkBandwidth: limit and buffer must be at least 1 byte (limit %d, buffer %d)", name, d.Limit, d.Buffer)
		}
		if dirs, err = directions(d.Direction, schema.DirectionTo); err != nil {
			return nil, fmt.Errorf("fault %q: networkBandwidth.%w", name, err)
		}
		for range dirs {
			nf := newNetFault(name)
			nf.rate, nf.burst, nf.limit = rate/8, float64(d.Buffer), d.Limit
			f.net = append(f.net, nf)
		}
	case "netem":
		// Several impairments on the same connections at once: delay,
		// loss and netem's rate (a token bucket of one segment, no queue
		// limit), scheduled as separate faults would be. Duplicated and
		// corrupted packets have no stream-level equivalent here.
		ne := sf.Netem
		if err := peer(ne.Peer); err != nil {
			return nil, err
		}
		if ne.Duplicate != nil || ne.Corrupt != nil || (ne.Delay != nil && ne.Delay.Reorder != nil) {
			return nil, fmt.Errorf("fault %q: netem duplicate, corrupt and reorder: %w (they act on packets: run it with --backend kubernetes)", name, ErrUnsupported)
		}
		if dirs, err = directions(ne.Direction, schema.DirectionTo); err != nil {
			return nil, fmt.Errorf("fault %q: netem.%w", name, err)
		}
		var delay *schema.NetworkDelay
		if d := ne.Delay; d != nil {
			if d.Latency <= 0 || d.Jitter < 0 {
				return nil, fmt.Errorf("fault %q: netem.delay: latency must be positive and jitter not negative (latency %v, jitter %v)", name, d.Latency, d.Jitter)
			}
			if err := pct("delay.correlation", d.Correlation); err != nil {
				return nil, err
			}
			delay = &schema.NetworkDelay{Latency: d.Latency, Jitter: d.Jitter, Correlation: d.Correlation}
		}
		var loss *schema.NetworkLoss
		if l := ne.Loss; l != nil {
			if err := pct("loss.loss", l.Loss); err != nil {
				return nil, err
			}
			if err := pct("loss.correlation", l.Correlation); err != nil {
				return nil, err
			}
			loss = &schema.NetworkLoss{Loss: l.Loss, Correlation: l.Correlation}
		}
		var rate float64
		if ne.Rate != "" {
			if rate, err = ParseRate(ne.Rate); err != nil {
				return nil, fmt.Errorf("fault %q: netem.rate: %w", name, err)
			}
		}
		if delay == nil && loss == nil && rate == 0 {
			return nil, fmt.Errorf("fault %q: netem does nothing: set delay, loss or rate", name)
		}
		for _, d := range dirs {
			add := func(nf *netFault) {
				f.net = append(f.net, nf)
				f.netDirs = append(f.netDirs, d)
			}
			if delay != nil {
				nf := newNetFault(name)
				nf.delay = delay
				add(nf)
			}
			if loss != nil {
				nf := newNetFault(name)
				nf.loss = loss
				add(nf)
			}
			if rate > 0 {
				nf := newNetFault(name)
				nf.rate, nf.burst = rate/8, segmentSize
				add(nf)
			}
		}
		dirs = nil // netDirs says each one's direction
	case "networkPartition":
		d := sf.NetworkPartition
		if err := peer(d.Peer); err != nil {
			return nil, err
		}
		if f.part, err = directions(d.Direction, schema.DirectionBoth); err != nil {
			return nil, fmt.Errorf("fault %q: networkPartition.%w", name, err)
		}
	case "httpFault":
		h, err := compileHTTP(name, sf.HTTPFault)
		if err != nil {
			return nil, err
		}
		f.http = h
	case "grpcFault":
		g, err := compileGRPC(name, sf.GRPCFault)
		if err != nil {
			return nil, err
		}
		f.grpc = g
	case "":
		return nil, fmt.Errorf("fault %q has no kind block", name)
	default:
		return nil, fmt.Errorf("fault %q: %s: %w (it supports networkDelay, networkLoss, networkBandwidth, networkPartition, netem, httpFault and grpcFault)", name, kind, ErrUnsupported)
	}
	if len(dirs) == 1 {
		f.dir0 = dirs[0]
	}
	return f, nil
}

func compileHTTP(name string, h *schema.HTTPFault) (*httpFault, error) {
	c := &httpFault{name: name, method: h.Method, code: h.Code, abort: h.Abort, delay: h.Delay.Std(), replace: h.Replace,
		reqHeaders: h.RequestHeaders, respHeaders: h.ResponseHeaders, patch: h.Patch}
	c.live.Store(true)
	if h.TLS != nil {
		return nil, fmt.Errorf("fault %q: httpFault.tls: %w (Chaos Mesh's proxy terminates TLS in the pod: run it with --backend kubernetes)", name, ErrUnsupported)
	}
	if p := h.Patch; p != nil {
		if p.Body != nil {
			if p.Body.Type != "JSON" {
				return nil, fmt.Errorf("fault %q: httpFault.patch.body.type is %q: want \"JSON\"", name, p.Body.Type)
			}
			if err := json.Unmarshal([]byte(p.Body.Value), &c.patchBody); err != nil {
				return nil, fmt.Errorf("fault %q: httpFault.patch.body.value is not JSON: %v", name, err)
			}
		}
		for _, pairs := range [][][]string{p.Queries, p.Headers} {
			for _, pr := range pairs {
				if len(pr) != 2 {
					return nil, fmt.Errorf("fault %q: httpFault.patch: %q is not a [name, value] pair", name, pr)
				}
			}
		}
	}
	switch h.Target {
	case "request":
	case "response":
		c.response = true
	default:
		return nil, fmt.Errorf("fault %q: httpFault.target is %q: want \"request\" or \"response\"", name, h.Target)
	}
	if h.Code != 0 && !c.response {
		return nil, fmt.Errorf("fault %q: httpFault.code selects responses by status: it needs target \"response\"", name)
	}
	if h.Delay < 0 {
		return nil, fmt.Errorf("fault %q: httpFault.delay is negative (%v)", name, h.Delay)
	}
	glob := h.Path
	if glob == "" {
		glob = "*"
	}
	re, err := globRegexp(glob)
	if err != nil {
		return nil, fmt.Errorf("fault %q: httpFault.path %q: %w", name, h.Path, err)
	}
	c.path = re
	return c, nil
}

// globRegexp turns a path glob into an anchored regexp: "*" matches any run
// of characters, "/" included ("/api/*" matches "/api/v1/users"), "?" one
// character; everything else is literal.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// ParseRate parses a bandwidth as the schema writes it ("1mbps", "500kbps",
// "10gbps") and returns bits per second. The units are tc's, which Chaos
// Mesh passes through: "bps" is BYTES per second, k/m/g/t are powers of
// 1000. So "1mbps" is 1,000,000 bytes/s = 8,000,000 bit/s, the same rate a
// scenario gets on Kubernetes.
func ParseRate(s string) (float64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"tbps", 1e12}, {"gbps", 1e9}, {"mbps", 1e6}, {"kbps", 1e3}, {"bps", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(strings.ToLower(s), u.suffix); ok {
			v, err := strconv.ParseUint(n, 10, 64)
			if err != nil || v == 0 {
				return 0, fmt.Errorf("rate %q: want a positive whole number and a unit (bps, kbps, mbps, gbps, tbps)", s)
			}
			return float64(v) * u.mult * 8, nil
		}
	}
	return 0, fmt.Errorf("rate %q: want a positive whole number and a unit (bps, kbps, mbps, gbps, tbps)", s)
}
