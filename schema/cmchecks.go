package schema

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// checkChaosFields runs the cross-field rules of the fields that carry
// Chaos Mesh's finer options (issue 13): what CUE cannot state well.
func checkChaosFields(s *Scenario, add func(path, format string, args ...any)) {
	for _, n := range sortedKeys(s.Faults) {
		f := s.Faults[n]
		path := "faults." + n
		for _, p := range []struct {
			path string
			peer *NetworkPeer
		}{
			{".networkDelay.peer", ptrPeer(f.NetworkDelay, func(d *NetworkDelay) *NetworkPeer { return d.Peer })},
			{".networkLoss.peer", ptrPeer(f.NetworkLoss, func(d *NetworkLoss) *NetworkPeer { return d.Peer })},
			{".networkDuplicate.peer", ptrPeer(f.NetworkDuplicate, func(d *NetworkDuplicate) *NetworkPeer { return d.Peer })},
			{".networkCorrupt.peer", ptrPeer(f.NetworkCorrupt, func(d *NetworkCorrupt) *NetworkPeer { return d.Peer })},
			{".networkBandwidth.peer", ptrPeer(f.NetworkBandwidth, func(d *NetworkBandwidth) *NetworkPeer { return d.Peer })},
			{".networkPartition.peer", ptrPeer(f.NetworkPartition, func(d *NetworkPartition) *NetworkPeer { return d.Peer })},
			{".netem.peer", ptrPeer(f.Netem, func(d *Netem) *NetworkPeer { return d.Peer })},
		} {
			pe := p.peer
			if pe == nil {
				continue
			}
			if pe.Selector == nil {
				if pe.Mode != "" {
					add(path+p.path+".mode", "mode picks among peer pods: it needs peer.selector")
				}
				if pe.Device != "" {
					add(path+p.path+".device", "device is the peer pods' interface: it needs peer.selector")
				}
			}
			mode := pe.Mode
			if mode == "" {
				mode = ModeAll
			}
			if pe.Device != "" && !deviceName.MatchString(pe.Device) {
				add(path+p.path+".device", "%q is not a network interface name (such as eth0: letters, digits, '-', '_', '.', '@', at most 15 characters)", pe.Device)
			}
			if pe.Value != 0 && (mode == ModeOne || mode == ModeAll) {
				add(path+p.path+".value", "peer mode %s does not use value; set peer.mode to fixed, fixed-percent or random-max-percent, or remove value", mode)
			}
		}
		if ne := f.Netem; ne != nil && ne.Delay == nil && ne.Loss == nil && ne.Duplicate == nil && ne.Corrupt == nil && ne.Rate == "" {
			add(path+".netem", "netem does nothing: set at least one of delay, loss, duplicate, corrupt, rate")
		}
		if h := f.HTTPFault; h != nil {
			hp := path + ".httpFault"
			if h.Target == "request" && len(h.ResponseHeaders) > 0 {
				add(hp+".responseHeaders", "responseHeaders selects responses; it needs target \"response\"")
			}
			if r := h.Replace; r != nil && h.Target == "response" {
				for _, x := range []struct {
					name string
					set  bool
				}{{"path", r.Path != ""}, {"method", r.Method != ""}, {"queries", len(r.Queries) > 0}} {
					if x.set {
						add(hp+".replace."+x.name, "a response has no %s; replace.%s needs target \"request\"", x.name, x.name)
					}
				}
			}
			if pa := h.Patch; pa != nil {
				if h.Target == "response" && len(pa.Queries) > 0 {
					add(hp+".patch.queries", "a response has no query; patch.queries needs target \"request\"")
				}
				if pa.Body == nil && len(pa.Queries) == 0 && len(pa.Headers) == 0 {
					add(hp+".patch", "patch adds nothing: set body, queries or headers")
				}
			}
		}
		if sel := f.Selector; sel != nil {
			checkSelector(path+".selector", sel, add)
		}
		for _, d := range []struct{ path, dev string }{
			{".networkDelay.device", ptrStr(f.NetworkDelay, func(d *NetworkDelay) string { return d.Device })},
			{".networkLoss.device", ptrStr(f.NetworkLoss, func(d *NetworkLoss) string { return d.Device })},
			{".networkDuplicate.device", ptrStr(f.NetworkDuplicate, func(d *NetworkDuplicate) string { return d.Device })},
			{".networkCorrupt.device", ptrStr(f.NetworkCorrupt, func(d *NetworkCorrupt) string { return d.Device })},
			{".networkBandwidth.device", ptrStr(f.NetworkBandwidth, func(d *NetworkBandwidth) string { return d.Device })},
			{".networkPartition.device", ptrStr(f.NetworkPartition, func(d *NetworkPartition) string { return d.Device })},
			{".netem.device", ptrStr(f.Netem, func(d *Netem) string { return d.Device })},
		} {
			if d.dev != "" && !deviceName.MatchString(d.dev) {
				add(path+d.path, "%q is not a network interface name (such as eth0: letters, digits, '-', '_', '.', '@', at most 15 characters)", d.dev)
			}
		}
		stressOpts := func(p string, opts []string) {
			for i, o := range opts {
				if !stressOption.MatchString(o) {
					add(p+"."+strconv.Itoa(i), "%q is not a stress-ng option: write it as on stress-ng's command line, such as \"--cpu-method=matrixprod\"", o)
				}
			}
		}
		if c := f.CPUStress; c != nil {
			stressOpts(path+".cpuStress.options", c.Options)
		}
		if mm := f.MemoryStress; mm != nil {
			stressOpts(path+".memoryStress.options", mm.Options)
		}
		if ng := f.StressNG; ng != nil && !strings.HasPrefix(strings.TrimSpace(ng.Stressors), "-") {
			add(path+".stressNG.stressors", "%q is not stress-ng options: write them as on stress-ng's command line, such as \"--io 2 --hdd 1\"", ng.Stressors)
		}
		if h := f.HTTPFault; h != nil && h.Patch != nil {
			for _, x := range []struct {
				name  string
				pairs [][]string
			}{{"queries", h.Patch.Queries}, {"headers", h.Patch.Headers}} {
				for i, pr := range x.pairs {
					if len(pr) != 2 || pr[0] == "" {
						add(path+".httpFault.patch."+x.name+"."+strconv.Itoa(i), "each of patch.%s is a [name, value] pair; this one has %d item(s)", x.name, len(pr))
					}
				}
			}
		}
		if m := f.IOMistake; m != nil && m.Path != "" {
			if msg := globProblem(m.Path); msg != "" {
				add(path+".ioMistake.path", "%s", msg)
			}
		}
	}
}

var (
	deviceName   = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.@]{0,14}$`)
	stressOption = regexp.MustCompile(`^--?[A-Za-z0-9][-A-Za-z0-9_]*(=\S+)?$`)
)

func ptrStr[T any](p *T, get func(*T) string) string {
	if p == nil {
		return ""
	}
	return get(p)
}

// checkSelector checks a selector's fields beyond what CUE states.
func checkSelector(path string, sel *Selector, add func(path, format string, args ...any)) {
	if sel.Namespace != "" && len(sel.Namespaces) > 0 {
		add(path+".namespaces", "namespace and namespaces are both set: keep namespace for one namespace, namespaces for several")
	}
	for i, r := range sel.ExpressionSelectors {
		if (r.Operator == "Exists" || r.Operator == "DoesNotExist") && len(r.Values) > 0 {
			add(path+".expressionSelectors."+strconv.Itoa(i)+".values", "operator %s takes no values: remove them, or use In or NotIn", r.Operator)
		}
	}
}

func ptrPeer[T any](p *T, get func(*T) *NetworkPeer) *NetworkPeer {
	if p == nil {
		return nil
	}
	return get(p)
}

// checkChaosDeploy is checkDeploy's part for the same fields: what Chaos
// Mesh's types cannot hold.
func checkChaosDeploy(s *Scenario, add func(path, format string, args ...any)) {
	for _, n := range sortedKeys(s.Faults) {
		f := s.Faults[n]
		path := "faults." + n
		if b := f.NetworkBandwidth; b != nil && b.Minburst > math.MaxUint32 {
			add(path+".networkBandwidth.minburst", "Chaos Mesh takes a 32-bit unsigned value here (at most %d); %d is out of range", uint32(math.MaxUint32), b.Minburst)
		}
		if m := f.IOMistake; m != nil && m.Percent != math.Trunc(m.Percent) {
			add(path+".ioMistake.percent", "Chaos Mesh takes a whole percentage here; %s is not: round it", strconv.FormatFloat(m.Percent, 'f', -1, 64))
		}
		if ne := f.Netem; ne != nil && ne.Direction != "" && ne.Direction != DirectionTo {
			if ne.Peer == nil || ne.Peer.Selector == nil {
				add(path+".netem.direction", "Chaos Mesh applies direction %q only with a peer selector (peer.selector): set it, or use direction \"to\"", ne.Direction)
			} else if len(ne.Peer.Hosts) > 0 {
				add(path+".netem.direction", "Chaos Mesh cannot combine direction %q with peer.hosts: use direction \"to\" for hosts", ne.Direction)
			}
		}
	}
}
