package prom

import (
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"faultline.dev/faultline/internal/promtest"
)

// TestEngineWriterByStart: requests written by the engine's writer from
// several shards read back, over windows cut at arbitrary instants (the
// writer told about them), exactly by their START: each window's count is
// that of the requests that started in it, including those that ended
// after it; the latency histogram is exactly the union's at schema 8 and
// p99 within 1% of the true one; the fault gauge reads 1 inside its window
// only.
func TestEngineWriterByStart(t *testing.T) {
	srv := promtest.Start(t)
	ctx := context.Background()
	base := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	bounds := []int64{base.UnixMilli(), base.Add(3333 * time.Millisecond).UnixMilli(), base.Add(6789 * time.Millisecond).UnixMilli(), base.Add(10 * time.Second).UnixMilli()}
	w := &EngineWriter{URL: srv.WriteURL(), Lag: time.Second,
		Cuts: func() []int64 { return []int64{bounds[1] * 1e6, bounds[2] * 1e6} },
		Gauges: func(at int64) []Point {
			v := 0.0
			if at >= bounds[1] && at < bounds[2] {
				v = 1
			}
			return []Point{{Labels: map[string]string{"__name__": FaultActive, "fault": "jitter", LabelRunID: "e1"}, T: at, V: v}}
		}}
	type key struct{ status int }
	labels := func(status string) func() Desc {
		return func() Desc {
			return HTTPDesc(map[string]string{LabelScenario: "checkout", LabelVersion: "1.0.0", LabelRunID: "e1", "status": status, "name": "catalog", LabelExpected: map[string]string{"200": "true", "503": "false"}[status]})
		}
	}
	want := make([]struct {
		n, failed float64
		ms        []float64
	}, 3)
	rng := rand.New(rand.NewPCG(3, 4))
	at := base
	flushAt := base.Add(time.Second)
	for at.Before(base.Add(10 * time.Second)) {
		ms := 2 * math.Exp(0.6*rng.NormFloat64())
		failed := rng.Float64() < 0.05
		st, lab := 200, labels("200")
		if failed {
			st, lab = 503, labels("503")
		}
		w.Add(rng.IntN(40), key{st}, lab, at, 0, 1, ms/1000)
		for i := range 3 {
			if at.UnixMilli() >= bounds[i] && at.UnixMilli() < bounds[i+1] {
				want[i].n++
				if failed {
					want[i].failed++
				}
				want[i].ms = append(want[i].ms, ms)
			}
		}
		at = at.Add(time.Duration(rng.IntN(3000)) * time.Microsecond)
		// Flush on the writer's clock as Run would: now = the instant
		// requests have reached.
		if at.After(flushAt) {
			if err := w.Flush(ctx, flushAt, false); err != nil {
				t.Fatal(err)
			}
			flushAt = flushAt.Add(time.Second)
		}
	}
	if err := w.Flush(ctx, at, true); err != nil {
		t.Fatal(err)
	}
	c := &Client{URL: srv.URL}
	d, err := ReadLoad(ctx, c, LoadMatchers("checkout", "1.0.0", "e1"), base.Add(-time.Second), base.Add(11*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got := d.Window(Window{bounds[i], bounds[i+1]})
		if got.Requests != want[i].n || got.Failed != want[i].failed {
			t.Errorf("window %d: %v requests, %v failed; wrote %v, %v starting in it", i, got.Requests, got.Failed, want[i].n, want[i].failed)
		}
		exact := exactQuantile(want[i].ms, 0.99)
		if p99 := 1000 * got.Latency.Quantile(0.99); math.Abs(p99-exact)/exact > 0.01 {
			t.Errorf("window %d: p99 %.4fms, exact %.4fms", i, p99, exact)
		}
		t.Logf("window %d: %v requests (%v failed), p99 %.4fms exact %.4fms", i, got.Requests, got.Failed, 1000*got.Latency.Quantile(0.99), exact)
	}
	gs, err := c.Raw(ctx, FaultActive+`{faultline_run_id="e1"}`, base.Add(-time.Second), base.Add(11*time.Second))
	if err != nil || len(gs) != 1 {
		t.Fatalf("fault gauge: %v, %d series", err, len(gs))
	}
	for _, p := range gs[0].Floats {
		if in := p.T >= bounds[1] && p.T < bounds[2]; (p.V == 1) != in {
			t.Errorf("fault gauge at %d = %v (window [%d, %d))", p.T, p.V, bounds[1], bounds[2])
		}
	}
}

func exactQuantile(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))] // ranked as Hist.Quantile and DDSketch rank
}

// TestEngineWriterUnanswered: Prometheus stores pushes but the answers
// come too late (the client gives up): the writer sends them again,
// Prometheus refuses what it holds already as out of order, and nothing
// is lost or counted twice — the window reads exactly what was written.
func TestEngineWriterUnanswered(t *testing.T) {
	srv := promtest.Start(t)
	var slow atomic.Int32
	slow.Store(3) // the first three pushes are stored, then answered late
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(http.MethodPost, srv.WriteURL(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if slow.Add(-1) >= 0 {
			time.Sleep(300 * time.Millisecond)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(msg)
	}))
	defer proxy.Close()
	ctx := context.Background()
	base := time.Now().Add(-20 * time.Second).Truncate(time.Second)
	w := &EngineWriter{URL: proxy.URL, Lag: time.Second, HTTP: &http.Client{Timeout: 100 * time.Millisecond}}
	lab := func() Desc {
		return HTTPDesc(map[string]string{LabelScenario: "checkout", LabelVersion: "1.0.0", LabelRunID: "u1", LabelExpected: "true"})
	}
	n, failures := 0, 0
	for sec := range 10 {
		for j := range 100 {
			w.Add(j, "k", lab, base.Add(time.Duration(sec)*time.Second+time.Duration(j)*10*time.Millisecond), 0, 1, 0.002)
			n++
		}
		if err := w.Flush(ctx, base.Add(time.Duration(sec+1)*time.Second), false); err != nil {
			failures++
		}
	}
	if err := w.Flush(ctx, base.Add(11*time.Second), true); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != 0 || failures == 0 {
		t.Errorf("%d points dropped, %d failed pushes", w.Dropped(), failures)
	}
	d, err := ReadLoad(ctx, &Client{URL: srv.URL}, LoadMatchers("checkout", "1.0.0", "u1"), base.Add(-time.Second), base.Add(12*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := d.Window(Window{base.UnixMilli(), base.Add(12 * time.Second).UnixMilli()})
	if int(got.Requests) != n || int(got.Latency.Count) != n {
		t.Errorf("%v requests, %v latencies in Prometheus; wrote %d", got.Requests, got.Latency.Count, n)
	}
	t.Logf("%d requests written through %d unanswered pushes, %d points found stored on resend", n, failures, w.Resent())
}
