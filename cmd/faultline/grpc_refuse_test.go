package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/schema"
)

// TestInClusterGRPC: --load in-cluster runs gRPC calls described by
// reflection, judged by the runners' thresholds or from target.prometheus,
// and refuses them with target.protos, naming the call and the way out.
func TestInClusterGRPC(t *testing.T) {
	call := schema.Request{GRPC: &schema.GRPCCall{Method: "faultline.demo.v1.Shop/Checkout"}}
	for _, tc := range []struct {
		name   string
		target schema.Target
		reqs   []schema.Request
		want   string // "" accepted
	}{
		{"http only", schema.Target{Protos: &schema.Protos{Files: []string{"a.proto"}}}, []schema.Request{{Path: "/"}}, ""},
		{"reflection", schema.Target{GRPC: "127.0.0.1:1"}, []schema.Request{{Path: "/"}, call}, ""},
		{"protos", schema.Target{GRPC: "127.0.0.1:1", Protos: &schema.Protos{Files: []string{"a.proto"}}}, []schema.Request{call}, "ConfigMap carries only the script"},
		{"prometheus", schema.Target{GRPC: "127.0.0.1:1", Prometheus: &schema.PrometheusTarget{URL: "http://127.0.0.1:9090"}}, []schema.Request{call}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := inClusterGRPC(&plan.Plan{Source: &schema.Scenario{Target: tc.target, Load: schema.Load{Requests: tc.reqs}}})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Shop/Checkout")):
				t.Errorf("err = %v, want one naming the call and %q", err, tc.want)
			}
		})
	}
}

// TestRunKubernetesGRPCFault: `run --backend kubernetes` refuses a
// grpcFault before it reads a kubeconfig, at the fault's position, with the
// usage exit code.
func TestRunKubernetesGRPCFault(t *testing.T) {
	dir := t.TempDir()
	src := `name: gf
version: 1.0.0
target:
  url: http://127.0.0.1:1
  grpc: 127.0.0.1:2
  kubernetes: {namespace: shop, selector: {app: checkout}}
load:
  executor: constant-vus
  vus: 1
  duration: 10s
  requests:
    - grpc: {method: faultline.demo.v1.Shop/Checkout}
faults:
  fail:
    start: 2s
    duration: 2s
    grpcFault: {abort: UNAVAILABLE}
`
	path := filepath.Join(dir, "gf.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), binary, "run", path, "--backend", "kubernetes", "--kubeconfig", filepath.Join(dir, "none"))
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitcode.Usage || !strings.Contains(string(out), "gf.yaml:17:5: faults.fail.grpcFault: the kubernetes backend cannot run a grpcFault") {
		t.Errorf("exit %d, want %d with the fault's position:\n%s", code, exitcode.Usage, out)
	}
}
