package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binaries are the programs the harness runs, built from their Go modules.
type Binaries struct {
	Faultline      string // faultline.dev/faultline ./cmd/faultline
	Etcd           string // e2e/kube: etcd v3.7.0 (go.etcd.io/etcd/server/v3)
	KubeAPIServer  string // e2e/kube: kube-apiserver of k8s.io/kubernetes v1.37.2
	ControllerMgr  string // e2e/chaosmesh: Chaos Mesh's chaos-controller-manager at the pinned commit
	DaemonRecorder string // e2e/chaosmesh: the recording chaos-daemon (a test stand-in)
}

// binary is one program and the module it is built from (relative to the repository root).
type binary struct {
	out    *string
	name   string
	module string
	pkg    string
}

// RepoRoot finds the repository root (the directory of faultline's go.mod) above the working
// directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 20 {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module faultline.dev/faultline\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("harness: no faultline go.mod above the working directory")
}

// BinDir is where the binaries are cached: $FAULTLINE_E2E_BIN, else <repo>/bin/e2e.
func BinDir(root string) string {
	if d := os.Getenv("FAULTLINE_E2E_BIN"); d != "" {
		return d
	}
	return filepath.Join(root, "bin", "e2e")
}

// Build builds every binary into BinDir with `go build` (the Go build cache makes an
// up-to-date build a matter of seconds; a cold one takes minutes) and logs each build's time.
func Build(ctx context.Context, logf func(string, ...any)) (*Binaries, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir := BinDir(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b := &Binaries{}
	for _, bin := range []binary{
		{&b.Faultline, "faultline", ".", "./cmd/faultline"},
		{&b.DaemonRecorder, "chaos-daemon-recorder", "e2e/chaosmesh", "./cmd/chaos-daemon-recorder"},
		{&b.ControllerMgr, "chaos-controller-manager", "e2e/chaosmesh", "./cmd/chaos-controller-manager"},
		{&b.Etcd, "etcd", "e2e/kube", "./cmd/etcd"},
		{&b.KubeAPIServer, "kube-apiserver", "e2e/kube", "./cmd/kube-apiserver"},
	} {
		out := filepath.Join(dir, bin.name)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, bin.pkg)
		cmd.Dir = filepath.Join(root, bin.module)
		// GOFLAGS from the caller (e.g. -mod=mod) must not change the nested modules' builds.
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		cmd.WaitDelay = 10 * time.Second
		msg, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("building %s (%s in %s): %w\n%s", bin.name, bin.pkg, bin.module, err, strings.TrimSpace(string(msg)))
		}
		logf("built %s in %s", bin.name, time.Since(start).Round(100*time.Millisecond))
		*bin.out = out
	}
	if f := os.Getenv("FAULTLINE_E2E_FAULTLINE"); f != "" {
		// A faultline binary built elsewhere (a release, a patched tree) instead of the working
		// tree's.
		logf("faultline: using %s ($FAULTLINE_E2E_FAULTLINE)", f)
		b.Faultline = f
	}
	return b, nil
}
