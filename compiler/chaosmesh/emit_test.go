package chaosmesh

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"k8s.io/apimachinery/pkg/util/validation"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

func dur(s string) schema.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return schema.Duration(d)
}

func scenario(faults map[string]schema.Fault) *schema.Scenario {
	return &schema.Scenario{
		Name:    "checkout",
		Version: "1.2.3+build.9",
		Target: schema.Target{
			URL:        "http://checkout.shop.svc:8080",
			Kubernetes: &schema.KubernetesTarget{Namespace: "shop", Selector: map[string]string{"app": "checkout"}},
		},
		Load: schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: dur("5m"),
			Requests: []schema.Request{{Path: "/"}}},
		Faults: faults,
	}
}

func emit(t *testing.T, s *schema.Scenario) *Manifests {
	t.Helper()
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Emit(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(context.Background(), validator, s.Name); err != nil {
		t.Fatalf("Chaos Mesh rejects the emitted objects: %v", err)
	}
	return m
}

var validator = crd.NewValidator()

// TestEmitKinds checks the field-by-field mapping of each kind on the
// typed object (the golden files of package compiler show all of it).
func TestEmitKinds(t *testing.T) {
	f := func(start, d string) schema.Fault { return schema.Fault{Start: dur(start), Duration: dur(d)} }
	load := 80.0
	tests := []struct {
		name  string
		fault func(schema.Fault) schema.Fault
		check func(t *testing.T, obj any)
	}{
		{"delay", func(x schema.Fault) schema.Fault {
			x.NetworkDelay = &schema.NetworkDelay{Latency: dur("200ms")}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.NetworkChaos)
			d := o.Spec.Delay
			if o.Spec.Action != v1.DelayAction || d.Latency != "200ms" || d.Correlation != "0" || d.Jitter != "0s" || o.Spec.Direction != v1.To {
				t.Errorf("delay = %+v, direction %q", d, o.Spec.Direction)
			}
		}},
		{"loss", func(x schema.Fault) schema.Fault {
			x.NetworkLoss = &schema.NetworkLoss{Loss: 12.5, Correlation: 25, Peer: &schema.NetworkPeer{Hosts: []string{"10.0.0.0/8"}}}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.NetworkChaos)
			if o.Spec.Loss.Loss != "12.5" || o.Spec.Loss.Correlation != "25" || len(o.Spec.ExternalTargets) != 1 {
				t.Errorf("loss = %+v, external %v", o.Spec.Loss, o.Spec.ExternalTargets)
			}
		}},
		{"partition-peer", func(x schema.Fault) schema.Fault {
			x.NetworkPartition = &schema.NetworkPartition{Peer: &schema.NetworkPeer{Selector: &schema.Selector{Labels: map[string]string{"app": "db"}}}}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.NetworkChaos)
			if o.Spec.Action != v1.PartitionAction || o.Spec.Direction != v1.Both || o.Spec.Target == nil ||
				o.Spec.Target.Selector.Namespaces[0] != "shop" || o.Spec.Target.Selector.LabelSelectors["app"] != "db" {
				t.Errorf("partition = %+v", o.Spec)
			}
		}},
		{"cpu", func(x schema.Fault) schema.Fault {
			x.CPUStress = &schema.CPUStress{Workers: 4, Load: &load}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.StressChaos)
			c := o.Spec.Stressors.CPUStressor
			if c.Workers != 4 || *c.Load != 80 {
				t.Errorf("cpu = %+v", c)
			}
		}},
		{"memory-binary-size", func(x schema.Fault) schema.Fault {
			x.MemoryStress = &schema.MemoryStress{Workers: 1, Size: "256MiB"}
			return x
		}, func(t *testing.T, obj any) {
			if got := obj.(*v1.StressChaos).Spec.Stressors.MemoryStressor.Size; got != "268435456" {
				t.Errorf("size = %q, want the exact bytes of 256MiB", got)
			}
		}},
		{"pod-kill", func(x schema.Fault) schema.Fault {
			x.PodKill = &schema.PodKill{GracePeriod: 5}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.PodChaos)
			if o.Spec.Action != v1.PodKillAction || o.Spec.GracePeriod != 5 || !o.IsOneShot() {
				t.Errorf("pod-kill = %+v", o.Spec)
			}
		}},
		{"time", func(x schema.Fault) schema.Fault {
			x.TimeSkew = &schema.TimeSkew{Offset: dur("-5m")}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.TimeChaos)
			if o.Spec.TimeOffset != "-5m" || len(o.Spec.ClockIds) != 1 || o.Spec.ClockIds[0] != "CLOCK_REALTIME" {
				t.Errorf("time = %+v", o.Spec)
			}
		}},
		{"io-fault", func(x schema.Fault) schema.Fault {
			x.IOFault = &schema.IOFault{IOTarget: schema.IOTarget{VolumePath: "/data", Percent: 30}, Errno: 5}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.IOChaos)
			if o.Spec.Action != v1.IoFaults || o.Spec.Errno != 5 || o.Spec.Percent != 30 || o.Spec.VolumePath != "/data" {
				t.Errorf("io = %+v", o.Spec)
			}
		}},
		{"http", func(x schema.Fault) schema.Fault {
			x.HTTPFault = &schema.HTTPFault{Target: "request", Port: 8080, Abort: true}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.HTTPChaos)
			if o.Spec.Target != v1.PodHttpRequest || o.Spec.Port != 8080 || o.Spec.Abort == nil || !*o.Spec.Abort {
				t.Errorf("http = %+v", o.Spec)
			}
		}},
		{"dns", func(x schema.Fault) schema.Fault {
			x.DNSFault = &schema.DNSFault{Action: "error", Patterns: []string{"payments.*"}}
			return x
		}, func(t *testing.T, obj any) {
			o := obj.(*v1.DNSChaos)
			if o.Spec.Action != v1.ErrorAction || o.Spec.DomainNamePatterns[0] != "payments.*" {
				t.Errorf("dns = %+v", o.Spec)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := emit(t, scenario(map[string]schema.Fault{"f": tt.fault(f("30s", "1m"))}))
			c := m.Chaos[0]
			tt.check(t, c.Object)
			md := c.Object.GetLabels()
			if md[LabelManagedBy] != "faultline" || md[LabelScenario] != "checkout" || md[LabelVersion] != "1.2.3_build.9" || md[LabelFault] != "f" {
				t.Errorf("labels = %v", md)
			}
			if c.Object.GetName() != "checkout-01-f" || c.Object.GetNamespace() != "shop" {
				t.Errorf("name = %s/%s", c.Object.GetNamespace(), c.Object.GetName())
			}
			if got := chaosDuration(c.Object); got != "1m" {
				t.Errorf("duration = %q, want the fault's 1m", got)
			}
		})
	}
}

func chaosDuration(obj any) string {
	switch o := obj.(type) {
	case *v1.NetworkChaos:
		return *o.Spec.Duration
	case *v1.StressChaos:
		return *o.Spec.Duration
	case *v1.PodChaos:
		return *o.Spec.Duration
	case *v1.TimeChaos:
		return *o.Spec.Duration
	case *v1.IOChaos:
		return *o.Spec.Duration
	case *v1.HTTPChaos:
		return *o.Spec.Duration
	case *v1.DNSChaos:
		return *o.Spec.Duration
	}
	return ""
}

// TestWorkflowTimeline: a Parallel root, a Serial per fault, a Suspend only
// for a non-zero offset, every chaos node with a deadline and no duration,
// and the health check when the scenario has one.
func TestWorkflowTimeline(t *testing.T) {
	s := scenario(map[string]schema.Fault{
		"now":   {Start: 0, Duration: dur("30s"), PodFailure: &schema.PodFailure{}},
		"later": {Start: dur("1m"), Duration: dur("45s"), NetworkDelay: &schema.NetworkDelay{Latency: dur("10ms")}},
	})
	s.Guardrails = &schema.Guardrails{HealthCheck: &schema.HealthCheck{URL: "http://checkout/healthz"}}
	m := emit(t, s)
	wf := m.Workflow
	byName := map[string]v1.Template{}
	for _, tmpl := range wf.Spec.Templates {
		byName[tmpl.Name] = tmpl
	}
	root := byName[wf.Spec.Entry]
	if root.Type != v1.TypeParallel || strings.Join(root.Children, ",") != "01-now,02-later,health-check" {
		t.Fatalf("root = %+v", root)
	}
	if c := byName["01-now"].Children; len(c) != 1 || c[0] != "01-now-chaos" {
		t.Errorf("a fault at 0 has a Suspend: %v", c)
	}
	if c := byName["02-later"].Children; len(c) != 2 || byName[c[0]].Type != v1.TypeSuspend || *byName[c[0]].Deadline != "1m" {
		t.Errorf("later track = %v", c)
	}
	for _, tmpl := range wf.Spec.Templates {
		if v1.IsChaosTemplateType(tmpl.Type) {
			if tmpl.Deadline == nil || *tmpl.Deadline == "" {
				t.Errorf("chaos node %s has no deadline", tmpl.Name)
			}
			spawned, _ := tmpl.EmbedChaos.SpawnNewObject(tmpl.Type)
			if d, _ := spawned.(interface {
				GetDuration() (*time.Duration, error)
			}); d != nil {
				if got, _ := d.GetDuration(); got != nil {
					t.Errorf("chaos node %s has a duration", tmpl.Name)
				}
			}
		}
	}
	if *byName["02-later-chaos"].Deadline != "45s" {
		t.Errorf("deadline = %s", *byName["02-later-chaos"].Deadline)
	}
	hc := byName[TemplateHealthCheck]
	if hc.Type != v1.TypeStatusCheck || !hc.AbortWithStatusCheck || *hc.Deadline != "5m" ||
		hc.StatusCheck.HTTPStatusCheck.Criteria.StatusCode != "200" || hc.StatusCheck.FailureThreshold != 3 {
		t.Errorf("health check = %+v", hc)
	}
}

func TestNoNamespace(t *testing.T) {
	s := scenario(map[string]schema.Fault{"jitter": {Duration: dur("1m"), NetworkDelay: &schema.NetworkDelay{Latency: dur("10ms")}}})
	s.Target.Kubernetes = nil
	p, _ := plan.New(s)
	_, err := Emit(p)
	var se *ScenarioError
	if !errors.As(err, &se) || se.HasBug() || se.Findings[0].Path != "faults.jitter" ||
		!strings.Contains(se.Findings[0].Message, "target.kubernetes") {
		t.Fatalf("err = %v", err)
	}
}

// TestRejectionIsABug: an object Chaos Mesh rejects is reported as a
// faultline bug at the fault's path.
func TestRejectionIsABug(t *testing.T) {
	s := scenario(map[string]schema.Fault{"bw": {Duration: dur("1m"),
		NetworkBandwidth: &schema.NetworkBandwidth{Rate: "fast", Limit: 1, Buffer: 1}}})
	p, _ := plan.New(s)
	m, err := Emit(p)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Validate(context.Background(), validator, s.Name)
	var se *ScenarioError
	if !errors.As(err, &se) || !se.HasBug() || se.Findings[0].Path != "faults.bw" ||
		!strings.Contains(se.Findings[0].Message, "faultline bug: Chaos Mesh rejects NetworkChaos shop/checkout-01-bw") {
		t.Fatalf("err = %v", err)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("a", 40)
	n := ObjectName(long, plan.Fault{Index: 7, Name: long})
	if len(n) > 63 || len(validation.IsDNS1123Label(n)) > 0 {
		t.Errorf("ObjectName = %q (%d chars): %v", n, len(n), validation.IsDNS1123Label(n))
	}
	if n2 := ObjectName(long, plan.Fault{Index: 7, Name: long + "b"}); n2 == n {
		t.Errorf("two long names shorten to the same %q", n)
	}
	if got := ObjectName("s", plan.Fault{Index: 3, Name: "f"}); got != "s-03-f" {
		t.Errorf("ObjectName = %q", got)
	}
	for in, want := range map[string]string{
		"1.2.0":              "1.2.0",
		"1.2.0+build.7":      "1.2.0_build.7",
		"1.0.0-rc.1+exp.sha": "1.0.0-rc.1_exp.sha",
	} {
		if got := LabelValue(in); got != want || len(validation.IsValidLabelValue(got)) > 0 {
			t.Errorf("LabelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarshalDropsNoise(t *testing.T) {
	m := emit(t, scenario(map[string]schema.Fault{"k": {Duration: dur("1m"), PodKill: &schema.PodKill{}}}))
	for _, obj := range []any{m.Chaos[0].Object, m.Workflow} {
		var data []byte
		var err error
		switch o := obj.(type) {
		case *v1.PodChaos:
			data, err = Marshal(o)
		case *v1.Workflow:
			data, err = Marshal(o)
		}
		if err != nil {
			t.Fatal(err)
		}
		if s := string(data); strings.Contains(s, "status") || strings.Contains(s, "creationTimestamp") {
			t.Errorf("noise in\n%s", s)
		}
	}
}
