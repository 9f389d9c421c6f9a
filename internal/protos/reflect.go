package protos

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// maxReflectFiles bounds how many files one reflection exchange may bring
// (a server describing its services with more is refused).
const maxReflectFiles = 10000

// Reflect asks a server's reflection service (grpc.reflection.v1) for the
// files that define the given services, their imports included.
func Reflect(ctx context.Context, cc grpc.ClientConnInterface, services []string) (*protoregistry.Files, error) {
	stream, err := rpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("reflection: %w", err)
	}
	defer func() { _ = stream.CloseSend() }()
	got := map[string]*descriptorpb.FileDescriptorProto{}
	ask := func(req *rpb.ServerReflectionRequest) error {
		if err := stream.Send(req); err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if e := resp.GetErrorResponse(); e != nil {
			return fmt.Errorf("%s (code %d)", e.GetErrorMessage(), e.GetErrorCode())
		}
		fds := resp.GetFileDescriptorResponse()
		if fds == nil {
			return fmt.Errorf("the server answered without file descriptors")
		}
		for _, b := range fds.GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("a file descriptor: %w", err)
			}
			got[fd.GetName()] = fd
		}
		if len(got) > maxReflectFiles {
			return fmt.Errorf("more than %d files", maxReflectFiles)
		}
		return nil
	}
	for _, s := range services {
		if err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: s}}); err != nil {
			return nil, fmt.Errorf("reflection: service %s: %w", s, err)
		}
	}
	// Imports the server left out (it may send only what the client has
	// not seen): ask for each by name, a bounded number of rounds.
	for range maxReflectFiles {
		var missing string
		for _, fd := range got {
			for _, dep := range fd.GetDependency() {
				if _, ok := got[dep]; !ok {
					if _, err := protoregistry.GlobalFiles.FindFileByPath(dep); err != nil {
						missing = dep
					}
				}
			}
		}
		if missing == "" {
			break
		}
		if err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: missing}}); err != nil {
			return nil, fmt.Errorf("reflection: file %s: %w", missing, err)
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range got {
		set.File = append(set.File, fd)
	}
	// Well-known imports the server did not send come from the ones linked in.
	for _, fd := range got {
		for _, dep := range fd.GetDependency() {
			if _, ok := got[dep]; ok {
				continue
			}
			if f, err := protoregistry.GlobalFiles.FindFileByPath(dep); err == nil {
				got[dep] = protodesc.ToFileDescriptorProto(f)
				set.File = append(set.File, got[dep])
			}
		}
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("reflection: the server's descriptors: %w", err)
	}
	return files, nil
}
