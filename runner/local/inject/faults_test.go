package inject

import (
	"errors"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

// TestSetRejects: Set refuses an invalid fault, or one the injector cannot
// apply (errors.Is ErrUnsupported), and changes nothing.
func TestSetRejects(t *testing.T) {
	f := NewFaults()
	mustSet(t, f, "kept", delayFault(time.Millisecond, 0, 0, ""))
	peer := &schema.NetworkPeer{Hosts: []string{"db"}}
	for _, tc := range []struct {
		name        string
		fault       schema.Fault
		unsupported bool
		want        string
	}{
		{"cpu", schema.Fault{CPUStress: &schema.CPUStress{Workers: 1}}, true, "cpuStress"},
		{"peer", schema.Fault{NetworkDelay: &schema.NetworkDelay{Latency: schema.Duration(time.Millisecond), Peer: peer}}, true, "peer"},
		{"none", schema.Fault{}, false, "no kind"},
		{"rate", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{Rate: "fast", Limit: 1, Buffer: 1}}, false, "rate"},
		{"direction", delayFault(time.Millisecond, 0, 0, "sideways"), false, "direction"},
		{"loss", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 101}}, false, "loss"},
		{"code on request", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Code: 404}}, false, "code"},
		{"target", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "both"}}, false, "target"},
		{"", delayFault(time.Millisecond, 0, 0, ""), false, "name"},
		{"kept", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: -1}}, false, "loss"}, // a bad replacement leaves the old fault
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Set(tc.name, tc.fault)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("Set = %v, want an error mentioning %q (unsupported: %v)", err, tc.want, tc.unsupported)
			}
		})
	}
	if got := f.Active(); len(got) != 1 || got[0] != "kept" {
		t.Errorf("Active() = %v after rejected faults, want [kept]", got)
	}
	if fs := f.load(); fs.byName["kept"].net[0].delay == nil {
		t.Error("a rejected replacement changed the active fault")
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits float64
		bad  bool
	}{
		{"1mbps", 8e6, false},
		{"500kbps", 4e6, false},
		{"10gbps", 8e10, false},
		{"1bps", 8, false},
		{"0kbps", 0, true},
		{"1mbit", 0, true},
		{"kbps", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad || got != tc.bits {
			t.Errorf("ParseRate(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.bits, tc.bad)
		}
	}
}

// TestDelaySamplerCorrelation checks the injector's own delay draws (no
// network, no timing noise): netem's u = c·u_prev + (1-c)·uniform is an
// AR(1) process whose lag-1 autocorrelation is c.
func TestDelaySamplerCorrelation(t *testing.T) {
	for _, tc := range []struct{ corr, min, max float64 }{
		{0, -0.06, 0.06},
		{50, 0.44, 0.56},
		{90, 0.86, 0.94},
	} {
		f := newNetFault("j")
		f.delay = &schema.NetworkDelay{Latency: schema.Duration(20 * time.Millisecond), Jitter: schema.Duration(10 * time.Millisecond), Correlation: tc.corr}
		var xs []float64
		lo, hi := time.Hour, time.Duration(0)
		for range 20000 {
			d := f.delaySample()
			lo, hi = min(lo, d), max(hi, d)
			xs = append(xs, float64(d))
		}
		var mean, num, den float64
		for _, x := range xs {
			mean += x
		}
		mean /= float64(len(xs))
		for i, x := range xs {
			den += (x - mean) * (x - mean)
			if i > 0 {
				num += (x - mean) * (xs[i-1] - mean)
			}
		}
		ac := num / den
		if ac < tc.min || ac > tc.max {
			t.Errorf("correlation %.0f: lag-1 autocorrelation %.3f, want in [%.2f, %.2f]", tc.corr, ac, tc.min, tc.max)
		}
		if lo < 10*time.Millisecond || hi > 30*time.Millisecond {
			t.Errorf("correlation %.0f: draws span [%v, %v], want within 20ms ± 10ms", tc.corr, lo, hi)
		}
	}
}
