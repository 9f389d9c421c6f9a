package plan

import (
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

func TestScale(t *testing.T) {
	d := func(s string) schema.Duration { v, _ := time.ParseDuration(s); return schema.Duration(v) }
	within := d("10s")
	s := &schema.Scenario{Name: "s", Version: "1.0.0",
		Load: schema.Load{Executor: schema.RampingArrivalRate, TimeUnit: d("1s"), PreAllocatedVUs: 1,
			Stages:       []schema.Stage{{Duration: d("10s"), Target: 5}, {Duration: d("50s"), Target: 5}},
			GracefulStop: ptr(d("30s")), Requests: []schema.Request{{Path: "/"}}},
		Faults: map[string]schema.Fault{
			"delay": {Start: d("15s"), Duration: d("20s"), NetworkDelay: &schema.NetworkDelay{Latency: d("500ms")}},
			"kill":  {Start: d("40s"), Duration: d("20s"), PodKill: &schema.PodKill{}},
			"zero":  {Start: 0, Duration: d("3ms"), PodKill: &schema.PodKill{}},
		},
		SLOs: &schema.SLOs{Recovery: &schema.RecoverySLO{Within: within, PhaseSLO: schema.PhaseSLO{Latency: &schema.LatencySLO{P99: d("300ms")}}}},
	}
	cases := []struct {
		f      float64
		stages string
		delay  [2]string // start, end
		kill   [2]string
		zero   [2]string
		within string
		err    bool
	}{
		{f: 1, stages: "10s 50s", delay: [2]string{"15s", "35s"}, kill: [2]string{"40s", "1m"}, zero: [2]string{"0s", "3ms"}, within: "10s"},
		{f: 0.1, stages: "1s 5s", delay: [2]string{"1.5s", "3.5s"}, kill: [2]string{"4s", "6s"}, zero: [2]string{"0s", "1ms"}, within: "1s"},
		{f: 0.15, stages: "1.5s 7.5s", delay: [2]string{"2.25s", "5.25s"}, kill: [2]string{"6s", "9s"}, zero: [2]string{"0s", "1ms"}, within: "1.5s"},
		{f: 2, stages: "20s 1m40s", delay: [2]string{"30s", "1m10s"}, kill: [2]string{"1m20s", "2m"}, zero: [2]string{"0s", "6ms"}, within: "20s"},
		{f: 0, err: true},
		{f: -1, err: true},
		{f: 1000, err: true},
	}
	for _, tc := range cases {
		got, err := Scale(s, tc.f)
		if tc.err {
			if err == nil {
				t.Errorf("scale %v: no error", tc.f)
			}
			continue
		}
		if err != nil {
			t.Fatalf("scale %v: %v", tc.f, err)
		}
		p, err := New(got)
		if err != nil {
			t.Fatalf("scale %v: plan: %v", tc.f, err)
		}
		if st := got.Load.Stages[0].Duration.String() + " " + got.Load.Stages[1].Duration.String(); st != tc.stages {
			t.Errorf("scale %v: stages %s, want %s", tc.f, st, tc.stages)
		}
		for name, want := range map[string][2]string{"delay": tc.delay, "kill": tc.kill, "zero": tc.zero} {
			f := got.Faults[name]
			if g := [2]string{f.Start.String(), f.End().String()}; g != want {
				t.Errorf("scale %v: fault %s window %v, want %v", tc.f, name, g, want)
			}
		}
		if w := got.SLOs.Recovery.Within.String(); w != tc.within {
			t.Errorf("scale %v: within %s, want %s", tc.f, w, tc.within)
		}
		// Not part of the timeline: unchanged.
		if got.Load.TimeUnit != d("1s") || *got.Load.GracefulStop != d("30s") || got.Faults["delay"].NetworkDelay.Latency != d("500ms") || got.SLOs.Recovery.Latency.P99 != d("300ms") {
			t.Errorf("scale %v changed a duration outside the timeline: %+v", tc.f, got)
		}
		if p.LoadEnd.Std() != got.LoadLength() {
			t.Errorf("scale %v: plan load end %s, scenario %s", tc.f, p.LoadEnd, got.LoadLength())
		}
		if tc.f == 1 && got != s {
			t.Errorf("scale 1 copied the scenario")
		}
	}
	// The original is untouched.
	if s.Faults["delay"].Start != d("15s") || s.Load.Stages[1].Duration != d("50s") || s.SLOs.Recovery.Within != within {
		t.Errorf("Scale modified its input: %+v", s)
	}
}

func ptr[T any](v T) *T { return &v }
