package k6

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// embedded returns the JSON a script assigns to a constant: the text
// between start and end.
func embedded(t *testing.T, script []byte, start, end string) []byte {
	t.Helper()
	_, rest, ok := bytes.Cut(script, []byte(start))
	if !ok {
		t.Fatalf("the script has no %q", start)
	}
	value, _, ok := bytes.Cut(rest, []byte(end))
	if !ok {
		t.Fatalf("the script has no %q after %q", end, start)
	}
	return value
}

// TestCompileLoad: for every scenario, CompileLoad gives exactly the
// scenario of options.json (and of the script's options) and the requests
// the script embeds; the options validate with k6's rules.
func TestCompileLoad(t *testing.T) {
	for _, p := range testPlans(t) {
		t.Run(p.name, func(t *testing.T) {
			load, err := CompileLoad(p.plan)
			if err != nil {
				t.Fatal(err)
			}
			files := emitted(t, p)
			fileOpts, err := k6opts.Parse(files.Get(OptionsPath), scriptRules(load)...)
			if err != nil {
				t.Fatalf("options.json: %v", err)
			}
			if len(fileOpts.Scenarios) != 1 {
				t.Fatalf("options.json has scenarios %v, want only %q", sortedKeys(fileOpts.Scenarios), ScenarioName)
			}
			if got := fileOpts.Scenarios[ScenarioName]; !reflect.DeepEqual(got, load.Scenario) {
				t.Errorf("options.json scenario\n%+v\nCompileLoad\n%+v", got, load.Scenario)
			}
			script := files.Get(ScriptPath)
			scriptOpts, err := k6opts.Parse(embedded(t, script, "export const options = ", ";\n\n/** @type {Timeline} */"), scriptRules(load)...)
			if err != nil {
				t.Fatalf("the script's options: %v", err)
			}
			if !reflect.DeepEqual(scriptOpts, fileOpts) {
				t.Errorf("the script's options differ from options.json:\n%+v\n%+v", scriptOpts, fileOpts)
			}
			var reqs []Request
			dec := json.NewDecoder(bytes.NewReader(embedded(t, script, "const requests = ", ";\n\nconst totalWeight")))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&reqs); err != nil {
				t.Fatalf("the script's requests: %v", err)
			}
			if !reflect.DeepEqual(reqs, load.Requests) {
				t.Errorf("the script's requests\n%+v\nCompileLoad\n%+v", reqs, load.Requests)
			}
			if len(load.Requests) != len(p.plan.Source.Load.Requests) {
				t.Errorf("%d requests, the scenario has %d", len(load.Requests), len(p.plan.Source.Load.Requests))
			}
			// Every parameter of the executor is stated.
			if !reflect.DeepEqual(load.Scenario.WithDefaults(), load.Scenario) {
				t.Errorf("the scenario leaves defaults to k6: %+v", load.Scenario)
			}
		})
	}
}

// TestCompileLoadShares: the compiled load shares no map or slice with the
// scenario it comes from.
func TestCompileLoadShares(t *testing.T) {
	body := "b"
	s := base(schema.Load{Executor: schema.RampingVUs, Stages: []schema.Stage{{Duration: sd("5s"), Target: 2}},
		Requests: []schema.Request{{Path: "/", Body: &body, Headers: map[string]string{"A": "1"},
			Expect: &schema.Expect{BodyContains: []string{"x"}}}}})
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	load, err := CompileLoad(p)
	if err != nil {
		t.Fatal(err)
	}
	r := load.Requests[0]
	r.Headers["A"] = "2"
	*r.Body = "changed"
	r.BodyContains[0] = "y"
	load.Scenario.Stages[0].Target = 9
	req := s.Load.Requests[0]
	if req.Headers["A"] != "1" || *req.Body != "b" || req.Expect.BodyContains[0] != "x" || s.Load.Stages[0].Target != 2 {
		t.Errorf("changing the compiled load changed the scenario: %+v %+v", req, s.Load.Stages)
	}
}

// TestCompileLoadErrors: a load k6 rejects fails CompileLoad as it fails
// Emit, with the scenario field.
func TestCompileLoadErrors(t *testing.T) {
	s := base(schema.Load{Executor: schema.SharedIterations, VUs: 5, Iterations: 2})
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = CompileLoad(p)
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 || e.Problems[0].Field != "load.iterations" {
		t.Fatalf("CompileLoad error %v, want one problem at load.iterations", err)
	}
	if _, err := Emit(p); err == nil || err.Error() != e.Error() {
		t.Errorf("Emit error %v, CompileLoad error %v", err, e)
	}
	if _, err := CompileLoad(nil); err == nil {
		t.Error("CompileLoad(nil) succeeded")
	}
}
