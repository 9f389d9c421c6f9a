package chaosmesh

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
)

func ptr[T any](v T) *T { return &v }

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: "shop",
		Labels: map[string]string{
			"faultline.dev/scenario": "checkout-jitter",
			"faultline.dev/version":  "1.2.0",
		},
	}
}

func pods() v1.PodSelector {
	return v1.PodSelector{
		Mode: v1.AllMode,
		Selector: v1.PodSelectorSpec{GenericSelectorSpec: v1.GenericSelectorSpec{
			LabelSelectors: map[string]string{"app": "checkout"},
		}},
	}
}

func containers() v1.ContainerSelector { return v1.ContainerSelector{PodSelector: pods()} }

func networkDelay() *v1.NetworkChaos {
	return &v1.NetworkChaos{
		ObjectMeta: meta("checkout-jitter-delay"),
		Spec: v1.NetworkChaosSpec{
			PodSelector: pods(),
			Action:      v1.DelayAction,
			Direction:   v1.To,
			TcParameter: v1.TcParameter{Delay: &v1.DelaySpec{
				Latency: "100ms", Jitter: "20ms", Correlation: "25",
			}},
			Duration: ptr("2m"),
		},
	}
}

func networkLoss() *v1.NetworkChaos {
	return &v1.NetworkChaos{
		ObjectMeta: meta("checkout-loss"),
		Spec: v1.NetworkChaosSpec{
			PodSelector: pods(),
			Action:      v1.LossAction,
			TcParameter: v1.TcParameter{Loss: &v1.LossSpec{Loss: "25", Correlation: "0"}},
			Duration:    ptr("1m"),
		},
	}
}

func ioLatency() *v1.IOChaos {
	return &v1.IOChaos{
		ObjectMeta: meta("checkout-io"),
		Spec: v1.IOChaosSpec{
			ContainerSelector: containers(),
			Action:            v1.IoLatency,
			Delay:             "50ms",
			Path:              "/data/**",
			Percent:           50,
			VolumePath:        "/data",
			Duration:          ptr("90s"),
		},
	}
}

func timeSkew() *v1.TimeChaos {
	return &v1.TimeChaos{
		ObjectMeta: meta("checkout-clock"),
		Spec: v1.TimeChaosSpec{
			ContainerSelector: containers(),
			TimeOffset:        "-10m",
			ClockIds:          []string{"CLOCK_REALTIME"},
			Duration:          ptr("1m"),
		},
	}
}

func stress() *v1.StressChaos {
	return &v1.StressChaos{
		ObjectMeta: meta("checkout-stress"),
		Spec: v1.StressChaosSpec{
			ContainerSelector: containers(),
			Stressors: &v1.Stressors{
				CPUStressor:    &v1.CPUStressor{Stressor: v1.Stressor{Workers: 2}, Load: ptr(80)},
				MemoryStressor: &v1.MemoryStressor{Stressor: v1.Stressor{Workers: 1}, Size: "256MB"},
			},
			Duration: ptr("1m"),
		},
	}
}

func podKill() *v1.PodChaos {
	return &v1.PodChaos{
		ObjectMeta: meta("checkout-kill"),
		Spec: v1.PodChaosSpec{
			ContainerSelector: v1.ContainerSelector{PodSelector: v1.PodSelector{
				Mode: v1.OneMode, Selector: pods().Selector,
			}},
			Action:   v1.PodKillAction,
			Duration: ptr("30s"),
		},
	}
}

func httpDelay() *v1.HTTPChaos {
	return &v1.HTTPChaos{
		ObjectMeta: meta("checkout-http"),
		Spec: v1.HTTPChaosSpec{
			PodSelector:         pods(),
			Target:              v1.PodHttpRequest,
			PodHttpChaosActions: v1.PodHttpChaosActions{Delay: ptr("200ms")},
			Port:                8080,
			Path:                ptr("/api/*"),
			Method:              ptr("GET"),
			Duration:            ptr("1m"),
		},
	}
}

func dnsError() *v1.DNSChaos {
	return &v1.DNSChaos{
		ObjectMeta: meta("checkout-dns"),
		Spec: v1.DNSChaosSpec{
			Action:             v1.ErrorAction,
			ContainerSelector:  containers(),
			DomainNamePatterns: []string{"payments.*.svc.cluster.local"},
			Duration:           ptr("1m"),
		},
	}
}

// workflow is the timeline as a Workflow: steady (Suspend), then a delay chaos
// node bounded by its deadline.
func workflow() *v1.Workflow {
	delay := networkDelay().Spec
	delay.Duration = nil // chaos nodes use deadline, not duration
	return &v1.Workflow{
		ObjectMeta: meta("checkout-jitter"),
		Spec: v1.WorkflowSpec{
			Entry: "entry",
			Templates: []v1.Template{
				{Name: "entry", Type: v1.TypeSerial, Children: []string{"steady", "delay"}},
				{Name: "steady", Type: v1.TypeSuspend, Deadline: ptr("30s")},
				{Name: "delay", Type: v1.TypeNetworkChaos, Deadline: ptr("2m"),
					EmbedChaos: &v1.EmbedChaos{NetworkChaos: &delay}},
			},
		},
	}
}

func TestValidateAcceptsValidObjects(t *testing.T) {
	v := crd.NewValidator()
	for _, obj := range []client.Object{
		networkDelay(), networkLoss(), ioLatency(), timeSkew(), stress(), podKill(), httpDelay(), dnsError(), workflow(),
		// Default fills an unset delay correlation ("0") before ValidateCreate.
		func() client.Object { o := networkDelay(); o.Spec.Delay.Correlation = ""; return o }(),
		// apiVersion and kind may be set, as long as they match.
		func() client.Object {
			o := podKill()
			o.TypeMeta = metav1.TypeMeta{APIVersion: "chaos-mesh.org/v1alpha1", Kind: "PodChaos"}
			return o
		}(),
	} {
		t.Run(fmt.Sprintf("%T/%s", obj, obj.GetName()), func(t *testing.T) {
			before := obj.DeepCopyObject()
			if err := Validate(context.Background(), v, obj); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !reflect.DeepEqual(before, obj) {
				t.Errorf("Validate changed its argument")
			}
		})
	}
}

// want is one expected problem: its path, its source and a part of its message.
type want struct {
	path   string
	source Source
	msg    string
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name string
		obj  client.Object
		want []want // exactly these problems, in this order
	}{
		{
			name: "NetworkChaos latency is not a duration",
			obj:  func() client.Object { o := networkDelay(); o.Spec.Delay.Latency = "fast"; return o }(),
			want: []want{
				{"spec.delay.latency", SourceWebhook, `Invalid value: "fast": parse duration field error`},
				{"spec.delay.latency", SourceCRDSchema, `should match '^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$'`},
			},
		},
		{
			name: "NetworkChaos mode is not in the enum (only the CRD knows)",
			obj:  func() client.Object { o := networkDelay(); o.Spec.Mode = "most"; return o }(),
			want: []want{
				{"spec.mode", SourceCRDSchema, `Unsupported value: "most": supported values: "one", "all", "fixed", "fixed-percent", "random-max-percent"`},
			},
		},
		{
			name: "NetworkChaos correlation and percentages with a percent sign",
			obj: func() client.Object {
				o := networkLoss()
				o.Spec.Loss.Loss = "50%"
				o.Spec.Loss.Correlation = "high"
				return o
			}(),
			want: []want{
				{"spec.loss.correlation", SourceWebhook, `Invalid value: "high": parse correlation field error`},
				{"spec.loss.loss", SourceWebhook, `Invalid value: "50%"`},
			},
		},
		{
			name: "NetworkChaos duration is not a duration",
			obj:  func() client.Object { o := networkDelay(); o.Spec.Duration = ptr("two minutes"); return o }(),
			want: []want{
				{"spec.duration", SourceWebhook, `Invalid value: "two minutes"`},
			},
		},
		{
			name: "IOChaos delay is not a duration, percent out of range",
			obj: func() client.Object {
				o := ioLatency()
				o.Spec.Delay = "soon"
				o.Spec.Percent = 150
				return o
			}(),
			want: []want{
				{"spec.delay", SourceWebhook, `Invalid value: "soon"`},
				{"spec.percent", SourceWebhook, `Invalid value: 150`},
			},
		},
		{
			name: "IOChaos action unknown",
			obj:  func() client.Object { o := ioLatency(); o.Spec.Action = "slow"; return o }(),
			want: []want{
				{"spec.action", SourceCRDSchema, `Unsupported value: "slow": supported values: "latency", "fault", "attrOverride", "mistake"`},
			},
		},
		{
			name: "TimeChaos offset is not a duration",
			obj:  func() client.Object { o := timeSkew(); o.Spec.TimeOffset = "yesterday"; return o }(),
			want: []want{
				{"spec.timeOffset", SourceWebhook, `Invalid value: "yesterday"`},
			},
		},
		{
			name: "StressChaos without stressors",
			obj: func() client.Object {
				o := stress()
				o.Spec.Stressors = &v1.Stressors{}
				return o
			}(),
			want: []want{
				{"spec.stressors", SourceWebhook, `missing stressors`},
			},
		},
		{
			name: "StressChaos cpu load above 100",
			obj:  func() client.Object { o := stress(); o.Spec.Stressors.CPUStressor.Load = ptr(150); return o }(),
			want: []want{
				{"spec.stressors.cpu.load", SourceCRDSchema, `should be less than or equal to 100`},
			},
		},
		{
			name: "PodChaos action unknown",
			obj:  func() client.Object { o := podKill(); o.Spec.Action = "pod-explode"; return o }(),
			want: []want{
				{"spec.action", SourceCRDSchema, `Unsupported value: "pod-explode": supported values: "pod-kill", "pod-failure", "container-kill"`},
			},
		},
		{
			name: "PodChaos fixed mode with a value that is not a number",
			obj: func() client.Object {
				o := podKill()
				o.Spec.Mode, o.Spec.Value = v1.FixedMode, "some"
				return o
			}(),
			// The webhook reports this twice (ContainerSelector and the
			// PodSelector inside it); Validate lists it once.
			want: []want{
				{"spec.value", SourceWebhook, `Invalid value: "some"`},
			},
		},
		{
			name: "HTTPChaos target unknown, delay not a duration",
			obj: func() client.Object {
				o := httpDelay()
				o.Spec.Target = "Both"
				o.Spec.Delay = ptr("slow")
				return o
			}(),
			want: []want{
				{"spec.delay", SourceWebhook, `Invalid value: "slow"`},
				{"spec.target", SourceWebhook, `target Both is not supported`},
				{"spec.target", SourceCRDSchema, `Unsupported value: "Both": supported values: "Request", "Response"`},
			},
		},
		{
			name: "DNSChaos action unknown",
			obj:  func() client.Object { o := dnsError(); o.Spec.Action = "timeout"; return o }(),
			want: []want{
				{"spec.action", SourceCRDSchema, `Unsupported value: "timeout": supported values: "error", "random"`},
			},
		},
		{
			name: "no namespace",
			obj:  func() client.Object { o := podKill(); o.Namespace = ""; return o }(),
			want: []want{
				{"metadata.namespace", SourceObjectMeta, `Required value`},
			},
		},
		{
			name: "a label value that is not a label value (semver build metadata)",
			obj:  func() client.Object { o := podKill(); o.Labels["faultline.dev/version"] = "1.2.0+build.7"; return o }(),
			want: []want{
				{"metadata.labels", SourceObjectMeta, `Invalid value: "1.2.0+build.7"`},
			},
		},
		{
			name: "a name that is not a DNS subdomain",
			obj:  func() client.Object { o := podKill(); o.Name = "Checkout_Kill"; return o }(),
			want: []want{
				{"metadata.name", SourceObjectMeta, `Invalid value: "Checkout_Kill"`},
			},
		},
		{
			name: "Workflow chaos node: webhook and CRD errors map to the template",
			obj: func() client.Object {
				o := workflow()
				o.Spec.Templates[2].NetworkChaos.Delay.Latency = "fast"
				o.Spec.Templates[2].NetworkChaos.Mode = "most"
				return o
			}(),
			want: []want{
				{"spec.templates[2].networkChaos.delay.latency", SourceWebhook, `Invalid value: "fast": parse duration field error`},
				{"spec.templates[2].networkChaos.delay.latency", SourceCRDSchema, `should match`},
				{"spec.templates[2].networkChaos.mode", SourceCRDSchema, `Unsupported value: "most"`},
			},
		},
		{
			name: "Workflow chaos node with a duration instead of a deadline",
			obj:  func() client.Object { o := workflow(); o.Spec.Templates[2].NetworkChaos.Duration = ptr("2m"); return o }(),
			want: []want{
				{"spec.templates[2]", SourceWebhook, `should not define duration in chaos when using Workflow, use Template#Deadline instead`},
			},
		},
		{
			name: "Workflow suspend node without a deadline, unknown child, unknown entry",
			obj: func() client.Object {
				o := workflow()
				o.Spec.Entry = "main"
				o.Spec.Templates[0].Children = append(o.Spec.Templates[0].Children, "recovery")
				o.Spec.Templates[1].Deadline = nil
				return o
			}(),
			want: []want{
				{"spec.entry", SourceWebhook, `can not find a template with name main`},
				{"spec.templates[0].children[2]", SourceWebhook, `can not find a template with name recovery`},
				{"spec.templates[1].deadline", SourceWebhook, `deadline in template with type Suspend could not be empty`},
			},
		},
		{
			name: "Workflow template type unknown",
			obj:  func() client.Object { o := workflow(); o.Spec.Templates[1].Type = "Sleep"; return o }(),
			want: []want{
				{"spec.templates[1].templateType", SourceWebhook, `unrecognized template type: Sleep`},
			},
		},
		{
			// ValidateCreate dereferences the missing spec: upstream panics.
			name: "Workflow chaos node without its chaos spec",
			obj:  func() client.Object { o := workflow(); o.Spec.Templates[2].EmbedChaos = nil; return o }(),
			want: []want{
				{"spec.templates[2].networkChaos", SourceWebhook, `Required value: a NetworkChaos template needs its chaos spec`},
			},
		},
	}
	v := crd.NewValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(context.Background(), v, tt.obj)
			var verr *Error
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want a *Error", err)
			}
			if verr.Kind != reflect.TypeOf(tt.obj).Elem().Name() || verr.Name != tt.obj.GetName() {
				t.Errorf("Error names %s %s/%s", verr.Kind, verr.Namespace, verr.Name)
			}
			if len(verr.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(verr.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				p := verr.Problems[i]
				if p.Path != w.path || p.Source != w.source || !strings.Contains(p.Message, w.msg) {
					t.Errorf("problem %d = %s\nwant        %s: ...%s... (%s)", i, p, w.path, w.msg, w.source)
				}
			}
			if !strings.Contains(err.Error(), tt.want[0].path+": ") {
				t.Errorf("Error() does not mention %s:\n%s", tt.want[0].path, err)
			}
		})
	}
}

// TestValidateKnownGaps documents values that both the webhook and the CRD
// schema let through (see ENGINE-FACTS.md). The scenario schema has to reject
// them. If one of these starts failing, Chaos Mesh closed the gap: update the
// test and ENGINE-FACTS.md.
func TestValidateKnownGaps(t *testing.T) {
	tests := []struct {
		name string
		obj  client.Object
	}{
		{"NetworkChaos loss above 100", func() client.Object { o := networkLoss(); o.Spec.Loss.Loss = "150"; return o }()},
		{"NetworkChaos duplicate above 100", func() client.Object {
			o := networkLoss()
			o.Spec.Action, o.Spec.Loss = v1.DuplicateAction, nil
			o.Spec.Duplicate = &v1.DuplicateSpec{Duplicate: "250", Correlation: "0"}
			return o
		}()},
		{"NetworkChaos corrupt above 100", func() client.Object {
			o := networkLoss()
			o.Spec.Action, o.Spec.Loss = v1.CorruptAction, nil
			o.Spec.Corrupt = &v1.CorruptSpec{Corrupt: "101", Correlation: "0"}
			return o
		}()},
		{"StressChaos zero cpu workers", func() client.Object { o := stress(); o.Spec.Stressors.CPUStressor.Workers = 0; return o }()},
		{"StressChaos zero memory workers", func() client.Object { o := stress(); o.Spec.Stressors.MemoryStressor.Workers = 0; return o }()},
		{"TimeChaos duration not a duration", func() client.Object { o := timeSkew(); o.Spec.Duration = ptr("forever"); return o }()},
		{"Workflow chaos node deadline not a duration", func() client.Object { o := workflow(); o.Spec.Templates[2].Deadline = ptr("sixty"); return o }()},
		{"Workflow suspend deadline not a duration", func() client.Object { o := workflow(); o.Spec.Templates[1].Deadline = ptr("sixty"); return o }()},
		// A chaos node without a deadline never completes (upstream hangs).
		{"Workflow chaos node without a deadline", func() client.Object { o := workflow(); o.Spec.Templates[2].Deadline = nil; return o }()},
	}
	v := crd.NewValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(context.Background(), v, tt.obj); err != nil {
				t.Fatalf("Chaos Mesh now rejects this (gap closed?): %v", err)
			}
		})
	}
}

func TestValidateNotChaosMesh(t *testing.T) {
	err := Validate(context.Background(), crd.NewValidator(), &corev1.Pod{ObjectMeta: meta("p")})
	var verr *Error
	if err == nil || errors.As(err, &verr) {
		t.Fatalf("Validate(Pod) = %v, want a plain error", err)
	}
}

func TestJSONPath(t *testing.T) {
	nc := reflect.TypeOf(v1.NetworkChaos{})
	tests := []struct {
		root reflect.Type
		in   string
		want string
	}{
		{nc, "Spec.TcParameter.Delay.Latency", "spec.delay.latency"},
		{nc, "Spec.PodSelector.Selector.GenericSelectorSpec.LabelSelectors[a.b/c]", "spec.selector.labelSelectors[a.b/c]"},
		{nc, "Spec.direction", "spec.direction"},
		{nc, "Spec.PodSelector.Mode", "spec.mode"},
		{nc, "Spec.Target.Mode", "spec.target.mode"},
		{nc, "ObjectMeta.Name", "metadata.name"},
		{nc, "Spec.Unknown.Thing[0]", "spec.Unknown.Thing[0]"},
		{reflect.TypeOf(v1.Workflow{}), "spec.templates[3].deadline", "spec.templates[3].deadline"},
		{reflect.TypeOf(v1.Workflow{}), "spec.templates[1].NetworkChaos.TcParameter.Delay", "spec.templates[1].networkChaos.delay"},
		{nc, "", ""},
	}
	for _, tt := range tests {
		if got := jsonPath(tt.root, tt.in); got != tt.want {
			t.Errorf("jsonPath(%s, %q) = %q, want %q", tt.root.Name(), tt.in, got, tt.want)
		}
	}
}

func TestSplitAggregate(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`spec.a: Invalid value: "x, spec.b": bad`, []string{`spec.a: Invalid value: "x, spec.b": bad`}},
		{`[spec.a: Required value, spec.b[0]: Invalid value: "y": no, Spec.C: Unsupported value: "z"]`,
			[]string{`spec.a: Required value`, `spec.b[0]: Invalid value: "y": no`, `Spec.C: Unsupported value: "z"`}},
		{`something broke`, []string{`something broke`}},
		{`[oops, spec.a: Forbidden]`, []string{`oops`, `spec.a: Forbidden`}},
	}
	for _, tt := range tests {
		if got := splitAggregate(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitAggregate(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	ctx := context.Background()
	v := crd.NewValidator()
	for _, obj := range []client.Object{networkDelay(), stress(), workflow()} {
		b.Run(reflect.TypeOf(obj).Elem().Name(), func(b *testing.B) {
			if err := Validate(ctx, v, obj); err != nil { // warm up: compile the schema
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := Validate(ctx, v, obj); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
