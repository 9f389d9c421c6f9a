package schema

import (
	"slices"
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
