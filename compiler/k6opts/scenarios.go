package k6opts

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"faultline.dev/faultline/internal/suggest"
)

// scenarioNameRe is what k6 allows in a scenario name.
var scenarioNameRe = regexp.MustCompile(`^[0-9A-Za-z_-]+$`)

// scenarioOptionsField is the scenarios' `options` object (browser
// options), which Scenario does not carry.
const scenarioOptionsField = "options"

// scenarios decodes each scenario on its own and returns those without
// problems (an empty map when none).
func (v *validator) scenarios(raw any) map[string]Scenario {
	if raw == nil {
		return nil
	}
	m, err := toObject(raw)
	if err != nil {
		v.add([]string{"scenarios"}, err, "scenarios must be an object of scenario name to scenario, not %s", describe(raw))
		return map[string]Scenario{}
	}
	out := make(map[string]Scenario, len(m))
	for _, name := range sortedKeys(m) {
		keys := []string{"scenarios", name}
		n := len(v.problems)
		ok := true
		if !scenarioNameRe.MatchString(name) {
			v.add(keys, nil, "scenario name %q may hold only letters, digits, \"_\" and \"-\"", name)
			ok = false
		}
		sc, decoded := v.scenario(keys, m[name])
		if !decoded {
			continue
		}
		for _, p := range sc.problems() {
			v.add(join(keys, p.Keys...), p.Err, "%s", p.Message)
		}
		if ok && len(v.problems) == n {
			out[name] = sc
		}
	}
	return out
}

// scenario decodes one scenario. It reports false when the scenario could
// not be decoded (the problems are reported); rules are not checked.
func (v *validator) scenario(keys []string, raw any) (Scenario, bool) {
	var sc Scenario
	obj, err := toObject(raw)
	if err != nil {
		if raw == nil {
			v.add(join(keys, "executor"), nil, "the scenario has no executor: it must be an object with an executor (%s)", strings.Join(Executors, ", "))
		} else {
			v.add(keys, err, "a scenario must be an object, not %s", describe(raw))
		}
		return sc, false
	}
	exRaw, ok := obj["executor"]
	if !ok || exRaw == nil {
		v.add(join(keys, "executor"), nil, "the scenario has no executor: set executor to one of %s", strings.Join(Executors, ", "))
		return sc, false
	}
	if sc.Executor, err = toString(exRaw); err != nil {
		v.add(join(keys, "executor"), err, "executor: %v", err)
		return sc, false
	}
	if Fields(sc.Executor) == nil {
		v.add(join(keys, "executor"), nil, "%s", unknownExecutor(sc.Executor))
		return sc, false
	}

	allowed := slices.Concat(CommonFields, Fields(sc.Executor), []string{scenarioOptionsField})
	decoded := true
	for _, k := range sortedKeys(obj) {
		if k == "executor" {
			continue
		}
		if !slices.Contains(allowed, k) {
			v.add(join(keys, k), nil, "%s", unknownScenarioField(sc.Executor, k))
			decoded = false
			continue
		}
		if err := v.scenarioField(keys, &sc, k, obj[k]); err != nil {
			// A wrong type leaves the scenario undecoded: reported at the
			// scenario, naming the field.
			v.add(keys, err, "%s: %v", k, err)
			decoded = false
		}
	}
	return sc, decoded
}

// scenarioField sets one field of sc from its JSON value.
func (v *validator) scenarioField(keys []string, sc *Scenario, field string, x any) error {
	dur := func(p **Duration) error {
		d, err := toDuration(x)
		*p = &d
		return err
	}
	num := func(p **int64) error {
		n, err := toInt(x)
		*p = &n
		return err
	}
	var err error
	switch field {
	case "startTime":
		return dur(&sc.StartTime)
	case "gracefulStop":
		return dur(&sc.GracefulStop)
	case "timeUnit":
		return dur(&sc.TimeUnit)
	case "duration":
		return dur(&sc.Duration)
	case "maxDuration":
		return dur(&sc.MaxDuration)
	case "gracefulRampDown":
		return dur(&sc.GracefulRampDown)
	case "rate":
		return num(&sc.Rate)
	case "startRate":
		return num(&sc.StartRate)
	case "preAllocatedVUs":
		return num(&sc.PreAllocatedVUs)
	case "maxVUs":
		return num(&sc.MaxVUs)
	case "vus":
		return num(&sc.VUs)
	case "startVUs":
		return num(&sc.StartVUs)
	case "iterations":
		return num(&sc.Iterations)
	case "stages":
		sc.Stages, err = v.stages(join(keys, "stages"), x)
	case "exec":
		if sc.Exec, err = toString(x); err == nil && sc.Exec == "" {
			v.add(join(keys, "exec"), nil, "exec must name an exported function; leave it out to run %q", DefaultExec)
		}
	case "env":
		sc.Env, err = toStringMap(x)
	case "tags":
		sc.Tags, err = toStringMap(x)
	case scenarioOptionsField:
		_, err = toObject(x)
	default:
		err = fmt.Errorf("no such field") // not reached: the caller checks the names
	}
	return err
}

// stages decodes a list of stages. A value of the wrong type is returned
// as an error; a stage without a duration or target, or with a field a
// stage does not have, is reported at that field.
func (v *validator) stages(keys []string, x any) ([]Stage, error) {
	l, err := toList(x)
	if err != nil {
		return nil, typeError("a list of {duration, target} stages", x)
	}
	stages := make([]Stage, len(l))
	for i, item := range l {
		skeys := join(keys, strconv.Itoa(i))
		m, err := toObject(item)
		if err != nil {
			return nil, fmt.Errorf("stage %d: %w", i, typeError("an object {duration, target}", item))
		}
		for _, f := range []string{"duration", "target"} {
			if m[f] == nil {
				v.add(join(skeys, f), nil, "stage %d has no %s", i, f)
			}
		}
		for _, k := range sortedKeys(m) {
			switch k {
			case "duration":
				if m[k] != nil {
					if stages[i].Duration, err = toDuration(m[k]); err != nil {
						return nil, fmt.Errorf("stage %d: duration: %w", i, err)
					}
				}
			case "target":
				if m[k] != nil {
					if stages[i].Target, err = toInt(m[k]); err != nil {
						return nil, fmt.Errorf("stage %d: target: %w", i, err)
					}
				}
			default:
				v.add(join(skeys, k), nil, "unknown field %q: a stage has only duration and target", k)
			}
		}
	}
	return stages, nil
}

func unknownExecutor(name string) string {
	msg := fmt.Sprintf("unknown executor %q", name)
	switch {
	case name == "externally-controlled":
		msg = `the externally-controlled executor (driven through k6's REST API) is outside this model`
	case suggest.Closest(name, Executors) != "":
		msg += fmt.Sprintf(" (did you mean %q?)", suggest.Closest(name, Executors))
	}
	return msg + "; the executors are " + strings.Join(Executors, ", ")
}

func unknownScenarioField(executor, field string) string {
	common := slices.DeleteFunc(slices.Clone(CommonFields), func(f string) bool { return f == "executor" })
	takes := quoteList(slices.Concat(Fields(executor), common, []string{scenarioOptionsField}))
	var owners []string
	for _, e := range Executors {
		if slices.Contains(Fields(e), field) {
			owners = append(owners, e)
		}
	}
	if len(owners) > 0 {
		return fmt.Sprintf("%s does not take %s (%s does); it takes %s", executor, field, strings.Join(owners, ", "), takes)
	}
	msg := fmt.Sprintf("unknown field %q", field)
	if s := suggest.Closest(field, slices.Concat(Fields(executor), CommonFields)); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + fmt.Sprintf("; %s takes %s", executor, takes)
}
