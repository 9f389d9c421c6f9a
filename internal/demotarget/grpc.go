package demotarget

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"faultline.dev/faultline/internal/protos"
)

// ShopProto is the gRPC service's definition (faultline.demo.v1.Shop).
//
//go:embed shop.proto
var ShopProto string

// ShopService and CheckoutMethod name the gRPC service and its method.
const (
	ShopService    = "faultline.demo.v1.Shop"
	CheckoutMethod = ShopService + "/Checkout"
)

// shopDescs are the service's descriptors, compiled from ShopProto.
type shopDescs struct {
	files     *protoregistry.Files
	req, resp protoreflect.MessageDescriptor
}

func loadShop() (*shopDescs, error) {
	files, err := protos.ParseSource(context.Background(), map[string]string{"faultline/demo/v1/shop.proto": ShopProto})
	if err != nil {
		return nil, err
	}
	md, err := protos.FindMethod(files, CheckoutMethod)
	if err != nil {
		return nil, err
	}
	return &shopDescs{files: files, req: md.Input(), resp: md.Output()}, nil
}

// resolver finds the shop's descriptors, then the linked-in ones (health,
// reflection): what the reflection service describes.
type resolver struct{ own *protoregistry.Files }

func (r resolver) FindFileByPath(p string) (protoreflect.FileDescriptor, error) {
	if f, err := r.own.FindFileByPath(p); err == nil {
		return f, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(p)
}

func (r resolver) FindDescriptorByName(n protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.own.FindDescriptorByName(n); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(n)
}

// newGRPCServer makes the gRPC server: Shop, health (grpc.health.v1:
// SERVING for "" and the shop) and reflection (v1 and v1alpha).
func (s *Server) newGRPCServer() (*grpc.Server, error) {
	d, err := loadShop()
	if err != nil {
		return nil, fmt.Errorf("demo-target: the gRPC service's proto: %w", err)
	}
	g := grpc.NewServer()
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: ShopService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Checkout",
			Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
				req := dynamicpb.NewMessage(d.req)
				if err := dec(req); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, r any) (any, error) { return s.grpcCheckout(ctx, d, r.(*dynamicpb.Message)) }
				if in == nil {
					return h(ctx, req)
				}
				return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/" + CheckoutMethod}, h)
			},
		}},
		Metadata: "faultline/demo/v1/shop.proto",
	}, struct{}{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(ShopService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	rpb.RegisterServerReflectionServer(g, reflection.NewServerV1(reflection.ServerOptions{Services: g, DescriptorResolver: resolver{d.files}}))
	return g, nil
}

// grpcCheckout is POST /checkout over gRPC: INVALID_ARGUMENT for a bad
// quantity, NOT_FOUND for an unknown sku, DEADLINE_EXCEEDED when the
// payment did not answer in time, UNAVAILABLE when it failed or refused.
func (s *Server) grpcCheckout(ctx context.Context, d *shopDescs, req *dynamicpb.Message) (*dynamicpb.Message, error) {
	f := d.req.Fields()
	sku := req.Get(f.ByName("sku")).String()
	qty := int(req.Get(f.ByName("qty")).Int())
	order, amount, err := s.checkout(ctx, sku, qty)
	var ce *checkoutError
	if errors.As(err, &ce) {
		code := map[int]codes.Code{
			http.StatusBadRequest: codes.InvalidArgument, http.StatusNotFound: codes.NotFound,
			http.StatusServiceUnavailable: codes.DeadlineExceeded, http.StatusBadGateway: codes.Unavailable,
			StatusClientClosedRequest: codes.Canceled,
		}[ce.status]
		if code == codes.OK {
			code = codes.Internal
		}
		return nil, status.Error(code, ce.msg)
	}
	out := dynamicpb.NewMessage(d.resp)
	of := d.resp.Fields()
	out.Set(of.ByName("order"), protoreflect.ValueOfInt64(order))
	out.Set(of.ByName("sku"), protoreflect.ValueOfString(sku))
	out.Set(of.ByName("qty"), protoreflect.ValueOfInt32(int32(qty)))
	out.Set(of.ByName("amount_cents"), protoreflect.ValueOfInt64(int64(amount)))
	out.Set(of.ByName("status"), protoreflect.ValueOfString("paid"))
	return out, nil
}
