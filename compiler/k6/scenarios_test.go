package k6

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// nasty holds what could break a generator that pastes strings into
// JavaScript source: quotes, backticks, template syntax, a closing script
// tag, line breaks, JavaScript's other line terminators, non-ASCII text.
const nasty = "q\"uote 'single' `back` ${globalThis.x} </script><!-- \\ \\n \n newline \u2028 \u2029 ünïcødé 日本語 😀 */ //"

// nastyHeader is nasty without the line breaks HTTP forbids in a header.
const nastyHeader = "q\"uote 'single' `back` ${globalThis.x} </script> \\ \u2028 \u2029 ünïcødé 日本語 😀 */ //"

// nastyPath is a request path with quotes, a dollar and a query.
const nastyPath = "/echo/it's$x?q=%22a%22&b='c'"

// Scenarios written as documents, loaded through the schema like a user's.
var (
	// nastyDoc puts nasty strings in every place a scenario string reaches
	// the script: names, headers, bodies, checks.
	nastyDoc = map[string]any{
		"name": "nasty-strings", "version": "1.0.0",
		"description": nasty,
		"target":      map[string]any{"url": "http://127.0.0.1:1"},
		"load": map[string]any{
			"executor": "shared-iterations", "vus": 1, "iterations": 3, "maxDuration": "20s",
			"requests": []any{map[string]any{
				"name":    nasty,
				"method":  "POST",
				"path":    nastyPath,
				"headers": map[string]any{"X-Odd`'|~": nastyHeader},
				"body":    nasty,
				"expect":  map[string]any{"status": 200, "bodyContains": []string{nasty, "</script>", "\u2028"}},
			}},
		},
		"slos": map[string]any{"steady": map[string]any{"checks": 100, "errorRate": 0}},
	}
	// faultWindowDoc: steady 2 s, fault 2 s, recovery 2 s, the same latency
	// SLO in each phase.
	faultWindowDoc = map[string]any{
		"name": "fault-window", "version": "1.0.0",
		"target": map[string]any{"url": "http://127.0.0.1:1"},
		"load": map[string]any{
			"executor": "constant-vus", "vus": 2, "duration": "6s", "gracefulStop": "2s",
			"requests": []any{map[string]any{"path": "/"}},
		},
		"faults": map[string]any{"slow": map[string]any{
			"start": "2s", "duration": "2s", "mode": "all",
			"httpFault": map[string]any{"target": "response", "port": 8080, "delay": "300ms"},
		}},
		"slos": map[string]any{
			"steady":   map[string]any{"latency": map[string]any{"p99": "100ms"}},
			"fault":    map[string]any{"latency": map[string]any{"p99": "100ms"}},
			"recovery": map[string]any{"latency": map[string]any{"p99": "100ms"}},
		},
	}
	// emptyPhaseDoc: the fault phase starts at 5 s, long after three
	// iterations have run, so it has SLOs and no requests.
	emptyPhaseDoc = map[string]any{
		"name": "empty-phase", "version": "1.0.0",
		"target": map[string]any{"url": "http://127.0.0.1:1"},
		"load": map[string]any{
			"executor": "per-vu-iterations", "vus": 1, "iterations": 3, "maxDuration": "10s",
			"requests": []any{map[string]any{"path": "/"}},
		},
		"faults": map[string]any{"later": map[string]any{
			"start": "5s", "duration": "1s", "podKill": map[string]any{},
		}},
		"slos": map[string]any{
			"steady": map[string]any{"latency": map[string]any{"p99": "5s"}},
			"fault":  map[string]any{"latency": map[string]any{"p99": "5s"}},
		},
	}
	// mixDoc: a weighted mix of methods, headers and bodies, with a
	// recovery allowance (recovery-grace), throughput and abortOnBreach.
	mixDoc = map[string]any{
		"name": "mix", "version": "0.1.0",
		"target": map[string]any{"url": "http://127.0.0.1:1/base/"},
		"load": map[string]any{
			"executor": "ramping-arrival-rate", "startRate": 2, "preAllocatedVUs": 2, "maxVUs": 4,
			"stages": []any{map[string]any{"duration": "10s", "target": 10}, map[string]any{"duration": "20s", "target": 10}},
			"requests": []any{
				map[string]any{"path": "/a", "weight": 3},
				map[string]any{"name": "create", "method": "PUT", "path": "/b", "weight": 1, "body": `{"x":1}`,
					"headers": map[string]any{"Content-Type": "application/json"}, "expect": map[string]any{"status": 201}},
			},
		},
		"faults": map[string]any{"kill": map[string]any{"start": "10s", "duration": "5s", "podKill": map[string]any{}}},
		"slos": map[string]any{
			"fault":    map[string]any{"errorRate": 5, "throughput": 5, "abortOnBreach": true},
			"recovery": map[string]any{"within": "5s", "latency": map[string]any{"p95": "200ms"}, "checks": 99},
		},
	}
	// grpcDoc: gRPC calls only, described by the server's reflection
	// service, one expecting NOT_FOUND, with a fault window.
	grpcDoc = map[string]any{
		"name": "grpc-calls", "version": "1.0.0",
		"target": map[string]any{"url": "http://127.0.0.1:1", "grpc": "127.0.0.1:2"},
		"load": map[string]any{
			"executor": "constant-vus", "vus": 2, "duration": "6s",
			"requests": []any{
				map[string]any{"grpc": map[string]any{"method": "faultline.demo.v1.Shop/Checkout",
					"message": map[string]any{"sku": "sku-1", "qty": 1}, "metadata": map[string]any{"x-run": "t"}}, "weight": 3},
				map[string]any{"name": "missing", "grpc": map[string]any{"method": "faultline.demo.v1.Shop/Checkout",
					"message": map[string]any{"sku": "nope", "qty": 1}}, "expect": map[string]any{"grpcStatus": "NOT_FOUND"}},
			},
		},
		"faults": map[string]any{"slow": map[string]any{
			"start": "2s", "duration": "2s", "networkDelay": map[string]any{"latency": "50ms"},
		}},
		"slos": map[string]any{
			"steady": map[string]any{"latency": map[string]any{"p99": "100ms"}, "errorRate": 1, "throughput": 10},
			"fault":  map[string]any{"latency": map[string]any{"p99": "200ms"}, "checks": 95},
		},
	}
	// grpcMixDoc: HTTP requests and gRPC calls in one weighted mix, the
	// calls described by target.protos, over TLS.
	grpcMixDoc = map[string]any{
		"name": "grpc-mix", "version": "1.0.0",
		"target": map[string]any{"url": "http://127.0.0.1:1", "grpc": "127.0.0.1:2", "grpcTLS": true,
			"protos": map[string]any{"files": []string{"shop.proto"}, "importPaths": []string{"../../internal/demotarget"}}},
		"load": map[string]any{
			"executor": "constant-arrival-rate", "rate": 20, "duration": "6s", "preAllocatedVUs": 4,
			"requests": []any{
				map[string]any{"path": "/a", "weight": 1},
				map[string]any{"grpc": map[string]any{"method": "faultline.demo.v1.Shop/Checkout",
					"message": map[string]any{"sku": "sku-1", "qty": 2}}, "weight": 1},
			},
		},
		"slos": map[string]any{
			"steady": map[string]any{"latency": map[string]any{"p95": "100ms"}, "errorRate": 0.5, "throughput": 15},
		},
	}
)

// loadDoc writes a scenario document to a file and loads it with the
// schema loader.
func loadDoc(t testing.TB, doc map[string]any) *schema.Loaded {
	t.Helper()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ls, ds, err := schema.NewLoader().Load(t.Context(), []string{path})
	if err != nil || len(ds) > 0 || len(ls) != 1 {
		t.Fatalf("loading the scenario: %v %v (%d loaded)\n%s", err, ds, len(ls), b)
	}
	return ls[0]
}

// namedPlan is a plan some test compiles.
type namedPlan struct {
	name string
	plan *plan.Plan
}

// testPlans are every scenario the tests compile: the library, the
// compiler's test scenarios, the documents above, and the executor and
// threshold cases.
func testPlans(t testing.TB) []namedPlan {
	t.Helper()
	var out []namedPlan
	add := func(name string, s *schema.Scenario) {
		p, err := plan.New(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, namedPlan{name, p})
	}
	ls, ds, err := schema.NewLoader().Load(t.Context(), []string{"../../scenarios", "../testdata/scenarios"})
	if err != nil || len(ds) > 0 || len(ls) == 0 {
		t.Fatalf("loading the scenarios: %v %v", err, ds)
	}
	for _, l := range ls {
		add(l.Scenario.Name, l.Scenario)
	}
	for _, doc := range []map[string]any{nastyDoc, faultWindowDoc, emptyPhaseDoc, mixDoc, grpcDoc, grpcMixDoc} {
		l := loadDoc(t, doc)
		add(l.Scenario.Name, l.Scenario)
	}
	for _, c := range executorCases() {
		add("executor "+c.name, base(c.load))
	}
	for _, c := range thresholdCases() {
		add("thresholds "+c.name, c.scenario())
	}
	return out
}

// emitted compiles a plan, failing the test on an error.
func emitted(t testing.TB, p namedPlan) Files {
	t.Helper()
	files, err := Emit(p.plan)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return files
}

// missingTool skips the test, or fails it on CI (CI=true), where every
// tool the tests need must be installed.
func missingTool(t *testing.T, what, install string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI must run this test: run .ci/run, or %s", what, install)
	}
	t.Skipf("skipped: %s is not installed; to run this test: %s", what, install)
}

// tscDir holds the npm project that pins typescript and @types/k6.
const tscDir = "tsc"

const npmInstall = "cd compiler/k6/tsc && npm ci"

// needNode returns the path of node.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missingTool(t, "node", "install Node.js, then "+npmInstall)
	}
	return node
}

// needTSC returns node and the pinned TypeScript compiler's script.
func needTSC(t *testing.T) (node, tsc string) {
	t.Helper()
	node = needNode(t)
	tsc, err := filepath.Abs(filepath.Join(tscDir, "node_modules", "typescript", "bin", "tsc"))
	if err != nil {
		t.Fatal(err)
	}
	types := filepath.Join(tscDir, "node_modules", "@types", "k6", "index.d.ts")
	for _, f := range []string{tsc, types} {
		if _, err := os.Stat(f); err != nil {
			missingTool(t, "the TypeScript compiler with @types/k6 (compiler/k6/tsc/node_modules)", npmInstall)
		}
	}
	return node, tsc
}

// sortedNames returns the names of the plans, sorted.
func sortedNames(ps []namedPlan) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	slices.Sort(names)
	return names
}
