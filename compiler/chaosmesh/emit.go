package chaosmesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// APIVersion is the Chaos Mesh API every emitted object targets.
const APIVersion = "chaos-mesh.org/v1alpha1"

// Labels and annotations faultline puts on every object it emits.
const (
	LabelManagedBy        = "app.kubernetes.io/managed-by"
	ManagedByValue        = "faultline"
	LabelScenario         = "faultline.dev/scenario"
	LabelVersion          = "faultline.dev/version"
	LabelFault            = "faultline.dev/fault"
	AnnotationContentHash = "faultline.dev/content-hash"
	// AnnotationVersion carries the scenario's exact semver; the label holds
	// a sanitized form (a label value cannot hold "+build" metadata).
	AnnotationVersion = "faultline.dev/version"
)

// Chaos is the Chaos Mesh object of one fault.
type Chaos struct {
	// Fault is the fault's place on the timeline.
	Fault plan.Fault
	// Object is a *v1alpha1.NetworkChaos, *v1alpha1.IOChaos, ... with its
	// own duration, so it expires by itself.
	Object client.Object
	// Kind is the object's kind ("NetworkChaos").
	Kind string
	// templateType and spec are the same chaos as a Workflow template.
	templateType v1alpha1.TemplateType
	embed        *v1alpha1.EmbedChaos
}

// Manifests are the Chaos Mesh objects of one scenario.
type Manifests struct {
	// Chaos holds one object per fault, in plan order (plan.Fault.Index).
	Chaos []Chaos
	// Workflow is the whole timeline as one Workflow; nil when the scenario
	// has no faults.
	Workflow *v1alpha1.Workflow
}

// Finding is a problem found while compiling a scenario, at a field path
// of the scenario ("faults.jitter.selector"), so that the caller can point
// it at the user's file (schema.Loaded.Pos).
type Finding struct {
	Path    string
	Message string
	// Bug marks a finding that is faultline's fault, not the scenario's:
	// Chaos Mesh rejects an object faultline emitted.
	Bug bool
}

// ScenarioError lists the findings that stop a scenario from compiling.
type ScenarioError struct {
	Scenario string
	Findings []Finding
}

func (e *ScenarioError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s cannot be compiled to Chaos Mesh:", e.Scenario)
	for _, f := range e.Findings {
		b.WriteString("\n  ")
		if f.Path != "" {
			b.WriteString(f.Path)
			b.WriteString(": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// HasBug reports whether one of the findings is a faultline bug.
func (e *ScenarioError) HasBug() bool {
	for _, f := range e.Findings {
		if f.Bug {
			return true
		}
	}
	return false
}

// Emit builds the Chaos Mesh objects of a plan: one chaos object per fault
// (typed structs of the api module, each with its own duration) and the
// Workflow of the whole timeline. Problems of the scenario itself (no
// namespace to compile into, a value Chaos Mesh cannot express) come back
// as a *ScenarioError. Emit does not run Chaos Mesh's validation: see
// Manifests.Validate.
func Emit(p *plan.Plan) (*Manifests, error) {
	s := p.Source
	if s == nil {
		return nil, errors.New("chaosmesh: plan has no source scenario")
	}
	e := &emitter{p: p, s: s}
	m := &Manifests{}
	for _, pf := range p.Faults {
		c, ok := e.chaos(pf)
		if ok {
			m.Chaos = append(m.Chaos, c)
		}
	}
	if len(e.findings) > 0 {
		return nil, &ScenarioError{Scenario: s.Name, Findings: e.findings}
	}
	if len(m.Chaos) > 0 {
		m.Workflow = e.workflow(m.Chaos)
	}
	return m, nil
}

// Validate runs every object through Chaos Mesh's own rules (Validate). A
// rejected object is a faultline bug: the scenario passed faultline's
// checks, so the compiler emitted something wrong. Each rejection comes
// back as a Finding with Bug set, at the fault's path in the scenario.
func (m *Manifests) Validate(ctx context.Context, v *crd.Validator, scenario string) error {
	var findings []Finding
	for _, c := range m.Chaos {
		if err := Validate(ctx, v, c.Object); err != nil {
			findings = append(findings, bugFinding("faults."+c.Fault.Name, err))
		}
	}
	if m.Workflow != nil {
		if err := Validate(ctx, v, m.Workflow); err != nil {
			findings = append(findings, bugFinding(m.workflowPath(err), err))
		}
	}
	if len(findings) > 0 {
		return &ScenarioError{Scenario: scenario, Findings: findings}
	}
	return nil
}

func bugFinding(path string, err error) Finding {
	msg := err.Error()
	var ve *Error
	if errors.As(err, &ve) {
		var probs []string
		for _, p := range ve.Problems {
			probs = append(probs, p.String())
		}
		msg = fmt.Sprintf("Chaos Mesh rejects %s %s/%s: %s", ve.Kind, ve.Namespace, ve.Name, strings.Join(probs, "; "))
	}
	return Finding{Path: path, Bug: true,
		Message: "faultline bug: " + strings.TrimPrefix(msg, "chaosmesh: ") + " (the scenario is valid; please report this)"}
}

// workflowPath finds the fault a Workflow rejection is about: the first
// problem inside a fault's template names it; otherwise the scenario.
func (m *Manifests) workflowPath(err error) string {
	var ve *Error
	if !errors.As(err, &ve) {
		return ""
	}
	re := regexp.MustCompile(`^spec\.templates\[(\d+)\]`)
	for _, p := range ve.Problems {
		if sm := re.FindStringSubmatch(p.Path); sm != nil {
			i, _ := strconv.Atoi(sm[1])
			if i < len(m.Workflow.Spec.Templates) {
				if f := m.Workflow.Spec.Templates[i].Name; f != "" {
					for _, c := range m.Chaos {
						if strings.HasPrefix(f, trackName(c.Fault)) {
							return "faults." + c.Fault.Name
						}
					}
				}
			}
		}
	}
	return ""
}

type emitter struct {
	p        *plan.Plan
	s        *schema.Scenario
	findings []Finding
}

func (e *emitter) fail(path, format string, args ...any) {
	e.findings = append(e.findings, Finding{Path: path, Message: fmt.Sprintf(format, args...)})
}

// ObjectName is the name of a fault's object: "<scenario>-<NN>-<fault>", a
// DNS-1123 label of at most 63 characters (shortened with a hash if needed).
func ObjectName(scenario string, f plan.Fault) string {
	return ShortName(fmt.Sprintf("%s-%02d-%s", scenario, f.Index, f.Name))
}

// ShortName returns name if it has at most 63 characters, else its first
// characters, '-' and 8 hex digits of its sha256: still unique, still a
// DNS-1123 label.
func ShortName(name string) string {
	const maxLen, hashLen = 63, 8
	if len(name) <= maxLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	head := strings.TrimRight(name[:maxLen-hashLen-1], "-.")
	return head + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

var labelValueBad = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// LabelValue turns s into a valid Kubernetes label value: characters other
// than letters, digits, '.', '_' and '-' become '_' ("1.2.0+build.7" →
// "1.2.0_build.7"), at most 63 characters, starting and ending with a letter
// or digit.
func LabelValue(s string) string {
	v := labelValueBad.ReplaceAllString(s, "_")
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "._-")
}

func (e *emitter) meta(name, namespace string, fault string) metav1.ObjectMeta {
	labels := map[string]string{}
	for k, v := range e.s.Labels {
		labels[k] = v
	}
	labels[LabelManagedBy] = ManagedByValue
	labels[LabelScenario] = e.s.Name
	labels[LabelVersion] = LabelValue(e.s.Version)
	if fault != "" {
		labels[LabelFault] = fault
	}
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: namespace,
		Labels:    labels,
		Annotations: map[string]string{
			AnnotationContentHash: e.p.ContentHash,
			AnnotationVersion:     e.s.Version,
		},
	}
}

// namespace is where the objects go: the target's namespace.
func (e *emitter) namespace() string {
	if k := e.s.Target.Kubernetes; k != nil {
		return k.Namespace
	}
	return ""
}

// selector is the fault's pod selector: its own selector, else the target's.
func (e *emitter) selector(name string, f *schema.Fault) (v1alpha1.PodSelector, string, bool) {
	path := "faults." + name
	var ns string
	var labels map[string]string
	switch {
	case f.Selector != nil:
		ns, labels = f.Selector.Namespace, f.Selector.Labels
		if ns == "" {
			ns = e.namespace()
		}
		if ns == "" {
			e.fail(path+".selector.namespace",
				"fault %q has no namespace to compile into: set faults.%s.selector.namespace or target.kubernetes (namespace and selector)", name, name)
			return v1alpha1.PodSelector{}, "", false
		}
	case e.s.Target.Kubernetes != nil:
		ns, labels = e.s.Target.Kubernetes.Namespace, e.s.Target.Kubernetes.Selector
	default:
		e.fail(path,
			"fault %q has no pods to act on: Chaos Mesh needs a namespace and a label selector; set target.kubernetes {namespace, selector} or faults.%s.selector {namespace, labels}", name, name)
		return v1alpha1.PodSelector{}, "", false
	}
	mode := f.Mode
	if mode == "" {
		mode = schema.ModeOne
	}
	ps := v1alpha1.PodSelector{
		Selector: v1alpha1.PodSelectorSpec{GenericSelectorSpec: v1alpha1.GenericSelectorSpec{
			Namespaces:     []string{ns},
			LabelSelectors: copyMap(labels),
		}},
		Mode: v1alpha1.SelectorMode(mode),
	}
	if f.Selector != nil {
		moreSelectors(&ps.Selector, f.Selector)
	}
	switch mode {
	case schema.ModeFixed, schema.ModeFixedPercent, schema.ModeRandomMaxPercent:
		ps.Value = strconv.Itoa(f.Value)
	}
	objNS := e.namespace()
	if objNS == "" {
		objNS = ns
	}
	return ps, objNS, true
}

// moreSelectors copies a selector's fields beyond namespace and labels.
func moreSelectors(out *v1alpha1.PodSelectorSpec, s *schema.Selector) {
	if len(s.Namespaces) > 0 {
		out.Namespaces = append([]string(nil), s.Namespaces...)
	}
	if len(s.Pods) > 0 {
		out.Pods = make(map[string][]string, len(s.Pods))
		for ns, names := range s.Pods {
			out.Pods[ns] = append([]string(nil), names...)
		}
	}
	for _, r := range s.ExpressionSelectors {
		out.ExpressionSelectors = append(out.ExpressionSelectors, metav1.LabelSelectorRequirement{
			Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator), Values: append([]string(nil), r.Values...)})
	}
	out.AnnotationSelectors = copyMap(s.AnnotationSelectors)
	out.FieldSelectors = copyMap(s.FieldSelectors)
	out.PodPhaseSelectors = append([]string(nil), s.PodPhaseSelectors...)
	out.Nodes = append([]string(nil), s.Nodes...)
	out.NodeSelectors = copyMap(s.NodeSelectors)
	if len(out.PodPhaseSelectors) == 0 {
		out.PodPhaseSelectors = nil
	}
	if len(out.Nodes) == 0 {
		out.Nodes = nil
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// percent writes a percentage as Chaos Mesh's tc parameters want it: a
// decimal string without a '%' ("25", "0.5").
func percent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func durStr(d schema.Duration) string { return d.String() }

func ref[T any](v T) *T { return &v }

// wholePercent is a percentage Chaos Mesh takes as an integer.
func (e *emitter) wholePercent(path string, v float64) (int, bool) {
	if v != math.Trunc(v) {
		e.fail(path, "Chaos Mesh takes a whole percentage here; %s is not: round it", percent(v))
		return 0, false
	}
	return int(v), true
}

func (e *emitter) uint32Field(path string, v int) (uint32, bool) {
	if v < 0 || v > math.MaxUint32 {
		e.fail(path, "Chaos Mesh takes a 32-bit unsigned value here; %d is out of range", v)
		return 0, false
	}
	return uint32(v), true
}

// chaos builds the object of one fault.
func (e *emitter) chaos(pf plan.Fault) (Chaos, bool) {
	f := e.s.Faults[pf.Name]
	path := "faults." + pf.Name
	ps, ns, ok := e.selector(pf.Name, &f)
	if !ok {
		return Chaos{}, false
	}
	meta := e.meta(ObjectName(e.s.Name, pf), ns, pf.Name)
	dur := ref(durStr(f.Duration))
	if f.Instant() {
		// A one-shot fault written with just start: Chaos Mesh's
		// pod-kill and container-kill need no duration. Its Workflow node
		// keeps a deadline (the judged window, End-Start), after which
		// Chaos Mesh deletes the object, so that the track ends.
		dur = nil
	}
	nFindings := len(e.findings)
	c := Chaos{Fault: pf, embed: &v1alpha1.EmbedChaos{}}

	switch {
	case f.NetworkDelay != nil:
		d := f.NetworkDelay
		spec := e.network(path+".networkDelay", ps, v1alpha1.DelayAction, d.Direction, d.Peer)
		spec.Device = d.Device
		spec.TcParameter.Delay = &v1alpha1.DelaySpec{
			Latency:     durStr(d.Latency),
			Jitter:      durStr(d.Jitter),
			Correlation: percent(d.Correlation),
			Reorder:     reorder(d.Reorder),
		}
		c.setNetwork(meta, spec, dur)
	case f.NetworkLoss != nil:
		d := f.NetworkLoss
		spec := e.network(path+".networkLoss", ps, v1alpha1.LossAction, d.Direction, d.Peer)
		spec.Device = d.Device
		spec.TcParameter.Loss = &v1alpha1.LossSpec{Loss: percent(d.Loss), Correlation: percent(d.Correlation)}
		c.setNetwork(meta, spec, dur)
	case f.NetworkDuplicate != nil:
		d := f.NetworkDuplicate
		spec := e.network(path+".networkDuplicate", ps, v1alpha1.DuplicateAction, d.Direction, d.Peer)
		spec.Device = d.Device
		spec.TcParameter.Duplicate = &v1alpha1.DuplicateSpec{Duplicate: percent(d.Duplicate), Correlation: percent(d.Correlation)}
		c.setNetwork(meta, spec, dur)
	case f.NetworkCorrupt != nil:
		d := f.NetworkCorrupt
		spec := e.network(path+".networkCorrupt", ps, v1alpha1.CorruptAction, d.Direction, d.Peer)
		spec.Device = d.Device
		spec.TcParameter.Corrupt = &v1alpha1.CorruptSpec{Corrupt: percent(d.Corrupt), Correlation: percent(d.Correlation)}
		c.setNetwork(meta, spec, dur)
	case f.NetworkBandwidth != nil:
		d := f.NetworkBandwidth
		bp := path + ".networkBandwidth"
		spec := e.network(bp, ps, v1alpha1.BandwidthAction, d.Direction, d.Peer)
		limit, _ := e.uint32Field(bp+".limit", d.Limit)
		buffer, _ := e.uint32Field(bp+".buffer", d.Buffer)
		spec.Device = d.Device
		spec.TcParameter.Bandwidth = &v1alpha1.BandwidthSpec{Rate: d.Rate, Limit: limit, Buffer: buffer}
		if d.Peakrate != 0 {
			spec.TcParameter.Bandwidth.Peakrate = ref(uint64(d.Peakrate))
		}
		if d.Minburst != 0 {
			if v, ok := e.uint32Field(bp+".minburst", d.Minburst); ok {
				spec.TcParameter.Bandwidth.Minburst = &v
			}
		}
		c.setNetwork(meta, spec, dur)
	case f.NetworkPartition != nil:
		d := f.NetworkPartition
		dir := d.Direction
		if dir == "" {
			dir = schema.DirectionBoth
		}
		spec := e.network(path+".networkPartition", ps, v1alpha1.PartitionAction, dir, d.Peer)
		spec.Device = d.Device
		c.setNetwork(meta, spec, dur)
	case f.Netem != nil:
		d := f.Netem
		spec := e.network(path+".netem", ps, v1alpha1.NetemAction, d.Direction, d.Peer)
		spec.Device = d.Device
		if x := d.Delay; x != nil {
			spec.TcParameter.Delay = &v1alpha1.DelaySpec{Latency: durStr(x.Latency), Jitter: durStr(x.Jitter),
				Correlation: percent(x.Correlation), Reorder: reorder(x.Reorder)}
		}
		if x := d.Loss; x != nil {
			spec.TcParameter.Loss = &v1alpha1.LossSpec{Loss: percent(x.Loss), Correlation: percent(x.Correlation)}
		}
		if x := d.Duplicate; x != nil {
			spec.TcParameter.Duplicate = &v1alpha1.DuplicateSpec{Duplicate: percent(x.Duplicate), Correlation: percent(x.Correlation)}
		}
		if x := d.Corrupt; x != nil {
			spec.TcParameter.Corrupt = &v1alpha1.CorruptSpec{Corrupt: percent(x.Corrupt), Correlation: percent(x.Correlation)}
		}
		if d.Rate != "" {
			spec.TcParameter.Rate = &v1alpha1.RateSpec{Rate: d.Rate}
		}
		c.setNetwork(meta, spec, dur)
	case f.IOLatency != nil:
		d := f.IOLatency
		spec := e.io(path+".ioLatency", ps, v1alpha1.IoLatency, d.IOTarget)
		spec.Delay = durStr(d.Delay)
		c.setIO(meta, spec, dur)
	case f.IOFault != nil:
		d := f.IOFault
		spec := e.io(path+".ioFault", ps, v1alpha1.IoFaults, d.IOTarget)
		spec.Errno = uint32(d.Errno)
		c.setIO(meta, spec, dur)
	case f.IOMistake != nil:
		d := f.IOMistake
		spec := e.io(path+".ioMistake", ps, v1alpha1.IoMistake, d.IOTarget)
		spec.Mistake = &v1alpha1.MistakeSpec{Filling: v1alpha1.FillingType(d.Filling),
			MaxOccurrences: int64(d.MaxOccurrences), MaxLength: int64(d.MaxLength)}
		c.setIO(meta, spec, dur)
	case f.IOAttrOverride != nil:
		d := f.IOAttrOverride
		ap := path + ".ioAttrOverride.attr"
		spec := e.io(path+".ioAttrOverride", ps, v1alpha1.IoAttrOverride, d.IOTarget)
		attr := &v1alpha1.AttrOverrideSpec{}
		if d.Attr.Perm != nil {
			attr.Perm = ref(uint16(*d.Attr.Perm))
		}
		if d.Attr.Size != nil {
			attr.Size = ref(uint64(*d.Attr.Size))
		}
		if d.Attr.NLink != nil {
			if v, ok := e.uint32Field(ap+".nlink", *d.Attr.NLink); ok {
				attr.Nlink = &v
			}
		}
		if d.Attr.UID != nil {
			if v, ok := e.uint32Field(ap+".uid", *d.Attr.UID); ok {
				attr.UID = &v
			}
		}
		if d.Attr.GID != nil {
			if v, ok := e.uint32Field(ap+".gid", *d.Attr.GID); ok {
				attr.GID = &v
			}
		}
		if *attr == (v1alpha1.AttrOverrideSpec{}) {
			e.fail(ap, "attr overrides nothing: set at least one of perm, size, nlink, uid, gid")
		}
		spec.Attr = attr
		c.setIO(meta, spec, dur)
	case f.TimeSkew != nil:
		d := f.TimeSkew
		clocks := d.ClockIDs
		if len(clocks) == 0 {
			clocks = []string{"CLOCK_REALTIME"}
		}
		spec := v1alpha1.TimeChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: d.ContainerNames},
			TimeOffset:        durStr(d.Offset),
			ClockIds:          clocks,
		}
		c.Kind, c.templateType = "TimeChaos", v1alpha1.TypeTimeChaos
		spec.Duration = dur
		c.Object = &v1alpha1.TimeChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
		ws := spec
		ws.Duration = nil
		c.embed.TimeChaos = &ws
	case f.CPUStress != nil:
		d := f.CPUStress
		load := 100
		if d.Load != nil {
			load, _ = e.wholePercent(path+".cpuStress.load", *d.Load)
		}
		spec := v1alpha1.StressChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: d.ContainerNames},
			Stressors: &v1alpha1.Stressors{CPUStressor: &v1alpha1.CPUStressor{
				Stressor: v1alpha1.Stressor{Workers: d.Workers}, Load: &load,
				Options: append([]string(nil), d.Options...),
			}},
		}
		c.setStress(meta, spec, dur)
	case f.MemoryStress != nil:
		d := f.MemoryStress
		spec := v1alpha1.StressChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: d.ContainerNames},
			Stressors: &v1alpha1.Stressors{MemoryStressor: &v1alpha1.MemoryStressor{
				Stressor: v1alpha1.Stressor{Workers: d.Workers}, Size: e.memSize(path+".memoryStress.size", d.Size),
				OOMScoreAdj: d.OOMScoreAdj, Options: append([]string(nil), d.Options...),
			}},
		}
		c.setStress(meta, spec, dur)
	case f.StressNG != nil:
		d := f.StressNG
		spec := v1alpha1.StressChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: d.ContainerNames},
			StressngStressors: d.Stressors,
		}
		c.setStress(meta, spec, dur)
	case f.PodKill != nil:
		spec := v1alpha1.PodChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps},
			Action:            v1alpha1.PodKillAction,
			GracePeriod:       int64(f.PodKill.GracePeriod),
		}
		c.setPod(meta, spec, dur)
	case f.PodFailure != nil:
		spec := v1alpha1.PodChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps},
			Action:            v1alpha1.PodFailureAction,
		}
		c.setPod(meta, spec, dur)
	case f.ContainerKill != nil:
		spec := v1alpha1.PodChaosSpec{
			ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: f.ContainerKill.ContainerNames},
			Action:            v1alpha1.ContainerKillAction,
		}
		c.setPod(meta, spec, dur)
	case f.HTTPFault != nil:
		c.setHTTP(meta, e.http(path+".httpFault", ps, ns, f.HTTPFault), dur)
	case f.DNSFault != nil:
		d := f.DNSFault
		spec := v1alpha1.DNSChaosSpec{
			Action:             v1alpha1.DNSChaosAction(d.Action),
			ContainerSelector:  v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: d.ContainerNames},
			DomainNamePatterns: d.Patterns,
		}
		c.Kind, c.templateType = "DNSChaos", v1alpha1.TypeDNSChaos
		spec.Duration = dur
		c.Object = &v1alpha1.DNSChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
		ws := spec
		ws.Duration = nil
		c.embed.DNSChaos = &ws
	case f.GRPCFault != nil:
		e.fail(path+".grpcFault", "Chaos Mesh has no gRPC fault (its HTTPChaos reads HTTP/1.x, not gRPC's HTTP/2), so this fault cannot run on a cluster: run the scenario with --backend local, or use a network fault (networkDelay, networkPartition) on the service's pods")
		return Chaos{}, false
	default:
		e.fail(path, "fault %q has no kind block faultline can compile to Chaos Mesh", pf.Name)
		return Chaos{}, false
	}
	return c, len(e.findings) == nFindings
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: APIVersion, Kind: kind}
}

// network builds the common part of a NetworkChaos: direction and peer
// (a pod selector becomes `target`, hosts become `externalTargets`).
func (e *emitter) network(path string, ps v1alpha1.PodSelector, action v1alpha1.NetworkChaosAction, dir string, peer *schema.NetworkPeer) v1alpha1.NetworkChaosSpec {
	if dir == "" {
		dir = schema.DirectionTo
	}
	spec := v1alpha1.NetworkChaosSpec{PodSelector: ps, Action: action, Direction: v1alpha1.Direction(dir)}
	if peer != nil {
		if peer.Selector != nil {
			ns := peer.Selector.Namespace
			if ns == "" {
				ns = ps.Selector.Namespaces[0]
			}
			mode := peer.Mode
			if mode == "" {
				mode = schema.ModeAll
			}
			spec.Target = &v1alpha1.PodSelector{
				Selector: v1alpha1.PodSelectorSpec{GenericSelectorSpec: v1alpha1.GenericSelectorSpec{
					Namespaces:     []string{ns},
					LabelSelectors: copyMap(peer.Selector.Labels),
				}},
				Mode: v1alpha1.SelectorMode(mode),
			}
			switch mode {
			case schema.ModeFixed, schema.ModeFixedPercent, schema.ModeRandomMaxPercent:
				spec.Target.Value = strconv.Itoa(peer.Value)
			}
			moreSelectors(&spec.Target.Selector, peer.Selector)
			spec.TargetDevice = peer.Device
		}
		if len(peer.Hosts) > 0 {
			spec.ExternalTargets = append([]string(nil), peer.Hosts...)
		}
	}
	if action == v1alpha1.PartitionAction {
		// The webhook accepts a partition in any direction, with or without
		// a peer; Chaos Mesh's partition cuts the traffic the direction names.
		return spec
	}
	if dir != schema.DirectionTo {
		if spec.Target == nil {
			e.fail(path+".direction", "Chaos Mesh applies direction %q only with a peer selector (peer.selector): set it, or use direction \"to\"", dir)
		} else if spec.ExternalTargets != nil {
			e.fail(path+".direction", "Chaos Mesh cannot combine direction %q with peer.hosts: use direction \"to\" for hosts", dir)
		}
	}
	return spec
}

func reorder(r *schema.Reorder) *v1alpha1.ReorderSpec {
	if r == nil {
		return nil
	}
	return &v1alpha1.ReorderSpec{Reorder: percent(r.Reorder), Correlation: percent(r.Correlation), Gap: r.Gap}
}

func (e *emitter) io(path string, ps v1alpha1.PodSelector, action v1alpha1.IOChaosType, t schema.IOTarget) v1alpha1.IOChaosSpec {
	pct := 100
	if t.Percent != 0 {
		pct, _ = e.wholePercent(path+".percent", t.Percent)
	}
	var methods []v1alpha1.IoMethod
	for _, m := range t.Methods {
		methods = append(methods, v1alpha1.IoMethod(m))
	}
	return v1alpha1.IOChaosSpec{
		ContainerSelector: v1alpha1.ContainerSelector{PodSelector: ps, ContainerNames: t.ContainerNames},
		Action:            action,
		VolumePath:        t.VolumePath,
		Path:              t.Path,
		Methods:           methods,
		Percent:           pct,
	}
}

// memSize writes a memory size for Chaos Mesh. Chaos Mesh reads sizes with
// go-units' FromHumanSize, where every unit is decimal ("1GiB" = 10^9): the
// decimal units and percentages pass as written; binary units are written
// as their exact byte count so that "1GiB" keeps meaning 2^30 bytes.
func (e *emitter) memSize(path, s string) string {
	if strings.HasSuffix(s, "%") || !strings.Contains(s, "iB") {
		return s
	}
	n, err := schema.Size(s).Bytes()
	if err != nil {
		e.fail(path, "%v", err)
		return s
	}
	return strconv.FormatInt(n, 10)
}

func (e *emitter) http(path string, ps v1alpha1.PodSelector, ns string, h *schema.HTTPFault) v1alpha1.HTTPChaosSpec {
	spec := v1alpha1.HTTPChaosSpec{PodSelector: ps, Port: int32(h.Port)}
	switch h.Target {
	case "request":
		spec.Target = v1alpha1.PodHttpRequest
	case "response":
		spec.Target = v1alpha1.PodHttpResponse
	}
	if h.Path != "" {
		spec.Path = ref(h.Path)
	}
	if h.Method != "" {
		spec.Method = ref(h.Method)
	}
	if h.Code != 0 {
		if h.Target != "response" {
			e.fail(path+".code", "code selects responses by status: it needs target \"response\"")
		}
		spec.Code = ref(int32(h.Code))
	}
	spec.RequestHeaders = copyMap(h.RequestHeaders)
	spec.ResponseHeaders = copyMap(h.ResponseHeaders)
	if h.Abort {
		spec.Abort = ref(true)
	}
	if h.Delay != 0 {
		spec.Delay = ref(durStr(h.Delay))
	}
	if r := h.Replace; r != nil {
		rep := &v1alpha1.PodHttpChaosReplaceActions{}
		if r.Code != 0 {
			if h.Target != "response" {
				e.fail(path+".replace.code", "replace.code rewrites the response status: it needs target \"response\"")
			}
			rep.Code = ref(int32(r.Code))
		}
		if r.Body != nil {
			rep.Body = []byte(*r.Body)
		}
		rep.Headers = copyMap(r.Headers)
		if r.Path != "" {
			rep.Path = ref(r.Path)
		}
		if r.Method != "" {
			rep.Method = ref(r.Method)
		}
		rep.Queries = copyMap(r.Queries)
		spec.Replace = rep
	}
	if p := h.Patch; p != nil {
		pa := &v1alpha1.PodHttpChaosPatchActions{}
		if p.Body != nil {
			pa.Body = &v1alpha1.PodHttpChaosPatchBodyAction{Type: p.Body.Type, Value: p.Body.Value}
		}
		for _, q := range p.Queries {
			pa.Queries = append(pa.Queries, append([]string(nil), q...))
		}
		for _, hd := range p.Headers {
			pa.Headers = append(pa.Headers, append([]string(nil), hd...))
		}
		spec.Patch = pa
	}
	if t := h.TLS; t != nil {
		// The Secret's namespace defaults to the object's own.
		tls := &v1alpha1.PodHttpChaosTLS{SecretName: t.SecretName, SecretNamespace: t.SecretNamespace, CertName: t.CertName, KeyName: t.KeyName}
		if tls.SecretNamespace == "" {
			tls.SecretNamespace = ns
		}
		if t.CAName != "" {
			tls.CAName = ref(t.CAName)
		}
		spec.TLS = tls
	}
	if spec.Abort == nil && spec.Delay == nil && spec.Replace == nil && spec.Patch == nil {
		e.fail(path, "the HTTP fault does nothing: set abort, delay, replace or patch")
	}
	return spec
}

func (c *Chaos) setNetwork(meta metav1.ObjectMeta, spec v1alpha1.NetworkChaosSpec, dur *string) {
	c.Kind, c.templateType = "NetworkChaos", v1alpha1.TypeNetworkChaos
	ws := spec
	c.embed.NetworkChaos = &ws
	spec.Duration = dur
	c.Object = &v1alpha1.NetworkChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
}

func (c *Chaos) setIO(meta metav1.ObjectMeta, spec v1alpha1.IOChaosSpec, dur *string) {
	c.Kind, c.templateType = "IOChaos", v1alpha1.TypeIOChaos
	ws := spec
	c.embed.IOChaos = &ws
	spec.Duration = dur
	c.Object = &v1alpha1.IOChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
}

func (c *Chaos) setStress(meta metav1.ObjectMeta, spec v1alpha1.StressChaosSpec, dur *string) {
	c.Kind, c.templateType = "StressChaos", v1alpha1.TypeStressChaos
	ws := spec
	c.embed.StressChaos = &ws
	spec.Duration = dur
	c.Object = &v1alpha1.StressChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
}

// setPod sets a PodChaos. pod-kill and container-kill are one-shot in Chaos
// Mesh (IsOneShot): injected once, nothing to recover; their duration only
// says when the object counts as finished. A fault written with a duration
// keeps it, so that the object carries the window it is judged in; one
// written with just start (schema.Fault.Instant) has none (dur is nil).
func (c *Chaos) setPod(meta metav1.ObjectMeta, spec v1alpha1.PodChaosSpec, dur *string) {
	c.Kind, c.templateType = "PodChaos", v1alpha1.TypePodChaos
	ws := spec
	c.embed.PodChaos = &ws
	spec.Duration = dur
	c.Object = &v1alpha1.PodChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
}

func (c *Chaos) setHTTP(meta metav1.ObjectMeta, spec v1alpha1.HTTPChaosSpec, dur *string) {
	c.Kind, c.templateType = "HTTPChaos", v1alpha1.TypeHTTPChaos
	ws := spec
	c.embed.HTTPChaos = &ws
	spec.Duration = dur
	c.Object = &v1alpha1.HTTPChaos{TypeMeta: typeMeta(c.Kind), ObjectMeta: meta, Spec: spec}
}

// Workflow template names.
const (
	TemplateRoot        = "timeline"
	TemplateHealthCheck = "health-check"
)

func trackName(f plan.Fault) string { return ShortName(fmt.Sprintf("%02d-%s", f.Index, f.Name)) }

// ChaosTemplateName is the name of a fault's chaos template in the Workflow (Chaos Mesh names
// the WorkflowNode that runs it after it: spec.templateName).
func ChaosTemplateName(f plan.Fault) string { return ShortName(trackName(f) + "-chaos") }

// workflow is the timeline as one Workflow: a Parallel root with one Serial
// track per fault (a Suspend for the offset, then the chaos node with the
// fault's duration as its deadline), plus a continuous HTTP StatusCheck that
// aborts the Workflow when the scenario has guardrails.healthCheck.
func (e *emitter) workflow(chaos []Chaos) *v1alpha1.Workflow {
	root := v1alpha1.Template{Name: TemplateRoot, Type: v1alpha1.TypeParallel}
	var templates []v1alpha1.Template
	for _, c := range chaos {
		track := trackName(c.Fault)
		serial := v1alpha1.Template{Name: track, Type: v1alpha1.TypeSerial}
		var steps []v1alpha1.Template
		if c.Fault.Start > 0 {
			steps = append(steps, v1alpha1.Template{
				Name:     ShortName(track + "-wait"),
				Type:     v1alpha1.TypeSuspend,
				Deadline: ref(durStr(c.Fault.Start)),
			})
		}
		steps = append(steps, v1alpha1.Template{
			Name:       ChaosTemplateName(c.Fault),
			Type:       c.templateType,
			Deadline:   ref(durStr(c.Fault.End - c.Fault.Start)),
			EmbedChaos: c.embed,
		})
		for _, s := range steps {
			serial.Children = append(serial.Children, s.Name)
		}
		root.Children = append(root.Children, track)
		templates = append(templates, serial)
		templates = append(templates, steps...)
	}
	if g := e.s.Guardrails; g != nil && g.HealthCheck != nil {
		hc := g.HealthCheck
		status := hc.Status
		if status == 0 {
			status = 200
		}
		threshold := hc.FailureThreshold
		if threshold == 0 {
			threshold = 3
		}
		root.Children = append(root.Children, TemplateHealthCheck)
		templates = append(templates, v1alpha1.Template{
			Name:                 TemplateHealthCheck,
			Type:                 v1alpha1.TypeStatusCheck,
			Deadline:             ref(durStr(e.p.LoadEnd)),
			AbortWithStatusCheck: true,
			StatusCheck: &v1alpha1.StatusCheckSpec{
				Mode:             v1alpha1.StatusCheckContinuous,
				Type:             v1alpha1.TypeHTTP,
				IntervalSeconds:  seconds(hc.Interval),
				TimeoutSeconds:   seconds(hc.Timeout),
				FailureThreshold: threshold,
				SuccessThreshold: 1,
				EmbedStatusCheck: &v1alpha1.EmbedStatusCheck{HTTPStatusCheck: &v1alpha1.HTTPStatusCheck{
					RequestUrl:    hc.URL,
					RequestMethod: v1alpha1.MethodGet,
					Criteria:      v1alpha1.HTTPCriteria{StatusCode: strconv.Itoa(status)},
				}},
			},
		})
	}
	wf := &v1alpha1.Workflow{
		TypeMeta:   typeMeta(v1alpha1.KindWorkflow),
		ObjectMeta: e.meta(ShortName(e.s.Name), chaos[0].Object.GetNamespace(), ""),
		Spec: v1alpha1.WorkflowSpec{
			Entry:     TemplateRoot,
			Templates: append([]v1alpha1.Template{root}, templates...),
		},
	}
	return wf
}

// seconds is a duration in whole seconds for a StatusCheck, rounded up, at
// least 1 (the default of an unset interval or timeout).
func seconds(d schema.Duration) int {
	if d <= 0 {
		return 1
	}
	return int((d.Std() + time.Second - 1) / time.Second)
}

// Marshal writes an object as YAML, deterministically (keys sorted), without
// the noise of an object that was never on a cluster: no status, no
// creationTimestamp: null.
func Marshal(obj client.Object) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep big integers exact
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", obj, err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		if md["creationTimestamp"] == nil {
			delete(md, "creationTimestamp")
		}
	}
	data, err = json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	return yaml.JSONToYAML(data)
}

// FileName is the file of a fault's object under chaos/: "<NN>-<fault>.yaml".
func FileName(f plan.Fault) string { return fmt.Sprintf("%02d-%s.yaml", f.Index, f.Name) }
