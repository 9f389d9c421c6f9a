package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"github.com/docker/go-units"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// oneShot reports whether a fault kind is injected once (Chaos Mesh's
// IsOneShot): its window is the time its effect is judged in.
func oneShot(f *schema.Fault) bool { return f.PodKill != nil || f.ContainerKill != nil }

// scenario builds the scenario of the items: one fault each, a placeholder
// target and load.
func (im *importer) scenario(name string) (*schema.Scenario, map[string]client.Object) {
	s := &schema.Scenario{
		Name:    name,
		Version: "1.0.0",
		Faults:  map[string]schema.Fault{},
	}
	objects := map[string]client.Object{}
	used := map[string]bool{}
	var files []string
	var end schema.Duration
	byName := map[string]*item{}
	for _, it := range im.items {
		if !contains(files, it.file) {
			files = append(files, it.file)
		}
		// A manifest Chaos Mesh itself rejects is not imported.
		if err := chaosmesh.Validate(im.ctx, im.v, it.obj); err != nil {
			var ve *chaosmesh.Error
			if !errors.As(err, &ve) {
				im.fail(it.file, it.node, it.object, it.field, "%v", err)
				continue
			}
			for _, pr := range ve.Problems {
				rel := strings.TrimPrefix(strings.TrimPrefix(pr.Path, "spec"), ".")
				field := it.field
				if rel != "" {
					field += "." + rel
				}
				im.fail(it.file, locate(it.node, rel), it.object, field, "Chaos Mesh rejects this: %s", pr.Message)
			}
			continue
		}
		def, err := chaosmesh.Defaulted(im.ctx, im.v, it.obj)
		if err != nil {
			im.fail(it.file, it.node, it.object, it.field, "%v", err)
			continue
		}
		m := mapper{im: im, it: it}
		f, ok := m.fault(def)
		if !ok {
			continue
		}
		f.Start += im.opts.Lead
		if it.noDuration {
			if !oneShot(&f) {
				im.fail(it.file, it.node, it.object, it.field+".duration",
					"the chaos has no duration (nor a deadline), so Chaos Mesh keeps it until it is deleted; a faultline fault has a window: set its duration")
				continue
			}
			f.Duration = im.opts.OneShot
			if f.Duration == 0 {
				im.notes = append(im.notes, fmt.Sprintf("%s: %s is one-shot and has no duration: the fault has just start, and is judged on the %s after it (--one-shot-window gives it a duration)", it.object, f.Kind(), schema.OneShotWindow))
			} else {
				im.notes = append(im.notes, fmt.Sprintf("%s: %s is one-shot and has no duration; its fault window is %s, the time its effect is judged in (--one-shot-window)", it.object, f.Kind(), f.Duration))
			}
		}
		n := uniqueName(it.name, used)
		s.Faults[n] = f
		objects[n] = it.obj
		byName[n] = it
		end = max(end, f.End())
		if s.Target.Kubernetes == nil {
			s.Target.Kubernetes = &schema.KubernetesTarget{Namespace: it.obj.GetNamespace(), Selector: copyMap(f.Selector.Labels)}
		}
	}
	im.byName = byName
	s.Description = "Imported from " + strings.Join(files, ", ") + " by faultline import. Fill in target.url and load (see faultline vet)."
	s.Target.URL = schema.PlaceholderURL
	s.Load = schema.Load{
		Executor: schema.ConstantVUs,
		VUs:      1,
		Duration: end + im.opts.Recovery,
		Requests: []schema.Request{{Path: schema.PlaceholderPath}},
	}
	return s, objects
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// verify compiles the scenario with faultline's Chaos Mesh emitter and
// compares each compiled spec with the original's, both defaulted as
// Chaos Mesh does on create. Each difference is an error at the original
// field: the scenario would not inject what the manifest does.
func (im *importer) verify(s *schema.Scenario, objects map[string]client.Object) {
	p, err := plan.New(s)
	if err != nil {
		im.errs = append(im.errs, Error{Message: "the imported timeline: " + err.Error()})
		return
	}
	ms, err := chaosmesh.Emit(p)
	if err != nil {
		var se *chaosmesh.ScenarioError
		if !errors.As(err, &se) {
			im.errs = append(im.errs, Error{Message: err.Error()})
			return
		}
		for _, f := range se.Findings {
			it := im.itemAt(f.Path)
			if it == nil {
				im.errs = append(im.errs, Error{Field: f.Path, Message: f.Message})
				continue
			}
			im.fail(it.file, it.node, it.object, it.field, "faultline cannot compile this chaos: %s", f.Message)
		}
		return
	}
	if err := ms.Validate(im.ctx, im.v, s.Name); err != nil {
		var se *chaosmesh.ScenarioError
		if errors.As(err, &se) {
			for _, f := range se.Findings {
				if it := im.itemAt(f.Path); it != nil {
					im.fail(it.file, it.node, it.object, it.field, "%s", f.Message)
					continue
				}
				im.errs = append(im.errs, Error{Field: f.Path, Message: f.Message})
			}
			return
		}
		im.errs = append(im.errs, Error{Message: err.Error()})
		return
	}
	for _, c := range ms.Chaos {
		it := im.byName[c.Fault.Name]
		orig := objects[c.Fault.Name]
		if it == nil || orig == nil {
			continue
		}
		diffs, err := SpecDiff(im.ctx, im.v, orig, c.Object)
		if err != nil {
			im.fail(it.file, it.node, it.object, it.field, "%v", err)
			continue
		}
		for _, d := range diffs {
			im.fail(it.file, locate(it.node, d.Path), it.object, it.field+"."+d.Path, "%s", d.message())
		}
		// SpecDiff leaves the duration out; a chaos object of its own
		// (not a Workflow's or Schedule's template, whose window is a
		// deadline) must come back with the same one, or none — unless
		// --one-shot-window gave a kill without one a duration on purpose.
		if it.field == "spec" && !(it.noDuration && im.opts.OneShot > 0) {
			want, wok := specDuration(orig)
			got, gok := specDuration(c.Object)
			if !sameDuration(want, wok, got, gok) {
				im.fail(it.file, locate(it.node, "duration"), it.object, it.field+".duration",
					"the compiled chaos would have duration %s instead of %s", durText(got, gok), durText(want, wok))
			}
		}
	}
}

func sameDuration(a string, aok bool, b string, bok bool) bool {
	if !aok || !bok {
		return aok == bok
	}
	da, err1 := time.ParseDuration(a)
	db, err2 := time.ParseDuration(b)
	return err1 == nil && err2 == nil && da == db
}

func durText(d string, ok bool) string {
	if !ok {
		return "none"
	}
	return d
}

// itemAt finds the item of a scenario path "faults.<name>...".
func (im *importer) itemAt(path string) *item {
	rest, ok := strings.CutPrefix(path, "faults.")
	if !ok {
		return nil
	}
	name, _, _ := strings.Cut(rest, ".")
	return im.byName[name]
}

// Diff is one field where two chaos specs differ.
type Diff struct {
	// Path is the field's path in the spec ("delay.reorder").
	Path string
	// Want is the original's value (nil: not set), Got the compiled one's.
	Want, Got any
}

func (d Diff) message() string {
	switch {
	case d.Got == nil:
		return fmt.Sprintf("faultline's scenario schema cannot carry this field (here %s): the compiled chaos would not have it", short(d.Want))
	case d.Want == nil:
		return fmt.Sprintf("the compiled chaos would add %s here, which the manifest does not have", short(d.Got))
	}
	return fmt.Sprintf("the compiled chaos would have %s here instead of %s", short(d.Got), short(d.Want))
}

func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// SpecDiff compares the specs of two chaos objects of one kind after
// filling Chaos Mesh's defaults into both (chaosmesh.Defaulted), leaving out
// spec.duration (a fault's window is compared on its own). It lists the
// fields that differ, sorted by path.
func SpecDiff(ctx context.Context, v *crd.Validator, want, got client.Object) ([]Diff, error) {
	if reflect.TypeOf(want) != reflect.TypeOf(got) {
		return nil, fmt.Errorf("comparing a %T with a %T", want, got)
	}
	a, err := specMap(ctx, v, want)
	if err != nil {
		return nil, err
	}
	b, err := specMap(ctx, v, got)
	if err != nil {
		return nil, err
	}
	var out []Diff
	diffValues("", a, b, &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func specMap(ctx context.Context, v *crd.Validator, obj client.Object) (map[string]any, error) {
	def, err := chaosmesh.Defaulted(ctx, v, obj)
	if err != nil {
		return nil, err
	}
	spec := reflect.ValueOf(def).Elem().FieldByName("Spec")
	if !spec.IsValid() {
		return nil, fmt.Errorf("%T has no spec", obj)
	}
	data, err := json.Marshal(spec.Interface())
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	delete(m, "duration")
	// An HTTPChaos without a path and one with path "*" select the same
	// requests: Chaos Mesh's proxy matches the path glob only when one is
	// given, and "*" matches every path.
	if _, ok := def.(*v1alpha1.HTTPChaos); ok && m["path"] == "*" {
		delete(m, "path")
	}
	return m, nil
}

func diffValues(path string, a, b any, out *[]Diff) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		for k := range keys {
			av, aok := x[k]
			bv, bok := y[k]
			p := join(path, k)
			switch {
			case aok && bok:
				diffValues(p, av, bv, out)
			case aok && !empty(av):
				*out = append(*out, Diff{Path: p, Want: av})
			case bok && !empty(bv):
				*out = append(*out, Diff{Path: p, Got: bv})
			}
		}
		return
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			break
		}
		for i := range x {
			diffValues(fmt.Sprintf("%s[%d]", path, i), x[i], y[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		if empty(a) && empty(b) || sameValue(lastSeg(path), a, b) {
			return
		}
		*out = append(*out, Diff{Path: path, Want: a, Got: b})
	}
}

// empty is a value JSON's omitempty would leave out.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case float64:
		return x == 0
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// Fields Chaos Mesh reads as durations and as decimal numbers in strings:
// "0ms" and "0s", "25" and "25.0" mean the same.
var (
	durationFields = map[string]bool{"latency": true, "jitter": true, "delay": true, "timeOffset": true}
	numberFields   = map[string]bool{"correlation": true, "loss": true, "duplicate": true, "corrupt": true, "reorder": true}
)

func sameValue(key string, a, b any) bool {
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if !ok1 || !ok2 {
		return false
	}
	switch {
	case durationFields[key]:
		dx, err1 := time.ParseDuration(x)
		dy, err2 := time.ParseDuration(y)
		return err1 == nil && err2 == nil && dx == dy
	case key == "size":
		// Chaos Mesh reads memory sizes with go-units' FromHumanSize.
		nx, err1 := units.FromHumanSize(x)
		ny, err2 := units.FromHumanSize(y)
		return err1 == nil && err2 == nil && nx == ny
	case numberFields[key]:
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		return err1 == nil && err2 == nil && fx == fy
	}
	return false
}
