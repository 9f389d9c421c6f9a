package inject

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

// dialClient is an HTTP client whose connections go through f.Dial; it
// counts the dials.
func dialClient(t testing.TB, f *Faults, dials *atomic.Int64) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	next := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials != nil {
			dials.Add(1)
		}
		return d.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{DialContext: f.Dial(next), MaxIdleConnsPerHost: 8, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: f.Middleware().Wrap(tr), Timeout: 10 * time.Second}
}

func mustSetF(t testing.TB, f *Faults, name string, sf schema.Fault) {
	t.Helper()
	if err := f.Set(name, sf); err != nil {
		t.Fatal(err)
	}
}

// TestDialDelay: a delay on the caller's own connections adds the latency
// once per round trip for "to" and "from", twice for "both", as the proxy
// does; no fault adds nothing.
func TestDialDelay(t *testing.T) {
	target := newTarget(t)
	n := 60
	base := percentile(latencies(t, newClient(t, true), target.URL, n), 0.5)
	for _, tc := range []struct {
		dir            string
		latency, added time.Duration
	}{
		{"", 20 * time.Millisecond, 20 * time.Millisecond},
		{"from", 20 * time.Millisecond, 20 * time.Millisecond},
		{"both", 20 * time.Millisecond, 40 * time.Millisecond},
	} {
		t.Run("direction="+tc.dir, func(t *testing.T) {
			f := NewFaults()
			var dials atomic.Int64
			c := dialClient(t, f, &dials)
			none := percentile(latencies(t, c, target.URL, n), 0.5)
			mustSetF(t, f, "d", delayFault(tc.latency, 0, 0, tc.dir))
			ds := latencies(t, c, target.URL, n)
			p50 := percentile(ds, 0.5)
			t.Logf("direct p50 %v; no fault %v; %v delay (%q): p50 %v, p99 %v", base, none, tc.latency, tc.dir, p50, percentile(ds, 0.99))
			if off := p50 - base - tc.added; off < -time.Millisecond || off > 2*time.Millisecond {
				t.Errorf("p50 %v - direct %v = %v added, want %v (+2ms/-1ms)", p50, base, p50-base, tc.added)
			}
			if none-base > 2*time.Millisecond {
				t.Errorf("without a fault the wrapper adds %v", none-base)
			}
			f.Clear("d")
			if after := percentile(latencies(t, c, target.URL, n), 0.5); after-base > 2*time.Millisecond {
				t.Errorf("after Clear p50 %v, direct %v", after, base)
			}
			if dials.Load() != 1 {
				t.Errorf("%d dials for sequential keep-alive requests, want 1", dials.Load())
			}
		})
	}
}

// TestDialPartition: new connections fail at once; an existing one stalls
// in the cut direction until the partition ends, then carries on.
func TestDialPartition(t *testing.T) {
	target := newTarget(t)
	f := NewFaults()
	c := dialClient(t, f, nil)
	if r := do(c, "GET", target.URL, ""); r.err != nil {
		t.Fatal(r.err)
	}
	mustSetF(t, f, "p", schema.Fault{NetworkPartition: &schema.NetworkPartition{Direction: "to"}})
	fresh := dialClient(t, f, nil)
	start := time.Now()
	if r := do(fresh, "GET", target.URL, ""); r.err == nil || time.Since(start) > time.Second {
		t.Errorf("a new connection during a partition: err %v after %v; want an error at once", r.err, time.Since(start))
	}
	got := make(chan result, 1)
	go func() { got <- do(c, "GET", target.URL, "") }()
	select {
	case r := <-got:
		t.Fatalf("a request on an existing connection went through the partition: %d %v", r.code, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	f.Clear("p")
	select {
	case r := <-got:
		if r.err != nil || r.code != 200 {
			t.Errorf("after the partition: %d %v", r.code, r.err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the stalled request did not go on after Clear")
	}
}

// TestDialTotalLossHoldsUntilDeadlineOrClear: loss 100% holds the data; a
// deadline ends the wait with a timeout, Clear releases it at once.
func TestDialTotalLossHoldsUntilDeadlineOrClear(t *testing.T) {
	target := newTarget(t)
	f := NewFaults()
	mustSetF(t, f, "l", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100}})
	c := dialClient(t, f, nil)
	c.Timeout = 300 * time.Millisecond
	start := time.Now()
	r := do(c, "GET", target.URL, "")
	var ne net.Error
	if r.err == nil || !errors.As(r.err, &ne) || !ne.Timeout() || time.Since(start) > 2*time.Second {
		t.Errorf("held request: err %v after %v; want a timeout near 300ms", r.err, time.Since(start))
	}
	c.Timeout = 10 * time.Second
	got := make(chan result, 1)
	go func() { got <- do(c, "GET", target.URL, "") }()
	time.Sleep(200 * time.Millisecond)
	f.Clear("l")
	select {
	case r := <-got:
		if r.err != nil || r.code != 200 {
			t.Errorf("after Clear: %d %v", r.code, r.err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Clear did not release the held data")
	}
}

// TestDialBandwidth: a 100kbps (100 kB/s) limit on responses makes a 300 kB
// body take about 3 s less the burst.
func TestDialBandwidth(t *testing.T) {
	target := newTarget(t)
	f := NewFaults()
	mustSetF(t, f, "b", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{Rate: "100kbps", Limit: 1 << 20, Buffer: 20000}})
	c := dialClient(t, f, nil)
	start := time.Now()
	r := do(c, "GET", target.URL+"/big?n=300000", "")
	took := time.Since(start)
	if r.err != nil || len(r.body) != 300000 {
		t.Fatalf("GET: %v, %d bytes", r.err, len(r.body))
	}
	if took < 2500*time.Millisecond || took > 5*time.Second {
		t.Errorf("300 kB at 100 kB/s with a 20 kB burst took %v, want about 2.8s", took)
	}
}

// TestDialBytesIdentical: what goes through the wrapper with a fault on is
// what was sent, in order.
func TestDialBytesIdentical(t *testing.T) {
	addr := echoServer(t)
	f := NewFaults()
	mustSetF(t, f, "d", delayFault(time.Millisecond, time.Millisecond, 0, "both"))
	conn, err := f.Dial((&net.Dialer{}).DialContext)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := strings.Repeat("0123456789abcdef", 20000) // 320 kB: several chunks
	go func() {
		_, _ = io.WriteString(conn, want)
		_ = conn.(*faultConn).Conn.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != want {
		t.Errorf("read back %d bytes (err %v), want the %d sent", len(got), err, len(want))
	}
}

// TestMiddleware applies httpFaults to an in-process client's requests.
func TestMiddleware(t *testing.T) {
	target := newTarget(t)
	body := "replaced"
	tests := []struct {
		name  string
		fault schema.HTTPFault
		path  string
		check func(r result) error
	}{
		{"abort a request", schema.HTTPFault{Target: "request", Path: "/pay*", Abort: true}, "/pay/1",
			func(r result) error {
				if !errors.Is(r.err, ErrAborted) {
					return fmt.Errorf("err %v, want ErrAborted", r.err)
				}
				return nil
			}},
		{"another path passes", schema.HTTPFault{Target: "request", Path: "/pay*", Abort: true}, "/",
			func(r result) error {
				if r.err != nil || r.body != "ok" {
					return fmt.Errorf("%d %q %v", r.code, r.body, r.err)
				}
				return nil
			}},
		{"delay a response", schema.HTTPFault{Target: "response", Delay: schema.Duration(150 * time.Millisecond)}, "/",
			func(r result) error {
				if r.err != nil || r.took < 150*time.Millisecond {
					return fmt.Errorf("took %v (err %v), want at least 150ms", r.took, r.err)
				}
				return nil
			}},
		{"replace a request's header and body", schema.HTTPFault{Target: "request", Path: "/hdr",
			Replace: &schema.HTTPReplace{Headers: map[string]string{"X-Injected": "yes"}, Body: &body}}, "/hdr",
			func(r result) error {
				if r.body != "yes|replaced" {
					return fmt.Errorf("the target got %q", r.body)
				}
				return nil
			}},
		{"replace a 404's status", schema.HTTPFault{Target: "response", Code: 404, Replace: &schema.HTTPReplace{Code: 503}}, "/missing",
			func(r result) error {
				if r.code != 503 {
					return fmt.Errorf("status %d, want 503", r.code)
				}
				return nil
			}},
		{"abort a response", schema.HTTPFault{Target: "response", Abort: true}, "/",
			func(r result) error {
				if r.err == nil {
					return fmt.Errorf("status %d, want an error", r.code)
				}
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFaults()
			c := dialClient(t, f, nil)
			mw := f.Middleware()
			if mw.Active() {
				t.Fatal("Active with no fault")
			}
			fault := tt.fault
			mustSetF(t, f, "h", schema.Fault{HTTPFault: &fault})
			if !mw.Active() {
				t.Fatal("not Active with an httpFault")
			}
			if err := tt.check(do(c, "POST", target.URL+tt.path, "original")); err != nil {
				t.Error(err)
			}
			f.Clear("h")
			if r := do(c, "GET", target.URL+"/", ""); r.err != nil || r.code != 200 {
				t.Errorf("after Clear: %d %v", r.code, r.err)
			}
		})
	}
}
