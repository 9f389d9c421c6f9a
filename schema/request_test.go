package schema

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
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

// cueRequests writes a CUE package with one scenario of n requests; bad,
// if >= 0, is the index of a request with a relative path. extra is added
// to the package (another file).
func cueRequests(t *testing.T, n, bad int, elem func(i int) string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Vendor(dir); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("package scenarios\n\nimport \"faultline.dev/schema\"\n\nscenarios: schema.#Scenarios & {\n\tbig: {\n\t\tversion: \"1.0.0\"\n\t\ttarget: {url: \"http://127.0.0.1:8080\", kubernetes: {namespace: \"shop\", selector: app: \"shop\"}}\n\t\tload: {\n\t\t\texecutor: \"constant-vus\"\n\t\t\tvus:      2\n\t\t\tduration: \"60s\"\n\t\t\trequests: [\n")
	for i := range n {
		e := elem(i)
		if i == bad {
			e = `{path: "items"}`
		}
		b.WriteString("\t\t\t\t" + e + ",\n")
	}
	b.WriteString("\t\t\t]\n\t\t}\n\t}\n}\n")
	must(t, os.WriteFile(filepath.Join(dir, "big.cue"), []byte(b.String()), 0o644))
	if extra != "" {
		must(t, os.WriteFile(filepath.Join(dir, "extra.cue"), []byte("package scenarios\n\n"+extra), 0o644))
	}
	return dir
}

// TestCUELongRequestList: a long literal request list in a CUE package is
// checked request by request (CUE's evaluation of the whole list is
// quadratic), with the same findings, at the same places, as CUE's own
// evaluation of a short list; lists CUE must evaluate itself (references,
// a scenario declared twice) still are.
func TestCUELongRequestList(t *testing.T) {
	plain := func(i int) string { return fmt.Sprintf(`{name: "r%d", path: "/items/%d", weight: 1}`, i, i) }
	ref := func(i int) string { return fmt.Sprintf(`_common & {path: "/items/%d"}`, i) }
	for _, tc := range []struct {
		name       string
		n, bad     int
		elem       func(int) string
		extra      string
		wantReqs   int
		wantDiag   string // the one diagnostic wanted, "" for none
		wantShortn bool   // whether the list is checked one by one
	}{
		{name: "plain", n: 2000, bad: -1, elem: plain, wantReqs: 2000, wantShortn: true},
		{name: "plain one bad", n: 2000, bad: 1500, elem: plain,
			wantDiag: `big.cue:1514:12: load.requests.1500.path: invalid value "items": want an absolute path starting with /`, wantShortn: true},
		{name: "short one bad", n: 10, bad: 5, elem: plain,
			wantDiag: `big.cue:19:12: load.requests.5.path: invalid value "items": want an absolute path starting with /`},
		{name: "references", n: 200, bad: -1, elem: ref, extra: "_common: {weight: 2}\n", wantReqs: 200},
		{name: "declared twice", n: 200, bad: -1, elem: plain, extra: "scenarios: big: description: \"twice\"\n", wantReqs: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cueRequests(t, tc.n, tc.bad, tc.elem, tc.extra)
			l := NewLoader()
			// Whether the loader takes the one-by-one path.
			files := parseDir(t, dir)
			longs, restore := shortenLongLists(posFinder{files: files})
			restore()
			if got := len(longs) == 1; got != tc.wantShortn {
				t.Errorf("checked one by one: %v, want %v", got, tc.wantShortn)
			}
			loaded, diags, err := l.Load(context.Background(), []string{dir})
			must(t, err)
			if tc.wantDiag == "" {
				if len(diags) > 0 || len(loaded) != 1 {
					t.Fatalf("diags %v, loaded %d", diags, len(loaded))
				}
				if got := len(loaded[0].Scenario.Load.Requests); got != tc.wantReqs {
					t.Errorf("%d requests decoded, want %d", got, tc.wantReqs)
				}
				if tc.elem(0) == ref(0) && loaded[0].Scenario.Load.Requests[7].Weight != 2 {
					t.Errorf("request 7 weight %d, want 2 from _common", loaded[0].Scenario.Load.Requests[7].Weight)
				}
				return
			}
			if len(loaded) != 0 || len(diags) != 1 {
				t.Fatalf("loaded %d, diags %v; want one diagnostic", len(loaded), diags)
			}
			got := diags[0].String()
			if i := strings.Index(got, "big.cue"); i > 0 {
				got = got[i:]
			}
			if got != tc.wantDiag {
				t.Errorf("got  %s\nwant %s", got, tc.wantDiag)
			}
		})
	}
}

// parseDir parses the .cue files of a directory.
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	var out []*ast.File
	ms, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	for _, m := range ms {
		src, err := os.ReadFile(m)
		must(t, err)
		f, err := parser.ParseFile(m, src)
		must(t, err)
		out = append(out, f)
	}
	return out
}
