package inject

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"faultline.dev/faultline/schema"
)

// grpcFault is one compiled grpcFault.
type grpcFault struct {
	name     string
	live     atomic.Bool
	response bool           // target "response"
	method   *regexp.Regexp // on "package.Service/Method"
	abort    bool
	code     codes.Code
	delay    time.Duration
}

func compileGRPC(name string, g *schema.GRPCFault) (*grpcFault, error) {
	c := &grpcFault{name: name, delay: g.Delay.Std()}
	c.live.Store(true)
	switch g.Target {
	case "", "request":
	case "response":
		c.response = true
	default:
		return nil, fmt.Errorf("fault %q: grpcFault.target is %q: want \"request\" or \"response\"", name, g.Target)
	}
	if g.Delay < 0 {
		return nil, fmt.Errorf("fault %q: grpcFault.delay is negative (%v)", name, g.Delay)
	}
	if g.Abort != nil {
		code, err := g.Abort.Code()
		if err != nil {
			return nil, fmt.Errorf("fault %q: grpcFault.abort: %w", name, err)
		}
		if code == 0 {
			return nil, fmt.Errorf("fault %q: grpcFault.abort is OK, which is no fault", name)
		}
		c.abort, c.code = true, codes.Code(code)
	}
	if !c.abort && c.delay == 0 {
		return nil, fmt.Errorf("fault %q: grpcFault needs abort or delay", name)
	}
	glob := g.Method
	if glob == "" {
		glob = "*"
	}
	re, err := globRegexp(glob)
	if err != nil {
		return nil, fmt.Errorf("fault %q: grpcFault.method %q: %w", name, g.Method, err)
	}
	c.method = re
	return c, nil
}

// abortError is the status an aborting grpcFault ends a call with.
func (g *grpcFault) abortError() error {
	return status.Errorf(g.code, "faultline grpcFault %q: call aborted with %s", g.name, schema.GRPCCodeName(int(g.code)))
}

// applyGRPC runs the fault on one side of a call: the delay, then the abort
// (nil when the fault was cleared meanwhile or does not abort).
func (f *Faults) applyGRPC(ctx context.Context, g *grpcFault) error {
	if g.delay > 0 && !f.sleepWhile(ctx, g.delay, &g.live) {
		return status.FromContextError(context.Cause(ctx)).Err()
	}
	if !g.live.Load() || !g.abort {
		return nil
	}
	f.aborted.Add(1)
	return g.abortError()
}

// UnaryInterceptor returns the grpcFaults as a gRPC client interceptor (for
// load.WithGRPCInterceptor): while one is active, the engine's calls whose
// method matches its glob are delayed and aborted with its status; with
// none active a call costs one atomic load more.
func (f *Faults) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		fs := f.load()
		if len(fs.grpc) == 0 {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		full := strings.TrimPrefix(method, "/")
		var onResponse []*grpcFault
		for _, g := range fs.grpc {
			if !g.method.MatchString(full) {
				continue
			}
			if g.response {
				onResponse = append(onResponse, g)
				continue
			}
			if err := f.applyGRPC(ctx, g); err != nil {
				return err
			}
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		for _, g := range onResponse {
			if ferr := f.applyGRPC(ctx, g); ferr != nil {
				return ferr
			}
		}
		return err
	}
}
