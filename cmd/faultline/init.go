package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/internal/buildinfo"
	"faultline.dev/faultline/schema"
)

// initRepo is where `faultline init` says the hooks come from.
const initRepo = "https://github.com/faultline-dev/faultline"

// initDefaultRev is the hooks' rev when this build carries no release tag.
const initDefaultRev = "v0.1.0"

// initCUEVersion is the official cue command the generated workflow and
// hooks expect (the version faultline itself is built with).
const initCUEVersion = "v0.17.1"

// initScenario is the scenario `faultline init` writes.
const initScenario = "scenarios/checkout-latency.cue"

// initFile is one file `faultline init` writes.
type initFile struct {
	path string // slash-separated, relative to the repository
	body string
}

func newInitCmd() *cobra.Command {
	var (
		force    bool
		module   string
		registry string
	)
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Scaffold a scenario repository: vendored schema, a scenario, pre-commit hooks, CI workflow",
		Long: `init writes a repository of faultline scenarios into DIR (default: the current
directory):

  cue.mod/module.cue                 the CUE module (--module)
  cue.mod/pkg/faultline.dev/schema/  the vendored schema: cue vet works offline
  ` + initScenario + `      a first scenario, ready to edit
  .pre-commit-config.yaml            faultline vet and cue vet before each commit
  .github/workflows/faultline.yaml   vet on pull requests; faultline run --backend
                                     kubernetes on main, JUnit report as an artifact
  README.md                          how to use all of the above

With --registry R, nothing is vendored: cue.mod/module.cue depends on the
CUE module ` + schema.Module + ` (` + schema.ModuleVersion + `, published into R with
make publish-schema), and cue vet fetches it with CUE_REGISTRY=faultline.dev=R
(the generated hooks, workflow and README say so). R is a registry in
CUE_REGISTRY's syntax: host[:port][/prefix][+insecure]. faultline vet needs
no registry: it checks against the schema it embeds.

Everything it writes passes faultline vet and cue vet -c as generated. It
refuses to overwrite a file that exists unless --force is given.`,
		Example: `  faultline init
  faultline init chaos --module example.com/shop/chaos@v0
  faultline init chaos --registry registry.example.com/cue-modules`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if !cueModuleRE.MatchString(module) {
				return usageError{fmt.Errorf("--module %q: want a CUE module path with a major version, such as example.com/scenarios@v0", module)}
			}
			if registry != "" && !cueRegistryRE.MatchString(registry) {
				return usageError{fmt.Errorf("--registry %q: want a registry as CUE_REGISTRY writes one, host[:port][/prefix][+insecure], such as registry.example.com/cue or 127.0.0.1:5000+insecure", registry)}
			}
			files := initFiles(module, initRev())
			if registry != "" {
				files = initRegistryFiles(files, module, registry)
			}
			var exist []string
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.path))); err == nil {
					exist = append(exist, f.path)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			vendored := filepath.Join(dir, schema.VendorDir)
			if _, err := os.Stat(vendored); err == nil && registry == "" {
				exist = append(exist, filepath.ToSlash(schema.VendorDir)+"/")
			}
			if len(exist) > 0 && !force {
				return usageError{fmt.Errorf("%s: %s already exist(s); nothing was written (use --force to overwrite)", dir, strings.Join(exist, ", "))}
			}
			out := cmd.OutOrStdout()
			for _, f := range files {
				p := filepath.Join(dir, filepath.FromSlash(f.path))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
					return err
				}
				fmt.Fprintln(out, "wrote", p)
			}
			if registry != "" {
				fmt.Fprintf(out, "\nnext: edit %s, then `faultline vet ./...` and `CUE_REGISTRY=%s cue vet -c ./...` in %s\n", initScenario, initCUERegistry(registry), dir)
				return nil
			}
			written, err := schema.Vendor(dir)
			if err != nil {
				return fmt.Errorf("vendoring the schema: %w", err)
			}
			fmt.Fprintf(out, "wrote %s (the vendored schema, %d file(s))\n", vendored, len(written))
			fmt.Fprintf(out, "\nnext: edit %s, then `faultline vet ./...` and `cue vet -c ./...` in %s\n", initScenario, dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files that exist")
	cmd.Flags().StringVar(&module, "module", "example.com/scenarios@v0", "the CUE module path written into cue.mod/module.cue")
	cmd.Flags().StringVar(&registry, "registry", "", "depend on the schema module "+schema.Module+" in this CUE registry (host[:port][/prefix][+insecure]) instead of vendoring it")
	return cmd
}

// cueModuleRE is a CUE module path with its major version suffix.
var cueModuleRE = regexp.MustCompile(`^[a-z0-9][-a-z0-9.]*(/[A-Za-z0-9][-A-Za-z0-9._~]*)*@v[0-9]+$`)

// initRev is the rev of faultline's pre-commit hooks: this build's release
// tag, else initDefaultRev.
func initRev() string {
	if v := buildinfo.Version(); regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(v) {
		return v
	}
	return initDefaultRev
}

// initFiles are the files `faultline init` writes, besides the vendored schema.
func initFiles(module, rev string) []initFile {
	return []initFile{
		{"cue.mod/module.cue", fmt.Sprintf("module: %q\nlanguage: version: \"v0.17.0\"\n", module)},
		{initScenario, initScenarioBody},
		{".pre-commit-config.yaml", strings.ReplaceAll(initPreCommit, "{{rev}}", rev)},
		{".github/workflows/faultline.yaml", strings.ReplaceAll(strings.ReplaceAll(initWorkflow, "{{rev}}", rev), "{{cue}}", initCUEVersion)},
		{"README.md", strings.ReplaceAll(initReadme, "{{cue}}", initCUEVersion)},
	}
}

const initScenarioBody = `// checkout-latency — 200ms of network latency on the checkout service.
//
// Proves: checkout stays within its latency budget when every response to
// its clients is delayed by 200ms (± 50ms), and comes back to its steady
// latency, without leaked goroutines, once the delay stops.
// Go failure mode: client deadlines and retries tuned to the happy path;
// goroutines that pile up while responses are slow and stay behind.
// SLOs: steady p99 < 300ms, < 1% errors; fault p99 < 800ms, < 1% errors;
// recovery within 10s, p99 < 300ms, goroutines at most 20% over steady.
// Backends: kubernetes (Chaos Mesh). To try it on a laptop, point
// target.url at a service on 127.0.0.1 and run faultline run --backend local.
//
// Edit the target (URL, namespace, selector) to match your service, then:
//   faultline vet ./...        faultline's checks
//   cue vet -c ./...           the official cue command, offline
//   faultline plan ` + initScenario + `
package scenarios

import "faultline.dev/schema"

scenarios: schema.#Scenarios & {
	"checkout-latency": {
		version:     "1.0.0"
		description: "200ms (± 50ms) network latency on checkout under steady load."
		owner:       "team-checkout"
		target: {
			url:     "http://checkout.shop.svc:8080"
			metrics: "http://checkout.shop.svc:8080/metrics"
			kubernetes: {
				namespace: "shop"
				selector: app: "checkout"
			}
		}
		load: {
			executor:        "constant-arrival-rate"
			rate:            50
			duration:        "60s"
			preAllocatedVUs: 20
			maxVUs:          100
			requests: [
				{name: "checkout", method: "POST", path: "/checkout", body: "{\"sku\":\"demo\",\"qty\":1}", headers: "Content-Type": "application/json", weight: 1, expect: status: 200},
				{name: "catalog", path: "/catalog", weight: 4, expect: status: 200},
			]
		}
		faults: latency: {
			start:    "20s"
			duration: "20s"
			mode:     "all"
			networkDelay: {latency: "200ms", jitter: "50ms", correlation: 25}
		}
		slos: {
			steady: {latency: p99: "300ms", errorRate: 1}
			fault: {latency: p99: "800ms", errorRate: 1}
			recovery: {
				within: "10s"
				latency: p99: "300ms"
				goroutines: overSteady: 20
			}
		}
		guardrails: {
			allowedNamespaces: ["shop"]
			maxBlastRadius: 100
		}
	}
}
`

const initPreCommit = `# pre-commit hooks (https://pre-commit.com): pre-commit install
repos:
  # faultline's own checks on the scenarios that changed.
  - repo: ` + initRepo + `
    rev: {{rev}}
    hooks:
      - id: faultline-vet
        files: ^scenarios/
  # The official cue command against the vendored schema (cue.mod/pkg), offline.
  - repo: local
    hooks:
      - id: cue-vet
        name: cue vet
        entry: cue vet -c ./scenarios/...
        language: system
        pass_filenames: false
        files: \.cue$
`

const initWorkflow = `# faultline: vet the scenarios on every pull request; run them against the
# cluster (Chaos Mesh) on main, with the JUnit report as an artifact.
name: faultline

on:
  pull_request:
  push:
    branches: [main]
  workflow_dispatch:

permissions:
  contents: read

env:
  FAULTLINE_VERSION: {{rev}}
  CUE_VERSION: {{cue}}

jobs:
  vet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version: stable
      - name: install faultline and cue
        run: |
          go install faultline.dev/faultline/cmd/faultline@${FAULTLINE_VERSION}
          go install cuelang.org/go/cmd/cue@${CUE_VERSION}
      - name: faultline vet
        run: faultline vet ./...
      - name: cue vet
        run: cue vet -c ./...
        env:
          CUE_REGISTRY: none

  run:
    # Real faults on a real cluster: not for every pull request.
    if: github.event_name != 'pull_request'
    needs: vet
    runs-on: ubuntu-latest
    concurrency: faultline-cluster
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version: stable
      - name: install faultline
        run: go install faultline.dev/faultline/cmd/faultline@${FAULTLINE_VERSION}
      - name: kubeconfig
        run: |
          mkdir -p ~/.kube
          printf '%s' "$KUBECONFIG_DATA" > ~/.kube/config
        env:
          KUBECONFIG_DATA: ${{ secrets.KUBECONFIG }}
      - name: faultline run --backend kubernetes
        run: |
          status=0
          for f in scenarios/*.cue; do
            name=$(basename "$f" .cue)
            faultline run --backend kubernetes "$f" --report-dir "out/reports/$name" || status=$?
            if [ -f "out/reports/$name/report.md" ]; then
              cat "out/reports/$name/report.md" >> "$GITHUB_STEP_SUMMARY"
            fi
          done
          exit $status
      - name: upload the JUnit reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: faultline-junit
          path: out/reports/*/junit.xml
          if-no-files-found: warn
      - name: upload the full reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: faultline-reports
          path: out/reports/
          if-no-files-found: ignore
`

const initReadme = `# Chaos scenarios

Typed chaos scenarios for [faultline](https://github.com/faultline-dev/faultline):
each one states the load, the faults and when they start and stop, and the
SLOs the service must meet in each phase (steady, fault, recovery).

| path | what it is |
|---|---|
| ` + "`scenarios/`" + ` | the scenarios, one CUE file each (YAML works too) |
| ` + "`cue.mod/`" + ` | the CUE module and the vendored faultline schema |
| ` + "`.pre-commit-config.yaml`" + ` | ` + "`faultline vet`" + ` and ` + "`cue vet`" + ` before each commit |
| ` + "`.github/workflows/faultline.yaml`" + ` | vet on pull requests; run on the cluster on main |

## Day to day

` + "```sh" + `
faultline vet ./...                          # faultline's checks, file:line:col
cue vet -c ./...                             # the official cue command ({{cue}}), offline
faultline plan scenarios/checkout-latency.cue  # the timeline
faultline run --backend kubernetes scenarios/checkout-latency.cue
` + "```" + `

A run writes ` + "`results.json`" + `, ` + "`junit.xml`" + `, ` + "`report.md`" + ` and ` + "`report.html`" + `
into its report directory (` + "`--report-dir`" + `). Exit codes: 0 pass, 3 invalid
scenario, 4 SLO breach, 5 regression against the golden baseline, 6
aborted, 7 infrastructure error.

## Set-up

- ` + "`pre-commit install`" + ` once per clone (the hooks need ` + "`faultline`" + ` and ` + "`cue`" + ` on
  the PATH).
- CI: add the cluster's kubeconfig as the repository secret ` + "`KUBECONFIG`" + `; the
  cluster needs Chaos Mesh. Pull requests are only vetted; pushes to main
  run every scenario and upload the JUnit reports as the ` + "`faultline-junit`" + `
  artifact.
- After upgrading faultline, refresh the vendored schema:
  ` + "`faultline schema vendor .`" + ` (` + "`faultline vet`" + ` reports a stale copy).

## Writing a scenario

The contract, every field documented, is ` + "`cue.mod/pkg/faultline.dev/schema/scenario.cue`" + `
(` + "`faultline schema print`" + `). Start each scenario with a comment saying what it
proves, the failure mode it exposes, its SLOs and which backends can run it.
Bump its ` + "`version`" + `'s major when load, faults or timing change (golden baselines
are keyed by major), minor when SLOs are added, patch for descriptions.
`
