package schema

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
)

func ptr[T any](v T) *T { return &v }

// fullScenario sets every field of the Go types, so that the round trip
// exercises the whole mirror.
func fullScenario() Scenario {
	sel := &Selector{Namespace: "shop", Labels: map[string]string{"app": "payments"}}
	peer := &NetworkPeer{Selector: sel, Hosts: []string{"10.0.0.0/8"}}
	io := IOTarget{VolumePath: "/data", Path: "/data/**/*.db", Methods: []string{"read", "write"}, Percent: 50, ContainerNames: []string{"app"}}
	ms := Duration(1e6)
	s := Scenario{
		Name: "full", Version: "1.2.3-rc.1+b5", Description: "every field", Owner: "team-shop",
		Labels: map[string]string{"tier": "critical"},
		Target: Target{
			URL:        "http://127.0.0.1:8080",
			Kubernetes: &KubernetesTarget{Namespace: "shop", Selector: map[string]string{"app": "checkout"}},
			GRPC:       "127.0.0.1:9090", GRPCTLS: true, Protos: &Protos{Files: []string{"protos/shop.proto"}, ImportPaths: []string{"protos"}},
			Metrics: "http://127.0.0.1:8080/metrics",
			Local:   &LocalTarget{Command: []string{"faultline", "demo-target"}, Env: map[string]string{"GOMAXPROCS": "2"}, Port: 8080, Readiness: "/healthz"},
		},
		Load: Load{
			Executor: RampingArrivalRate, StartRate: ptr(0), TimeUnit: Duration(1e9),
			Stages:          []Stage{{Duration: Duration(30e9), Target: 50}, {Duration: Duration(90e9), Target: 50}},
			PreAllocatedVUs: 10, MaxVUs: 50, GracefulStop: ptr(Duration(5e9)), Parallelism: 2,
			Requests: []Request{{Name: "checkout", Method: "POST", Path: "/checkout?x=1", Headers: map[string]string{"Content-Type": "application/json"},
				Body: ptr(`{"sku":"a"}`), Weight: 3, Expect: &Expect{Status: 200, BodyContains: []string{"ok"}}},
				{Name: "grpc-checkout", GRPC: &GRPCCall{Method: "shop.v1.Shop/Checkout", Message: map[string]any{"sku": "a", "qty": 2.0},
					Metadata: map[string]string{"x-team": "shop"}}, Weight: 1, Expect: &Expect{GRPCStatus: ptr(GRPCStatus("NOT_FOUND"))}},
				{GRPC: &GRPCCall{Method: "Health/Check"}, Expect: &Expect{GRPCStatus: ptr(GRPCStatus("14"))}}},
		},
		Faults: map[string]Fault{
			"delay":     {Start: Duration(10e9), Duration: Duration(10e9), Mode: ModeFixedPercent, Value: 50, Selector: sel, NetworkDelay: &NetworkDelay{Latency: Duration(500e6), Jitter: Duration(100e6), Correlation: 25, Direction: DirectionTo, Peer: peer}},
			"loss":      {Start: Duration(10e9), Duration: Duration(10e9), NetworkLoss: &NetworkLoss{Loss: 15, Correlation: 30, Direction: DirectionBoth, Peer: peer}},
			"dup":       {Start: Duration(10e9), Duration: Duration(10e9), NetworkDuplicate: &NetworkDuplicate{Duplicate: 5, Correlation: 1, Direction: DirectionFrom, Peer: peer}},
			"corrupt":   {Start: Duration(10e9), Duration: Duration(10e9), NetworkCorrupt: &NetworkCorrupt{Corrupt: 5, Correlation: 1, Direction: DirectionTo, Peer: peer}},
			"bandwidth": {Start: Duration(10e9), Duration: Duration(10e9), NetworkBandwidth: &NetworkBandwidth{Rate: "1mbps", Limit: 20000, Buffer: 10000, Direction: DirectionTo, Peer: peer}},
			"partition": {Start: Duration(10e9), Duration: Duration(10e9), NetworkPartition: &NetworkPartition{Direction: DirectionBoth, Peer: peer}},
			"iolat":     {Start: Duration(10e9), Duration: Duration(10e9), IOLatency: &IOLatency{IOTarget: io, Delay: Duration(100e6)}},
			"ioerr":     {Start: Duration(10e9), Duration: Duration(10e9), IOFault: &IOFault{IOTarget: io, Errno: 5}},
			"ioattr":    {Start: Duration(10e9), Duration: Duration(10e9), IOAttrOverride: &IOAttrOverride{IOTarget: io, Attr: IOAttr{Perm: ptr(0o444), Size: ptr(0), NLink: ptr(1), UID: ptr(0), GID: ptr(0)}}},
			"skew":      {Start: Duration(10e9), Duration: Duration(10e9), TimeSkew: &TimeSkew{Offset: Duration(-5 * 60e9), ClockIDs: []string{"CLOCK_REALTIME"}, ContainerNames: []string{"app"}}},
			"cpu":       {Start: Duration(10e9), Duration: Duration(10e9), Mode: ModeAll, CPUStress: &CPUStress{Workers: 2, Load: ptr(80.0), ContainerNames: []string{"app"}}},
			"mem":       {Start: Duration(10e9), Duration: Duration(10e9), Mode: ModeFixed, Value: 1, MemoryStress: &MemoryStress{Workers: 1, Size: "256MB", ContainerNames: []string{"app"}}},
			"kill":      {Start: Duration(10e9), Duration: Duration(10e9), Mode: ModeRandomMaxPercent, Value: 20, PodKill: &PodKill{GracePeriod: 5}},
			"fail":      {Start: Duration(10e9), Duration: Duration(10e9), PodFailure: &PodFailure{}},
			"ckill":     {Start: Duration(10e9), Duration: Duration(10e9), ContainerKill: &ContainerKill{ContainerNames: []string{"app"}}},
			"http":      {Start: Duration(10e9), Duration: Duration(10e9), HTTPFault: &HTTPFault{Target: "response", Port: 8080, Path: "/pay*", Method: "POST", Code: 200, Abort: true, Delay: Duration(1e9), Replace: &HTTPReplace{Code: 503, Body: ptr("busy"), Headers: map[string]string{"Retry-After": "1"}}}},
			"grpc":      {Start: Duration(10e9), Duration: Duration(10e9), GRPCFault: &GRPCFault{Target: "response", Method: "faultline.demo.v1.Shop/*", Abort: ptr(GRPCStatus("UNAVAILABLE")), Delay: Duration(1e9)}},
			"netem": {Start: Duration(10e9), Duration: Duration(10e9), Netem: &Netem{Delay: &NetemDelay{Latency: Duration(10e6), Jitter: Duration(1e6), Correlation: 5, Reorder: &Reorder{Reorder: 25, Correlation: 10, Gap: 5}},
				Loss: &NetemLoss{Loss: 5, Correlation: 1}, Duplicate: &NetemDuplicate{Duplicate: 1, Correlation: 1}, Corrupt: &NetemCorrupt{Corrupt: 1, Correlation: 1},
				Rate: "1mbps", Direction: DirectionTo, Peer: &NetworkPeer{Selector: sel, Mode: ModeFixed, Value: 2, Device: "eth1"}, Device: "eth0"}},
			"reorder": {Start: Duration(10e9), Duration: Duration(10e9), NetworkDelay: &NetworkDelay{Latency: Duration(10e6), Reorder: &Reorder{Reorder: 50}, Device: "eth0"}},
			"tbf":     {Start: Duration(10e9), Duration: Duration(10e9), NetworkBandwidth: &NetworkBandwidth{Rate: "1mbps", Limit: 20000, Buffer: 10000, Peakrate: 2000000, Minburst: 1500}},
			"mistake": {Start: Duration(10e9), Duration: Duration(10e9), IOMistake: &IOMistake{IOTarget: io, Filling: "zero", MaxOccurrences: 1, MaxLength: 10}},
			"cpuopts": {Start: Duration(10e9), Duration: Duration(10e9), CPUStress: &CPUStress{Workers: 1, Options: []string{"--cpu-method=matrixprod"}}},
			"memopts": {Start: Duration(10e9), Duration: Duration(10e9), MemoryStress: &MemoryStress{Workers: 1, Size: "1GB", OOMScoreAdj: -1000, Options: []string{"--vm-keep"}}},
			"ng":      {Start: Duration(10e9), Duration: Duration(10e9), StressNG: &StressNG{Stressors: "--io 2 --hdd 1", ContainerNames: []string{"app"}}},
			"selectors": {Start: Duration(10e9), Duration: Duration(10e9), PodFailure: &PodFailure{}, Selector: &Selector{Namespace: "shop", Labels: map[string]string{},
				Pods: map[string][]string{"shop": {"checkout-0"}}, ExpressionSelectors: []LabelRequirement{{Key: "tier", Operator: "In", Values: []string{"web"}}, {Key: "canary", Operator: "DoesNotExist"}},
				AnnotationSelectors: map[string]string{"team": "shop"}, FieldSelectors: map[string]string{"spec.nodeName": "node-1"}, PodPhaseSelectors: []string{"Running"},
				Nodes: []string{"node-1"}, NodeSelectors: map[string]string{"zone": "a"}}},
			"httpmore": {Start: Duration(10e9), Duration: Duration(10e9), HTTPFault: &HTTPFault{Target: "request", Port: 8080, RequestHeaders: map[string]string{"X-Canary": "1"},
				Replace: &HTTPReplace{Path: "/v2", Method: "PUT", Queries: map[string]string{"a": "b"}},
				Patch:   &HTTPPatch{Body: &HTTPPatchBody{Type: "JSON", Value: `{"x":1}`}, Queries: [][]string{{"debug", "1"}}, Headers: [][]string{{"X-Chaos", "yes"}}}}},
			"dns": {Start: Duration(10e9), Duration: Duration(10e9), DNSFault: &DNSFault{Action: "error", Patterns: []string{"payments.*"}, ContainerNames: []string{"app"}}},
		},
		SLOs: &SLOs{
			Steady: &PhaseSLO{Latency: &LatencySLO{P50: ms, P90: ms, P95: ms, P99: ms, Avg: ms, Max: ms}, ErrorRate: ptr(1.0), Checks: ptr(99.0), Throughput: ptr(40.0),
				Goroutines: &GaugeSLO{Max: 500, OverSteady: ptr(10.0)}, HeapInUse: &HeapSLO{Max: "256MB", OverSteady: ptr(20.0)},
				GCPause: &GCPauseSLO{P99: ms, Max: ms}, SchedLatency: &SchedLatSLO{P99: ms}, AbortOnBreach: true},
			Fault:    &PhaseSLO{ErrorRate: ptr(5.0)},
			Recovery: &RecoverySLO{PhaseSLO: PhaseSLO{ErrorRate: ptr(1.0)}, Within: Duration(20e9)},
		},
		Baseline: &Baseline{Default: &Tolerance{Relative: ptr(15.0), Absolute: ptr(1.0)},
			Steady: map[string]Tolerance{"p99": {Relative: ptr(10.0)}}, Fault: map[string]Tolerance{"errorRate": {Absolute: ptr(2.0)}},
			Recovery: map[string]Tolerance{"goroutines": {Relative: ptr(5.0)}}},
		Guardrails: &Guardrails{AllowedNamespaces: []string{"shop"}, MaxBlastRadius: 50,
			HealthCheck: &HealthCheck{URL: "http://127.0.0.1:8080/healthz", Status: 200, Interval: Duration(1e9), Timeout: Duration(1e9), FailureThreshold: 3}},
	}
	return s
}

// TestRoundTrip: a Go value with every field set, encoded into CUE, unifies
// with #Scenario and validates; decoding it back gives the same value.
func TestRoundTrip(t *testing.T) {
	l := NewLoader()
	want := fullScenario()
	v := l.ctx.Encode(want)
	u := v.Unify(l.embeddedDef())
	if err := u.Validate(cue.Concrete(true), cue.Hidden(true)); err != nil {
		t.Fatalf("a full Go scenario does not validate against #Scenario:\n%v", cueDiagnostics(err, posFinder{}, nil, "full", "go"))
	}
	var got Scenario
	if err := u.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the scenario:\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
	}
	// And a broken Go value is refused: the mirror cannot be laxer than the schema.
	bad := fullScenario()
	bad.Faults["loss"].NetworkLoss.Loss = 150
	if err := l.ctx.Encode(bad).Unify(l.embeddedDef()).Validate(cue.Concrete(true), cue.Hidden(true)); err == nil {
		t.Error("loss 150 validated")
	}
}

// TestGoTypesMirrorSchema walks #Scenario and the Go types side by side:
// every CUE field has a Go field with the same JSON name and vice versa.
func TestGoTypesMirrorSchema(t *testing.T) {
	def := NewLoader().embeddedDef()
	var problems []string
	compare(def, reflect.TypeOf(Scenario{}), "#Scenario", &problems)
	if len(problems) > 0 {
		t.Errorf("Go types and CUE schema differ:\n%s", strings.Join(problems, "\n"))
	}
}

func compare(v cue.Value, typ reflect.Type, path string, problems *[]string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Map:
		// A map's element is the CUE pattern constraint's value.
		if elem := v.LookupPath(cue.MakePath(cue.AnyString)); elem.Exists() {
			compare(elem, typ.Elem(), path+".*", problems)
		}
		return
	case reflect.Slice:
		if elem := v.LookupPath(cue.MakePath(cue.AnyIndex)); elem.Exists() {
			compare(elem, typ.Elem(), path+"[]", problems)
		}
		return
	case reflect.Struct:
	default:
		return
	}
	if typ.Name() == "Duration" || typ.Name() == "Size" {
		return
	}
	goFields := map[string]reflect.Type{}
	collectFields(typ, goFields)
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		*problems = append(*problems, path+": "+err.Error())
		return
	}
	var cueFields []string
	for it.Next() {
		if it.Selector().LabelType() != cue.StringLabel {
			continue
		}
		name := it.Selector().Unquoted()
		cueFields = append(cueFields, name)
		ft, ok := goFields[name]
		if !ok {
			*problems = append(*problems, path+"."+name+": in the CUE schema, not in the Go type "+typ.Name())
			continue
		}
		compare(it.Value(), ft, path+"."+name, problems)
	}
	for name := range goFields {
		if !slices.Contains(cueFields, name) {
			*problems = append(*problems, path+"."+name+": in the Go type "+typ.Name()+", not in the CUE schema")
		}
	}
}

func collectFields(typ reflect.Type, out map[string]reflect.Type) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Anonymous {
			collectFields(f.Type, out)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = f.Type
		}
	}
}
