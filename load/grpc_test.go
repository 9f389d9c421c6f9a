package load

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/internal/demotarget"
)

// demo starts the demo target with its gRPC server on loopback.
func demo(t *testing.T) *demotarget.Server {
	t.Helper()
	s, err := demotarget.Listen(demotarget.Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", DownstreamLatency: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func checkout(sku string, qty int, want int) k6.Request {
	return k6.Request{Name: "checkout " + sku, Weight: 1, GRPCStatus: want,
		GRPC: &k6.GRPCCall{Method: demotarget.CheckoutMethod, Message: map[string]any{"sku": sku, "qty": float64(qty)}, Metadata: map[string]string{"x-run": "t"}}}
}

// TestGRPC runs unary calls against the demo target's real gRPC server,
// descriptors from its reflection service or from the .proto file, and
// judges each sample's status.
func TestGRPC(t *testing.T) {
	srv := demo(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.proto"), []byte(demotarget.ShopProto), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		req        k6.Request
		protos     []string
		wantCode   codes.Code
		wantFailed bool
	}{
		{"reflection, paid", checkout("demo", 1, 0), nil, codes.OK, false},
		{"reflection, unknown sku expected", checkout("nope", 1, int(codes.NotFound)), nil, codes.NotFound, false},
		{"reflection, unknown sku not expected", checkout("nope", 1, 0), nil, codes.NotFound, true},
		{"protos, paid", checkout("mug", 2, 0), []string{"shop.proto"}, codes.OK, false},
		{"protos, bad qty", checkout("mug", 0, 0), []string{"shop.proto"}, codes.InvalidArgument, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &collect{}
			var dials atomic.Int64
			d := &net.Dialer{}
			sc := k6opts.Scenario{Executor: k6opts.PerVUIterations, VUs: i64(2), Iterations: i64(10), MaxDuration: dur(20 * time.Second)}
			gt := &k6.GRPCTarget{Address: srv.GRPCAddr(), ProtoFiles: tc.protos, ImportPaths: []string{dir}}
			e, err := New(&k6.Load{Scenario: sc, Requests: []k6.Request{tc.req}, GRPC: gt}, WithSink(c),
				WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					return d.DialContext(ctx, network, addr)
				}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sum, err := e.Run(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.samples) != 20 || sum.Iterations != 20 {
				t.Fatalf("%d samples, %d iterations; want 20", len(c.samples), sum.Iterations)
			}
			for _, s := range c.samples {
				if !s.GRPC || codes.Code(s.GRPCCode) != tc.wantCode || s.Failed != tc.wantFailed || s.Status != 0 {
					t.Fatalf("sample %+v: want gRPC code %v, failed %v", s, tc.wantCode, tc.wantFailed)
				}
				if want := map[bool]int{false: 1, true: 0}[tc.wantFailed]; s.ChecksTotal != 1 || s.ChecksPassed != want {
					t.Errorf("checks %d/%d, want %d/1", s.ChecksPassed, s.ChecksTotal, want)
				}
				if s.End.Before(s.Start) || s.Start.IsZero() {
					t.Errorf("sample times %v..%v", s.Start, s.End)
				}
			}
			// One connection per VU, through the engine's dialer.
			if n := dials.Load(); n != 2 {
				t.Errorf("%d connections dialled through the engine's dialer, want 2 (one per VU)", n)
			}
		})
	}
}

// TestGRPCMixed: HTTP and gRPC requests in one mix, by weight.
func TestGRPCMixed(t *testing.T) {
	srv := demo(t)
	reqs := []k6.Request{
		{Name: "healthz", Method: "GET", URL: srv.URL() + "/healthz", Path: "/healthz", Weight: 1},
		checkout("demo", 1, 0),
	}
	c := &collect{}
	sc := k6opts.Scenario{Executor: k6opts.SharedIterations, VUs: i64(4), Iterations: i64(200), MaxDuration: dur(20 * time.Second)}
	e, err := New(&k6.Load{Scenario: sc, Requests: reqs, GRPC: &k6.GRPCTarget{Address: srv.GRPCAddr()}}, WithSink(c), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	var http, rpc int
	for _, s := range c.samples {
		switch {
		case s.Failed:
			t.Fatalf("failed sample %+v", s)
		case s.GRPC && s.Request == 1 && s.GRPCCode == 0:
			rpc++
		case !s.GRPC && s.Request == 0 && s.Status == 200:
			http++
		default:
			t.Fatalf("sample %+v", s)
		}
	}
	if http+rpc != 200 || http < 60 || rpc < 60 {
		t.Errorf("%d HTTP and %d gRPC samples of 200, want about half each", http, rpc)
	}
}

// TestGRPCInterceptor: the engine's interceptor sees every call and can
// end it with a status of its own.
func TestGRPCInterceptor(t *testing.T) {
	srv := demo(t)
	var seen atomic.Int64
	abort := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		seen.Add(1)
		if method == "/"+demotarget.CheckoutMethod {
			return status.Error(codes.ResourceExhausted, "held back")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := &collect{}
	sc := k6opts.Scenario{Executor: k6opts.PerVUIterations, VUs: i64(1), Iterations: i64(5), MaxDuration: dur(20 * time.Second)}
	e, err := New(&k6.Load{Scenario: sc, Requests: []k6.Request{checkout("demo", 1, 0)}, GRPC: &k6.GRPCTarget{Address: srv.GRPCAddr()}},
		WithSink(c), WithGRPCInterceptor(abort))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	samples := c.samples
	for _, s := range samples {
		if codes.Code(s.GRPCCode) != codes.ResourceExhausted || !s.Failed {
			t.Errorf("sample %+v: want RESOURCE_EXHAUSTED, failed", s)
		}
	}
	// The reflection stream is not a unary call: only the 5 calls are seen.
	if len(samples) != 5 || seen.Load() != 5 {
		t.Errorf("%d samples, interceptor saw %d calls; want 5 and 5", len(samples), seen.Load())
	}
}

// TestGRPCNoTarget: gRPC calls without target.grpc are refused up front.
func TestGRPCNoTarget(t *testing.T) {
	sc := k6opts.Scenario{Executor: k6opts.PerVUIterations, VUs: i64(1), Iterations: i64(1)}
	if _, err := New(&k6.Load{Scenario: sc, Requests: []k6.Request{checkout("demo", 1, 0)}}); err == nil {
		t.Fatal("a load with gRPC calls and no target was accepted")
	}
}
