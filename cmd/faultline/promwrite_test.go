package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/internal/promtest"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/prom"
)

// promWriteScenario is a 9-second local run against the demo target with
// its gRPC server, 200 requests a second: HTTP /catalog (its status and a
// body check), one in twenty an HTTP request expected to fail
// (/no-such-page asked with expect 200), a fifth gRPC Checkout calls and
// one in twenty a call expected to fail (asked with expect NOT_FOUND);
// steady [0,3s), a 20ms network delay [3s,6s), recovery [6s,9s) judged
// after 1s.
func promWriteScenario(t *testing.T) (dir, scen string) {
	t.Helper()
	dir = t.TempDir()
	ports := freeLoopbackPorts(t, 2)
	src := fmt.Sprintf(`name: prom-write
version: 1.0.0
target:
  url: http://127.0.0.1:%[1]d
  grpc: 127.0.0.1:%[2]d
  local:
    command: [faultline, demo-target, --listen, "127.0.0.1:%[1]d", --grpc-listen, "127.0.0.1:%[2]d"]
    readiness: /healthz
load:
  executor: constant-arrival-rate
  rate: 200
  duration: 9s
  preAllocatedVUs: 10
  maxVUs: 50
  requests:
    - {name: catalog, path: /catalog, weight: 14, expect: {status: 200, bodyContains: [sku]}}
    - {name: broken, path: /no-such-page, weight: 1, expect: {status: 200}}
    - {name: checkout, weight: 4, grpc: {method: faultline.demo.v1.Shop/Checkout, message: {sku: demo, qty: 1}}}
    - {name: wrong-status, weight: 1, grpc: {method: faultline.demo.v1.Shop/Checkout, message: {sku: demo, qty: 1}}, expect: {grpcStatus: NOT_FOUND}}
faults:
  delay:
    start: 3s
    duration: 3s
    mode: all
    networkDelay: {latency: 20ms}
slos:
  steady: {errorRate: 50}
  fault: {latency: {p99: 2s}}
  recovery: {within: 1s, errorRate: 50}
`, ports[0], ports[1])
	scen = filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(scen, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, scen
}

// TestRunPrometheusWrite: a local run of HTTP requests and gRPC calls with
// --prometheus-write into a real Prometheus, read back with the in-cluster
// reader (runner/prom, as an in-cluster run is judged): over each phase's
// actual window the requests and failures, HTTP and gRPC, are exactly
// results.json's (steady's plus the requests that started in steady and
// ended in the fault, which results.json keeps apart and counts without
// their failures: steady's failures are then bounded by them), the whole
// run's too, each kind has its own series (k6_http_reqs_total,
// k6_faultline_grpc_reqs_total), the checks rate is results.json's and
// p50/p95/p99 within 2% of the in-process sketch's on the same samples
// (steady's only when no request was in transition);
// faultline_fault_active is 1 exactly inside the fault's actual window.
func TestRunPrometheusWrite(t *testing.T) {
	srv := promtest.Start(t)
	dir, scen := promWriteScenario(t)
	out, err := exec.Command(binary, "run", scen, "--report-dir", filepath.Join(dir, "report"), "--quiet", "--prometheus-write", srv.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	res := readResults(t, dir)
	if res.Verdict != results.VerdictPass {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Reason)
	}
	ctx := context.Background()
	c := &prom.Client{URL: srv.URL}
	end := res.EndedAt.Add(3 * time.Second)
	got, err := runner.PromPhases(ctx, c, res)
	if err != nil {
		t.Fatal(err)
	}
	var inProcess int64
	for _, ph := range res.Phases {
		g := got[ph.Name]
		want := ph.Requests
		// The requests in transition are steady's in Prometheus; results.json
		// counts them but not their failures, so steady's failures there are
		// exact without any, and at most that many more with some.
		var transition int64
		if ph.Name == "steady" {
			transition = res.TransitionRequests
			want += transition
		}
		if g.Requests != want || g.Failed < ph.Failed || g.Failed > ph.Failed+transition {
			t.Errorf("%s: %d requests, %d failed in Prometheus; results.json %d (%d + %d in transition), %d failed", ph.Name, g.Requests, g.Failed, want, ph.Requests, transition, ph.Failed)
		}
		// A request in transition (started in steady, ended in the fault)
		// is steady's in Prometheus (it counts by its start) and in neither
		// in results.json: the two sets differ, their tails with them.
		sameSet := ph.Name != "steady" || res.TransitionRequests == 0
		if sameSet && (g.ChecksTotal == 0 || math.Abs(g.ChecksRate()-ph.ChecksRate) > 1e-9) {
			t.Errorf("%s: checks %.4f%% of %d in Prometheus, %.4f%% in results.json", ph.Name, g.ChecksRate(), g.ChecksTotal, ph.ChecksRate)
		}
		for _, q := range []struct{ q, want float64 }{{0.5, ph.P50}, {0.95, ph.P95}, {0.99, ph.P99}} {
			if !sameSet {
				break
			}
			v := g.Quantile(q.q)
			if rel := math.Abs(v-q.want) / q.want; rel > 0.02 {
				t.Errorf("%s: p%v %.4fms from Prometheus, %.4fms in-process (%.2f%%)", ph.Name, 100*q.q, v, q.want, 100*rel)
			}
		}
		t.Logf("%s [%.3f, %.3f): Prometheus %d requests %d failed p50 %.4f p95 %.4f p99 %.4f ms; in-process %d (+%d transition) %d failed p50 %.4f p95 %.4f p99 %.4f ms",
			ph.Name, ph.JudgedFrom, ph.End, g.Requests, g.Failed, g.Quantile(0.5), g.Quantile(0.95), g.Quantile(0.99),
			ph.Requests, map[bool]int64{true: res.TransitionRequests}[ph.Name == "steady"], ph.Failed, ph.P50, ph.P95, ph.P99)
		inProcess += ph.Requests
	}
	d, err := prom.ReadLoad(ctx, c, prom.LoadMatchers(res.Scenario, res.Version, res.RunID), res.LoadStart.Add(-time.Minute), end)
	if err != nil {
		t.Fatal(err)
	}
	all := d.Window(prom.Window{From: res.LoadStart.Add(-time.Second).UnixMilli(), To: end.UnixMilli()})
	total := int64(all.Requests)
	inProcess += res.TransitionRequests + res.RecoveryGraceRequests
	if total != inProcess {
		t.Errorf("the whole run: %d requests in Prometheus, %d in results.json", total, inProcess)
	}
	t.Logf("whole run: %d requests in Prometheus, %d in results.json (%d transition, %d recovery grace)", total, inProcess, res.TransitionRequests, res.RecoveryGraceRequests)
	// Each kind in its own series, as the compiled script writes them in k6.
	window := prom.Window{From: res.LoadStart.Add(-time.Second).UnixMilli(), To: end.UnixMilli()}
	for _, name := range []string{prom.HTTPReqs, prom.HTTPReqDuration, prom.GRPCReqs, prom.GRPCReqDuration, prom.Checks} {
		ss, err := c.Raw(ctx, name+"{"+prom.LoadMatchers(res.Scenario, res.Version, res.RunID)+"}", res.LoadStart.Add(-time.Minute), end)
		if err != nil {
			t.Fatal(err)
		}
		n := 0.0
		for _, s := range ss {
			if h := prom.HistDelta(s.Hists, window); h != nil {
				n += h.Count
			} else {
				n += prom.Delta(s.Floats, window)
			}
		}
		if n == 0 {
			t.Errorf("%s: no samples", name)
		}
		t.Logf("%s: %d series, %.0f", name, len(ss), n)
	}

	gs, err := c.Raw(ctx, prom.FaultActive+`{faultline_run_id="`+res.RunID+`",fault="delay"}`, res.LoadStart.Add(-time.Minute), end)
	if err != nil || len(gs) != 1 || len(res.Faults) != 1 {
		t.Fatalf("%s: %v, %d series, %d faults", prom.FaultActive, err, len(gs), len(res.Faults))
	}
	f := res.Faults[0]
	ones := 0
	for _, p := range gs[0].Floats {
		in := p.T >= f.Start.UnixMilli() && p.T < f.End.UnixMilli()
		if (p.V == 1) != in {
			t.Errorf("%s at %s = %v; the fault's window is [%s, %s)", prom.FaultActive, time.UnixMilli(p.T).Format(time.StampMilli), p.V, f.Start.Format(time.StampMilli), f.End.Format(time.StampMilli))
		}
		if p.V == 1 {
			ones++
		}
	}
	if ones < 2 {
		t.Errorf("%s: %d points at 1 over a 3s fault", prom.FaultActive, ones)
	}
}

// TestRunPrometheusWriteStopped: the Prometheus --prometheus-write sends to
// stops mid-run: the run is an infrastructure error naming it, not a pass
// (its series there are incomplete).
func TestRunPrometheusWriteStopped(t *testing.T) {
	srv := promtest.Start(t)
	dir, scen := promWriteScenario(t)
	cmd := exec.Command(binary, "run", scen, "--report-dir", filepath.Join(dir, "report"), "--quiet", "--prometheus-write", srv.URL)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	srv.Stop()
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitcode.Infrastructure {
		t.Fatalf("run with Prometheus stopped: %v, want exit %d\n%s", err, exitcode.Infrastructure, out.String())
	}
	res := readResults(t, dir)
	if res.Verdict == results.VerdictPass || !strings.Contains(res.Reason, "Prometheus") {
		t.Errorf("verdict %s (%s), want an infrastructure error naming Prometheus", res.Verdict, res.Reason)
	}
	t.Logf("verdict %s: %s", res.Verdict, res.Reason)
}

// TestPromWriteFlag: --prometheus-write takes a server's base URL (the
// remote-write path added) or its remote-write endpoint, and refuses
// anything else with a usage error.
func TestPromWriteFlag(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "", ""},
		{"http://127.0.0.1:9090", "http://127.0.0.1:9090/api/v1/write", ""},
		{"http://127.0.0.1:9090/", "http://127.0.0.1:9090/api/v1/write", ""},
		{"https://prom.example:443/api/v1/write", "https://prom.example:443/api/v1/write", ""},
		{"http://mimir:8080/api/v1/push", "http://mimir:8080/api/v1/push", ""},
		{"127.0.0.1:9090", "", "want the server's base URL"},
		{"ftp://x", "", "want the server's base URL"},
	} {
		cmd := newRunCmd()
		if err := cmd.Flags().Set("prometheus-write", tc.in); err != nil {
			t.Fatal(err)
		}
		got, err := promWriteFlag(cmd)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %q, %v; want %q, error %q", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !isUsageError(err) {
			t.Errorf("%q: %v is not a usage error", tc.in, err)
		}
	}
}
