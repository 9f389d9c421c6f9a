package baseimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/auth"

	"faultline.dev/faultline/internal/baseimage"
	"faultline.dev/faultline/internal/registrytest"
	"faultline.dev/faultline/oci"
)

var anonymous = oci.Options{Credential: func(context.Context, string) (auth.Credential, error) { return auth.EmptyCredential, nil }}

// TestKoImage: the base image pushed into a real registry, faultline built
// into an image on it with the pinned ko (tools/ko, .ko.yaml), the image's
// manifest and config read back, and the binary taken out of its layer:
// static (no ELF interpreter), and it runs.
func TestKoImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds faultline with ko (minutes on a cold cache)")
	}
	reg := registrytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	base := reg.Host + "/faultline/base:static"
	if _, err := baseimage.Push(ctx, base, runtime.GOARCH, anonymous); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	ko := exec.CommandContext(ctx, "go", "tool", "-modfile=tools/ko/go.mod", "ko", "build", "--bare", "--insecure-registry",
		"--sbom=none", "--platform=linux/"+runtime.GOARCH, "./cmd/faultline")
	ko.Dir = root
	ko.Env = append(os.Environ(), "KO_DOCKER_REPO="+reg.Host+"/faultline/faultline", "KO_DEFAULTBASEIMAGE="+base, "DOCKER_CONFIG="+t.TempDir())
	var stdout, stderr bytes.Buffer
	ko.Stdout, ko.Stderr = &stdout, &stderr
	start := time.Now()
	if err := ko.Run(); err != nil {
		t.Fatalf("ko build: %v\n%s", err, stderr.String())
	}
	t.Logf("ko build: %s", time.Since(start).Round(time.Second))
	ref := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(ref, reg.Host+"/faultline/faultline@sha256:") {
		t.Fatalf("ko printed %q, want the image by digest\n%s", ref, stderr.String())
	}

	// Read it back.
	r, err := oci.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := oci.Repository(r, anonymous)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, r.Reference)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	cb, err := content.FetchAll(ctx, repo, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/ko-app/faultline" {
		t.Errorf("config: %s/%s, entrypoint %v", cfg.OS, cfg.Architecture, cfg.Config.Entrypoint)
	}
	if cfg.Config.User != "65532:65532" || cfg.Config.WorkingDir != "/home/nonroot" {
		t.Errorf("the base's user and working directory are lost: %q %q", cfg.Config.User, cfg.Config.WorkingDir)
	}
	if len(m.Layers) < 2 || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d layers, %d diff ids: want the base's and faultline's", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}

	// The binary, out of its layer.
	bin := filepath.Join(t.TempDir(), "faultline")
	found := map[string]bool{}
	for _, l := range m.Layers {
		b, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(h.Name, "/")
			found[name] = true
			if name == "ko-app/faultline" && h.Typeflag == tar.TypeReg {
				data, _ := io.ReadAll(tr)
				os.WriteFile(bin, data, 0o755)
			}
		}
	}
	for _, want := range []string{"ko-app/faultline", "etc/passwd", "tmp/"} {
		if !found[want] {
			t.Errorf("the image has no %s (has %d entries)", want, len(found))
		}
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the image's faultline is not an ELF binary: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's faultline has an ELF interpreter: it is not static and cannot run on the base")
		}
	}
	f.Close()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "faultline ") {
		t.Errorf("the image's faultline version: %v %s", err, out)
	}
}

// TestBuildDeterministic: the base is the same bytes every time.
func TestBuildDeterministic(t *testing.T) {
	a, err := baseimage.Build("amd64", []byte("pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := baseimage.Build("amd64", []byte("pem"))
	if !bytes.Equal(a.Manifest, b.Manifest) || !bytes.Equal(a.Layer, b.Layer) {
		t.Error("two builds of the base differ")
	}
}
