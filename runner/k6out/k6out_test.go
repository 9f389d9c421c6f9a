package k6out

import (
	"bufio"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.k6.io/k6/metrics"
	"go.k6.io/k6/output"

	"faultline.dev/faultline/runner/aggregate"
)

// request builds the samples k6 emits for one HTTP request that ended at
// end and took ms milliseconds.
func request(reg *metrics.BuiltinMetrics, end time.Time, ms float64, failed bool) metrics.SampleContainer {
	f := 0.0
	if failed {
		f = 1
	}
	return metrics.ConnectedSamples{Samples: []metrics.Sample{
		{TimeSeries: metrics.TimeSeries{Metric: reg.HTTPReqs}, Time: end, Value: 1},
		{TimeSeries: metrics.TimeSeries{Metric: reg.HTTPReqDuration}, Time: end, Value: ms},
		{TimeSeries: metrics.TimeSeries{Metric: reg.HTTPReqFailed}, Time: end, Value: f},
	}, Time: end}
}

// TestOutputStreamsBucketsByStart runs the output against a loopback
// listener standing where the runner's collector is, and checks what
// arrives: requests bucketed by START slot, with the end slot when it
// differs, failures and checks counted, latencies in the sketch.
func TestOutputStreamsBucketsByStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o, err := New(output.Params{ConfigArgument: ln.Addr().String(), Logger: logrus.New()})
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	conn := <-accepted
	defer conn.Close()

	reg := metrics.RegisterBuiltinMetrics(metrics.NewRegistry())
	base := time.UnixMilli(aggregate.SlotOf(time.Now().UnixMilli()) + 10_000)
	o.AddMetricSamples([]metrics.SampleContainer{
		request(reg, base.Add(50*time.Millisecond), 20, false),   // start = base+30ms
		request(reg, base.Add(90*time.Millisecond), 50, true),    // start = base+40ms, failed
		request(reg, base.Add(350*time.Millisecond), 300, false), // start = base+50ms, ends 3 slots later
		metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: reg.Checks}, Time: base.Add(60 * time.Millisecond), Value: 1},
		metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: reg.Checks}, Time: base.Add(70 * time.Millisecond), Value: 0},
	})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	got := map[aggregate.Key]*aggregate.Agg{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var m Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		for _, w := range m.Slots {
			a, err := aggregate.FromWire(w)
			if err != nil {
				t.Fatal(err)
			}
			k := aggregate.Key{Start: w.Slot, End: w.End}
			if got[k] == nil {
				got[k] = aggregate.New()
			}
			got[k].Merge(a)
		}
	}
	same := got[aggregate.Key{Start: base.UnixMilli()}]
	if same == nil || same.Requests != 2 || same.Failed != 1 || same.ChecksTotal != 2 || same.ChecksPass != 1 {
		t.Fatalf("slot of the two quick requests: %+v (all: %v)", same, got)
	}
	if q := same.Quantile(1); q < 49 || q > 51 {
		t.Errorf("max latency %.2f, want 50", q)
	}
	slow := got[aggregate.Key{Start: base.UnixMilli(), End: base.UnixMilli() + 300}]
	if slow == nil || slow.Requests != 1 || slow.MaxMS != 300 {
		t.Errorf("the slow request: %+v (all: %v)", slow, got)
	}
}

func TestNewRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:9000", "example.com:80", "nonsense"} {
		if _, err := New(output.Params{ConfigArgument: addr}); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
}
