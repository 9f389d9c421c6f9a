package chaosmesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	gw "github.com/chaos-mesh/chaos-mesh/api/genericwebhook"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
)

// Source names the set of rules that caught a Problem.
type Source string

const (
	// SourceWebhook is Chaos Mesh's admission webhook: the api module's
	// Default and ValidateCreate (durations, percentages, selectors, the
	// shape of a Workflow).
	SourceWebhook Source = "webhook"
	// SourceCRDSchema is the CRD's OpenAPI v3 schema as the API server applies
	// it: types, enums, patterns, minimums and maximums, required fields,
	// list types and unknown fields.
	SourceCRDSchema Source = "crd-schema"
	// SourceObjectMeta is the API server's rules for metadata: name,
	// namespace, label and annotation syntax.
	SourceObjectMeta Source = "object-meta"
)

// Problem is one thing wrong with an object.
type Problem struct {
	// Path is the JSON path of the offending field in the object as it is
	// written out, e.g. "spec.delay.latency" or
	// "spec.templates[1].networkChaos.mode"; empty when the rule names no
	// field.
	Path string
	// Source is the rule set that caught it.
	Source Source
	// Type is the kind of error (field.ErrorTypeInvalid, ...NotSupported,
	// ...Required, ...); empty when the engine's message did not say.
	Type field.ErrorType
	// Message is the engine's message without the path, e.g.
	// `Invalid value: "fast": parse duration field error: ...`.
	Message string
}

func (p Problem) String() string {
	path := p.Path
	if path == "" {
		path = "<object>"
	}
	return fmt.Sprintf("%s: %s (%s)", path, p.Message, p.Source)
}

// Error lists everything Chaos Mesh's own rules reject in one object.
type Error struct {
	Kind      string
	Namespace string
	Name      string
	// Problems is sorted by Path, then Source, then Message.
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s is rejected by Chaos Mesh:", e.Kind, e.Namespace, e.Name)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate checks obj by Chaos Mesh's own rules, offline, as a cluster would
// on create: on a deep copy, the api module's mutating webhook (Default), its
// validating webhook (ValidateCreate), and then the API server's checks of the
// defaulted object against the CRD (metadata, OpenAPI schema). obj itself is
// not changed.
//
// obj must be a *v1alpha1.<Kind> of the api module with metadata.name and
// metadata.namespace set (selector namespaces default to the object's
// namespace); apiVersion and kind may be left empty. The result is nil, a
// *Error listing each problem with its path and source, or an error for an
// object that cannot be checked at all.
func Validate(ctx context.Context, v *crd.Validator, obj client.Object) error {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return errors.New("chaosmesh: validate: nil object")
	}
	typ := reflect.TypeOf(obj).Elem()
	if typ.PkgPath() != apiPkgPath {
		return fmt.Errorf("chaosmesh: validate: %T is not a Chaos Mesh api type", obj)
	}
	orig := obj
	obj, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("chaosmesh: validate: deep copy of %T is not a client.Object", orig)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		gvk = v1alpha1.SchemeGroupVersion.WithKind(typ.Name())
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}

	// The API server applies the CRD's defaults when it decodes the request,
	// before the webhooks see the object (IOChaos percent 0 becomes 100).
	obj, err := schemaDefaults(v, obj)
	if err != nil {
		return fmt.Errorf("chaosmesh: validate %s %s/%s: %w", gvk.Kind, orig.GetNamespace(), orig.GetName(), err)
	}

	// As on a cluster: mutating webhook, then the CRD schema checks of the
	// mutated object, then the validating webhook.
	problems := mutate(ctx, obj)
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("chaosmesh: validate %s %s/%s: converting to unstructured: %w",
			gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	if len(problems) == 0 {
		problems = append(problems, admit(ctx, obj)...)
	}
	for _, fe := range v.Validate(u) {
		src := SourceCRDSchema
		if fe.Field == "metadata" || strings.HasPrefix(fe.Field, "metadata.") {
			src = SourceObjectMeta
		}
		problems = append(problems, fromFieldError(fe, fieldPath(fe.Field), src))
	}

	if len(problems) == 0 {
		return nil
	}
	order := map[Source]int{SourceWebhook: 0, SourceObjectMeta: 1, SourceCRDSchema: 2}
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Source != b.Source {
			return order[a.Source] < order[b.Source]
		}
		return a.Message < b.Message
	})
	// The webhook can report one thing twice (a validator promoted through
	// an embedded struct runs for both).
	uniq := problems[:1]
	for _, p := range problems[1:] {
		if p != uniq[len(uniq)-1] {
			uniq = append(uniq, p)
		}
	}
	problems = uniq
	return &Error{Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Problems: problems}
}

var apiPkgPath = reflect.TypeOf(v1alpha1.NetworkChaos{}).PkgPath()

// schemaDefaults returns a new object of obj's type: obj with the defaults of
// its CRD schema applied. An object of a kind without a CRD comes back as it
// is (the CRD check reports it).
func schemaDefaults(v *crd.Validator, obj client.Object) (client.Object, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting to unstructured: %w", err)
	}
	u := &unstructured.Unstructured{Object: content}
	if err := v.Default(u); err != nil {
		return obj, nil
	}
	out, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", obj)
	}
	// Through JSON, as the webhook server receives it: the unstructured
	// converter would allocate inline embedded pointers (a Workflow template's
	// *EmbedChaos) that JSON decoding leaves nil.
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding the defaulted object: %w", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decoding the defaulted object: %w", err)
	}
	return out, nil
}

// mutate runs the api module's mutating webhook (Default) on obj in place.
func mutate(ctx context.Context, obj client.Object) (problems []Problem) {
	defer recoverWebhook(obj, &problems)
	defaulter, ok := obj.(admission.CustomDefaulter)
	if !ok {
		return []Problem{{Source: SourceWebhook, Type: field.ErrorTypeInternal,
			Message: fmt.Sprintf("Internal error: %T has no Default webhook", obj)}}
	}
	if err := defaulter.Default(ctx, obj); err != nil {
		return []Problem{{Source: SourceWebhook, Message: "Default: " + err.Error()}}
	}
	return nil
}

// recoverWebhook turns a panic in the api module's webhook code into a
// Problem.
func recoverWebhook(obj client.Object, problems *[]Problem) {
	r := recover()
	if r == nil {
		return
	}
	// The one panic known upstream: Workflow.ValidateCreate dereferences the
	// embedded spec of a chaos template that has none.
	if wf, ok := obj.(*v1alpha1.Workflow); ok {
		if missing := missingChaosSpecs(wf); len(missing) > 0 {
			*problems = append(*problems, missing...)
			return
		}
	}
	*problems = append(*problems, Problem{
		Source:  SourceWebhook,
		Type:    field.ErrorTypeInternal,
		Message: fmt.Sprintf("Internal error: the Chaos Mesh webhook panicked: %v", r),
	})
}

// admit runs the api module's validating webhook (ValidateCreate) on obj and
// returns what it rejects, with JSON paths. It may change obj.
//
// ValidateCreate flattens its field.ErrorList into one error string, so the
// structure is recovered: for chaos kinds from genericwebhook.Validate (which
// ValidateCreate aggregates), for a Workflow from EmbedChaos.Validate of each
// chaos template (which ValidateCreate calls, with paths relative to the
// embedded chaos object) plus the parsed remainder of the message.
func admit(ctx context.Context, obj client.Object) (problems []Problem) {
	defer recoverWebhook(obj, &problems)
	validator, ok := obj.(admission.CustomValidator)
	if !ok {
		return []Problem{{Source: SourceWebhook, Type: field.ErrorTypeInternal,
			Message: fmt.Sprintf("Internal error: %T has no ValidateCreate webhook", obj)}}
	}
	_, err := validator.ValidateCreate(ctx, obj)
	if err == nil {
		return nil
	}

	// known maps the text of each structured error, as ValidateCreate prints
	// it, to the error itself with its JSON path.
	type knownError struct {
		text    string
		problem Problem
	}
	var known []knownError
	add := func(fe *field.Error, path string) {
		known = append(known, knownError{text: fe.Error(), problem: fromFieldError(fe, path, SourceWebhook)})
	}
	rootType := reflect.TypeOf(obj).Elem()
	if wf, ok := obj.(*v1alpha1.Workflow); ok {
		embedType := reflect.TypeOf(v1alpha1.EmbedChaos{})
		for i, t := range wf.Spec.Templates {
			if t.EmbedChaos == nil || !v1alpha1.IsChaosTemplateType(t.Type) {
				continue
			}
			tmplPath := field.NewPath("spec", "templates").Index(i)
			specField, ok := embedType.FieldByName(string(t.Type))
			if !ok {
				continue
			}
			spawned, err := t.EmbedChaos.SpawnNewObject(t.Type)
			if err != nil {
				continue // ValidateCreate reports it
			}
			chaosType := reflect.TypeOf(spawned).Elem()
			for _, fe := range t.EmbedChaos.Validate(tmplPath, string(t.Type)) {
				path := fe.Field
				if !strings.HasPrefix(path, tmplPath.String()) {
					// Relative to a spawned <Kind> object: re-root its spec at
					// the template's embedded spec.
					rel := jsonPath(chaosType, fe.Field)
					if rel == "spec" || strings.HasPrefix(rel, "spec.") || strings.HasPrefix(rel, "spec[") {
						path = tmplPath.String() + "." + jsonName(specField) + strings.TrimPrefix(rel, "spec")
					} else {
						path = tmplPath.String() + "." + rel
					}
				}
				add(fe, path)
			}
		}
	} else {
		for _, fe := range gw.Validate(obj) {
			add(fe, jsonPath(rootType, fe.Field))
		}
	}

	seen := map[string]bool{}
	for _, k := range known {
		problems = append(problems, k.problem)
		seen[k.text] = true
	}
	for _, piece := range splitAggregate(err.Error()) {
		if seen[piece] {
			continue
		}
		seen[piece] = true
		problems = append(problems, parseFieldError(piece, rootType))
	}
	return problems
}

// missingChaosSpecs reports the chaos templates of wf without their chaos spec.
func missingChaosSpecs(wf *v1alpha1.Workflow) []Problem {
	var out []Problem
	embedType := reflect.TypeOf(v1alpha1.EmbedChaos{})
	for i, t := range wf.Spec.Templates {
		if !v1alpha1.IsChaosTemplateType(t.Type) {
			continue
		}
		f, ok := embedType.FieldByName(string(t.Type))
		if !ok {
			continue
		}
		if t.EmbedChaos != nil && !reflect.ValueOf(t.EmbedChaos).Elem().FieldByIndex(f.Index).IsNil() {
			continue
		}
		out = append(out, Problem{
			Path:   field.NewPath("spec", "templates").Index(i).Child(jsonName(f)).String(),
			Source: SourceWebhook,
			Type:   field.ErrorTypeRequired,
			Message: fmt.Sprintf("Required value: a %s template needs its chaos spec (the Chaos Mesh webhook panics without it)",
				t.Type),
		})
	}
	return out
}

func fromFieldError(fe *field.Error, path string, src Source) Problem {
	return Problem{Path: path, Source: src, Type: fe.Type, Message: fe.ErrorBody()}
}

// fieldPath turns field.Error.Field into a Problem path ("<nil>" means none).
func fieldPath(s string) string {
	if s == "<nil>" {
		return ""
	}
	return s
}

var errorTypes = func() map[string]field.ErrorType {
	m := map[string]field.ErrorType{}
	for _, t := range []field.ErrorType{
		field.ErrorTypeNotFound, field.ErrorTypeRequired, field.ErrorTypeDuplicate,
		field.ErrorTypeInvalid, field.ErrorTypeNotSupported, field.ErrorTypeForbidden,
		field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTooFew,
		field.ErrorTypeInternal, field.ErrorTypeTooShort,
	} {
		m[t.String()] = t
	}
	return m
}()

// fieldErrorStart matches where a printed field.Error begins: "<path>: <type>".
var fieldErrorStart = func() *regexp.Regexp {
	names := make([]string, 0, len(errorTypes))
	for n := range errorTypes {
		names = append(names, regexp.QuoteMeta(n))
	}
	sort.Strings(names)
	seg := `[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])*`
	return regexp.MustCompile(`(?:^|, )((?:` + seg + `(?:\.` + seg + `)*|<nil>)?): (` + strings.Join(names, "|") + `)\b`)
}()

// splitAggregate splits the text of a utilerrors.Aggregate of field.Errors
// ("msg" or "[msg1, msg2]") back into the messages.
func splitAggregate(s string) []string {
	inner := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner = s[1 : len(s)-1]
	}
	locs := fieldErrorStart.FindAllStringSubmatchIndex(inner, -1)
	if len(locs) == 0 || locs[0][0] != 0 {
		if len(locs) == 0 {
			return []string{s}
		}
		// Text before the first field error: keep it as its own piece.
		locs = append([][]int{{0, 0, 0, 0}}, locs...)
	}
	var out []string
	for i, loc := range locs {
		start := loc[2] // the path, after any ", "
		if i == 0 {
			start = 0
		}
		end := len(inner)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if piece := strings.TrimSpace(inner[start:end]); piece != "" {
			out = append(out, piece)
		}
	}
	return out
}

// parseFieldError turns the text of one field.Error back into a Problem.
func parseFieldError(s string, rootType reflect.Type) Problem {
	p := Problem{Source: SourceWebhook, Message: s}
	loc := fieldErrorStart.FindStringSubmatchIndex(s)
	if loc == nil || loc[0] != 0 {
		return p
	}
	path := fieldPath(s[loc[2]:loc[3]])
	p.Type = errorTypes[s[loc[4]:loc[5]]]
	p.Message = s[loc[4]:]
	p.Path = jsonPath(rootType, path)
	return p
}

// jsonPath rewrites a field path that names Go struct fields (as the
// genericwebhook walker does: "Spec.TcParameter.Delay.Latency") into the JSON
// path of the serialized object ("spec.delay.latency"), following root's
// fields: inline embedded structs disappear, names become their json tags.
// Segments that already are json names are kept; a segment that matches
// nothing ends the translation and the rest is kept as it is.
func jsonPath(root reflect.Type, goPath string) string {
	if goPath == "" {
		return ""
	}
	segs := splitPath(goPath)
	var out strings.Builder
	t := root
	for _, seg := range segs {
		if strings.HasPrefix(seg, "[") {
			out.WriteString(seg)
			t = elem(t)
			continue
		}
		name, next := seg, reflect.Type(nil)
		if st := deref(t); st != nil && st.Kind() == reflect.Struct {
			if f, ok := st.FieldByName(seg); ok && f.IsExported() {
				if isInline(f) {
					t = f.Type
					continue
				}
				name, next = jsonName(f), f.Type
			} else if f, ok := fieldByJSONName(st, seg); ok {
				next = f.Type
			}
		}
		if out.Len() > 0 {
			out.WriteString(".")
		}
		out.WriteString(name)
		t = next
	}
	return out.String()
}

// splitPath splits "a.b[0].c[key.with.dots]" into "a", "b", "[0]", "c",
// "[key.with.dots]".
func splitPath(p string) []string {
	var segs []string
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return append(segs, p[i:])
			}
			segs = append(segs, p[i:i+j+1])
			i += j + 1
		default:
			j := strings.IndexAny(p[i:], ".[")
			if j < 0 {
				return append(segs, p[i:])
			}
			segs = append(segs, p[i:i+j])
			i += j
		}
	}
	return segs
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func elem(t reflect.Type) reflect.Type {
	t = deref(t)
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return t.Elem()
	}
	return nil
}

func isInline(f reflect.StructField) bool {
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	return f.Anonymous && name == ""
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" || name == "-" {
		return f.Name
	}
	return name
}

// fieldByJSONName finds the field serialized as name in st, looking through
// inline embedded structs.
func fieldByJSONName(st reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		if isInline(f) {
			if inner := deref(f.Type); inner != nil && inner.Kind() == reflect.Struct {
				if g, ok := fieldByJSONName(inner, name); ok {
					return g, true
				}
			}
			continue
		}
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// Defaulted returns a deep copy of obj with the defaults Chaos Mesh fills in
// on create: those of its CRD schema (as the API server applies them) and
// those of the api module's mutating webhook (Default). A selector without
// namespaces gets the object's namespace, as Chaos Mesh's controller reads
// it. Two objects that mean the same chaos are equal after Defaulted; obj
// itself is not changed.
func Defaulted(ctx context.Context, v *crd.Validator, obj client.Object) (out client.Object, err error) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return nil, errors.New("chaosmesh: defaulted: nil object")
	}
	cp, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("chaosmesh: defaulted: deep copy of %T is not a client.Object", obj)
	}
	if cp.GetObjectKind().GroupVersionKind().Empty() {
		cp.GetObjectKind().SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind(reflect.TypeOf(obj).Elem().Name()))
	}
	gvk := cp.GetObjectKind().GroupVersionKind()
	cp, err = schemaDefaults(v, cp)
	if err != nil {
		return nil, fmt.Errorf("chaosmesh: defaulted %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	cp.GetObjectKind().SetGroupVersionKind(gvk)
	if probs := mutate(ctx, cp); len(probs) > 0 {
		return nil, fmt.Errorf("chaosmesh: defaulted %s %s/%s: %s", gvk.Kind, obj.GetNamespace(), obj.GetName(), probs[0])
	}
	defaultNamespaces(reflect.ValueOf(cp), cp.GetNamespace())
	return cp, nil
}

// defaultNamespaces gives every pod selector under v without namespaces the
// namespace ns (PodSelectorSpec.DefaultNamespace, which Chaos Mesh's
// controller applies when it selects).
func defaultNamespaces(v reflect.Value, ns string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			defaultNamespaces(v.Elem(), ns)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(v1alpha1.PodSelectorSpec{}) && v.CanAddr() {
			if sel, ok := v.Addr().Interface().(*v1alpha1.PodSelectorSpec); ok {
				sel.DefaultNamespace(ns)
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				defaultNamespaces(v.Field(i), ns)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			defaultNamespaces(v.Index(i), ns)
		}
	}
}
