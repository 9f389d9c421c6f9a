package inject

import (
	"errors"
	"slices"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

// TestNetem: one netem fault applies its delay and its rate to the same
// connections at once (and is one fault: Active names it once, Clear ends
// both); duplicate, corrupt and reorder are refused as packet-level.
func TestNetem(t *testing.T) {
	target := newTarget(t)
	f := NewFaults()
	c, _ := faultClient(t, f, true)
	base := percentile(latencies(t, c, target.URL, 30), 0.5)
	mustSet(t, f, "n", schema.Fault{Netem: &schema.Netem{
		Delay: &schema.NetemDelay{Latency: schema.Duration(30 * time.Millisecond)},
		Rate:  "400kbps",
	}})
	if got := f.Active(); !slices.Equal(got, []string{"n"}) {
		t.Errorf("Active() = %v", got)
	}
	p50 := percentile(latencies(t, c, target.URL, 20), 0.5)
	if added := p50 - base; added < 29*time.Millisecond || added > 45*time.Millisecond {
		t.Errorf("a small request: p50 %v, %v without the fault: %v added, want about 30ms", p50, base, added)
	}
	// 300 kB at 400 000 B/s (tc's units, as networkBandwidth): 0.75 s, plus
	// the delay, within 20%.
	r := do(c, "GET", target.URL+"/big?n=300000", "")
	if r.err != nil || r.code != 200 {
		t.Fatalf("%+v", r.err)
	}
	want := 750*time.Millisecond + 30*time.Millisecond
	if r.took < want*8/10 || r.took > want*12/10 {
		t.Errorf("300 kB took %v, want %v ± 20%%", r.took, want)
	}
	f.Clear("n")
	if after := percentile(latencies(t, c, target.URL, 20), 0.5); after-base > 5*time.Millisecond {
		t.Errorf("after Clear p50 %v, before the fault %v", after, base)
	}
	if r := do(c, "GET", target.URL+"/big?n=300000", ""); r.err != nil || r.took > 200*time.Millisecond {
		t.Errorf("after Clear 300 kB took %v (%v)", r.took, r.err)
	}

	for _, ne := range []schema.Netem{
		{Duplicate: &schema.NetemDuplicate{Duplicate: 5}},
		{Corrupt: &schema.NetemCorrupt{Corrupt: 5}},
		{Delay: &schema.NetemDelay{Latency: schema.Duration(time.Millisecond), Reorder: &schema.Reorder{Reorder: 10}}},
		{Loss: &schema.NetemLoss{Loss: 5}, Peer: &schema.NetworkPeer{Hosts: []string{"db"}}},
	} {
		if err := NewFaults().Set("n", schema.Fault{Netem: &ne}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Set(%+v) = %v, want ErrUnsupported", ne, err)
		}
	}
	if err := NewFaults().Set("n", schema.Fault{Netem: &schema.Netem{}}); err == nil {
		t.Error("Set accepted a netem that does nothing")
	}
}
