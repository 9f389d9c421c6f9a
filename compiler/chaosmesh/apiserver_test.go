package chaosmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler"
	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/kubetest"
	"faultline.dev/faultline/schema"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// TestCompiledObjectsAcceptedByAPIServer compiles every library scenario
// and the compiler's test scenarios (every-kind, chaos-mesh-fields), takes
// the import corpus compiled back, and applies every emitted Chaos Mesh
// object and Workflow to a REAL API server (embedded etcd and
// apiextensions-apiserver, started by the test) with the generated CRDs
// installed: server-side apply with strict field validation must accept
// them all, and deliberately broken ones must be rejected.
func TestCompiledObjectsAcceptedByAPIServer(t *testing.T) {
	ctx := context.Background()
	srv := kubetest.Shared(t)
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.InstallCRDs(ctx, crds); err != nil {
		t.Fatal(err)
	}
	loaded, diags, err := schema.NewLoader().Load(ctx, []string{"../../scenarios", "../testdata/scenarios"})
	if err != nil || len(diags) > 0 {
		t.Fatalf("loading: %v %v", err, diags)
	}
	var objects []*unstructured.Unstructured
	for _, l := range loaded {
		p, err := plan.New(l.Scenario)
		if err != nil {
			t.Fatal(err)
		}
		files, _, err := compiler.Render(ctx, l, p, compiler.Options{Emitters: []compiler.Emitter{}})
		if err != nil {
			if l.Scenario.Target.Kubernetes == nil && len(l.Scenario.Faults) > 0 {
				continue // cannot compile to Chaos Mesh without a namespace
			}
			t.Fatalf("%s: %v", l.Scenario.Name, err)
		}
		for _, f := range files {
			if !strings.HasPrefix(f.Path, "chaos/") && f.Path != "workflow.yaml" {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(f.Data, &u.Object); err != nil {
				t.Fatalf("%s %s: %v", l.Scenario.Name, f.Path, err)
			}
			objects = append(objects, u)
		}
	}
	if len(objects) < 40 {
		t.Fatalf("only %d objects compiled; the every-kind scenario alone has 17 faults, chaos-mesh-fields 20", len(objects))
	}
	// The import corpus: each manifest imported and compiled back
	// (compiler/importer's golden .compiled.yaml files, spec-equal to the
	// originals there).
	corpus, err := filepath.Glob("../importer/testdata/golden/*.compiled.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nCorpus := 0
	for _, p := range corpus {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			doc = strings.TrimPrefix(doc, "---\n")
			if strings.TrimSpace(doc) == "" {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			objects = append(objects, u)
			nCorpus++
		}
	}
	if nCorpus < 38 {
		t.Fatalf("only %d objects from the import corpus (%d files)", nCorpus, len(corpus))
	}
	kinds := map[string]bool{}
	apply := func(u *unstructured.Unstructured) error {
		mapping, err := srv.RESTMapper().RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			return err
		}
		_, err = srv.Dynamic().Resource(mapping.Resource).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u,
			metav1.ApplyOptions{FieldManager: "faultline", Force: true})
		return err
	}
	for _, u := range objects {
		kinds[u.GetKind()] = true
		if err := apply(u); err != nil {
			t.Errorf("the API server rejects %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	for _, k := range []string{"NetworkChaos", "IOChaos", "TimeChaos", "StressChaos", "PodChaos", "HTTPChaos", "DNSChaos", "Workflow"} {
		if !kinds[k] {
			t.Errorf("no %s was applied", k)
		}
	}

	// Broken on purpose: each must be refused by the server's own schema.
	var network *unstructured.Unstructured
	for _, u := range objects {
		if u.GetKind() == "NetworkChaos" {
			network = u
			break
		}
	}
	for _, tc := range []struct {
		name    string
		field   []string
		value   any
		invalid bool // 422; an unknown field fails server-side apply's typed patch (500) instead
	}{
		{"mode not in the enum", []string{"spec", "mode"}, "most", true},
		{"action not in the enum", []string{"spec", "action"}, "slowdown", true},
		{"unknown field", []string{"spec", "delayy"}, map[string]any{"latency": "1s"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := network.DeepCopy()
			bad.SetName(bad.GetName() + "-broken")
			if err := unstructured.SetNestedField(bad.Object, tc.value, tc.field...); err != nil {
				t.Fatal(err)
			}
			err := apply(bad)
			if err == nil {
				t.Fatalf("the API server accepted %s", filepath.Join(tc.field...))
			}
			if tc.invalid && !apierrors.IsInvalid(err) {
				t.Errorf("rejected, but not as invalid: %v", err)
			}
			if !strings.Contains(err.Error(), tc.field[len(tc.field)-1]) {
				t.Errorf("the rejection does not name the field: %v", err)
			}
		})
	}
}
