package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner"
	"faultline.dev/faultline/runner/kube"
	"faultline.dev/faultline/runner/local"
	"faultline.dev/faultline/runner/report"
	"faultline.dev/faultline/schema"
)

func newRunCmd() *cobra.Command {
	var (
		backend   string
		reportDir string
		name      string
		quiet     bool
		output    string
		after     afterRun
		kf        kubeFlags
		rf        registryFlags
	)
	cmd := &cobra.Command{
		Use:   "run PATH | REGISTRY/REPO@sha256:DIGEST",
		Short: "Run a scenario: load, faults on the plan's clock, per-phase SLO verdict",
		Long: `run executes one scenario: it starts the load with faultline's own engine (k6's
executor semantics, in-process), injects and recovers each fault at its offset
through the backend, records the actual
fault windows, scrapes the target's Go runtime metrics, and judges every SLO
per phase. Whatever happens (a signal, a crash), every fault is recovered and
every child process stopped before faultline exits.

Signals: Ctrl-C (SIGINT), SIGTERM, a closed terminal (SIGHUP) and Ctrl-\
(SIGQUIT) all stop the run the same way: the load stopped, every fault
recovered, every process it started stopped, the report written, exit 6.
During that cleanup a second Ctrl-C (or Ctrl-\) exits at once: the processes
the run started are killed, and faults on a cluster stay until their own
duration ends (faultline cleanup --run-id ID). A second SIGTERM or SIGHUP does
not cut cleanup short.

Backends:
  local       no cluster: network and HTTP faults act on the load engine's own
              connections and requests (loopback only), CPU/memory stress beside
              the target, kill/stop of the target process when
              target.local.command starts it
  kubernetes  Chaos Mesh objects in a cluster (--kubeconfig, --context, -n as
              kubectl): each fault's object is created (server-side apply) at its
              offset, watched until Chaos Mesh reports it injected, and deleted at
              its end; every object carries faultline.dev/run-id and its own
              duration. Before the run: guardrails (kube-system, kube-public,
              kube-node-lease and chaos-mesh need --allow-namespace;
              guardrails.allowedNamespaces; guardrails.maxBlastRadius unless
              --allow-blast-radius), Chaos Mesh installed, permissions, leftovers
              of an earlier run (refused unless --force), server-side dry run.
              --dry-run stops there and prints what would be created (-o yaml:
              the objects). A refusal exits 2 before anything is created. The
              load goes from this machine to target.url. Leftovers:
              faultline cleanup --run-id ID.
              --timing workflow: instead of the runner's clock, the compiled
              Workflow (workflow.yaml) is applied with the run's label and
              followed: Chaos Mesh's workflow engine starts and ends each fault,
              faultline records each fault's actual window from the
              WorkflowNodes; Accomplished ends the fault part, the abort
              annotation (workflow.chaos-mesh.org/abort) or an Aborted node
              ends the run as aborted; cleanup deletes the Workflow, its nodes
              and their chaos objects.
              --load in-cluster: instead of faultline's engine on this machine, the
              compiled k6-operator TestRun (k6.io/v1alpha1) and its ConfigMap are
              applied with the run's labels and followed (stage started = load
              start; finished ends it; error = infrastructure error). The
              runners' samples do not reach faultline: per-phase numbers are not
              available, any runner's k6 threshold failure is an SLO breach, and
              every phase SLO is no-data (never a pass).

From a registry: PATH may be a version faultline push uploaded
(REGISTRY/REPO@sha256:DIGEST, or :VERSION). It is pulled into a temporary
directory, every file checked against plan.json, and the scenario it was
compiled from (scenario.json, whose sha256 is the content hash) is run;
the engine objects are built from it by this faultline, as for a local
file. --plain-http as for faultline pull.

The report directory (default out/<name>/<version>/runs/<run-id>) receives
results.json, the compiled k6 script (k6/script.js, for your own k6), the
target's output (target.log) and pprof snapshots of the target,
and the reports: junit.xml, report.md and report.html. When a golden baseline
exists for the scenario's major version (--golden-dir), the run is compared
with it; --update-golden blesses a passing run as the new baseline.

Exit codes: 0 pass, 4 SLO breach, 5 regression against the golden baseline
(every SLO met), 6 aborted, 7 infrastructure error (including
a phase without samples), 2 usage (e.g. a fault the backend cannot run),
3 invalid scenario.`,
		Example: `  faultline run scenarios/checkout-jitter.cue
  faultline run registry.example.com/chaos/checkout-jitter@sha256:0123...
  faultline run scenarios/ --scenario checkout-jitter --report-dir out/run1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && !(kf.dryRun && output == "yaml") {
				return usageError{fmt.Errorf("--output must be table or json, not %q", output)}
			}
			ctx := cmd.Context()
			paths, done, err := runSource(cmd, args[0], &rf)
			if err != nil {
				return err
			}
			defer done()
			loaded, diags, err := schema.NewLoader().Load(ctx, paths)
			if err != nil {
				return exitcode.With(exitcode.Aborted, err)
			}
			if len(diags) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), diags.Error())
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			l, err := pick(loaded, name, paths[0])
			if err != nil {
				return err
			}
			// --time-scale: every duration of the timeline times F, before
			// the k6 script is compiled; results.json records F.
			timeScale, _ := cmd.Flags().GetFloat64("time-scale")
			scaled, err := plan.Scale(l.Scenario, timeScale)
			if err != nil {
				return usageError{fmt.Errorf("--time-scale: %w", err)}
			}
			p, err := plan.New(scaled)
			if err != nil {
				return exitcode.With(exitcode.Invalid, err)
			}
			if err := promFlag(cmd, p.Source); err != nil {
				return err
			}
			if timeScale != 1 {
				p.TimeScale = timeScale
				sl := *l
				sl.Scenario = scaled
				l = &sl
			}
			files, kdiags, err := k6.EmitLoaded(l)
			if len(kdiags) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), kdiags.Error())
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			if err != nil {
				return err
			}
			if kf.load == kube.LoadInCluster {
				if err := inClusterGRPC(p); err != nil {
					return usageError{err}
				}
			}
			if backend == "kubernetes" {
				if ds := clusterGRPCFaults(l); len(ds) > 0 {
					return usageError{errors.New(ds.Error())}
				}
			}
			promWrite, err := promWriteFlag(cmd)
			if err != nil {
				return err
			}
			if promWrite != "" && kf.load == kube.LoadInCluster {
				return usageError{errors.New("--prometheus-write writes faultline's own engine's samples; with --load in-cluster the k6 runners write theirs to target.prometheus (or --prometheus)")}
			}
			runID := newRunID()
			kb, err := kf.prepare(cmd, p, backend, runID, output)
			if err != nil || (kb != nil && kf.dryRun) {
				return err
			}
			if reportDir == "" {
				reportDir = filepath.Join("out", l.Scenario.Name, l.Scenario.Version, "runs", runID)
			}
			if err := os.MkdirAll(reportDir, 0o755); err != nil {
				return err
			}
			script := filepath.Join(reportDir, k6.ScriptPath)
			if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(script, files.Get(k6.ScriptPath), 0o644); err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var b runner.Backend
			switch backend {
			case "local":
				tlog, err := os.Create(filepath.Join(reportDir, "target.log"))
				if err != nil {
					return err
				}
				defer tlog.Close()
				b = local.New(l.Scenario, self, tlog)
			case "kubernetes":
				b = kb
			default:
				return usageError{fmt.Errorf("--backend must be local or kubernetes, not %q", backend)}
			}
			stderr := cmd.ErrOrStderr()
			var progress io.Writer
			if f, ok := stderr.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) && !quiet {
				progress = stderr
			}
			var log io.Writer = stderr
			if quiet {
				log = nil
			}
			fmt.Fprintf(stderr, "running %s %s on %s (run %s, report %s)\n", l.Scenario.Name, l.Scenario.Version, backend, runID, reportDir)
			res, err := runner.Run(ctx, p, b, runner.Options{ReportDir: reportDir, Progress: progress, Log: log, RunID: runID, PromWrite: promWrite})
			if progress != nil {
				fmt.Fprintln(stderr)
			}
			if err != nil && res == nil {
				return exitcode.With(exitcode.Infrastructure, err)
			}
			after.apply(ctx, stderr, res, l.Scenario, reportDir)
			if err := report.WriteAll(reportDir, res); err != nil {
				fmt.Fprintln(stderr, "warning: writing the reports:", err)
			}
			if output == "json" {
				b, _ := os.ReadFile(filepath.Join(reportDir, results.ResultsFile))
				cmd.OutOrStdout().Write(b)
			} else {
				res.WriteTable(cmd.OutOrStdout())
				fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(reportDir, results.ResultsFile))
			}
			if err != nil {
				fmt.Fprintln(stderr, "writing the report:", err)
			}
			if res.Unsupported != "" {
				return exitcode.With(exitcode.Usage, errSilent)
			}
			if res.ExitCode != 0 {
				return exitcode.With(res.ExitCode, errSilent)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&backend, "backend", "local", "where faults are injected: local or kubernetes")
	f.StringVar(&reportDir, "report-dir", "", "directory for results.json and the rest of the report (default out/<name>/<version>/runs/<run-id>)")
	f.StringVar(&name, "scenario", "", "the scenario to run when PATH holds several")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress and no event lines on stderr")
	f.StringVarP(&output, "output", "o", "table", "result on stdout: table or json")
	after.flags(cmd)
	kf.register(f)
	f.String("prometheus", "", "a Prometheus server (http://host:port) to read the target's Go runtime SLIs from, per pod (overrides target.prometheus.url), and an in-cluster load's k6 remote-write series")
	f.String("prometheus-write", "", "write the load engine's samples to this Prometheus (http://host:port, or its remote-write URL) as k6's experimental-prometheus-rw series, with faultline_fault_active for the fault windows: local and in-cluster runs share one metric contract and one dashboard (faultline grafana dashboard)")
	rf.register(f)
	f.Float64("time-scale", 1, "multiply every duration of the timeline (load length, fault starts and durations, recovery within) by F, e.g. 0.1 for a 6s run of a 60s scenario; below 1 the target is scraped every F seconds too (at most 4 times a second); recorded in results.json")
	return cmd
}

// pick chooses the one scenario to run.
func pick(loaded []*schema.Loaded, name, path string) (*schema.Loaded, error) {
	if name != "" {
		for _, l := range loaded {
			if l.Scenario.Name == name {
				return l, nil
			}
		}
		return nil, usageError{fmt.Errorf("no scenario %q in %s", name, path)}
	}
	switch len(loaded) {
	case 0:
		return nil, exitcode.With(exitcode.Invalid, fmt.Errorf("no scenario in %s", path))
	case 1:
		return loaded[0], nil
	}
	var names []string
	for _, l := range loaded {
		names = append(names, l.Scenario.Name)
	}
	return nil, usageError{fmt.Errorf("%s holds %d scenarios (%v): choose one with --scenario", path, len(loaded), names)}
}

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// clusterGRPCFaults refuses each grpcFault on the kubernetes backend
// before anything connects: Chaos Mesh has no gRPC fault.
func clusterGRPCFaults(l *schema.Loaded) schema.Diagnostics {
	var ds schema.Diagnostics
	for name, f := range l.Scenario.Faults {
		if f.GRPCFault != nil {
			ds = append(ds, l.Pos("faults."+name+".grpcFault", "the kubernetes backend cannot run a grpcFault: Chaos Mesh has no gRPC fault (its HTTPChaos reads HTTP/1.x, not gRPC's HTTP/2); run it with --backend local, or use a network fault"))
		}
	}
	return ds.Sort()
}

// inClusterGRPC refuses what --load in-cluster cannot do with gRPC calls:
// proto files (the TestRun's ConfigMap carries the script only, so the
// runners would not find them: use server reflection). Judged from the
// runners' thresholds or from Prometheus (runner/prom reads the gRPC
// series too), gRPC calls run.
func inClusterGRPC(p *plan.Plan) error {
	var method string
	for _, r := range p.Source.Load.Requests {
		if r.GRPC != nil {
			method = r.GRPC.Method
			break
		}
	}
	switch t := p.Source.Target; {
	case method == "":
		return nil
	case t.Protos != nil:
		return fmt.Errorf("--load in-cluster: the gRPC call %s is described by target.protos, and the TestRun's ConfigMap carries only the script: drop target.protos to use the server's reflection service, or run the load from this machine (--load local)", method)
	}
	return nil
}

// promFlag applies --prometheus to the scenario: target.prometheus.url,
// keeping its matchers.
func promFlag(cmd *cobra.Command, s *schema.Scenario) error {
	u, _ := cmd.Flags().GetString("prometheus")
	if u == "" {
		return nil
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return usageError{fmt.Errorf("--prometheus %q: want the server's base URL, http(s)://host:port", u)}
	}
	pt := schema.PrometheusTarget{URL: u}
	if old := s.Target.Prometheus; old != nil {
		pt.Matchers, pt.PodLabel = old.Matchers, old.PodLabel
	}
	s.Target.Prometheus = &pt
	return nil
}

// promWriteFlag is --prometheus-write as a remote-write URL: a server's
// base URL gets /api/v1/write.
func promWriteFlag(cmd *cobra.Command) (string, error) {
	u, _ := cmd.Flags().GetString("prometheus-write")
	if u == "" {
		return "", nil
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return "", usageError{fmt.Errorf("--prometheus-write %q: want the server's base URL, http(s)://host:port, or its remote-write endpoint", u)}
	}
	if strings.Trim(pu.Path, "/") == "" {
		pu.Path = "/api/v1/write"
	}
	return pu.String(), nil
}
