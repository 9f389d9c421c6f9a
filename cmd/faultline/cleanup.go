package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/runner/kube"
)

// clusterFlags select the cluster as kubectl does.
type clusterFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (c *clusterFlags) register(f *pflag.FlagSet, nsHelp string) {
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)")
	f.StringVar(&c.context, "context", "", "the kubeconfig context to use (default: the current context)")
	f.StringVarP(&c.namespace, "namespace", "n", "", nsHelp)
}

func (c *clusterFlags) clients() (*kube.Clients, error) {
	cfg, _, _, err := kube.ClientOptions{Kubeconfig: c.kubeconfig, Context: c.context, Namespace: c.namespace}.RESTConfig()
	if err != nil {
		return nil, exitcode.With(exitcode.Infrastructure, err)
	}
	cl, err := kube.NewClients(cfg)
	if err != nil {
		return nil, exitcode.With(exitcode.Infrastructure, err)
	}
	return cl, nil
}

// kubeFlags are `faultline run`'s flags for --backend kubernetes.
type kubeFlags struct {
	cluster          clusterFlags
	dryRun           bool
	injectionTimeout time.Duration
	cleanupTimeout   time.Duration
	allowNamespaces  []string
	allowBlastRadius bool
	force            bool
	timing           string
	load             string
}

func (k *kubeFlags) register(f *pflag.FlagSet) {
	k.cluster.register(f, "create the Chaos Mesh objects in this namespace instead of the scenario's target.kubernetes.namespace (pod selectors keep the scenario's namespaces)")
	f.BoolVar(&k.dryRun, "dry-run", false, "kubernetes: check everything (guardrails, Chaos Mesh installed, permissions, leftovers, server-side dry run) and print what would be created, then stop; -o yaml prints the objects")
	f.DurationVar(&k.injectionTimeout, "injection-timeout", kube.DefaultInjectionTimeout, "kubernetes: how long to wait for Chaos Mesh to report a fault injected (Selected and AllInjected)")
	f.DurationVar(&k.cleanupTimeout, "cleanup-timeout", kube.DefaultCleanupTimeout, "kubernetes: how long cleanup retries (API server unreachable) before it lists what may be left")
	f.StringArrayVar(&k.allowNamespaces, "allow-namespace", nil, "kubernetes: allow a protected namespace (kube-system, kube-public, kube-node-lease, chaos-mesh); repeatable")
	f.BoolVar(&k.allowBlastRadius, "allow-blast-radius", false, "kubernetes: allow faults above guardrails.maxBlastRadius")
	f.StringVar(&k.timing, "timing", kube.TimingRunner, "kubernetes: who keeps the faults' clock: runner (faultline creates and deletes each fault's object at its offset) or workflow (faultline applies the compiled Chaos Mesh Workflow and follows it: Accomplished ends the faults, an abort ends the run as aborted)")
	f.StringVar(&k.load, "load", kube.LoadLocal, "where the load comes from: local (faultline's engine on this machine, with per-phase numbers) or in-cluster (kubernetes: the compiled k6-operator TestRun and its ConfigMap are applied and followed; per-phase numbers are not available, the run is judged from the runners' k6 thresholds and phase SLOs are no-data)")
	f.BoolVar(&k.force, "force", false, "kubernetes: delete the objects an earlier run of the scenario left, instead of refusing to run")
}

// prepare makes the kubernetes backend and runs its preflight; with --dry-run it prints what
// would be created. It returns nil, nil for another backend (refusing --dry-run there).
func (k *kubeFlags) prepare(cmd *cobra.Command, p *plan.Plan, backend, runID, output string) (*kube.Backend, error) {
	if backend != "kubernetes" {
		if k.dryRun {
			return nil, usageError{fmt.Errorf("--dry-run needs --backend kubernetes")}
		}
		if k.timing != kube.TimingRunner {
			return nil, usageError{fmt.Errorf("--timing %s needs --backend kubernetes", k.timing)}
		}
		if k.load != kube.LoadLocal {
			return nil, usageError{fmt.Errorf("--load %s needs --backend kubernetes", k.load)}
		}
		return nil, nil
	}
	if k.load != kube.LoadLocal && k.load != kube.LoadInCluster {
		return nil, usageError{fmt.Errorf("--load must be %s or %s, not %q", kube.LoadLocal, kube.LoadInCluster, k.load)}
	}
	if k.timing != kube.TimingRunner && k.timing != kube.TimingWorkflow {
		return nil, usageError{fmt.Errorf("--timing must be %s or %s, not %q", kube.TimingRunner, kube.TimingWorkflow, k.timing)}
	}
	cl, err := k.cluster.clients()
	if err != nil {
		return nil, err
	}
	kb := kube.New(cl, p.Source, kube.Config{
		RunID: runID, Namespace: k.cluster.namespace,
		InjectionTimeout: k.injectionTimeout, CleanupTimeout: k.cleanupTimeout,
		AllowNamespaces: k.allowNamespaces, AllowBlastRadius: k.allowBlastRadius, Force: k.force,
		Timing: k.timing, Load: k.load, Log: cmd.ErrOrStderr(),
	})
	objs, err := kb.Preflight(cmd.Context(), p)
	if err != nil {
		return nil, exitcode.With(kube.ExitCode(err), err)
	}
	if wf := kb.Workflow(); wf != nil {
		objs = []*kube.Object{wf} // the engine creates the chaos objects
	}
	objs = append(objs, kb.LoadObjects()...)
	if k.dryRun {
		if err := kube.WriteObjects(cmd.OutOrStdout(), objs, output); err != nil {
			return nil, err
		}
	}
	return kb, nil
}

func newCleanupCmd() *cobra.Command {
	var (
		cluster         clusterFlags
		runID           string
		all             bool
		forceFinalizers bool
		timeout         time.Duration
		stuckAfter      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cleanup (--run-id ID | --all)",
		Short: "Delete the Chaos Mesh objects a run left on the cluster, by label",
		Long: `cleanup finds faultline's objects by label and deletes them (background
propagation), then waits until they are gone: Chaos Mesh recovers every target
before it removes its finalizer (chaos-mesh/records).

  --run-id ID   the objects of one run (label faultline.dev/run-id=ID; the run id
                is printed when a run starts and is in results.json)
  --all         every object faultline manages (app.kubernetes.io/managed-by=faultline)

Without -n it looks in every namespace. It looks at the kinds faultline creates
(DNSChaos, HTTPChaos, IOChaos, NetworkChaos, PodChaos, StressChaos, TimeChaos,
Workflow). While the API server is unreachable it retries until --timeout, then
lists what may be left. An object still there --stuck-after its deletion is stuck;
--force-finalizers then annotates it chaos-mesh.chaos-mesh.org/cleanFinalizer=forced
so that Chaos Mesh drops its finalizer WITHOUT recovering its targets.

Prints one line per deleted object on stdout.
Exit codes: 0 done (also when nothing was found), 2 usage, 7 objects may be left
or the cluster could not be reached (the error lists them).`,
		Example: `  faultline cleanup --run-id 20261123T101500-a1b2c3
  faultline cleanup --all -n shop --context staging`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (runID == "") == !all {
				return usageError{fmt.Errorf("give exactly one of --run-id ID or --all")}
			}
			cl, err := cluster.clients()
			if err != nil {
				return err
			}
			sel := kube.LabelSelectorAll()
			if runID != "" {
				sel = kube.LabelSelectorRun(runID)
			}
			var nss []string
			if cluster.namespace != "" {
				nss = []string{cluster.namespace}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c := &kube.Cleaner{Clients: cl, Namespaces: nss, Selector: sel, ForceFinalizers: forceFinalizers,
				StuckAfter: stuckAfter, RunID: runID, Log: cmd.ErrOrStderr()}
			deleted, err := c.Run(ctx)
			printDeleted(cmd.OutOrStdout(), deleted)
			if err != nil {
				return exitcode.With(kube.ExitCode(err), err)
			}
			if len(deleted) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "nothing to clean up (labels %s)\n", sel)
			}
			return nil
		},
	}
	f := cmd.Flags()
	cluster.register(f, "only this namespace (default: every namespace)")
	f.StringVar(&runID, "run-id", "", "delete the objects of this run")
	f.BoolVar(&all, "all", false, "delete every object faultline manages")
	f.BoolVar(&forceFinalizers, "force-finalizers", false, "annotate objects stuck in deletion so that Chaos Mesh drops its finalizer without recovering")
	f.DurationVar(&timeout, "timeout", kube.DefaultCleanupTimeout, "give up (and list what may be left) after this long")
	f.DurationVar(&stuckAfter, "stuck-after", 10*time.Second, "an object still there this long after its deletion is stuck")
	return cmd
}

func printDeleted(w io.Writer, refs []kube.Ref) {
	for _, r := range refs {
		fmt.Fprintf(w, "deleted %s\n", r)
	}
}
