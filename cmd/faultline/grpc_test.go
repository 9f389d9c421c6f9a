package main

// Issue 16's acceptance runs: gRPC scenarios run locally against the demo
// target's gRPC server (faultline.demo.v1.Shop/Checkout), which faultline
// starts itself on free loopback ports, with a network delay, a grpcFault
// abort counted per status code, and HTTP and gRPC in one mix.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"faultline.dev/faultline/results"
)

// runGRPCScenario writes a 9-second local scenario (steady [0,3s), fault
// [3s,6s), recovery [6s,9s)) against the demo target with its gRPC server,
// target.grpc set, the requests, faults and SLOs given, and runs it. It
// returns the results and what faultline printed.
func runGRPCScenario(t *testing.T, extraTarget, requests, faults, slos string) (*results.Result, string) {
	t.Helper()
	dir := t.TempDir()
	ports := freeLoopbackPorts(t, 2)
	port, grpcPort := ports[0], ports[1]
	src := fmt.Sprintf(`name: grpc-test
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  grpc: 127.0.0.1:%[2]d
  metrics: http://127.0.0.1:%[1]d/metrics
  local:
    command: [faultline, demo-target, --listen, "127.0.0.1:%[1]d", --grpc-listen, "127.0.0.1:%[2]d"]
    readiness: /healthz
%[3]sload:
  executor: constant-arrival-rate
  rate: 40
  duration: 9s
  preAllocatedVUs: 10
  maxVUs: 40
  requests:
%[4]s
faults:
%[5]s
slos:
%[6]s
`, port, grpcPort, extraTarget, requests, faults, slos)
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), binary, "run", path, "--report-dir", filepath.Join(dir, "report"), "--quiet")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	r := readResults(t, dir)
	if code := cmd.ProcessState.ExitCode(); code != r.ExitCode {
		t.Errorf("exit %d, results.json says %d", code, r.ExitCode)
	}
	for _, p := range r.Phases {
		t.Logf("%s: %d requests, %d failed, p50 %.1fms, p99 %.1fms; %s", p.Name, p.Requests, p.Failed, p.P50, p.P99, p.Statuses())
	}
	for _, f := range r.Faults {
		t.Logf("fault %s (%s): effective %s, %s", f.Fault, f.Kind, f.Effective, f.Evidence)
	}
	t.Logf("verdict %s: %s", r.Verdict, r.Reason)
	return r, out.String()
}

const checkoutCall = `    - {name: checkout, grpc: {method: faultline.demo.v1.Shop/Checkout, message: {sku: demo, qty: 1}}}`

// phase returns the named phase of a result.
func phase(t *testing.T, r *results.Result, name string) results.PhaseResult {
	t.Helper()
	for _, p := range r.Phases {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no phase %s in %+v", name, r.Phases)
	return results.PhaseResult{}
}

// TestGRPCDelay: gRPC calls only (described by target.protos), 100ms of
// network delay in the fault window: every phase has calls, all OK and
// counted as such; the fault phase's median is at least the delay and the
// others' far below it; the fault is effective; the verdict passes.
func TestGRPCDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for 10s")
	}
	t.Parallel()
	proto, err := filepath.Abs(filepath.Join("..", "..", "internal", "demotarget"))
	if err != nil {
		t.Fatal(err)
	}
	r, out := runGRPCScenario(t, fmt.Sprintf("  protos: {files: [shop.proto], importPaths: [%q]}\n", proto), checkoutCall, delayFault,
		"  steady: {latency: {p99: 80ms}, errorRate: 1}\n  fault: {latency: {p50: 300ms, p99: 600ms}, errorRate: 1}\n  recovery: {within: 1s, latency: {p99: 80ms}, errorRate: 1}")
	if r.Verdict != results.VerdictPass {
		t.Fatalf("verdict %s (%s):\n%s", r.Verdict, r.Reason, out)
	}
	for _, p := range r.Phases {
		if p.Requests == 0 || p.GRPCStatus["OK"] != p.Requests || len(p.GRPCStatus) != 1 || len(p.HTTPStatus) != 0 {
			t.Errorf("phase %s: %d calls, statuses %v %v; want them all gRPC OK", p.Name, p.Requests, p.GRPCStatus, p.HTTPStatus)
		}
	}
	if f := phase(t, r, "fault"); f.P50 < 95 {
		t.Errorf("fault phase p50 %.1fms, want at least the 100ms delay", f.P50)
	}
	for _, name := range []string{"steady", "recovery"} {
		if p := phase(t, r, name); p.P50 > 50 {
			t.Errorf("%s p50 %.1fms, want well under the delay", name, p.P50)
		}
	}
	if len(r.Faults) != 1 || r.Faults[0].Effective != "yes" {
		t.Errorf("the delay fault: %+v", r.Faults)
	}
}

// TestGRPCAbortMixed: HTTP and gRPC in one mix, a grpcFault aborting
// Checkout with UNAVAILABLE in the fault window: the fault phase counts
// the aborted calls under UNAVAILABLE (each a failed request) while the
// HTTP requests beside them stay 200; steady and recovery are OK and 200
// only; the fault phase's errorRate SLO is breached (exactly that SLO), and
// the fault is effective.
func TestGRPCAbortMixed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real load for 10s")
	}
	t.Parallel()
	requests := checkoutCall + "\n    - {name: catalog, path: /catalog, weight: 2, expect: {status: 200}}"
	abort := `  unavailable:
    start: 3s
    duration: 3s
    grpcFault: {method: "faultline.demo.v1.Shop/*", abort: UNAVAILABLE}`
	r, out := runGRPCScenario(t, "", requests, abort,
		"  steady: {errorRate: 1}\n  fault: {errorRate: 5}\n  recovery: {within: 1s, errorRate: 1}")
	if r.Verdict != results.VerdictSLOBreach {
		t.Fatalf("verdict %s (%s), want an SLO breach:\n%s", r.Verdict, r.Reason, out)
	}
	var failed []string
	for _, s := range r.SLOs {
		if s.Status != results.StatusPass {
			failed = append(failed, s.Phase+" "+s.SLO)
		}
	}
	if len(failed) != 1 || failed[0] != "fault errorRate" {
		t.Errorf("failed SLOs %v, want [fault errorRate]", failed)
	}
	for _, p := range r.Phases {
		grpcCalls, httpReqs := int64(0), int64(0)
		for _, n := range p.GRPCStatus {
			grpcCalls += n
		}
		for _, n := range p.HTTPStatus {
			httpReqs += n
		}
		if grpcCalls == 0 || httpReqs == 0 || grpcCalls+httpReqs != p.Requests {
			t.Errorf("phase %s: %d requests, statuses HTTP %v gRPC %v: want both kinds, adding up", p.Name, p.Requests, p.HTTPStatus, p.GRPCStatus)
		}
		if len(p.HTTPStatus) != 1 || p.HTTPStatus["200"] != httpReqs {
			t.Errorf("phase %s: HTTP statuses %v, want only 200 (the grpcFault acts on gRPC calls only)", p.Name, p.HTTPStatus)
		}
		switch p.Name {
		case "fault":
			if n := p.GRPCStatus["UNAVAILABLE"]; n == 0 || n < grpcCalls*9/10 || n != p.Failed {
				t.Errorf("fault phase: %d UNAVAILABLE of %d calls, %d failed; want (nearly) every call aborted, each failed", n, grpcCalls, p.Failed)
			}
		default:
			if p.GRPCStatus["OK"] != grpcCalls || p.Failed != 0 {
				t.Errorf("phase %s: gRPC statuses %v, %d failed; want only OK", p.Name, p.GRPCStatus, p.Failed)
			}
		}
	}
	if len(r.Faults) != 1 || r.Faults[0].Kind != "grpcFault" || r.Faults[0].Effective != "yes" {
		t.Errorf("the abort fault: %+v", r.Faults)
	}
}
