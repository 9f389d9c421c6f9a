package schema

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// TestRequestOKAgreesWithSchema: the fast path of long request lists
// accepts only what #Request accepts, and knows every field of #Request.
func TestRequestOKAgreesWithSchema(t *testing.T) {
	l := NewLoader()
	l.embeddedDef()
	it, err := l.reqDef.Fields(cue.Optional(true))
	must(t, err)
	var fields []string
	for it.Next() {
		fields = append(fields, it.Selector().Unquoted())
	}
	// requestOK sends fields it does not know to CUE; a field it knows
	// must still be in the schema.
	for _, f := range []string{"body", "expect", "headers", "method", "name", "path", "weight"} {
		if !slices.Contains(fields, f) {
			t.Errorf("requestOK accepts %s, which #Request no longer has (%v)", f, fields)
		}
	}
	for _, src := range []string{
		`{path: /}`, `{path: /a, name: x, method: POST, body: "{}", weight: 3}`,
		`{path: /a, headers: {X-Id: "1", Content-Type: a/b}}`, `{path: /a, expect: {status: 200, bodyContains: [ok]}}`,
		`{path: a}`, `{name: x}`, `{path: /, name: ""}`, `{path: /, method: get}`, `{path: /, method: TRACE}`,
		`{path: /, weight: 0}`, `{path: /, weight: 1.0}`, `{path: /, weight: 1.5}`, `{path: /, weight: "1"}`, `{path: /, weight: 1e3}`,
		`{path: /, weight: 0x10}`, `{path: /, weight: -1}`, `{path: /, headers: {"X Id": a}}`, `{path: /, headers: {X: 1}}`,
		`{path: /, headers: [a]}`, `{path: /, body: 5}`, `{path: /, expect: {status: 99}}`, `{path: /, expect: {status: 600}}`,
		`{path: /, expect: {status: 200.0}}`, `{path: /, expect: {bodyContains: [""]}}`, `{path: /, expect: {bodyContains: [1]}}`,
		`{path: /, expect: {other: 1}}`, `{path: /, bogus: 1}`, `{path: /, name: null}`, `{path: /, expect: null}`,
		`{path: /, name: !!binary c2hvcA==}`, `{path: /, name: ~}`, `{path: /, weight: 99999999999999999999}`,
	} {
		f, err := cueyaml.Extract("r.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		st := &ast.StructLit{}
		for _, d := range f.Decls {
			st.Elts = append(st.Elts, d)
		}
		v, lit := literalValue(st)
		fast := lit && requestOK(v)
		schemaOK := l.ctx.BuildFile(f).Unify(l.reqDef).Validate(cue.Concrete(true)) == nil
		if fast && !schemaOK {
			t.Errorf("%s: requestOK accepts what #Request refuses", src)
		}
	}
}

// TestLiteralDecode: a CUE scenario decoded from its literal syntax (the
// fast path of loadCUE) is the scenario decoded from its exported value,
// for every library and test scenario the fast path takes.
func TestLiteralDecode(t *testing.T) {
	dirs := []string{filepath.Join("..", "scenarios"), filepath.Join("testdata", "vet", "ok", "scenario.cue")}
	bdir := t.TempDir()
	writeScenarios(t, bdir, 3)
	dirs = append(dirs, bdir)
	loaded, diags, err := NewLoader().Load(context.Background(), dirs)
	diags = slices.DeleteFunc(diags, func(d Diagnostic) bool { return strings.Contains(d.Message, "vendored schema differs") })
	if err != nil || len(diags) > 0 {
		t.Fatalf("%v %v", err, diags)
	}
	fast := 0
	for _, l := range loaded {
		if !strings.HasSuffix(l.File, ".cue") {
			continue
		}
		lit, ok := scenarioLiteral(l.pf.byScenario()[l.Scenario.Name], l.Scenario.Name)
		if !ok {
			continue
		}
		fast++
		lit["name"] = l.Scenario.Name
		var a, b Scenario
		lb, _ := json.Marshal(lit)
		vb, err := l.Value.MarshalJSON()
		must(t, err)
		must(t, json.Unmarshal(lb, &a))
		must(t, json.Unmarshal(vb, &b))
		if got, want := mustJSON(t, a), mustJSON(t, b); got != want {
			t.Errorf("%s: the literal decodes to\n%s\nthe value to\n%s", l.Scenario.Name, got, want)
		}
	}
	if fast < 5 {
		t.Errorf("the literal path took %d scenarios, want most of the library", fast)
	}
}
