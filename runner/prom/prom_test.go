package prom

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/internal/promtest"
)

// TestTwoRunnersMerged: two stand-in k6 runners write a 60s run (20s per
// phase) of HTTP requests and gRPC calls, each checked once, into a real
// Prometheus; read back over the windows, the counts of requests, failures
// and checks (passed and all) are exactly the written ones, HTTP and gRPC
// together, the merged latency histogram is exactly the histogram of the
// union of both runners' samples of both kinds, its quantiles are within
// the buckets' accuracy of the true ones, and throughput is the sum across
// runners (a per-runner figure sees half).
func TestTwoRunnersMerged(t *testing.T) {
	srv := promtest.Start(t)
	ctx := context.Background()
	base := time.Now().Add(-90 * time.Second).Truncate(time.Second)
	wide := map[string]string{LabelScenario: "checkout", LabelVersion: "1.0.0", LabelRunID: "run-1"}
	runners := []*k6RunnerStandIn{newK6RunnerStandIn(t, srv.WriteURL(), 1, wide), newK6RunnerStandIn(t, srv.WriteURL(), 2, wide)}
	windows := map[string]Window{
		"steady":   {base.UnixMilli(), base.Add(20 * time.Second).UnixMilli()},
		"fault":    {base.Add(20 * time.Second).UnixMilli(), base.Add(40 * time.Second).UnixMilli()},
		"recovery": {base.Add(40 * time.Second).UnixMilli(), base.Add(60 * time.Second).UnixMilli()},
	}
	type ref struct {
		n, failed      float64
		grpc, grpcFail float64
		checks, passed float64
		ms             []float64
		union          *Hist
		perRunner      [2]float64
	}
	want := map[string]*ref{}
	for name := range windows {
		want[name] = &ref{union: NewHist(3)}
		want[name].union.ZeroThreshold = math.Ldexp(1, -128)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for sec := range 60 {
		phase := []string{"steady", "fault", "recovery"}[sec/20]
		fault := "none"
		if phase == "fault" {
			fault = "jitter"
		}
		for i, k := range runners {
			median, errP := 10.0*float64(i+1), 0.01*float64(i+1)
			if phase == "fault" && i == 0 {
				median, errP = 40, 0.1
			}
			for j := range 100 {
				ms := median * math.Exp(0.5*rng.NormFloat64())
				failed := rng.Float64() < errP
				end := base.Add(time.Duration(sec)*time.Second + time.Duration(j*10)*time.Millisecond)
				r := want[phase]
				// Every third request a gRPC call; in the fault, runner 1's
				// failed calls never connect (no duration sample).
				grpcCall := j%3 == 0
				noConn := grpcCall && failed && phase == "fault" && i == 0
				switch {
				case noConn:
					k.addGRPC(end, -1, true, phase, fault)
				case grpcCall:
					k.addGRPC(end, ms, failed, phase, fault)
				default:
					k.add(end, ms, failed, phase, fault)
				}
				// Its check fails with it, and a slow one (> 60ms) fails too.
				passed := !failed && ms <= 60
				k.addCheck(end, passed, phase, fault)
				r.n++
				r.perRunner[i]++
				r.checks++
				if passed {
					r.passed++
				}
				if failed {
					r.failed++
				}
				if grpcCall {
					r.grpc++
					if failed {
						r.grpcFail++
					}
				}
				if !noConn {
					r.ms = append(r.ms, ms)
					r.union.Observe(ms / 1000)
				}
			}
			if err := k.push(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := &Client{URL: srv.URL}
	m := LoadMatchers("checkout", "1.0.0", "run-1")
	d, err := ReadLoad(ctx, c, m, base.Add(-time.Minute), base.Add(61*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d.Runners() != 2 {
		t.Errorf("%d runners, want 2", d.Runners())
	}
	for name, w := range windows {
		got, r := d.Window(w), want[name]
		if got.Requests != r.n || got.Failed != r.failed {
			t.Errorf("%s: %v requests, %v failed; wrote %v, %v (%v gRPC calls, %v failed)", name, got.Requests, got.Failed, r.n, r.failed, r.grpc, r.grpcFail)
		}
		if got.Checks != r.checks || got.ChecksPassed != r.passed || r.passed == r.checks {
			t.Errorf("%s: %v of %v checks passed; wrote %v of %v", name, got.ChecksPassed, got.Checks, r.passed, r.checks)
		}
		t.Logf("%s: %v requests (%v gRPC), %v failed (%v gRPC), %v of %v checks passed", name, got.Requests, r.grpc, got.Failed, r.grpcFail, got.ChecksPassed, got.Checks)
		if got.Latency == nil {
			t.Fatalf("%s: no latency", name)
		}
		if got.Latency.Schema != 3 {
			t.Errorf("%s: schema %d, want k6's 3", name, got.Latency.Schema)
		}
		if !bucketsEqual(got.Latency.Buckets, r.union.Buckets) || got.Latency.Count != r.union.Count {
			t.Errorf("%s: merged histogram differs from the union's", name)
		}
		for _, q := range []float64{0.5, 0.9, 0.99} {
			exact := exactQuantile(r.ms, q)
			est := 1000 * got.Latency.Quantile(q)
			if rel := math.Abs(est-exact) / exact; rel > 0.045 {
				t.Errorf("%s p%v: %.3fms from Prometheus, %.3fms exact (%.1f%%, more than half a schema-3 bucket)", name, 100*q, est, exact, 100*rel)
			}
		}
		secs := float64(w.To-w.From) / 1000
		if tp := got.Requests / secs; tp != 200 {
			t.Errorf("%s: throughput %v/s, want the sum 200/s", name, tp)
		}
	}
	// One runner alone sees only its share: a 150/s SLO it would fail.
	one, err := ReadLoad(ctx, c, m+`,instance_id="1"`, base.Add(-time.Minute), base.Add(61*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := one.Window(windows["steady"]).Requests / 20; got != 100 {
		t.Errorf("runner 1 alone: %v/s, want 100/s", got)
	}
	// Another run's series are not read.
	other, err := ReadLoad(ctx, c, LoadMatchers("checkout", "1.0.0", "run-2"), base.Add(-time.Minute), base.Add(61*time.Second))
	if err != nil || !other.Empty() {
		t.Errorf("run-2 read run-1's series: %v", err)
	}
}

func bucketsEqual(a, b map[int32]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestUnreachable: no server → an error naming it and how to fix it.
func TestUnreachable(t *testing.T) {
	c := &Client{URL: "http://127.0.0.1:1"}
	_, err := ReadLoad(context.Background(), c, LoadMatchers("a", "1.0.0", "r"), time.Now().Add(-time.Minute), time.Now())
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "--prometheus") {
		t.Errorf("err %v", err)
	}
}
