// Package protos finds gRPC method descriptors: parsed from .proto files
// (github.com/bufbuild/protocompile) or asked of a server's reflection
// service (grpc.reflection.v1). Both the engine, which builds dynamic
// messages from them, and vet, which checks a scenario's calls against
// them, use it.
package protos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Parse compiles .proto files, looking each up (and its imports) in
// importPaths, or in the current directory when there are none. The
// well-known types (google/protobuf/*.proto) are always available.
func Parse(ctx context.Context, files, importPaths []string) (*protoregistry.Files, error) {
	if len(importPaths) == 0 {
		importPaths = []string{"."}
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: importPaths}),
	}
	res, err := c.Compile(ctx, files...)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", strings.Join(files, ", "), err)
	}
	reg := &protoregistry.Files{}
	for _, f := range res {
		if err := register(reg, f); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// register adds f and, first, its imports to reg (once each).
func register(reg *protoregistry.Files, f protoreflect.FileDescriptor) error {
	if _, err := reg.FindFileByPath(f.Path()); err == nil {
		return nil
	}
	imps := f.Imports()
	for i := range imps.Len() {
		if err := register(reg, imps.Get(i).FileDescriptor); err != nil {
			return err
		}
	}
	return reg.RegisterFile(f)
}

// SplitMethod splits "package.Service/Method" into the service's full
// name and the method's name.
func SplitMethod(full string) (service protoreflect.FullName, method protoreflect.Name, err error) {
	s, m, ok := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	if !ok || s == "" || m == "" || strings.Contains(m, "/") {
		return "", "", fmt.Errorf("method %q: want \"package.Service/Method\"", full)
	}
	return protoreflect.FullName(s), protoreflect.Name(m), nil
}

// ErrNoMethod says a method is not in the descriptors.
var ErrNoMethod = errors.New("no such method")

// Resolver finds descriptors by name: *protoregistry.Files, or a
// reflection client's cache.
type Resolver interface {
	FindDescriptorByName(protoreflect.FullName) (protoreflect.Descriptor, error)
}

// FindMethod looks up a unary method by its full name.
func FindMethod(r Resolver, full string) (protoreflect.MethodDescriptor, error) {
	svc, name, err := SplitMethod(full)
	if err != nil {
		return nil, err
	}
	d, err := r.FindDescriptorByName(svc)
	if err != nil {
		return nil, fmt.Errorf("%w: no service %s is described", ErrNoMethod, svc)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%w: %s is a %s, not a service", ErrNoMethod, svc, kindOf(d))
	}
	md := sd.Methods().ByName(name)
	if md == nil {
		var have []string
		for i := range sd.Methods().Len() {
			have = append(have, string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("%w: service %s has no method %s (it has %s)", ErrNoMethod, svc, name, strings.Join(have, ", "))
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("%s is a streaming method: only unary calls can be loaded", full)
	}
	return md, nil
}

func kindOf(d protoreflect.Descriptor) string {
	switch d.(type) {
	case protoreflect.MessageDescriptor:
		return "message"
	case protoreflect.EnumDescriptor:
		return "enum"
	case protoreflect.FieldDescriptor:
		return "field"
	}
	return "descriptor"
}

// ParseSource compiles .proto sources held in memory, by file name.
func ParseSource(ctx context.Context, srcs map[string]string) (*protoregistry.Files, error) {
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	slices.Sort(names)
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(srcs)})}
	res, err := c.Compile(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", strings.Join(names, ", "), err)
	}
	reg := &protoregistry.Files{}
	for _, f := range res {
		if err := register(reg, f); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
