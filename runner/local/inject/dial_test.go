package inject

// Network faults on the in-process path: an HTTP client whose connections
// go through Faults.Dial (faultClient), as the load engine's do.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

// TestBytesIdentical: what goes through the wrapper, with no fault and with
// a jittered delay both ways, is what was sent, in order, and the end of
// stream travels too.
func TestBytesIdentical(t *testing.T) {
	addr := echoServer(t)
	for _, fault := range []struct {
		name  string
		fault *schema.Fault
	}{
		{"no fault", nil},
		{"delay both", ptr(delayFault(time.Millisecond, time.Millisecond, 0, "both"))},
	} {
		for _, size := range []int{1, 1500, 64 << 10, 8 << 20} {
			t.Run(fault.name+"/"+strconv.Itoa(size), func(t *testing.T) {
				f := NewFaults()
				if fault.fault != nil {
					mustSet(t, f, "d", *fault.fault)
				}
				payload := make([]byte, size)
				rand.Read(payload)
				c, err := f.Dial((&net.Dialer{}).DialContext)(context.Background(), "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				werr := make(chan error, 1)
				go func() {
					_, err := c.Write(payload)
					if err == nil {
						err = c.(interface{ CloseWrite() error }).CloseWrite() // the end of stream must travel too
					}
					werr <- err
				}()
				got, err := io.ReadAll(c) // ends only if the echo's FIN came back through
				if err != nil {
					t.Fatal(err)
				}
				if err := <-werr; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("echo through the wrapper: got %d bytes, want %d identical bytes", len(got), len(payload))
				}
			})
		}
	}
}

// --- delay -----------------------------------------------------------------

// TestDelayAccuracy: "latency" is what a request/response round trip gains:
// the configured latency once for direction "to" (responses, the default)
// or "from" (requests), twice for "both". No fault adds nothing, Clear
// restores the direct latency, and keep-alive connections are reused (one
// dial for sequential requests).
func TestDelayAccuracy(t *testing.T) {
	target := newTarget(t)
	n := 200
	if testing.Short() {
		n = 40
	}
	base := percentile(latencies(t, newClient(t, true), target.URL, n), 0.5)
	for _, tc := range []struct {
		dir            string
		latency, added time.Duration
		n              int
	}{
		{"", 50 * time.Millisecond, 50 * time.Millisecond, n},
		{"from", 20 * time.Millisecond, 20 * time.Millisecond, 50},
		{"both", 20 * time.Millisecond, 40 * time.Millisecond, 50},
	} {
		t.Run("direction="+tc.dir, func(t *testing.T) {
			f := NewFaults()
			c, dials := faultClient(t, f, true)
			none := percentile(latencies(t, c, target.URL, 50), 0.5)
			mustSet(t, f, "d", delayFault(tc.latency, 0, 0, tc.dir))
			ds := latencies(t, c, target.URL, tc.n)
			p50, p99 := percentile(ds, 0.5), percentile(ds, 0.99)
			t.Logf("direct p50 %v; no fault %v; %v delay (%q): p50 %v, p99 %v", base, none, tc.latency, tc.dir, p50, p99)
			if off := p50 - base - tc.added; off < -time.Millisecond || off > time.Millisecond {
				t.Errorf("p50 %v - direct %v = %v added, want %v ± 1ms", p50, base, p50-base, tc.added)
			}
			if none-base > 2*time.Millisecond {
				t.Errorf("without a fault the wrapper adds %v", none-base)
			}
			f.Clear("d")
			if after := percentile(latencies(t, c, target.URL, 50), 0.5); after-base > 2*time.Millisecond {
				t.Errorf("after Clear p50 %v, direct %v", after, base)
			}
			if dials.Load() != 1 {
				t.Errorf("%d dials for sequential keep-alive requests, want 1", dials.Load())
			}
		})
	}
}

// TestDelayOfABody: a request body written in many pieces (net/http writes
// at most 32 KiB at a time) is delayed once, as netem delays every packet
// of a burst by the same latency, not once per piece: the POST takes the
// latency longer than direct, no more.
func TestDelayOfABody(t *testing.T) {
	target := newTarget(t)
	const size, latency = 2 << 20, 20 * time.Millisecond
	body := strings.Repeat("y", size)
	post := func(c *http.Client) time.Duration {
		t.Helper()
		latencies(t, c, target.URL, 1) // the connection is up
		best := time.Hour
		for range 3 {
			r := do(c, "POST", target.URL+"/sink", body)
			if r.err != nil || r.body != strconv.Itoa(size) {
				t.Fatalf("POST: %q %v", r.body, r.err)
			}
			best = min(best, r.took)
		}
		return best
	}
	direct := post(newClient(t, true))
	for _, dir := range []string{"from", "both"} {
		t.Run("direction="+dir, func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			mustSet(t, f, "d", delayFault(latency, 0, 0, dir))
			took := post(c)
			want := latency
			if dir == "both" {
				want = 2 * latency
			}
			t.Logf("%d bytes: direct %v, with a %v delay (%q) %v", size, direct, latency, dir, took)
			if took < want || took-direct > want+10*time.Millisecond {
				t.Errorf("a %d-byte POST took %v, direct %v: want %v more (+10ms)", size, took, direct, want)
			}
		})
	}
}

func TestJitterAndCorrelation(t *testing.T) {
	target := newTarget(t)
	const latency, jitter, n = 20 * time.Millisecond, 10 * time.Millisecond, 100
	lag1 := func(ds []time.Duration) float64 {
		var mean float64
		for _, d := range ds {
			mean += float64(d)
		}
		mean /= float64(len(ds))
		var num, den float64
		for i, d := range ds {
			x := float64(d) - mean
			den += x * x
			if i > 0 {
				num += x * (float64(ds[i-1]) - mean)
			}
		}
		return num / den
	}
	// End to end, a busy machine adds its own noise to every round trip, so
	// the correlation is compared between the two settings, not against
	// the configured value (TestDelaySamplerCorrelation checks that on the
	// injector's own draws).
	acs := map[float64]float64{}
	for _, tc := range []struct {
		corr           float64
		minSpreadRatio float64 // (max-min)/(2·jitter)
	}{
		{0, 0.7},
		{90, 0},
	} {
		t.Run(fmt.Sprint("correlation=", tc.corr), func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			mustSet(t, f, "j", delayFault(latency, jitter, tc.corr, ""))
			ds := latencies(t, c, target.URL, n)
			lo, hi := slices.Min(ds), slices.Max(ds)
			// Clip to the configured range before the autocorrelation: a
			// request stalled by a busy machine is not the injector's draw.
			clipped := make([]time.Duration, len(ds))
			for i, d := range ds {
				clipped[i] = min(max(d, latency-jitter), latency+jitter)
			}
			acs[tc.corr] = lag1(clipped)
			t.Logf("min %v max %v lag-1 autocorrelation %.2f", lo, hi, acs[tc.corr])
			// Never early; late only by overhead (the top 10% may be
			// scheduling noise on a loaded machine, under -race).
			if p90 := percentile(ds, 0.9); lo < latency-jitter || p90 > latency+jitter+3*time.Millisecond {
				t.Errorf("delays span [%v, p90 %v], want within %v ± %v (+3ms overhead)", lo, p90, latency, jitter)
			}
			if spread := float64(hi-lo) / float64(2*jitter); spread < tc.minSpreadRatio {
				t.Errorf("delays span only %.0f%% of ±jitter", 100*spread)
			}
		})
	}
	if d := acs[90] - acs[0]; d < 0.2 {
		t.Errorf("correlation 90 gives a lag-1 autocorrelation of %.2f, correlation 0 %.2f: want at least 0.2 more", acs[90], acs[0])
	}
}

// --- loss ------------------------------------------------------------------

// TestLossStallsAboutLossPercent: with loss L% on responses, each
// single-packet response is stalled by a retransmission timeout (≥ 200 ms)
// with probability ≈ L; nothing fails.
func TestLossStallsAboutLossPercent(t *testing.T) {
	target := newTarget(t)
	const n, workers = 160, 16
	for _, loss := range []float64{0, 25} {
		t.Run(fmt.Sprint("loss=", loss), func(t *testing.T) {
			f := NewFaults()
			mustSet(t, f, "l", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: loss}})
			c, dials := faultClient(t, f, false) // a fresh connection per request
			var mu sync.Mutex
			stalled, failed := 0, 0
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for range n / workers {
						r := do(c, "GET", target.URL+"/w"+strconv.Itoa(w), "")
						mu.Lock()
						// Six losses in a row hold the data until the fault
						// ends (0.25^6 per chunk): the client's timeout is a
						// stall too, as with real TCP. A reset or a bad
						// answer is a failure.
						var ne net.Error
						switch {
						case r.err != nil && errors.As(r.err, &ne) && ne.Timeout():
							stalled++
						case r.err != nil || r.code != 200:
							failed++
							t.Logf("request failed: %v (status %d)", r.err, r.code)
						case r.took >= RetransmitTimeout*3/4:
							stalled++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			frac := float64(stalled) / n
			t.Logf("loss %v%%: %d/%d requests stalled (%.1f%%), %d failed, %d dials", loss, stalled, n, 100*frac, failed, dials.Load())
			if failed > 0 {
				t.Errorf("%d requests failed: loss must stall, not break", failed)
			}
			if dials.Load() != n {
				t.Errorf("%d dials, want one per request (%d)", dials.Load(), n)
			}
			// Binomial(160, .25): σ ≈ 3.4%; allow ±12%.
			if math.Abs(frac-loss/100) > 0.12 {
				t.Errorf("stalled fraction %.2f, want %.2f ± 0.12", frac, loss/100)
			}
		})
	}
}

// TestTotalLossHoldsUntilClear: loss 100% holds the data, on a connection
// made before the fault and on a new one, until Clear releases it at once;
// a client's deadline ends the wait with a timeout.
func TestTotalLossHoldsUntilClear(t *testing.T) {
	target := newTarget(t)
	for _, warm := range []bool{true, false} {
		t.Run(fmt.Sprint("connection before the fault=", warm), func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			if warm {
				latencies(t, c, target.URL, 1)
			}
			mustSet(t, f, "l", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100}})
			done := make(chan result, 1)
			go func() { done <- do(c, "GET", target.URL, "") }()
			select {
			case r := <-done:
				t.Fatalf("request went through 100%% loss: %+v", r)
			case <-time.After(300 * time.Millisecond):
			}
			f.Clear("l")
			select {
			case r := <-done:
				if r.err != nil || r.body != "ok" {
					t.Fatalf("after Clear: %+v", r)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("held response not released by Clear")
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		f := NewFaults()
		mustSet(t, f, "l", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100}})
		c, _ := faultClient(t, f, true)
		c.Timeout = 300 * time.Millisecond
		r := do(c, "GET", target.URL, "")
		var ne net.Error
		if r.err == nil || !errors.As(r.err, &ne) || !ne.Timeout() || r.took < 300*time.Millisecond || r.took > time.Second {
			t.Errorf("held request: err %v after %v; want a timeout at 300ms", r.err, r.took)
		}
	})
}

// --- bandwidth -------------------------------------------------------------

// TestBandwidthCapsThroughput: a transfer on a limited direction takes
// (size - burst) / rate; the other direction is not limited.
func TestBandwidthCapsThroughput(t *testing.T) {
	target := newTarget(t)
	const size = 600_000
	big := "/big?n=" + strconv.Itoa(size)
	for _, tc := range []struct {
		dir, method, path string
		rate              string
		bytesPerSec       float64 // 0: not limited
		buffer            int
	}{
		{"", "GET", big, "400kbps", 400_000, 10_000},          // responses ("to")
		{"from", "POST", "/sink", "400kbps", 400_000, 10_000}, // requests
		{"both", "GET", big, "400kbps", 400_000, 10_000},      // both ways
		{"", "GET", "/big?n=300000", "100kbps", 100_000, 20_000},
		{"from", "GET", big, "400kbps", 0, 10_000}, // not the limited way: full speed
	} {
		t.Run(tc.dir+" "+tc.method+" "+tc.rate, func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			mustSet(t, f, "bw", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{
				Rate: tc.rate, Buffer: tc.buffer, Limit: 64 << 10, Direction: tc.dir}})
			body, n := "", size
			if tc.method == "POST" {
				body = strings.Repeat("y", size)
			} else {
				n, _ = strconv.Atoi(strings.TrimPrefix(tc.path, "/big?n="))
			}
			r := do(c, tc.method, target.URL+tc.path, body)
			if r.err != nil || r.code != 200 {
				t.Fatalf("%+v", r.err)
			}
			got := float64(n) / r.took.Seconds()
			t.Logf("%d bytes in %v: %.0f B/s", n, r.took, got)
			if tc.bytesPerSec == 0 {
				if got < 2_000_000 {
					t.Errorf("transfer throttled by a limit on the other direction: %.0f B/s", got)
				}
				return
			}
			// The rate is in tc's units ("400kbps" is 400,000 bytes/s); the
			// bucket starts full, so the first buffer bytes pass at once.
			want := time.Duration(float64(n-tc.buffer) / tc.bytesPerSec * float64(time.Second))
			if r.took < want*8/10 || r.took > want*12/10 {
				t.Errorf("%d bytes took %v, want %v ± 20%%", n, r.took, want)
			}
		})
	}
}

// TestBandwidthLimitBlocksWrite: limit bounds what a connection may have
// queued in its write delay line, which takes a chunk (32 KiB) while it
// holds less than limit. With limit under a chunk, a Write returns once all
// its chunks but the last have left the bucket; with room in the line, at
// once.
func TestBandwidthLimitBlocksWrite(t *testing.T) {
	addr := echoServer(t)
	const size, buffer = 100_000, 1_000 // at 100 kB/s
	const last = size % chunkSize
	for _, tc := range []struct {
		limit int
		want  time.Duration // until Write returns
	}{
		{10_000, (size - last - buffer) * time.Second / 100_000},
		{1 << 20, 0},
	} {
		t.Run(fmt.Sprint("limit=", tc.limit), func(t *testing.T) {
			f := NewFaults()
			mustSet(t, f, "bw", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{
				Rate: "100kbps", Buffer: buffer, Limit: tc.limit, Direction: "from"}})
			c, err := f.Dial((&net.Dialer{}).DialContext)(context.Background(), "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
			start := time.Now()
			if _, err := c.Write(make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("limit %d: Write of %d bytes returned after %v", tc.limit, size, took)
			if took < tc.want-10*time.Millisecond || took > tc.want+30*time.Millisecond {
				t.Errorf("Write returned after %v, want %v", took, tc.want)
			}
		})
	}
}

// --- partition -------------------------------------------------------------

// TestPartition: whatever the direction, a new connection fails at once
// with a reset; an existing one stalls until the partition heals, then
// carries on, and new connections work again.
func TestPartition(t *testing.T) {
	target := newTarget(t)
	for _, dir := range []string{"", "to", "from"} {
		t.Run("direction="+dir, func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			latencies(t, c, target.URL, 1) // an existing keep-alive connection
			mustSet(t, f, "cut", schema.Fault{NetworkPartition: &schema.NetworkPartition{Direction: dir}})

			fresh, _ := faultClient(t, f, false)
			r := do(fresh, "GET", target.URL, "")
			if r.err == nil {
				t.Fatalf("new connection during a partition answered %d", r.code)
			}
			if !errors.Is(r.err, syscall.ECONNRESET) {
				t.Errorf("new connection during a partition: %v, want a connection reset", r.err)
			}
			if r.took > time.Second {
				t.Errorf("refusal took %v, want immediate", r.took)
			}
			// The existing connection hangs...
			done := make(chan result, 1)
			go func() { done <- do(c, "GET", target.URL, "") }()
			select {
			case r := <-done:
				t.Fatalf("request on an existing connection crossed the partition: %+v", r)
			case <-time.After(300 * time.Millisecond):
			}
			// ... and flows again when the partition heals.
			f.Clear("cut")
			select {
			case r := <-done:
				if r.err != nil || r.body != "ok" {
					t.Fatalf("after healing: %+v", r)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("existing connection did not recover")
			}
			if r := do(fresh, "GET", target.URL, ""); r.err != nil || r.body != "ok" {
				t.Fatalf("new connection after healing: %+v", r)
			}
		})
	}
}

// --- recovery --------------------------------------------------------------

func TestClearRestoresImmediately(t *testing.T) {
	target := newTarget(t)
	for _, tc := range []struct {
		name  string
		fault schema.Fault
	}{
		{"delay", delayFault(400*time.Millisecond, 0, 0, "both")},
		{"bandwidth", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{Rate: "1kbps", Buffer: 1, Limit: 1}}},
		{"loss", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100, Direction: "both"}}},
		{"partition", schema.Fault{NetworkPartition: &schema.NetworkPartition{}}},
		{"http delay", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Delay: schema.Duration(400 * time.Millisecond)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			latencies(t, c, target.URL, 1)
			mustSet(t, f, "f", tc.fault)
			// A request caught by the fault is released when it is cleared...
			done := make(chan result, 1)
			go func() { done <- do(c, "GET", target.URL+"/big?n=2000", "") }()
			time.Sleep(50 * time.Millisecond)
			cleared := time.Now()
			f.Clear("f")
			r := <-done
			if r.err != nil || len(r.body) != 2000 {
				t.Fatalf("in-flight request: %+v", r.err)
			}
			if d := time.Since(cleared); d > 50*time.Millisecond {
				t.Errorf("in-flight request finished %v after Clear, want at once", d)
			}
			// ... and the next ones are clean (the fault would add ≥ 400 ms
			// or ≥ 100 ms each; a stray slow one is machine noise).
			ds := latencies(t, c, target.URL, 20)
			if p50, hi := percentile(ds, 0.5), slices.Max(ds); p50 > 5*time.Millisecond || hi > 90*time.Millisecond {
				t.Errorf("requests after Clear: p50 %v, max %v; want clean", p50, hi)
			}
		})
	}
}

// TestCloseLeavesNoGoroutines: closing a connection ends every wait in it
// and its write delay line's goroutine: once the client's requests end and
// its connections are closed, nothing is left, whatever state the
// connections were in (no fault, a delay, an HTTP fault, held by a
// partition either way, by total loss, or in the write delay line).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	target := newTarget(t)
	before := runtime.NumGoroutine()
	func() {
		f := NewFaults()
		tr := &http.Transport{DialContext: f.Dial((&net.Dialer{}).DialContext)}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: f.Middleware().Wrap(tr), Timeout: 5 * time.Second}
		latencies(t, c, target.URL, 3)
		mustSet(t, f, "d", delayFault(5*time.Millisecond, 0, 0, "both"))
		latencies(t, c, target.URL, 3)
		mustSet(t, f, "h", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "response", Path: "/nothing"}})
		latencies(t, c, target.URL, 3)
		f.ClearAll()
		ctx, cancel := context.WithCancel(context.Background())
		var held sync.WaitGroup
		for _, fault := range []schema.Fault{
			{NetworkPartition: &schema.NetworkPartition{Direction: "from"}},
			{NetworkPartition: &schema.NetworkPartition{Direction: "to"}},
			{NetworkLoss: &schema.NetworkLoss{Loss: 100}},
			delayFault(time.Hour, 0, 0, "from"), // the request waits in the write delay line
		} {
			// A fault set and a connection of their own, made before the
			// fault: the request stays held until it is cancelled.
			f := NewFaults()
			tr := &http.Transport{DialContext: f.Dial((&net.Dialer{}).DialContext)}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			latencies(t, c, target.URL, 1)
			mustSet(t, f, "held", fault)
			held.Go(func() {
				if r := doCtx(ctx, c, "GET", target.URL, ""); r.err == nil {
					t.Errorf("a request went through %+v", fault)
				}
			})
		}
		time.Sleep(100 * time.Millisecond)
		cancel() // the transports close the held connections
		held.Wait()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestCloseEndsAWait: a Read or Write held by a fault returns net.ErrClosed
// as soon as the connection is closed, and one held past its deadline
// returns os.ErrDeadlineExceeded. A write is held by a partition at once;
// under a delay or total loss, once the write delay line is full.
func TestCloseEndsAWait(t *testing.T) {
	addr := echoServer(t)
	for _, tc := range []struct {
		name  string
		fault schema.Fault
		write bool
	}{
		{"read, partition", schema.Fault{NetworkPartition: &schema.NetworkPartition{Direction: "to"}}, false},
		{"write, partition", schema.Fault{NetworkPartition: &schema.NetworkPartition{Direction: "from"}}, true},
		{"read, total loss", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100}}, false},
		{"write, total loss", schema.Fault{NetworkLoss: &schema.NetworkLoss{Loss: 100, Direction: "from"}}, true},
		{"read, delay", delayFault(time.Hour, 0, 0, "to"), false},
		{"write, delay", delayFault(time.Hour, 0, 0, "from"), true},
		{"write, bandwidth", schema.Fault{NetworkBandwidth: &schema.NetworkBandwidth{Rate: "1bps", Buffer: 1, Limit: 1, Direction: "from"}}, true},
	} {
		for _, end := range []string{"close", "deadline"} {
			t.Run(tc.name+"/"+end, func(t *testing.T) {
				f := NewFaults()
				c, err := f.Dial((&net.Dialer{}).DialContext)(context.Background(), "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				mustSet(t, f, "f", tc.fault)
				if !tc.write {
					// Data for the read to hold: the echo of what the
					// caller writes on the free direction.
					if _, err := c.Write([]byte("x")); err != nil {
						t.Fatal(err)
					}
				}
				if end == "deadline" {
					c.SetDeadline(time.Now().Add(100 * time.Millisecond))
				}
				errc := make(chan error, 1)
				queued := 0
				go func() {
					var err error
					if tc.write {
						buf := make([]byte, chunkSize)
						for err == nil && queued <= maxQueued {
							var n int
							n, err = c.Write(buf)
							queued += n
						}
					} else {
						_, err = c.Read(make([]byte, 10))
					}
					errc <- err
				}()
				time.Sleep(200 * time.Millisecond)
				ended := time.Now()
				want := error(os.ErrDeadlineExceeded)
				if end == "close" {
					c.Close()
					want = net.ErrClosed
				}
				select {
				case err := <-errc:
					if !errors.Is(err, want) {
						t.Errorf("held %s ended with %v after %d bytes, want %v", map[bool]string{true: "Write", false: "Read"}[tc.write], err, queued, want)
					}
					if end == "close" && time.Since(ended) > 50*time.Millisecond {
						t.Errorf("ended %v after Close", time.Since(ended))
					}
				case <-time.After(2 * time.Second):
					t.Fatal("the held call did not end")
				}
			})
		}
	}
}

// TestDialDelayReadAfterWrite: a client that writes its request and reads
// the answer only later (the load engine does, on one connection) gets the
// delay on every response — a response already waiting when the read
// begins arrived after the previous one was released, not during its hold.
func TestDialDelayReadAfterWrite(t *testing.T) {
	addr := echoServer(t)
	f := NewFaults()
	mustSet(t, f, "d", delayFault(50*time.Millisecond, 0, 0, "to"))
	conn, err := f.Dial((&net.Dialer{}).DialContext)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 16)
	for i := range 5 {
		start := time.Now()
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the echo is back in the socket
		if _, err := io.ReadFull(conn, buf[:4]); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 50*time.Millisecond {
			t.Errorf("round trip %d took %v, want at least the 50ms delay", i, took)
		}
	}
}
