package schema

import (
	"fmt"
	"math"
	pathpkg "path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// check runs the rules the schema cannot state well in CUE on a decoded,
// schema-valid scenario: fields an executor or mode does not use, empty
// phases that SLOs are stated for, HTTP faults that do nothing.
func check(l *Loaded) Diagnostics {
	s := l.Scenario
	var ds Diagnostics
	add := func(path, format string, args ...any) {
		ds = append(ds, l.Pos(path, fmt.Sprintf(format, args...)))
	}

	// Load parameters the executor does not use: k6 rejects them.
	uses := map[string][]string{
		ConstantArrivalRate: {"rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"},
		RampingArrivalRate:  {"startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"},
		ConstantVUs:         {"vus", "duration"},
		RampingVUs:          {"startVUs", "stages", "gracefulRampDown"},
		PerVUIterations:     {"vus", "iterations", "maxDuration"},
		SharedIterations:    {"vus", "iterations", "maxDuration"},
	}[s.Load.Executor]
	ld := s.Load
	for _, p := range []struct {
		name string
		set  bool
	}{
		{"rate", ld.Rate != 0}, {"startRate", ld.StartRate != nil}, {"timeUnit", ld.TimeUnit != 0},
		{"duration", ld.Duration != 0}, {"stages", ld.Stages != nil}, {"preAllocatedVUs", ld.PreAllocatedVUs != 0},
		{"maxVUs", ld.MaxVUs != 0}, {"vus", ld.VUs != 0}, {"startVUs", ld.StartVUs != nil},
		{"iterations", ld.Iterations != 0}, {"maxDuration", ld.MaxDuration != 0}, {"gracefulRampDown", ld.GracefulRampDown != nil},
	} {
		if p.set && !slices.Contains(uses, p.name) {
			add("load."+p.name, "executor %s does not use %s; it takes %s", ld.Executor, p.name, strings.Join(uses, ", "))
		}
	}

	// Faults: value only where the mode uses it; HTTP faults must act.
	names := sortedKeys(s.Faults)
	for _, n := range names {
		f := s.Faults[n]
		mode := f.Mode
		if mode == "" {
			mode = ModeOne
		}
		if f.Value != 0 && (mode == ModeOne || mode == ModeAll) {
			add("faults."+n+".value", "mode %s does not use value; set mode to fixed, fixed-percent or random-max-percent, or remove value", mode)
		}
		if h := f.HTTPFault; h != nil {
			if !h.Abort && h.Delay == 0 && h.Replace == nil && h.Patch == nil {
				add("faults."+n+".httpFault", "an httpFault does nothing without abort, delay, replace or patch")
			}
			if h.Target == "request" && h.Code != 0 {
				add("faults."+n+".httpFault.code", "code selects responses; it needs target \"response\"")
			}
			if h.Target == "request" && h.Replace != nil && h.Replace.Code != 0 {
				add("faults."+n+".httpFault.replace.code", "a request has no status code; replace.code needs target \"response\"")
			}
		}
		for _, g := range []struct{ path, glob string }{
			{"httpFault.path", ptrField(f.HTTPFault, func(h *HTTPFault) string { return h.Path })},
			{"ioLatency.path", ptrField(f.IOLatency, func(t *IOLatency) string { return t.Path })},
			{"ioFault.path", ptrField(f.IOFault, func(t *IOFault) string { return t.Path })},
			{"ioAttrOverride.path", ptrField(f.IOAttrOverride, func(t *IOAttrOverride) string { return t.Path })},
		} {
			if g.glob != "" {
				if msg := globProblem(g.glob); msg != "" {
					add("faults."+n+"."+g.path, "%s", msg)
				}
			}
		}
		if f.NetworkDelay != nil && f.NetworkDelay.Jitter > f.NetworkDelay.Latency {
			add("faults."+n+".networkDelay.jitter", "jitter %s is larger than latency %s: delays would be clipped at zero", f.NetworkDelay.Jitter, f.NetworkDelay.Latency)
		}
	}

	// Header values HTTP cannot carry (compile refuses them too).
	for i, r := range s.Load.Requests {
		for _, k := range sortedKeys(r.Headers) {
			if strings.ContainsAny(r.Headers[k], "\r\n\x00") {
				add(fmt.Sprintf("load.requests.%d.headers.%s", i, k),
					"header %s contains a line break or NUL, which HTTP does not allow in a header value: remove it", k)
			}
		}
	}

	// gRPC calls: their fields, target.grpc, and target.protos when given.
	checkGRPC(l, add)

	// Placeholders faultline import wrote for the user to fill in.
	checkPlaceholders(s, add)

	// The fields of Chaos Mesh's finer options.
	checkChaosFields(s, add)

	// SLOs for phases the timeline does not have.
	total := loadLength(s.Load)
	if s.SLOs != nil {
		if len(s.Faults) == 0 {
			if s.SLOs.Fault != nil {
				add("slos.fault", "the scenario has no faults, so no fault phase: remove slos.fault or add a fault")
			}
			if s.SLOs.Recovery != nil {
				add("slos.recovery", "the scenario has no faults, so no recovery phase: remove slos.recovery or add a fault")
			}
		} else {
			first, last := time.Duration(1<<62), time.Duration(0)
			for _, f := range s.Faults {
				first = min(first, f.Start.Std())
				last = max(last, f.End().Std())
			}
			if s.SLOs.Steady != nil && first == 0 {
				add("slos.steady", "the first fault starts at 0s, so there is no steady phase: start it later or remove slos.steady")
			}
			if s.SLOs.Recovery != nil {
				rest := total - last
				if rest <= 0 {
					add("slos.recovery", "the last fault ends when the load ends (%s), so there is no recovery phase: end it earlier or lengthen the load", Duration(total))
				} else if w := s.SLOs.Recovery.Within.Std(); w >= rest {
					add("slos.recovery.within", "within %s leaves nothing to judge: the recovery phase lasts %s (load end %s minus last fault end %s)", Duration(w), Duration(rest), Duration(total), Duration(last))
				}
			}
		}
	}
	return ds
}

// loadLength is the planned length of the load, as the schema computes it.
func loadLength(l Load) time.Duration {
	switch {
	case l.Duration != 0:
		return l.Duration.Std()
	case len(l.Stages) > 0:
		var t time.Duration
		for _, s := range l.Stages {
			t += s.Duration.Std()
		}
		return t
	case l.MaxDuration != 0:
		return l.MaxDuration.Std()
	}
	return 10 * time.Minute
}

// LoadLength is the planned length of the scenario's load: its duration, the
// sum of its stages, or an iteration executor's maxDuration (default 10m).
func (s *Scenario) LoadLength() time.Duration { return loadLength(s.Load) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CheckDeploy runs, on loaded scenarios, the rules `faultline compile`
// enforces when it emits Chaos Mesh objects and the k6 script, so that vet
// refuses what compile would. Load does not run them: a scenario for the
// local backend alone may leave out what only a cluster needs.
func CheckDeploy(loaded []*Loaded) Diagnostics {
	var ds Diagnostics
	for _, l := range loaded {
		ds = append(ds, checkDeploy(l)...)
	}
	return ds.Sort()
}

func checkDeploy(l *Loaded) Diagnostics {
	s := l.Scenario
	var ds Diagnostics
	add := func(path, format string, args ...any) {
		ds = append(ds, l.Pos(path, fmt.Sprintf(format, args...)))
	}
	whole := func(path string, v float64) {
		if v != math.Trunc(v) {
			add(path, "Chaos Mesh takes a whole percentage here; %s is not: round it", strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	u32 := func(path string, v *int) {
		if v != nil && (*v < 0 || *v > math.MaxUint32) {
			add(path, "Chaos Mesh takes a 32-bit unsigned value here (at most %d); %d is out of range", uint32(math.MaxUint32), *v)
		}
	}
	direction := func(path, dir string, peer *NetworkPeer) {
		if dir == "" || dir == DirectionTo {
			return
		}
		if peer == nil || peer.Selector == nil {
			add(path+".direction", "Chaos Mesh applies direction %q only with a peer selector (peer.selector): set it, or use direction \"to\"", dir)
		} else if len(peer.Hosts) > 0 {
			add(path+".direction", "Chaos Mesh cannot combine direction %q with peer.hosts: use direction \"to\" for hosts", dir)
		}
	}
	for _, n := range sortedKeys(s.Faults) {
		f := s.Faults[n]
		path := "faults." + n
		switch {
		case f.Selector != nil:
			if f.Selector.Namespace == "" && s.Target.Kubernetes == nil && s.Target.Local == nil {
				add(path+".selector",
					"fault %q has no namespace to compile into: set faults.%s.selector.namespace or target.kubernetes (namespace and selector)", n, n)
			}
		case s.Target.Kubernetes == nil && s.Target.Local == nil:
			add(path, "fault %q has no pods to act on: Chaos Mesh needs a namespace and a label selector; set target.kubernetes {namespace, selector} or faults.%s.selector {namespace, labels} (or target.local, to run it with --backend local only)", n, n)
		}
		switch {
		case f.NetworkDelay != nil:
			direction(path+".networkDelay", f.NetworkDelay.Direction, f.NetworkDelay.Peer)
		case f.NetworkLoss != nil:
			direction(path+".networkLoss", f.NetworkLoss.Direction, f.NetworkLoss.Peer)
		case f.NetworkDuplicate != nil:
			direction(path+".networkDuplicate", f.NetworkDuplicate.Direction, f.NetworkDuplicate.Peer)
		case f.NetworkCorrupt != nil:
			direction(path+".networkCorrupt", f.NetworkCorrupt.Direction, f.NetworkCorrupt.Peer)
		case f.NetworkBandwidth != nil:
			b := f.NetworkBandwidth
			direction(path+".networkBandwidth", b.Direction, b.Peer)
			u32(path+".networkBandwidth.limit", &b.Limit)
			u32(path+".networkBandwidth.buffer", &b.Buffer)
		case f.IOLatency != nil:
			whole(path+".ioLatency.percent", f.IOLatency.Percent)
		case f.IOFault != nil:
			whole(path+".ioFault.percent", f.IOFault.Percent)
		case f.IOAttrOverride != nil:
			a := f.IOAttrOverride
			whole(path+".ioAttrOverride.percent", a.Percent)
			u32(path+".ioAttrOverride.attr.nlink", a.Attr.NLink)
			u32(path+".ioAttrOverride.attr.uid", a.Attr.UID)
			u32(path+".ioAttrOverride.attr.gid", a.Attr.GID)
			if a.Attr == (IOAttr{}) {
				add(path+".ioAttrOverride.attr", "attr overrides nothing: set at least one of perm, size, nlink, uid, gid")
			}
		case f.CPUStress != nil:
			if f.CPUStress.Load != nil {
				whole(path+".cpuStress.load", *f.CPUStress.Load)
			}
		}
	}
	checkChaosDeploy(s, add)
	return ds
}

// globProblem says what is wrong with a glob pattern, or "".
func globProblem(glob string) string {
	if _, err := pathpkg.Match(glob, ""); err == nil {
		return ""
	}
	switch {
	case strings.HasSuffix(glob, "\\") && !strings.HasSuffix(glob, "\\\\"):
		return fmt.Sprintf("invalid glob %q: it ends in a backslash, which escapes nothing; remove it or write \\\\ for a backslash", glob)
	case strings.Count(glob, "[") > strings.Count(glob, "]"):
		return fmt.Sprintf("invalid glob %q: a [ opens a character class that is never closed; close it with ] or write \\[ for a bracket", glob)
	}
	return fmt.Sprintf("invalid glob %q: want a pattern of *, ? and [a-z] classes (write \\[ for a bracket)", glob)
}

func ptrField[T any](p *T, get func(*T) string) string {
	if p == nil {
		return ""
	}
	return get(p)
}
