// Package baseimage builds and pushes the base image of faultline's ko
// image: no distribution, no shell, one small layer with what a static Go
// binary needs at run time and cannot carry itself:
//
//	/etc/ssl/certs/ca-certificates.crt  CA roots for HTTPS (registries, Prometheus, the API server), copied from this machine (Debian's ca-certificates)
//	/etc/passwd, /etc/group             root and nonroot (65532), so os/user and HOME work
//	/home/nonroot                       the working directory, writable by nonroot (reports land in out/ below it)
//	/tmp                                mode 1777, for os.MkdirTemp
//
// The config runs as 65532:65532 in /home/nonroot. faultline is built with
// CGO_ENABLED=0 (ko's default), so it needs no libc. ko cannot pull a base
// image from anywhere but a registry, which is why this one is pushed there.
package baseimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"faultline.dev/faultline/oci"
)

// CABundle is where Debian's ca-certificates keeps the CA roots.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

// Image is the base image in memory.
type Image struct {
	Manifest, Config, Layer []byte
}

// Build builds the image for linux/arch with the CA bundle ca (PEM; nil
// for none).
func Build(arch string, ca []byte) (*Image, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	epoch := time.Unix(0, 0).UTC()
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755, 0) },
		func() error {
			return file("etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
		},
		func() error { return file("etc/group", []byte("root:x:0:\nnonroot:x:65532:\n")) },
		func() error { return dir("home/", 0o755, 0) },
		func() error { return dir("home/nonroot/", 0o755, 65532) },
		func() error { return dir("tmp/", 0o1777, 0) },
	}
	if ca != nil {
		steps = append(steps,
			func() error { return dir("etc/ssl/", 0o755, 0) },
			func() error { return dir("etc/ssl/certs/", 0o755, 0) },
			func() error { return file("etc/ssl/certs/ca-certificates.crt", ca) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	if err := zw.Close(); err != nil {
		return nil, err
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: arch, OS: "linux"},
		Config: ocispec.ImageConfig{
			User:       "65532:65532",
			WorkingDir: "/home/nonroot",
			Env:        []string{"PATH=/ko-app:/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + CABundle},
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarBuf.Bytes())}},
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())}},
		Annotations: map[string]string{
			"org.opencontainers.image.description": "faultline's base: CA roots, passwd/group, /tmp; no shell, no libc",
		},
	}
	mData, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &Image{Manifest: mData, Config: cfgData, Layer: gz.Bytes()}, nil
}

// Push builds the image (with this machine's CA bundle when it has one) and
// pushes it to ref (REGISTRY/REPO:TAG), blobs first. It returns the
// manifest digest.
func Push(ctx context.Context, ref string, arch string, opts oci.Options) (digest.Digest, error) {
	r, err := oci.ParseReference(ref)
	if err != nil {
		return "", err
	}
	if r.Reference == "" {
		r.Reference = "latest"
	}
	ca, err := os.ReadFile(CABundle)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	img, err := Build(arch, ca)
	if err != nil {
		return "", err
	}
	repo, err := oci.Repository(r, opts)
	if err != nil {
		return "", err
	}
	var m ocispec.Manifest
	json.Unmarshal(img.Manifest, &m)
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{m.Config, img.Config}, {m.Layers[0], img.Layer}} {
		if err := repo.Push(ctx, b.d, bytes.NewReader(b.data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return "", fmt.Errorf("pushing %s: %w", b.d.Digest, err)
		}
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(img.Manifest), Size: int64(len(img.Manifest))}
	if err := repo.PushReference(ctx, md, bytes.NewReader(img.Manifest), r.Reference); err != nil {
		return "", fmt.Errorf("pushing the manifest as %s: %w", r.Reference, err)
	}
	return md.Digest, nil
}
