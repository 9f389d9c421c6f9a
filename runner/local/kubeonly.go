package local

import (
	"fmt"
	"strings"

	"faultline.dev/faultline/schema"
)

// kubernetesOnly lists the fields of a fault that only Chaos Mesh can act
// on: the local backend refuses such a fault up front rather than run it
// without them (a fault that silently did less than written would judge
// the wrong thing). nil when the fault has none.
func kubernetesOnly(f schema.Fault) error {
	var fields []string
	add := func(set bool, name string) {
		if set {
			fields = append(fields, name)
		}
	}
	if s := f.Selector; s != nil {
		add(len(s.Namespaces) > 0, "selector.namespaces")
		add(len(s.Pods) > 0, "selector.pods")
		add(len(s.ExpressionSelectors) > 0, "selector.expressionSelectors")
		add(len(s.AnnotationSelectors) > 0, "selector.annotationSelectors")
		add(len(s.FieldSelectors) > 0, "selector.fieldSelectors")
		add(len(s.PodPhaseSelectors) > 0, "selector.podPhaseSelectors")
		add(len(s.Nodes) > 0, "selector.nodes")
		add(len(s.NodeSelectors) > 0, "selector.nodeSelectors")
	}
	peer := func(kind string, p *schema.NetworkPeer) {
		if p == nil {
			return
		}
		add(p.Mode != "", kind+".peer.mode")
		add(p.Device != "", kind+".peer.device")
	}
	switch {
	case f.NetworkDelay != nil:
		add(f.NetworkDelay.Reorder != nil, "networkDelay.reorder")
		add(f.NetworkDelay.Device != "", "networkDelay.device")
		peer("networkDelay", f.NetworkDelay.Peer)
	case f.NetworkLoss != nil:
		add(f.NetworkLoss.Device != "", "networkLoss.device")
		peer("networkLoss", f.NetworkLoss.Peer)
	case f.NetworkBandwidth != nil:
		b := f.NetworkBandwidth
		add(b.Peakrate != 0, "networkBandwidth.peakrate")
		add(b.Minburst != 0, "networkBandwidth.minburst")
		add(b.Device != "", "networkBandwidth.device")
		peer("networkBandwidth", b.Peer)
	case f.NetworkPartition != nil:
		add(f.NetworkPartition.Device != "", "networkPartition.device")
		peer("networkPartition", f.NetworkPartition.Peer)
	case f.Netem != nil:
		// Delay, loss and rate run in the injector; these act on packets.
		ne := f.Netem
		add(ne.Duplicate != nil, "netem.duplicate")
		add(ne.Corrupt != nil, "netem.corrupt")
		add(ne.Delay != nil && ne.Delay.Reorder != nil, "netem.delay.reorder")
		add(ne.Device != "", "netem.device")
		peer("netem", ne.Peer)
	case f.IOMistake != nil:
		add(true, "ioMistake")
	case f.StressNG != nil:
		add(true, "stressNG")
	case f.CPUStress != nil:
		add(len(f.CPUStress.Options) > 0, "cpuStress.options")
	case f.MemoryStress != nil:
		add(len(f.MemoryStress.Options) > 0, "memoryStress.options")
		add(f.MemoryStress.OOMScoreAdj != 0, "memoryStress.oomScoreAdj")
	case f.HTTPFault != nil:
		// Header matching, patch and replace run in the engine's HTTP
		// middleware (runner/local/inject); TLS is the pod's own.
		add(f.HTTPFault.TLS != nil, "httpFault.tls")
	}
	if len(fields) == 0 {
		return nil
	}
	return fmt.Errorf("the local backend cannot act on %s (Chaos Mesh only): run it with --backend kubernetes, or remove them to run locally", strings.Join(fields, ", "))
}
