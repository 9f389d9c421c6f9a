package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/schema"
)

// File is one manifest file to import.
type File struct {
	Name string
	Data []byte
}

// Options tune an import.
type Options struct {
	// Name is the scenario's name. Default: the first file's base name.
	Name string
	// Namespace is the namespace of objects without metadata.namespace
	// (kubectl's current namespace when they are applied). Without it such
	// an object is an error.
	Namespace string
	// Lead is the steady phase before the first fault: every fault window
	// is shifted by it. Default (0): 30s; a negative Lead means none.
	Lead schema.Duration
	// Recovery is how long the load runs after the last fault. Default: 30s.
	Recovery schema.Duration
	// OneShot is the duration given to a one-shot fault (pod-kill,
	// container-kill) that has none: the window its effect is judged in.
	// Default (0): none; the fault has just start, as in Chaos Mesh (an
	// instant, judged on schema.OneShotWindow after it).
	OneShot schema.Duration
	// Validator checks and defaults objects with Chaos Mesh's rules.
	// Default: a new crd.Validator.
	Validator *crd.Validator
}

// Result is an imported scenario.
type Result struct {
	Scenario *schema.Scenario
	// Notes say what the import decided that the user should know (a
	// Schedule's cron fired once, a one-shot fault's window).
	Notes []string
	// Objects are the original chaos objects by fault name, for checking.
	Objects map[string]client.Object
}

// item is one chaos to become a fault: a chaos object, or a chaos template
// of a Workflow or Schedule.
type item struct {
	file   string
	node   *yaml.Node // the chaos spec's node
	field  string     // the spec's path in the document: "spec", "spec.templates[1].networkChaos"
	object string     // "NetworkChaos shop/delay" (+ " template t")
	name   string     // the fault's name, before de-duplication
	kind   string     // Chaos Mesh kind: "NetworkChaos"
	obj    client.Object
	start  schema.Duration
	dur    schema.Duration
	// noDuration marks a chaos without its own window (no duration, no
	// deadline).
	noDuration bool
}

type importer struct {
	ctx   context.Context
	opts  Options
	v     *crd.Validator
	errs  Errors
	items []*item
	notes []string
	// byName is the item of each fault, once the scenario is built.
	byName map[string]*item
}

func (im *importer) fail(file string, at *yaml.Node, object, field, format string, args ...any) {
	e := Error{File: file, Object: object, Field: field, Message: fmt.Sprintf(format, args...)}
	if at != nil {
		e.Line, e.Column = at.Line, at.Column
	}
	im.errs = append(im.errs, e)
}

// Import reads the manifests and returns the scenario they describe, or
// Errors naming each field that cannot be carried over.
func Import(ctx context.Context, files []File, opts Options) (*Result, error) {
	if opts.Lead == 0 {
		opts.Lead = schema.Duration(30 * time.Second)
	}
	if opts.Lead < 0 { // none
		opts.Lead = 0
	}
	if opts.Recovery == 0 {
		opts.Recovery = schema.Duration(30 * time.Second)
	}
	im := &importer{ctx: ctx, opts: opts, v: opts.Validator}
	if im.v == nil {
		im.v = crd.NewValidator()
	}
	if len(files) == 0 {
		return nil, Errors{{Message: "no manifest files to import"}}
	}
	for _, f := range files {
		docs, err := splitDocs(f.Name, f.Data)
		if err != nil {
			if es, ok := err.(Errors); ok {
				im.errs = append(im.errs, es...)
				continue
			}
			return nil, err
		}
		if len(docs) == 0 {
			im.fail(f.Name, nil, "", "", "the file holds no Kubernetes object")
		}
		for _, d := range docs {
			im.doc(d)
		}
	}
	if len(im.items) == 0 {
		if len(im.errs) > 0 {
			return nil, im.errs.sorted()
		}
		return nil, Errors{{File: files[0].Name, Message: "no chaos to import"}}
	}
	name := opts.Name
	if name == "" {
		name = nameFrom(files[0].Name)
	}
	if !dnsLabel.MatchString(name) {
		return nil, Errors{{Message: fmt.Sprintf("scenario name %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters): pass --name", name)}}
	}
	// The items that were read are mapped and verified even when others
	// failed, so that one run reports everything.
	s, objects := im.scenario(name)
	if len(s.Faults) > 0 {
		im.verify(s, objects)
	}
	if len(im.errs) > 0 {
		return nil, im.errs.sorted()
	}
	return &Result{Scenario: s, Notes: im.notes, Objects: objects}, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// nameFrom makes a scenario or fault name from a file or object name.
func nameFrom(s string) string {
	s = strings.TrimSuffix(filepath.Base(s), filepath.Ext(s))
	s = strings.ToLower(s)
	s = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(s, "-")
	s = strings.Trim(s, "-")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-")
	}
	if s == "" {
		s = "imported"
	}
	return s
}

// chaosKinds are the Chaos Mesh kinds faultline has fault kinds for.
var chaosKinds = map[string]func() client.Object{
	"NetworkChaos": func() client.Object { return &v1alpha1.NetworkChaos{} },
	"IOChaos":      func() client.Object { return &v1alpha1.IOChaos{} },
	"StressChaos":  func() client.Object { return &v1alpha1.StressChaos{} },
	"TimeChaos":    func() client.Object { return &v1alpha1.TimeChaos{} },
	"PodChaos":     func() client.Object { return &v1alpha1.PodChaos{} },
	"HTTPChaos":    func() client.Object { return &v1alpha1.HTTPChaos{} },
	"DNSChaos":     func() client.Object { return &v1alpha1.DNSChaos{} },
}

func (im *importer) doc(d doc) {
	apiVersion, kind := scalar(d.node, "apiVersion"), scalar(d.node, "kind")
	meta := child(d.node, "metadata")
	name, ns := scalar(meta, "name"), scalar(meta, "namespace")
	object := fmt.Sprintf("%s %s/%s", kind, ns, name)
	if apiVersion != v1alpha1.SchemeGroupVersion.String() {
		im.fail(d.file, orNode(keyNode(d.node, "apiVersion"), d.node), object, "apiVersion",
			"apiVersion %q is not Chaos Mesh's %s: only Chaos Mesh objects are imported", apiVersion, v1alpha1.SchemeGroupVersion)
		return
	}
	if name == "" {
		im.fail(d.file, orNode(meta, d.node), object, "metadata.name", "the object has no name")
		return
	}
	if ns == "" {
		ns = im.opts.Namespace
		object = fmt.Sprintf("%s %s/%s", kind, ns, name)
		if ns == "" {
			im.fail(d.file, orNode(meta, d.node), object, "metadata.namespace",
				"the object has no namespace (kubectl would use its current one): set metadata.namespace or pass --namespace")
			return
		}
	}
	var obj client.Object
	switch kind {
	case "Workflow":
		obj = &v1alpha1.Workflow{}
	case "Schedule":
		obj = &v1alpha1.Schedule{}
	default:
		mk, ok := chaosKinds[kind]
		if !ok {
			if strings.HasSuffix(kind, "Chaos") {
				im.fail(d.file, keyNode(d.node, "kind"), object, "kind",
					"faultline has no fault kind for %s: it imports %s, and Workflow and Schedule", kind, strings.Join(sortedKinds(), ", "))
			} else {
				im.fail(d.file, keyNode(d.node, "kind"), object, "kind",
					"kind %q is not a chaos kind faultline imports (%s, Workflow, Schedule)", kind, strings.Join(sortedKinds(), ", "))
			}
			return
		}
		obj = mk()
	}
	if !im.decode(d, object, obj) {
		return
	}
	obj.SetNamespace(ns)
	spec := child(d.node, "spec")
	switch o := obj.(type) {
	case *v1alpha1.Workflow:
		im.workflow(d, object, o, spec)
	case *v1alpha1.Schedule:
		im.schedule(d, object, o, spec)
	default:
		dur, has := specDuration(obj)
		it := &item{file: d.file, node: spec, field: "spec", object: object, name: name, kind: kind, obj: obj}
		if has {
			if !im.duration(it, dur, orNode(keyNode(spec, "duration"), spec), "spec.duration") {
				return
			}
		} else {
			it.noDuration = true
		}
		im.items = append(im.items, it)
	}
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func sortedKinds() []string {
	var ks []string
	for k := range chaosKinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// decode fills obj from the document, reporting fields obj's type lacks.
func (im *importer) decode(d doc, object string, obj client.Object) bool {
	var unknown []string
	unknownFields(d.node, reflect.TypeOf(obj), "", &unknown)
	ok := true
	for _, u := range unknown {
		if u == "status" || strings.HasPrefix(u, "status.") {
			continue
		}
		ok = false
		im.fail(d.file, locate(d.node, u), object, u, "Chaos Mesh's %s has no field %q: remove or correct it",
			reflect.TypeOf(obj).Elem().Name(), lastSeg(u))
	}
	if !ok {
		return false
	}
	var v any
	if err := d.node.Decode(&v); err != nil {
		im.fail(d.file, d.node, object, "", "cannot read the object: %v", err)
		return false
	}
	data, err := json.Marshal(jsonable(v))
	if err != nil {
		im.fail(d.file, d.node, object, "", "cannot read the object: %v", err)
		return false
	}
	if err := json.Unmarshal(data, obj); err != nil {
		field := ""
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			field = te.Field
		}
		im.fail(d.file, orNode(locate(d.node, field), d.node), object, field, "%s", strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	return true
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

func lastSeg(p string) string {
	segs := splitPath(p)
	if len(segs) == 0 {
		return p
	}
	return segs[len(segs)-1]
}

// jsonable turns what yaml.v3 decodes (map[string]any, []any, scalars) into
// values encoding/json can write.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

// specDuration is a chaos object's spec.duration.
func specDuration(obj client.Object) (string, bool) {
	v := reflect.ValueOf(obj).Elem().FieldByName("Spec").FieldByName("Duration")
	if !v.IsValid() || v.IsNil() {
		return "", false
	}
	return v.Elem().String(), true
}

func (im *importer) duration(it *item, s string, at *yaml.Node, field string) bool {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		im.fail(it.file, at, it.object, field, "%q is not a positive duration", s)
		return false
	}
	it.dur = schema.Duration(d)
	return true
}

// workflow walks a Workflow from its entry, placing each chaos template on
// the timeline: a Serial runs its children one after the other, a Parallel
// at once, a Suspend waits its deadline, a chaos template lasts its deadline
// (or its own duration without one); a parent's deadline cuts its children.
func (im *importer) workflow(d doc, object string, wf *v1alpha1.Workflow, spec *yaml.Node) {
	templates := map[string]int{}
	for i, t := range wf.Spec.Templates {
		templates[t.Name] = i
	}
	tnodes := child(spec, "templates")
	tnode := func(i int) *yaml.Node {
		if tnodes != nil && i < len(tnodes.Content) {
			return tnodes.Content[i]
		}
		return spec
	}
	if _, ok := templates[wf.Spec.Entry]; !ok {
		im.fail(d.file, orNode(keyNode(spec, "entry"), spec), object, "spec.entry", "entry %q names no template", wf.Spec.Entry)
		return
	}
	const never = schema.Duration(1<<63 - 1)
	var walk func(name string, at schema.Duration, limit schema.Duration, depth int) (schema.Duration, bool)
	walk = func(name string, at schema.Duration, limit schema.Duration, depth int) (schema.Duration, bool) {
		i, ok := templates[name]
		if !ok {
			im.fail(d.file, spec, object, "spec.templates", "no template is named %q", name)
			return 0, false
		}
		if depth > 64 {
			im.fail(d.file, tnode(i), object, fmt.Sprintf("spec.templates[%d]", i), "templates nest more than 64 deep (a cycle?)")
			return 0, false
		}
		t := wf.Spec.Templates[i]
		field := fmt.Sprintf("spec.templates[%d]", i)
		tn := tnode(i)
		var deadline schema.Duration
		hasDeadline := t.Deadline != nil
		if hasDeadline {
			dd, err := time.ParseDuration(*t.Deadline)
			if err != nil || dd <= 0 {
				im.fail(d.file, orNode(keyNode(tn, "deadline"), tn), object, field+".deadline", "deadline %q is not a positive duration", *t.Deadline)
				return 0, false
			}
			deadline = schema.Duration(dd)
			limit = min(limit, at+deadline)
		}
		switch {
		case t.Type == v1alpha1.TypeSerial || t.Type == v1alpha1.TypeParallel:
			end := at
			for _, c := range t.Children {
				start := at
				if t.Type == v1alpha1.TypeSerial {
					start = end
				}
				ce, ok := walk(c, start, limit, depth+1)
				if !ok {
					return 0, false
				}
				end = max(end, ce)
			}
			if hasDeadline {
				end = at + deadline
			}
			return min(end, limit), true
		case t.Type == v1alpha1.TypeSuspend:
			if !hasDeadline {
				im.fail(d.file, tn, object, field+".deadline", "a Suspend without a deadline waits forever")
				return 0, false
			}
			return min(at+deadline, limit), true
		case v1alpha1.IsChaosTemplateType(t.Type):
			obj := im.templateObject(d, object, tn, field, t)
			if obj == nil {
				return 0, false
			}
			obj.SetNamespace(wf.Namespace)
			obj.SetName(t.Name)
			key := embedKey(t.Type)
			it := &item{file: d.file, node: child(tn, key), field: field + "." + key,
				object: object + " template " + t.Name, name: t.Name, kind: string(t.Type), obj: obj, start: at}
			switch {
			case hasDeadline:
				it.dur = deadline
			default:
				if ds, ok := specDuration(obj); ok {
					if !im.duration(it, ds, orNode(keyNode(it.node, "duration"), tn), it.field+".duration") {
						return 0, false
					}
				} else {
					it.noDuration = true
				}
			}
			if at >= limit {
				im.fail(d.file, tn, object, field, "template %q starts at %s, when its parent's deadline has passed: it never runs", t.Name, at)
				return 0, false
			}
			if !it.noDuration && at+it.dur > limit {
				it.dur = limit - at
			}
			im.items = append(im.items, it)
			if it.noDuration {
				return at, true
			}
			return at + it.dur, true
		default:
			im.fail(d.file, orNode(keyNode(tn, "templateType"), tn), object, field+".templateType",
				"faultline cannot import a %s template: a scenario's timeline is fixed (Serial, Parallel, Suspend and chaos templates are imported)", t.Type)
			return 0, false
		}
	}
	walk(wf.Spec.Entry, 0, never, 0)
}

// templateObject is a chaos template's chaos as a standalone object.
func (im *importer) templateObject(d doc, object string, tn *yaml.Node, field string, t v1alpha1.Template) client.Object {
	mk, ok := chaosKinds[string(t.Type)]
	if !ok {
		im.fail(d.file, orNode(keyNode(tn, "templateType"), tn), object, field+".templateType",
			"faultline has no fault kind for %s: it imports %s", t.Type, strings.Join(sortedKinds(), ", "))
		return nil
	}
	if t.EmbedChaos == nil {
		im.fail(d.file, tn, object, field, "the %s template has no %s spec", t.Type, embedKey(t.Type))
		return nil
	}
	spawned, err := t.EmbedChaos.SpawnNewObject(t.Type)
	if err != nil || reflect.ValueOf(spawned).IsNil() {
		im.fail(d.file, tn, object, field, "the %s template has no %s spec", t.Type, embedKey(t.Type))
		return nil
	}
	obj := mk()
	reflect.ValueOf(obj).Elem().FieldByName("Spec").Set(reflect.ValueOf(spawned).Elem().FieldByName("Spec"))
	return obj
}

// embedKey is the JSON key of a template type's chaos spec ("networkChaos").
func embedKey(t v1alpha1.TemplateType) string {
	f, ok := reflect.TypeOf(v1alpha1.EmbedChaos{}).FieldByName(string(t))
	if !ok {
		return string(t)
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// schedule imports a Schedule's chaos once: a scenario is one run, so its
// cron schedule fires once, at the start (said in a note).
func (im *importer) schedule(d doc, object string, sc *v1alpha1.Schedule, spec *yaml.Node) {
	if sc.Spec.Type == v1alpha1.ScheduleTypeWorkflow {
		if sc.Spec.Workflow == nil {
			im.fail(d.file, spec, object, "spec.workflow", "a Workflow Schedule without a workflow")
			return
		}
		wf := &v1alpha1.Workflow{Spec: *sc.Spec.Workflow}
		wf.Namespace = sc.Namespace
		wfDoc := doc{file: d.file, node: d.node}
		// The workflow's fields sit under spec.workflow.
		inner := child(spec, "workflow")
		im.workflow(wfDoc, object, wf, inner)
		for _, it := range im.items {
			if strings.HasPrefix(it.object, object+" ") {
				it.field = strings.Replace(it.field, "spec.", "spec.workflow.", 1)
			}
		}
	} else {
		mk, ok := chaosKinds[string(sc.Spec.Type)]
		if !ok {
			im.fail(d.file, orNode(keyNode(spec, "type"), spec), object, "spec.type",
				"faultline has no fault kind for %s: it imports %s", sc.Spec.Type, strings.Join(sortedKinds(), ", "))
			return
		}
		spawned, err := sc.Spec.ScheduleItem.SpawnNewObject(sc.Spec.Type)
		if err != nil || spawned == nil || reflect.ValueOf(spawned).IsNil() {
			im.fail(d.file, spec, object, "spec", "the %s Schedule has no %s spec", sc.Spec.Type, embedKey(v1alpha1.TemplateType(sc.Spec.Type)))
			return
		}
		obj := mk()
		reflect.ValueOf(obj).Elem().FieldByName("Spec").Set(reflect.ValueOf(spawned).Elem().FieldByName("Spec"))
		obj.SetNamespace(sc.Namespace)
		obj.SetName(sc.Name)
		key := embedKey(v1alpha1.TemplateType(sc.Spec.Type))
		it := &item{file: d.file, node: child(spec, key), field: "spec." + key, object: object, name: sc.Name, kind: string(sc.Spec.Type), obj: obj}
		if ds, ok := specDuration(obj); ok {
			if !im.duration(it, ds, orNode(keyNode(it.node, "duration"), spec), it.field+".duration") {
				return
			}
		} else {
			it.noDuration = true
		}
		im.items = append(im.items, it)
	}
	im.notes = append(im.notes, fmt.Sprintf("%s: schedule %q fires once, at the start of the run: a scenario is one run (concurrencyPolicy, historyLimit and startingDeadlineSeconds only matter between firings)", object, sc.Spec.Schedule))
}
