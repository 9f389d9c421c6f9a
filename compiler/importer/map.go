package importer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"faultline.dev/faultline/schema"
)

// mapper turns one defaulted chaos object into a fault. It maps what the
// schema can say; whatever it leaves out shows up when the fault is
// compiled back and compared (verify), so mapper need not catch every
// field itself. It reports a field itself where it can say more.
type mapper struct {
	im *importer
	it *item
}

func (m mapper) fail(field, format string, args ...any) {
	m.im.fail(m.it.file, locate(m.it.node, field), m.it.object, m.it.field+"."+field, format, args...)
}

func floatStr(s string) float64 {
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return v
}

func goDuration(s string) schema.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return schema.Duration(d)
}

// selector maps a pod selector: the first namespace and the labels; other
// selector fields, when the schema has them.
func (m mapper) selector(ps v1alpha1.PodSelector, f *schema.Fault) {
	s := ps.Selector
	sel := &schema.Selector{Labels: copyMap(s.LabelSelectors)}
	if sel.Labels == nil {
		sel.Labels = map[string]string{}
	}
	switch {
	case len(s.Namespaces) == 1:
		sel.Namespace = s.Namespaces[0]
	case len(s.Namespaces) > 1:
		sel.Namespaces = append([]string(nil), s.Namespaces...)
	}
	moreSelectors(sel, s)
	f.Selector = sel
	mode := string(ps.Mode)
	if mode != schema.ModeOne {
		f.Mode = mode
	}
	if ps.Value != "" {
		v, err := strconv.Atoi(ps.Value)
		if err != nil || v < 1 {
			m.fail("value", "value %q is not a whole number of at least 1", ps.Value)
		}
		f.Value = v
	}
}

// moreSelectors maps the selector fields beyond namespace and labels.
func moreSelectors(sel *schema.Selector, s v1alpha1.PodSelectorSpec) {
	if len(s.Pods) > 0 {
		sel.Pods = map[string][]string{}
		for ns, names := range s.Pods {
			sel.Pods[ns] = append([]string(nil), names...)
		}
	}
	for _, r := range s.ExpressionSelectors {
		sel.ExpressionSelectors = append(sel.ExpressionSelectors, schema.LabelRequirement{
			Key: r.Key, Operator: string(r.Operator), Values: append([]string(nil), r.Values...)})
	}
	sel.AnnotationSelectors = copyMap(s.AnnotationSelectors)
	sel.FieldSelectors = copyMap(s.FieldSelectors)
	sel.NodeSelectors = copyMap(s.NodeSelectors)
	if len(s.PodPhaseSelectors) > 0 {
		sel.PodPhaseSelectors = append([]string(nil), s.PodPhaseSelectors...)
	}
	if len(s.Nodes) > 0 {
		sel.Nodes = append([]string(nil), s.Nodes...)
	}
}

func copyMap(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (m mapper) peer(spec *v1alpha1.NetworkChaosSpec) *schema.NetworkPeer {
	if spec.Target == nil && len(spec.ExternalTargets) == 0 && spec.TargetDevice == "" {
		return nil
	}
	p := &schema.NetworkPeer{}
	if t := spec.Target; t != nil {
		sel := &schema.Selector{Labels: copyMap(t.Selector.LabelSelectors)}
		if sel.Labels == nil {
			sel.Labels = map[string]string{}
		}
		switch {
		case len(t.Selector.Namespaces) == 1 && t.Selector.Namespaces[0] != firstNS(spec.Selector):
			sel.Namespace = t.Selector.Namespaces[0]
		case len(t.Selector.Namespaces) > 1:
			sel.Namespaces = append([]string(nil), t.Selector.Namespaces...)
		}
		moreSelectors(sel, t.Selector)
		p.Selector = sel
		if t.Mode != v1alpha1.AllMode {
			p.Mode = string(t.Mode)
		}
		if t.Value != "" {
			v, err := strconv.Atoi(t.Value)
			if err != nil || v < 1 {
				m.fail("target.value", "value %q is not a whole number of at least 1", t.Value)
			}
			p.Value = v
		}
	}
	p.Device = spec.TargetDevice
	p.Hosts = append([]string(nil), spec.ExternalTargets...)
	return p
}

func firstNS(s v1alpha1.PodSelectorSpec) string {
	if len(s.Namespaces) > 0 {
		return s.Namespaces[0]
	}
	return ""
}

// direction is the direction to write: "" where it is faultline's default.
func direction(d v1alpha1.Direction, def string) string {
	if string(d) == def {
		return ""
	}
	return string(d)
}

// fault maps obj (defaulted) to a fault with the item's window.
func (m mapper) fault(obj client.Object) (schema.Fault, bool) {
	f := schema.Fault{Start: m.it.start, Duration: m.it.dur}
	switch o := obj.(type) {
	case *v1alpha1.NetworkChaos:
		m.network(&o.Spec, &f)
	case *v1alpha1.IOChaos:
		m.selector(o.Spec.PodSelector, &f)
		m.io(&o.Spec, &f)
	case *v1alpha1.StressChaos:
		m.selector(o.Spec.PodSelector, &f)
		m.stress(&o.Spec, &f)
	case *v1alpha1.TimeChaos:
		m.selector(o.Spec.PodSelector, &f)
		ts := &schema.TimeSkew{Offset: goDuration(o.Spec.TimeOffset), ContainerNames: o.Spec.ContainerNames}
		if !(len(o.Spec.ClockIds) == 1 && o.Spec.ClockIds[0] == "CLOCK_REALTIME") {
			ts.ClockIDs = o.Spec.ClockIds
		}
		f.TimeSkew = ts
	case *v1alpha1.PodChaos:
		m.selector(o.Spec.PodSelector, &f)
		switch o.Spec.Action {
		case v1alpha1.PodKillAction:
			f.PodKill = &schema.PodKill{GracePeriod: int(o.Spec.GracePeriod)}
		case v1alpha1.PodFailureAction:
			f.PodFailure = &schema.PodFailure{}
		case v1alpha1.ContainerKillAction:
			f.ContainerKill = &schema.ContainerKill{ContainerNames: o.Spec.ContainerNames}
		default:
			m.fail("action", "faultline has no fault kind for PodChaos action %q", o.Spec.Action)
			return f, false
		}
	case *v1alpha1.HTTPChaos:
		m.selector(o.Spec.PodSelector, &f)
		m.http(&o.Spec, &f)
	case *v1alpha1.DNSChaos:
		m.selector(o.Spec.PodSelector, &f)
		f.DNSFault = &schema.DNSFault{Action: string(o.Spec.Action), Patterns: o.Spec.DomainNamePatterns, ContainerNames: o.Spec.ContainerNames}
	default:
		m.fail("", "faultline has no fault kind for %T", obj)
		return f, false
	}
	return f, true
}

func (m mapper) network(spec *v1alpha1.NetworkChaosSpec, f *schema.Fault) {
	m.selector(spec.PodSelector, f)
	peer := m.peer(spec)
	tc := spec.TcParameter
	switch spec.Action {
	case v1alpha1.DelayAction:
		if tc.Delay == nil {
			m.fail("delay", "a delay NetworkChaos needs delay")
			return
		}
		f.NetworkDelay = &schema.NetworkDelay{Latency: goDuration(tc.Delay.Latency), Jitter: goDuration(tc.Delay.Jitter),
			Correlation: floatStr(tc.Delay.Correlation), Reorder: reorder(tc.Delay.Reorder),
			Direction: direction(spec.Direction, schema.DirectionTo), Peer: peer, Device: spec.Device}
	case v1alpha1.LossAction:
		if tc.Loss == nil {
			m.fail("loss", "a loss NetworkChaos needs loss")
			return
		}
		f.NetworkLoss = &schema.NetworkLoss{Loss: floatStr(tc.Loss.Loss), Correlation: floatStr(tc.Loss.Correlation),
			Direction: direction(spec.Direction, schema.DirectionTo), Peer: peer, Device: spec.Device}
	case v1alpha1.DuplicateAction:
		if tc.Duplicate == nil {
			m.fail("duplicate", "a duplicate NetworkChaos needs duplicate")
			return
		}
		f.NetworkDuplicate = &schema.NetworkDuplicate{Duplicate: floatStr(tc.Duplicate.Duplicate), Correlation: floatStr(tc.Duplicate.Correlation),
			Direction: direction(spec.Direction, schema.DirectionTo), Peer: peer, Device: spec.Device}
	case v1alpha1.CorruptAction:
		if tc.Corrupt == nil {
			m.fail("corrupt", "a corrupt NetworkChaos needs corrupt")
			return
		}
		f.NetworkCorrupt = &schema.NetworkCorrupt{Corrupt: floatStr(tc.Corrupt.Corrupt), Correlation: floatStr(tc.Corrupt.Correlation),
			Direction: direction(spec.Direction, schema.DirectionTo), Peer: peer, Device: spec.Device}
	case v1alpha1.BandwidthAction:
		if tc.Bandwidth == nil {
			m.fail("bandwidth", "a bandwidth NetworkChaos needs bandwidth")
			return
		}
		b := &schema.NetworkBandwidth{Rate: tc.Bandwidth.Rate, Limit: int(tc.Bandwidth.Limit), Buffer: int(tc.Bandwidth.Buffer),
			Direction: direction(spec.Direction, schema.DirectionTo), Peer: peer, Device: spec.Device}
		if tc.Bandwidth.Peakrate != nil {
			b.Peakrate = int(*tc.Bandwidth.Peakrate)
		}
		if tc.Bandwidth.Minburst != nil {
			b.Minburst = int(*tc.Bandwidth.Minburst)
		}
		f.NetworkBandwidth = b
	case v1alpha1.PartitionAction:
		// The direction is always written: faultline's default ("both")
		// differs from Chaos Mesh's ("to"), and vet notes a partition
		// that leaves it out.
		f.NetworkPartition = &schema.NetworkPartition{Direction: string(spec.Direction), Peer: peer, Device: spec.Device}
	case v1alpha1.NetemAction:
		ne := &schema.Netem{Direction: direction(spec.Direction, schema.DirectionTo), Peer: peer, Device: spec.Device}
		if x := tc.Delay; x != nil {
			ne.Delay = &schema.NetemDelay{Latency: goDuration(x.Latency), Jitter: goDuration(x.Jitter), Correlation: floatStr(x.Correlation), Reorder: reorder(x.Reorder)}
		}
		if x := tc.Loss; x != nil {
			ne.Loss = &schema.NetemLoss{Loss: floatStr(x.Loss), Correlation: floatStr(x.Correlation)}
		}
		if x := tc.Duplicate; x != nil {
			ne.Duplicate = &schema.NetemDuplicate{Duplicate: floatStr(x.Duplicate), Correlation: floatStr(x.Correlation)}
		}
		if x := tc.Corrupt; x != nil {
			ne.Corrupt = &schema.NetemCorrupt{Corrupt: floatStr(x.Corrupt), Correlation: floatStr(x.Correlation)}
		}
		if x := tc.Rate; x != nil {
			ne.Rate = x.Rate
		}
		f.Netem = ne
	default:
		m.fail("action", "faultline has no fault kind for NetworkChaos action %q", spec.Action)
	}
}

func (m mapper) io(spec *v1alpha1.IOChaosSpec, f *schema.Fault) {
	t := schema.IOTarget{VolumePath: spec.VolumePath, Path: spec.Path, ContainerNames: spec.ContainerNames}
	for i, me := range spec.Methods {
		if lower := strings.ToLower(string(me)); lower != string(me) {
			m.fail(fmt.Sprintf("methods[%d]", i), "method %q: faultline's IO methods are the FUSE call names in lower case; write %q if that is what is meant", me, lower)
		}
		t.Methods = append(t.Methods, string(me))
	}
	if spec.Percent != 100 {
		t.Percent = float64(spec.Percent)
	}
	switch spec.Action {
	case v1alpha1.IoLatency:
		f.IOLatency = &schema.IOLatency{IOTarget: t, Delay: goDuration(spec.Delay)}
	case v1alpha1.IoFaults:
		f.IOFault = &schema.IOFault{IOTarget: t, Errno: int(spec.Errno)}
	case v1alpha1.IoMistake:
		mi := &schema.IOMistake{IOTarget: t}
		if x := spec.Mistake; x != nil {
			mi.Filling, mi.MaxOccurrences, mi.MaxLength = string(x.Filling), int(x.MaxOccurrences), int(x.MaxLength)
		}
		f.IOMistake = mi
	case v1alpha1.IoAttrOverride:
		a := schema.IOAttr{}
		if at := spec.Attr; at != nil {
			if at.Perm != nil {
				a.Perm = ptr(int(*at.Perm))
			}
			if at.Size != nil {
				a.Size = ptr(int(*at.Size))
			}
			if at.Nlink != nil {
				a.NLink = ptr(int(*at.Nlink))
			}
			if at.UID != nil {
				a.UID = ptr(int(*at.UID))
			}
			if at.GID != nil {
				a.GID = ptr(int(*at.GID))
			}
		}
		f.IOAttrOverride = &schema.IOAttrOverride{IOTarget: t, Attr: a}
	default:
		m.fail("action", "faultline has no fault kind for IOChaos action %q", spec.Action)
	}
}

func ptr[T any](v T) *T { return &v }

func reorder(r *v1alpha1.ReorderSpec) *schema.Reorder {
	if r == nil {
		return nil
	}
	return &schema.Reorder{Reorder: floatStr(r.Reorder), Correlation: floatStr(r.Correlation), Gap: r.Gap}
}

func (m mapper) stress(spec *v1alpha1.StressChaosSpec, f *schema.Fault) {
	st := spec.Stressors
	if spec.StressngStressors != "" {
		if st != nil && (st.CPUStressor != nil || st.MemoryStressor != nil) {
			m.fail("stressngStressors", "a StressChaos with both stressngStressors and stressors is two faults in faultline (stressNG and cpuStress or memoryStress), which with mode %q may hit different pods: split it into two objects", spec.Mode)
			return
		}
		f.StressNG = &schema.StressNG{Stressors: spec.StressngStressors, ContainerNames: spec.ContainerNames}
		return
	}
	if st == nil || (st.CPUStressor == nil && st.MemoryStressor == nil) {
		m.fail("stressors", "faultline needs stressors.cpu, stressors.memory or stressngStressors")
		return
	}
	if st.CPUStressor != nil && st.MemoryStressor != nil {
		m.fail("stressors", "a StressChaos with both a cpu and a memory stressor is two faults in faultline (one kind each), which with mode %q may hit different pods: split it into two objects", spec.Mode)
		return
	}
	if c := st.CPUStressor; c != nil {
		cs := &schema.CPUStress{Workers: c.Workers, Options: c.Options, ContainerNames: spec.ContainerNames}
		if c.Load != nil && *c.Load != 100 {
			cs.Load = ptr(float64(*c.Load))
		}
		f.CPUStress = cs
	}
	if mm := st.MemoryStressor; mm != nil {
		f.MemoryStress = &schema.MemoryStress{Workers: mm.Workers, Size: memSize(mm.Size), OOMScoreAdj: mm.OOMScoreAdj,
			Options: mm.Options, ContainerNames: spec.ContainerNames}
	}
}

// memSize writes a Chaos Mesh memory size as faultline reads it. Chaos Mesh
// reads every unit as decimal ("1GiB" and "1GB" are both 10^9 bytes), so a
// binary unit becomes the decimal one; a bare byte count gets "B".
func memSize(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "%") {
		return t
	}
	for _, u := range []struct{ from, to string }{{"KiB", "KB"}, {"MiB", "MB"}, {"GiB", "GB"}, {"TiB", "TB"}} {
		if n, ok := strings.CutSuffix(t, u.from); ok {
			return n + u.to
		}
	}
	if _, err := strconv.ParseInt(t, 10, 64); err == nil {
		return t + "B"
	}
	return t
}

func (m mapper) http(spec *v1alpha1.HTTPChaosSpec, f *schema.Fault) {
	// Chaos Mesh's targets are "Request" and "Response".
	h := &schema.HTTPFault{Target: strings.ToLower(string(spec.Target)), Port: int(spec.Port)}
	if spec.Path != nil {
		h.Path = *spec.Path
	}
	if spec.Method != nil {
		h.Method = *spec.Method
	}
	if spec.Code != nil {
		h.Code = int(*spec.Code)
	}
	h.RequestHeaders = copyMap(spec.RequestHeaders)
	h.ResponseHeaders = copyMap(spec.ResponseHeaders)
	if spec.Abort != nil {
		h.Abort = *spec.Abort
	}
	if spec.Delay != nil {
		h.Delay = goDuration(*spec.Delay)
	}
	if r := spec.Replace; r != nil {
		rep := &schema.HTTPReplace{Headers: copyMap(r.Headers)}
		if r.Code != nil {
			rep.Code = int(*r.Code)
		}
		if r.Body != nil {
			rep.Body = ptr(string(r.Body))
		}
		if r.Path != nil {
			rep.Path = *r.Path
		}
		if r.Method != nil {
			rep.Method = *r.Method
		}
		rep.Queries = copyMap(r.Queries)
		h.Replace = rep
	}
	if p := spec.Patch; p != nil {
		pa := &schema.HTTPPatch{Queries: p.Queries, Headers: p.Headers}
		if p.Body != nil {
			pa.Body = &schema.HTTPPatchBody{Type: p.Body.Type, Value: p.Body.Value}
		}
		h.Patch = pa
	}
	if t := spec.TLS; t != nil {
		h.TLS = &schema.HTTPTLS{SecretName: t.SecretName, SecretNamespace: t.SecretNamespace, CertName: t.CertName, KeyName: t.KeyName}
		if t.CAName != nil {
			h.TLS.CAName = *t.CAName
		}
	}
	f.HTTPFault = h
}

// uniqueName makes fault names DNS-1123 labels, unique within the scenario.
func uniqueName(name string, used map[string]bool) string {
	base := nameFrom(strings.ReplaceAll(name, ".", "-"))
	if len(base) > 56 {
		base = strings.Trim(base[:56], "-")
	}
	n := base
	for i := 2; used[n]; i++ {
		n = fmt.Sprintf("%s-%d", base, i)
	}
	used[n] = true
	return n
}
