// Package crd holds the Chaos Mesh CustomResourceDefinitions, generated from the
// pinned github.com/chaos-mesh/chaos-mesh/api module with controller-gen
// (hack/gen-crds.sh), and checks objects against them offline the way the
// Kubernetes API server does when a custom resource is created.
package crd

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"sync"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Group is the API group of every Chaos Mesh CRD.
const Group = "chaos-mesh.org"

//go:embed crds/*.yaml
var files embed.FS

// All parses the embedded CRDs and returns them sorted by name. Every call
// returns fresh objects, so callers may change them (for example before
// installing them into a test API server).
func All() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(files, "crds/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing embedded CRDs: %w", err)
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(names))
	for _, name := range names {
		c, err := parse(name)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func parse(name string) (*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading embedded CRD %s: %w", path.Base(name), err)
	}
	c := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("parsing embedded CRD %s: %w", path.Base(name), err)
	}
	if c.Kind != "CustomResourceDefinition" || c.Spec.Group == "" || c.Spec.Names.Kind == "" {
		return nil, fmt.Errorf("embedded CRD %s: not a CustomResourceDefinition", path.Base(name))
	}
	return c, nil
}

// Validator checks Chaos Mesh objects against the embedded CRDs. Create one
// with NewValidator and reuse it: a CRD is parsed, and its schema compiled,
// the first time an object of its kind is checked (parsing all of them takes
// a few hundred milliseconds). A Validator is safe for concurrent use.
type Validator struct {
	once  sync.Once
	err   error
	kinds map[schema.GroupKind]*kindEntry
}

type kindEntry struct {
	file string

	once       sync.Once
	err        error
	crd        *apiextensionsv1.CustomResourceDefinition
	namespaced bool
	versions   map[string]*versionEntry
}

type versionEntry struct {
	once       sync.Once
	err        error
	source     *apiextensionsv1.CustomResourceValidation
	validator  apiservervalidation.SchemaValidator
	structural *structuralschema.Structural
}

// NewValidator returns a Validator over the embedded CRDs. It does no work
// until it is first used.
func NewValidator() *Validator { return &Validator{} }

// header finds group and kind in controller-gen's output without parsing the
// whole (up to 1.3 MB) document.
var header = regexp.MustCompile(`(?m)^  group: (\S+)\n  names:\n(?:    .*\n)*?    kind: (\S+)$`)

// load indexes the embedded files by group and kind.
func (v *Validator) load() error {
	v.once.Do(func() {
		names, err := fs.Glob(files, "crds/*.yaml")
		if err != nil {
			v.err = fmt.Errorf("listing embedded CRDs: %w", err)
			return
		}
		v.kinds = make(map[schema.GroupKind]*kindEntry, len(names))
		for _, name := range names {
			data, err := files.ReadFile(name)
			if err != nil {
				v.err = fmt.Errorf("reading embedded CRD %s: %w", path.Base(name), err)
				return
			}
			var gk schema.GroupKind
			if m := header.FindSubmatch(data); m != nil {
				gk = schema.GroupKind{Group: string(m[1]), Kind: string(m[2])}
			} else {
				c, err := parse(name)
				if err != nil {
					v.err = err
					return
				}
				gk = schema.GroupKind{Group: c.Spec.Group, Kind: c.Spec.Names.Kind}
			}
			if _, dup := v.kinds[gk]; dup {
				v.err = fmt.Errorf("embedded CRDs: two define %s", gk)
				return
			}
			v.kinds[gk] = &kindEntry{file: name}
		}
	})
	return v.err
}

// parse reads the entry's CRD on first use.
func (e *kindEntry) parse(gk schema.GroupKind) error {
	e.once.Do(func() {
		c, err := parse(e.file)
		if err != nil {
			e.err = err
			return
		}
		if got := (schema.GroupKind{Group: c.Spec.Group, Kind: c.Spec.Names.Kind}); got != gk {
			e.err = fmt.Errorf("embedded CRD %s defines %s, not %s", path.Base(e.file), got, gk)
			return
		}
		e.crd = c
		e.namespaced = c.Spec.Scope == apiextensionsv1.NamespaceScoped
		e.versions = make(map[string]*versionEntry, len(c.Spec.Versions))
		for i := range c.Spec.Versions {
			ver := &c.Spec.Versions[i]
			if ver.Served {
				e.versions[ver.Name] = &versionEntry{source: ver.Schema}
			}
		}
	})
	return e.err
}

// compile builds the schema validator and the structural schema of one
// version the way the API server's custom resource handler does.
func (e *versionEntry) compile() error {
	e.once.Do(func() {
		if e.source == nil || e.source.OpenAPIV3Schema == nil {
			e.err = fmt.Errorf("no OpenAPI v3 schema")
			return
		}
		internal := &apiextensions.CustomResourceValidation{}
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(e.source, internal, nil); err != nil {
			e.err = fmt.Errorf("converting the schema to the internal version: %w", err)
			return
		}
		validator, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
		if err != nil {
			e.err = fmt.Errorf("building the schema validator: %w", err)
			return
		}
		s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
		if err != nil {
			e.err = fmt.Errorf("the schema is not structural: %w", err)
			return
		}
		s = s.DeepCopy()
		if err := structuraldefaulting.PruneDefaults(s); err != nil {
			e.err = fmt.Errorf("pruning schema defaults: %w", err)
			return
		}
		e.validator, e.structural = validator, s
	})
	return e.err
}

// lookup finds the compiled schema for gvk; the error is reported at the
// field that selects it (apiVersion or kind).
func (v *Validator) lookup(gvk schema.GroupVersionKind) (*kindEntry, *versionEntry, *field.Error) {
	if err := v.load(); err != nil {
		return nil, nil, field.InternalError(nil, err)
	}
	e, ok := v.kinds[gvk.GroupKind()]
	if !ok {
		return nil, nil, field.NotSupported(field.NewPath("kind"), gvk.Kind, v.kindNames(gvk.Group))
	}
	if err := e.parse(gvk.GroupKind()); err != nil {
		return nil, nil, field.InternalError(nil, err)
	}
	ver, ok := e.versions[gvk.Version]
	if !ok {
		return nil, nil, field.Invalid(field.NewPath("apiVersion"), gvk.GroupVersion().String(),
			fmt.Sprintf("CRD %s does not serve version %q", e.crd.Name, gvk.Version))
	}
	if err := ver.compile(); err != nil {
		return nil, nil, field.InternalError(nil, fmt.Errorf("CRD %s version %s: %w", e.crd.Name, gvk.Version, err))
	}
	return e, ver, nil
}

func (v *Validator) kindNames(group string) []string {
	var out []string
	for gk := range v.kinds {
		if gk.Group == group {
			out = append(out, gk.Kind)
		}
	}
	sort.Strings(out)
	return out
}

// CRD returns the CRD that defines gk, or nil if there is none. The result is
// shared: do not change it.
func (v *Validator) CRD(gk schema.GroupKind) *apiextensionsv1.CustomResourceDefinition {
	if v.load() != nil {
		return nil
	}
	if e, ok := v.kinds[gk]; ok && e.parse(gk) == nil {
		return e.crd
	}
	return nil
}

// Default applies the defaults declared in the CRD schema to obj in place, as
// the API server does when it decodes a request.
func (v *Validator) Default(obj *unstructured.Unstructured) error {
	_, ver, ferr := v.lookup(obj.GroupVersionKind())
	if ferr != nil {
		return ferr
	}
	structuraldefaulting.Default(obj.Object, ver.structural)
	return nil
}

// Validate checks obj the way the API server checks a custom resource on
// create: the object metadata (name, namespace, labels, annotations), the
// OpenAPI v3 schema of the CRD version named by obj's apiVersion (types,
// enums, patterns, minimums, required fields), the list-type invariants, and
// fields the schema does not know (which the server would drop, or reject with
// strict field validation). Paths are JSON paths such as "spec.mode". obj is
// not changed. An object of a kind without an embedded CRD yields one error at
// "kind".
func (v *Validator) Validate(obj *unstructured.Unstructured) field.ErrorList {
	e, ver, ferr := v.lookup(obj.GroupVersionKind())
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	var errs field.ErrorList
	errs = append(errs, apimachineryvalidation.ValidateObjectMetaAccessor(obj, e.namespaced,
		apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj.UnstructuredContent(), ver.validator)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, ver.structural, obj.Object)...)

	pruned := obj.DeepCopy()
	unknown := structuralpruning.PruneWithOptions(pruned.Object, ver.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range unknown {
		errs = append(errs, field.Forbidden(field.NewPath(p),
			"unknown field: not in the CRD schema (the API server drops it, or rejects it with strict field validation)"))
	}
	return errs
}
