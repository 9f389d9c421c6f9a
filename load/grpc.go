package load

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/internal/protos"
)

// connectTimeout bounds how long a VU waits for its gRPC connection to be
// ready before a call (the call then fails on its own).
const connectTimeout = 10 * time.Second

// WithGRPCInterceptor sets a unary client interceptor every gRPC call of the
// engine goes through: the local backend's HTTP-fault equivalents (abort,
// delay) for gRPC. It sees the call's method and the connection's target.
func WithGRPCInterceptor(i grpc.UnaryClientInterceptor) Option {
	return func(e *Engine) { e.grpcInt = i }
}

// grpcCall is a gRPC request of the mix, its message built once the
// method's descriptor is known.
type grpcCall struct {
	method   string // "/package.Service/Method"
	full     string // "package.Service/Method"
	service  string
	md       metadata.MD
	message  map[string]any
	expected codes.Code

	once sync.Once
	in   *dynamicpb.Message
	out  protoreflect.MessageDescriptor
	err  error
}

// grpcDescs are the descriptors of the load's calls: from target.protos
// when New parses them, else from the first VU's reflection request.
type grpcDescs struct {
	t        *k6.GRPCTarget
	services []string

	mu  sync.Mutex
	res protos.Resolver
}

// newGRPC prepares the gRPC side of a mix: descriptors from the proto
// files now, when there are files.
func newGRPC(t *k6.GRPCTarget, calls []*grpcCall) (*grpcDescs, error) {
	if t == nil || t.Address == "" {
		return nil, fmt.Errorf("the load has gRPC calls and no gRPC target (target.grpc)")
	}
	d := &grpcDescs{t: t}
	seen := map[string]bool{}
	for _, c := range calls {
		if !seen[c.service] {
			seen[c.service] = true
			d.services = append(d.services, c.service)
		}
	}
	if len(t.ProtoFiles) > 0 {
		files, err := protos.Parse(context.Background(), t.ProtoFiles, t.ImportPaths)
		if err != nil {
			return nil, err
		}
		d.res = files
		for _, c := range calls {
			if c.prepare(files); c.err != nil {
				return nil, c.err
			}
		}
	}
	return d, nil
}

// resolver returns the descriptors, asking the server's reflection service
// over cc when they are not known yet.
func (d *grpcDescs) resolver(ctx context.Context, cc *grpc.ClientConn) (protos.Resolver, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.res != nil {
		return d.res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	files, err := protos.Reflect(ctx, cc, d.services)
	if err != nil {
		return nil, err
	}
	d.res = files
	return files, nil
}

// prepare finds the call's method and builds its message, once.
func (c *grpcCall) prepare(r protos.Resolver) {
	c.once.Do(func() {
		md, err := protos.FindMethod(r, c.full)
		if err != nil {
			c.err = fmt.Errorf("gRPC %s: %w", c.full, err)
			return
		}
		in, err := protos.Marshal(md.Input(), c.message)
		if err != nil {
			c.err = fmt.Errorf("gRPC %s: the message does not fit %s: %w", c.full, md.Input().FullName(), err)
			return
		}
		c.in, c.out = in, md.Output()
	})
}

func newGRPCCall(q k6.Request) (*grpcCall, error) {
	svc, _, err := protos.SplitMethod(q.GRPC.Method)
	if err != nil {
		return nil, err
	}
	c := &grpcCall{method: "/" + q.GRPC.Method, full: q.GRPC.Method, service: string(svc), message: q.GRPC.Message,
		md: metadata.New(q.GRPC.Metadata), expected: codes.Code(q.GRPCStatus)}
	return c, nil
}

// grpcConn is the VU's gRPC connection (one per VU, as a k6 VU's client
// has), made on its first call through the engine's dialer.
func (v *vu) grpcConn() (*grpc.ClientConn, error) {
	if v.gc != nil {
		return v.gc, nil
	}
	t := v.e.grpc.t
	creds := insecure.NewCredentials()
	if t.TLS {
		cfg := v.e.tls
		if cfg == nil {
			cfg = &tls.Config{}
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return v.e.dial(ctx, "tcp", addr)
		}),
		grpc.WithUserAgent(v.e.ua),
	}
	if v.e.grpcInt != nil {
		opts = append(opts, grpc.WithUnaryInterceptor(v.e.grpcInt))
	}
	cc, err := grpc.NewClient("passthrough:///"+t.Address, opts...)
	if err != nil {
		return nil, err
	}
	v.gc = cc
	return cc, nil
}

// ready waits, bounded, until cc is connected, so that connecting is not
// part of a call's duration (as for HTTP).
func (v *vu) ready(cc *grpc.ClientConn) {
	ctx, cancel := context.WithTimeout(v.ctx, connectTimeout)
	defer cancel()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return
		case connectivity.Idle:
			cc.Connect()
		case connectivity.TransientFailure, connectivity.Shutdown:
			return
		}
		if !cc.WaitForStateChange(ctx, s) {
			return
		}
	}
}

// invoke runs one gRPC call of the mix.
func (v *vu) invoke(r *request, s *Sample) {
	s.Request, s.GRPC = r.idx, true
	c := r.grpc
	cc, err := v.grpcConn()
	if err != nil {
		v.grpcDone(r, s, time.Now(), err)
		return
	}
	if c.in == nil && c.err == nil {
		res, err := v.e.grpc.resolver(v.ctx, cc)
		if err != nil {
			v.grpcDone(r, s, time.Now(), err)
			return
		}
		c.prepare(res)
	}
	if c.err != nil {
		v.grpcDone(r, s, time.Now(), status.Error(codes.InvalidArgument, c.err.Error()))
		return
	}
	v.ready(cc)
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(v.ctx, c.md), RequestTimeout)
	defer cancel()
	start := time.Now()
	err = cc.Invoke(ctx, c.method, c.in, dynamicpb.NewMessage(c.out))
	v.grpcDone(r, s, start, err)
}

// grpcDone fills a call's sample: its status, failed when it is not the
// expected one, and the status check.
func (v *vu) grpcDone(r *request, s *Sample, start time.Time, err error) {
	s.Start, s.End = start, time.Now()
	code := status.Code(err)
	s.GRPCCode, s.Status, s.Err = int(code), 0, err
	s.Failed = code != r.grpc.expected
	s.ChecksTotal, s.ChecksPassed = 1, 0
	if !s.Failed {
		s.ChecksPassed = 1
	}
}
