package inject

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"faultline.dev/faultline/schema"
)

const checkout = "/faultline.demo.v1.Shop/Checkout"

// fakeInvoker stands in for the connection: it counts the calls that reach
// it and answers with err.
func fakeInvoker(calls *atomic.Int64, err error) grpc.UnaryInvoker {
	return func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		calls.Add(1)
		return err
	}
}

func grpcFaultOf(target, method, abort string, delay time.Duration) schema.Fault {
	g := &schema.GRPCFault{Target: target, Method: method, Delay: schema.Duration(delay)}
	if abort != "" {
		g.Abort = ptr(schema.GRPCStatus(abort))
	}
	return schema.Fault{GRPCFault: g}
}

// TestGRPCFault: each grpcFault against a call of the demo's Checkout: the
// status the caller gets, whether the call reached the server, the delay
// it got, and the abort count.
func TestGRPCFault(t *testing.T) {
	notFound := status.Error(codes.NotFound, "no such sku")
	for _, tc := range []struct {
		name      string
		fault     *schema.Fault // nil: none active
		server    error
		want      codes.Code
		reached   bool
		minDelay  time.Duration
		abortedBy int64
	}{
		{"no fault", nil, nil, codes.OK, true, 0, 0},
		{"request abort by name", ptr(grpcFaultOf("", "", "UNAVAILABLE", 0)), nil, codes.Unavailable, false, 0, 1},
		{"request abort by number", ptr(grpcFaultOf("request", "*Checkout", "8", 0)), nil, codes.ResourceExhausted, false, 0, 1},
		{"response abort", ptr(grpcFaultOf("response", "", "INTERNAL", 0)), nil, codes.Internal, true, 0, 1},
		{"response abort replaces an error", ptr(grpcFaultOf("response", "", "ABORTED", 0)), notFound, codes.Aborted, true, 0, 1},
		{"other method", ptr(grpcFaultOf("", "faultline.demo.v1.Shop/Refund", "UNAVAILABLE", 0)), nil, codes.OK, true, 0, 0},
		{"service glob", ptr(grpcFaultOf("", "faultline.demo.v1.Shop/*", "UNAVAILABLE", 0)), nil, codes.Unavailable, false, 0, 1},
		{"request delay", ptr(grpcFaultOf("", "", "", 30*time.Millisecond)), nil, codes.OK, true, 30 * time.Millisecond, 0},
		{"response delay keeps the status", ptr(grpcFaultOf("response", "", "", 30*time.Millisecond)), notFound, codes.NotFound, true, 30 * time.Millisecond, 0},
		{"delay then abort", ptr(grpcFaultOf("", "", "DEADLINE_EXCEEDED", 30*time.Millisecond)), nil, codes.DeadlineExceeded, false, 30 * time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFaults()
			if tc.fault != nil {
				mustSet(t, f, "f", *tc.fault)
			}
			var calls atomic.Int64
			start := time.Now()
			err := f.UnaryInterceptor()(t.Context(), checkout, nil, nil, nil, fakeInvoker(&calls, tc.server))
			took := time.Since(start)
			if got := status.Code(err); got != tc.want {
				t.Errorf("status %v (%v), want %v", got, err, tc.want)
			}
			if got := calls.Load() == 1; got != tc.reached {
				t.Errorf("the call reached the server: %v, want %v", got, tc.reached)
			}
			if took < tc.minDelay || (tc.minDelay == 0 && took > time.Second) {
				t.Errorf("took %v, want at least %v", took, tc.minDelay)
			}
			if got := f.Aborted(); got != tc.abortedBy {
				t.Errorf("Aborted() = %d, want %d", got, tc.abortedBy)
			}
			if tc.want != codes.OK && tc.abortedBy > 0 && !strings.Contains(status.Convert(err).Message(), `grpcFault "f"`) {
				t.Errorf("the abort's message %q does not name the fault", status.Convert(err).Message())
			}
		})
	}
}

// TestGRPCFaultClear: clearing a grpcFault ends a delay in progress (the
// call goes on, unaborted); a call whose deadline ends during a delay gets
// DEADLINE_EXCEEDED without reaching the server.
func TestGRPCFaultClear(t *testing.T) {
	f := NewFaults()
	mustSet(t, f, "slow", grpcFaultOf("", "", "UNAVAILABLE", 10*time.Second))
	var calls atomic.Int64
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.Clear("slow")
	}()
	start := time.Now()
	err := f.UnaryInterceptor()(t.Context(), checkout, nil, nil, nil, fakeInvoker(&calls, nil))
	if took := time.Since(start); err != nil || calls.Load() != 1 || took > 5*time.Second {
		t.Errorf("after Clear: %v, %d calls, took %v; want the call through at once", err, calls.Load(), took)
	}

	mustSet(t, f, "slow", grpcFaultOf("", "", "", 10*time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	calls.Store(0)
	err = f.UnaryInterceptor()(ctx, checkout, nil, nil, nil, fakeInvoker(&calls, nil))
	if status.Code(err) != codes.DeadlineExceeded || calls.Load() != 0 {
		t.Errorf("deadline during the delay: %v, %d calls; want DEADLINE_EXCEEDED and none", err, calls.Load())
	}
}

// TestGRPCFaultRejects: Set refuses a grpcFault it cannot run as written.
func TestGRPCFaultRejects(t *testing.T) {
	f := NewFaults()
	for _, tc := range []struct {
		name  string
		fault schema.Fault
		want  string
	}{
		{"nothing", grpcFaultOf("", "", "", 0), "abort or delay"},
		{"ok", grpcFaultOf("", "", "OK", 0), "no fault"},
		{"code", grpcFaultOf("", "", "UNAVAILABEL", 0), "not a gRPC status code"},
		{"target", grpcFaultOf("both", "", "UNAVAILABLE", 0), "target"},
		{"negative", grpcFaultOf("", "", "", -time.Second), "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.Set(tc.name, tc.fault); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Set = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if a := f.Active(); len(a) != 0 {
		t.Errorf("active after refusals: %v", a)
	}
}
