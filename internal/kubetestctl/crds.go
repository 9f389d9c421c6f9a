package kubetestctl

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Pods is the stand-in for core/v1 pods on the test server (which serves no core API group): the
// K6Operator writes its runner and starter pods there, with the fields faultline reads
// (metadata.labels, status.phase, status.containerStatuses[].state). Tests point the backend at it.
var Pods = schema.GroupVersionResource{Group: "kubetest.faultline.dev", Version: "v1", Resource: "pods"}

// EventsCRD serves events.k8s.io/v1 Events on the test server (field selectors regarding.name and
// regarding.kind, as a real API server allows), so that the stand-ins can write what Chaos Mesh's
// recorder writes and the backend can read it where it reads it on a cluster.
func EventsCRD() *apiextensionsv1.CustomResourceDefinition {
	return crd("events.k8s.io", "v1", "events", "event", "Event", map[string]string{"api-approved.kubernetes.io": "unapproved, test only"},
		[]apiextensionsv1.SelectableField{{JSONPath: ".regarding.name"}, {JSONPath: ".regarding.kind"}})
}

// PodsCRD serves the stand-in Pods resource.
func PodsCRD() *apiextensionsv1.CustomResourceDefinition {
	return crd(Pods.Group, Pods.Version, Pods.Resource, "pod", "Pod", nil, nil)
}

func crd(group, version, plural, singular, kind string, annotations map[string]string, fields []apiextensionsv1.SelectableField) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	sch := &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}
	if len(fields) > 0 {
		sch.Properties = map[string]apiextensionsv1.JSONSchemaProps{"regarding": {Type: "object", XPreserveUnknownFields: &preserve,
			Properties: map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}, "kind": {Type: "string"}}}}
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group, Annotations: annotations},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: singular, Kind: kind, ListKind: kind + "List"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: version, Served: true, Storage: true, SelectableFields: fields,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: sch},
			}},
		},
	}
}
