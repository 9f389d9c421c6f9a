package kubetest_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const (
	ns           = "default"
	fieldManager = "faultline"
)

var widgets = schema.GroupVersionResource{Group: "test.faultline.dev", Version: "v1", Resource: "widgets"}

// widgetCRD is a small namespaced CRD with an enum, a minimum and a status subresource.
func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	minReplicas := 0.0
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.test.faultline.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "test.faultline.dev",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{
					Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
				},
				Schema: &apiextensionsv1.CustomResourceValidation{
					OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object",
						Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"spec": {
								Type:     "object",
								Required: []string{"size"},
								Properties: map[string]apiextensionsv1.JSONSchemaProps{
									"size": {Type: "string", Enum: []apiextensionsv1.JSON{
										{Raw: []byte(`"small"`)}, {Raw: []byte(`"medium"`)}, {Raw: []byte(`"large"`)},
									}},
									"replicas": {Type: "integer", Minimum: &minReplicas},
								},
							},
							"status": {
								Type: "object",
								Properties: map[string]apiextensionsv1.JSONSchemaProps{
									"phase": {Type: "string"},
								},
							},
						},
					},
				},
			}},
		},
	}
}

func widget(name, size string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "test.faultline.dev/v1",
		"kind":       "Widget",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       map[string]any{"size": size, "replicas": int64(2)},
	}}
}

func applyOptions() metav1.ApplyOptions {
	return metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
}

// sharedWithWidgets returns the package's shared server with the Widget CRD installed.
func sharedWithWidgets(t *testing.T) (*kubetest.Server, dynamic.ResourceInterface) {
	t.Helper()
	s := kubetest.Shared(t)
	start := time.Now()
	if err := s.InstallCRDs(t.Context(), []*apiextensionsv1.CustomResourceDefinition{widgetCRD()}); err != nil {
		t.Fatal(err)
	}
	t.Logf("InstallCRDs(widgets): %v", time.Since(start).Round(time.Millisecond))
	return s, s.Dynamic().Resource(widgets).Namespace(ns)
}

func TestApplyGetAndSchemaValidation(t *testing.T) {
	_, client := sharedWithWidgets(t)
	ctx := t.Context()

	start := time.Now()
	applied, err := client.Apply(ctx, "w-apply", widget("w-apply", "medium"), applyOptions())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	// InstallCRDs waited out the server's 2 s "just established" window (creates by POST are delayed
	// within it); a first write right after it must be fast.
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Errorf("first apply took %v, want less than the server's 2 s delay", d)
	}
	got, err := client.Get(ctx, "w-apply", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetUID() != applied.GetUID() || got.GetUID() == "" {
		t.Errorf("UID: got %q, applied %q", got.GetUID(), applied.GetUID())
	}
	if size, _, _ := unstructured.NestedString(got.Object, "spec", "size"); size != "medium" {
		t.Errorf("spec.size = %q, want medium", size)
	}
	var managers []string
	for _, mf := range got.GetManagedFields() {
		managers = append(managers, mf.Manager+"/"+string(mf.Operation))
	}
	if len(managers) != 1 || managers[0] != fieldManager+"/Apply" {
		t.Errorf("managed fields: %v, want [%s/Apply]", managers, fieldManager)
	}

	// A POST create goes through the same validation; a value outside the enum is 422 Invalid.
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want string
	}{
		{"enum", widget("w-bad-enum", "huge"), `spec.size: Unsupported value: "huge"`},
		{"minimum", func() *unstructured.Unstructured {
			w := widget("w-bad-min", "small")
			_ = unstructured.SetNestedField(w.Object, int64(-1), "spec", "replicas")
			return w
		}(), "spec.replicas: Invalid value: -1"},
		{"required", func() *unstructured.Unstructured {
			w := widget("w-bad-required", "small")
			unstructured.RemoveNestedField(w.Object, "spec", "size")
			return w
		}(), "spec.size: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Apply(ctx, tc.obj.GetName(), tc.obj, applyOptions())
			if !apierrors.IsInvalid(err) {
				t.Fatalf("apply: got %v, want 422 Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("apply: error %q does not mention %q", err, tc.want)
			}
			_, err = client.Create(ctx, tc.obj, metav1.CreateOptions{FieldManager: fieldManager})
			if !apierrors.IsInvalid(err) {
				t.Errorf("create: got %v, want 422 Invalid", err)
			}
			if _, err := client.Get(ctx, tc.obj.GetName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("rejected object exists: get returned %v", err)
			}
		})
	}
}

func TestStatusSubresource(t *testing.T) {
	_, client := sharedWithWidgets(t)
	ctx := t.Context()
	if _, err := client.Apply(ctx, "w-status", widget("w-status", "small"), applyOptions()); err != nil {
		t.Fatal(err)
	}
	status := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "test.faultline.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w-status", "namespace": ns},
		"status":   map[string]any{"phase": "Ready"},
	}}
	got, err := client.ApplyStatus(ctx, "w-status", status, applyOptions())
	if err != nil {
		t.Fatalf("apply status: %v", err)
	}
	if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Ready" {
		t.Errorf("status.phase = %q after /status apply, want Ready", phase)
	}
	// With a status subresource, status sent to the main resource is ignored.
	w := widget("w-status", "small")
	w.Object["status"] = map[string]any{"phase": "Broken"}
	got, err = client.Apply(ctx, "w-status", w, applyOptions())
	if err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Ready" {
		t.Errorf("status.phase = %q after a main-resource apply, want Ready (unchanged)", phase)
	}
}

func TestWatch(t *testing.T) {
	_, client := sharedWithWidgets(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := client.Apply(ctx, "w-watch", widget("w-watch", "large"), applyOptions()); err != nil {
		t.Fatal(err)
	}
	if err := client.Delete(ctx, "w-watch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []watch.EventType{watch.Added, watch.Deleted}
	for len(want) > 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed early; still waiting for %v", want)
			}
			obj, isObj := ev.Object.(*unstructured.Unstructured)
			if !isObj || obj.GetName() != "w-watch" {
				continue // other tests' widgets
			}
			if ev.Type != want[0] {
				t.Fatalf("event %s for w-watch, want %s", ev.Type, want[0])
			}
			want = want[1:]
		case <-ctx.Done():
			t.Fatalf("no %v event for w-watch: %v", want, ctx.Err())
		}
	}
}

func TestFinalizerBlocksDeletion(t *testing.T) {
	_, client := sharedWithWidgets(t)
	ctx := t.Context()
	const finalizer = "test.faultline.dev/hold"
	w := widget("w-final", "small")
	w.SetFinalizers([]string{finalizer})
	if _, err := client.Apply(ctx, "w-final", w, applyOptions()); err != nil {
		t.Fatal(err)
	}
	background := metav1.DeletePropagationBackground
	if err := client.Delete(ctx, "w-final", metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(ctx, "w-final", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the finalizer did not hold the object: %v", err)
	}
	if got.GetDeletionTimestamp() == nil {
		t.Fatal("deletionTimestamp not set after delete")
	}
	// Still there a moment later: nothing but us removes the finalizer.
	time.Sleep(300 * time.Millisecond)
	if _, err := client.Get(ctx, "w-final", metav1.GetOptions{}); err != nil {
		t.Fatalf("object gone while its finalizer is set: %v", err)
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := client.Patch(ctx, "w-final", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("removing the finalizer: %v", err)
	}
	if _, err := client.Get(ctx, "w-final", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after removing the finalizer: get returned %v, want NotFound", err)
	}
}

func TestRESTMapperAndDiscovery(t *testing.T) {
	s, _ := sharedWithWidgets(t)
	mapping, err := s.RESTMapper().RESTMapping(schema.GroupKind{Group: "test.faultline.dev", Kind: "Widget"})
	if err != nil {
		t.Fatalf("RESTMapping: %v", err)
	}
	if mapping.Resource != widgets || mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		t.Errorf("mapping: %v scope %s, want %v namespaced", mapping.Resource, mapping.Scope.Name(), widgets)
	}
	groups, err := s.Discovery().ServerGroups()
	if err != nil {
		t.Fatalf("discovery /apis: %v", err)
	}
	var names []string
	for _, g := range groups.Groups {
		names = append(names, g.Name)
	}
	if !slices.Contains(names, "test.faultline.dev") || !slices.Contains(names, "apiextensions.k8s.io") {
		t.Errorf("groups %v lack test.faultline.dev or apiextensions.k8s.io", names)
	}
}

// TestStopRestart uses a server of its own: stopping the shared one would break the other tests.
func TestStopRestart(t *testing.T) {
	rssBefore := rssKiB()
	start := time.Now()
	s := kubetest.Start(t)
	t.Logf("Start: %v; RSS %d MiB -> %d MiB", time.Since(start).Round(time.Millisecond), rssBefore/1024, rssKiB()/1024)
	ctx := t.Context()
	start = time.Now()
	if err := s.InstallCRDs(ctx, []*apiextensionsv1.CustomResourceDefinition{widgetCRD()}); err != nil {
		t.Fatal(err)
	}
	t.Logf("InstallCRDs(widgets) on a fresh server: %v", time.Since(start).Round(time.Millisecond))
	client := s.Dynamic().Resource(widgets).Namespace(ns)
	before, err := client.Apply(ctx, "w-restart", widget("w-restart", "large"), applyOptions())
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	w, err := client.Watch(ctx, metav1.ListOptions{ResourceVersion: before.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	start = time.Now()
	s.Stop()
	t.Logf("Stop: %v", time.Since(start).Round(time.Millisecond))
	// An open watch ends (its channel closes, possibly after an error event).
	timeout := time.After(10 * time.Second)
watching:
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				break watching
			}
			if ev.Type != watch.Error {
				t.Errorf("watch event %s after Stop, want the channel closed", ev.Type)
			}
		case <-timeout:
			t.Fatal("a watch stayed open after Stop")
		}
	}
	_, err = client.Get(ctx, "w-restart", metav1.GetOptions{})
	if err == nil || !kubetest.IsUnreachable(err) {
		t.Fatalf("get from a stopped server: got %v, want a connection error", err)
	}
	if _, err := s.Discovery().ServerVersion(); err == nil {
		t.Fatal("discovery answered while the server was stopped")
	}

	start = time.Now()
	s.Restart(t)
	t.Logf("Restart: %v", time.Since(start).Round(time.Millisecond))
	if s.URL() != url {
		t.Errorf("address changed: %s -> %s", url, s.URL())
	}
	// The same client (same address, CA and token) reaches the restarted server and finds the object.
	after, err := client.Get(ctx, "w-restart", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if after.GetUID() != before.GetUID() || after.GetResourceVersion() != before.GetResourceVersion() {
		t.Errorf("after restart: uid %s rv %s, want uid %s rv %s",
			after.GetUID(), after.GetResourceVersion(), before.GetUID(), before.GetResourceVersion())
	}
	if _, err := s.RESTMapper().RESTMapping(schema.GroupKind{Group: "test.faultline.dev", Kind: "Widget"}); err != nil {
		t.Errorf("RESTMapping after restart: %v", err)
	}
	// Writes work, and validation still applies.
	if _, err := client.Apply(ctx, "w-restart-2", widget("w-restart-2", "small"), applyOptions()); err != nil {
		t.Errorf("apply after restart: %v", err)
	}
	if _, err := client.Apply(ctx, "w-restart-3", widget("w-restart-3", "huge"), applyOptions()); !apierrors.IsInvalid(err) {
		t.Errorf("invalid apply after restart: got %v, want 422 Invalid", err)
	}
	// Restart of a running server stops it first.
	s.Restart(t)
	if _, err := client.Get(ctx, "w-restart-2", metav1.GetOptions{}); err != nil {
		t.Errorf("get after a second restart: %v", err)
	}
	t.Logf("RSS at the end: %d MiB", rssKiB()/1024)
}

func TestSharedNeedsMainOnlyOnce(t *testing.T) {
	a, b := kubetest.Shared(t), kubetest.Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	if !strings.HasPrefix(a.URL(), "https://127.0.0.1:") {
		t.Errorf("URL %s is not loopback https", a.URL())
	}
}

// chaosMeshCRDs is where the generated Chaos Mesh CRDs live (compiler/chaosmesh/crd/crds).
var chaosMeshCRDs = filepath.Join("..", "..", "compiler", "chaosmesh", "crd", "crds")

func TestInstallChaosMeshCRDs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chaosMeshCRDs, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no generated Chaos Mesh CRDs in %s yet", chaosMeshCRDs)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		crds = append(crds, crd)
	}
	s := kubetest.Shared(t)
	start := time.Now()
	if err := s.InstallCRDs(t.Context(), crds); err != nil {
		t.Fatal(err)
	}
	t.Logf("InstallCRDs(%d Chaos Mesh CRDs): %v", len(crds), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, crd := range crds {
		gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
		if _, err := s.RESTMapper().RESTMapping(gk); err != nil {
			t.Errorf("RESTMapping(%s): %v", gk, err)
		}
	}
	t.Logf("RESTMapping of every kind: %v", time.Since(start).Round(time.Millisecond))
	// A second install of the same CRDs is a no-op: nothing changes on the server.
	before, err := s.APIExtensions().ApiextensionsV1().CustomResourceDefinitions().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := s.InstallCRDs(t.Context(), crds); err != nil {
		t.Fatal(err)
	}
	t.Logf("InstallCRDs again (unchanged): %v", time.Since(start).Round(time.Millisecond))
	after, err := s.APIExtensions().ApiextensionsV1().CustomResourceDefinitions().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("reinstalling unchanged CRDs wrote to the server: list resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
}

// rssKiB is this process's resident set size (Linux; 0 elsewhere).
func rssKiB() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if fields := strings.Fields(rest); len(fields) > 0 {
				kib, _ := strconv.Atoi(fields[0])
				return kib
			}
		}
	}
	return 0
}
