package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"faultline.dev/faultline/internal/protos"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// checkGRPC checks the gRPC calls of the load: no HTTP-only fields on a
// call (and no grpcStatus on an HTTP request), a status code that exists,
// target.grpc set; and, with target.protos, that each method exists and
// its message fits the method's input type. Then the grpcFaults
// (checkGRPCFaults).
func checkGRPC(l *Loaded, add func(path, format string, args ...any)) {
	s := l.Scenario
	var files *protoregistry.Files
	if p := s.Target.Protos; p != nil && hasGRPC(s) {
		var err error
		if files, err = protos.Parse(context.Background(), p.Files, p.ImportPaths); err != nil {
			add("target.protos.files", "%v", err)
		}
	}
	for i, r := range s.Load.Requests {
		at := fmt.Sprintf("load.requests.%d", i)
		switch {
		case r.GRPC == nil && r.Path == "":
			add(at, "a request needs path (an HTTP request) or grpc (a gRPC call): add one")
			continue
		case r.GRPC != nil && r.Path != "":
			add(at, "a request is HTTP (path) or gRPC (grpc), not both: split it into two requests")
			continue
		}
		if r.GRPC == nil {
			if r.Expect != nil && r.Expect.GRPCStatus != nil {
				add(at+".expect.grpcStatus", "grpcStatus is the status of a gRPC call; this request is HTTP (path): use expect.status")
			}
			continue
		}
		if r.Method != "" {
			add(at+".method", "method is the HTTP method; a gRPC call names its method in grpc.method: remove method")
		}
		if len(r.Headers) > 0 {
			add(at+".headers", "headers are for HTTP requests; a gRPC call sends grpc.metadata: move them there")
		}
		if r.Body != nil {
			add(at+".body", "body is for HTTP requests; a gRPC call sends grpc.message: move it there")
		}
		if e := r.Expect; e != nil {
			if e.Status != 0 {
				add(at+".expect.status", "a gRPC call has no HTTP status to expect: use expect.grpcStatus (a code name such as \"OK\")")
			}
			if e.BodyContains != nil {
				add(at+".expect.bodyContains", "a gRPC call has no body to search: remove bodyContains")
			}
			if e.GRPCStatus != nil {
				if _, err := e.GRPCStatus.Code(); err != nil {
					add(at+".expect.grpcStatus", "%v", err)
				}
			}
		}
		if s.Target.GRPC == "" {
			add(at+".grpc", "a gRPC call goes to target.grpc: set it to the service's gRPC address (host:port)")
		}
		if files == nil {
			continue
		}
		md, err := protos.FindMethod(files, r.GRPC.Method)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, protos.ErrNoMethod) {
				msg = strings.TrimPrefix(msg, protos.ErrNoMethod.Error()+": ") + " in target.protos: check the method's name and the files"
			}
			add(at+".grpc.method", "%s", msg)
			continue
		}
		if err := protos.Check(md.Input(), r.GRPC.Message); err != nil {
			var fe *protos.FieldError
			if errors.As(err, &fe) && len(fe.Path) > 0 {
				add(at+".grpc.message."+strings.Join(fe.Path, "."), "the message of %s does not fit %s: %s", r.GRPC.Method, md.Input().FullName(), fe.Msg)
			} else {
				add(at+".grpc.message", "the message of %s does not fit %s: %v", r.GRPC.Method, md.Input().FullName(), err)
			}
		}
	}
	checkGRPCFaults(l, add)
}

// checkGRPCFaults checks each grpcFault: abort or delay, a status code
// that exists, and gRPC calls in the load for it to act on.
func checkGRPCFaults(l *Loaded, add func(path, format string, args ...any)) {
	s := l.Scenario
	for _, name := range sortedKeys(s.Faults) {
		g := s.Faults[name].GRPCFault
		if g == nil {
			continue
		}
		at := "faults." + name + ".grpcFault"
		if g.Abort == nil && g.Delay == 0 {
			add(at, "a grpcFault needs abort (a status code) or delay: add one")
		}
		if g.Abort != nil {
			if code, err := g.Abort.Code(); err != nil {
				add(at+".abort", "%v", err)
			} else if code == 0 {
				add(at+".abort", "abort OK is no fault: name the status the calls should fail with, such as \"UNAVAILABLE\"")
			}
		}
		if !hasGRPC(s) {
			add(at, "the load has no gRPC calls (load.requests with grpc) for this grpcFault to act on")
		}
	}
}

func hasGRPC(s *Scenario) bool {
	for _, r := range s.Load.Requests {
		if r.GRPC != nil {
			return true
		}
	}
	return false
}
