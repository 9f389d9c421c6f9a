package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// Loaded is one scenario that passed validation.
type Loaded struct {
	// Scenario is the decoded scenario.
	Scenario *Scenario
	// File is the file that declares the scenario.
	File string
	// Value is the scenario unified with #Scenario.
	Value cue.Value

	prefix []string
	pf     posFinder
}

// Pos returns where a field path of the scenario ("faults.jitter.duration")
// is written in the user's file, as a diagnostic with the given message. The
// compiler uses it to point its own findings back at the source.
func (l *Loaded) Pos(fieldPath, msg string) Diagnostic {
	var p []string
	if fieldPath != "" {
		p = strings.Split(fieldPath, ".")
	}
	return diagAt(l.pf, l.prefix, p, l.Scenario.Name, msg)
}

// Loader loads scenarios from CUE packages and YAML or JSON files, validates
// them against the embedded schema and decodes them. A Loader is not safe
// for concurrent use.
type Loader struct {
	ctx    *cue.Context
	def    cue.Value // #Scenario of the embedded schema, built on first use
	reqDef cue.Value // #Request, likewise
}

// NewLoader returns a Loader with a fresh CUE context.
func NewLoader() *Loader { return &Loader{ctx: cuecontext.New()} }

// Load loads every scenario found at the given paths: directories (a CUE
// package and the YAML/JSON files in it; "dir/..." for the tree below),
// .cue files, and .yaml/.yml/.json files. It returns the valid scenarios and
// every problem found, each pointing into the user's files. Only a cancelled
// context makes it return an error.
func (l *Loader) Load(ctx context.Context, paths []string) ([]*Loaded, Diagnostics, error) {
	units, diags := expand(paths)
	var out []*Loaded
	names := map[string]string{}
	for _, u := range units {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		got, ds := l.loadUnit(u)
		diags = append(diags, ds...)
		for _, s := range got {
			if prev, dup := names[s.Scenario.Name]; dup {
				diags = append(diags, s.Pos("name", fmt.Sprintf("scenario %q is also declared in %s: names must be unique", s.Scenario.Name, prev)))
				continue
			}
			names[s.Scenario.Name] = s.File
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Loaded) int { return strings.Compare(a.Scenario.Name, b.Scenario.Name) })
	return out, diags.Sort(), nil
}

// loadUnit loads one unit. A panic in a parser or the evaluator on some
// input becomes a diagnostic for the unit, not a crash.
func (l *Loader) loadUnit(u unit) (got []*Loaded, ds Diagnostics) {
	defer func() {
		if r := recover(); r != nil {
			got = nil
			ds = Diagnostics{{File: displayDir(u), Line: 1, Column: 1,
				Message: fmt.Sprintf("faultline could not read this file (an internal error: %v); please report it with the file attached", r)}}
		}
	}()
	if u.kind == unitCUE {
		return l.loadCUE(u)
	}
	return l.loadData(u)
}

type unitKind int

const (
	unitCUE  unitKind = iota // a CUE package directory, or one .cue file
	unitYAML                 // one YAML file
	unitJSON                 // one JSON file
)

// unit is one thing to load: a CUE package or file, or one data file.
type unit struct {
	kind unitKind
	dir  string // directory of the package or file
	file string // the file, or "" for a whole CUE package directory
}

// expand turns the command-line paths into load units.
func expand(paths []string) ([]unit, Diagnostics) {
	var units []unit
	var diags Diagnostics
	for _, p := range paths {
		recursive := false
		if rest, ok := strings.CutSuffix(p, "/..."); ok {
			p, recursive = rest, true
			if p == "" || p == "." {
				p = "."
			}
		} else if p == "..." {
			p, recursive = ".", true
		}
		st, err := os.Stat(p)
		if err != nil {
			diags = append(diags, Diagnostic{File: p, Message: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))})
			continue
		}
		if !st.IsDir() {
			switch strings.ToLower(filepath.Ext(p)) {
			case ".cue":
				units = append(units, unit{kind: unitCUE, dir: filepath.Dir(p), file: p})
			case ".yaml", ".yml":
				units = append(units, unit{kind: unitYAML, dir: filepath.Dir(p), file: p})
			case ".json":
				units = append(units, unit{kind: unitJSON, dir: filepath.Dir(p), file: p})
			default:
				diags = append(diags, Diagnostic{File: p, Message: "not a scenario file: want .cue, .yaml, .yml or .json"})
			}
			continue
		}
		before := len(units)
		walkErr := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				diags = append(diags, Diagnostic{File: q, Message: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))})
				return nil
			}
			if !d.IsDir() {
				return nil
			}
			if q != p {
				name := d.Name()
				if !recursive || name == "cue.mod" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
			}
			units = append(units, dirUnits(q)...)
			return nil
		})
		if walkErr != nil {
			diags = append(diags, Diagnostic{File: p, Message: walkErr.Error()})
		}
		if len(units) == before {
			where := "in this directory"
			if recursive {
				where = "in this directory or below it"
			}
			diags = append(diags, Diagnostic{File: p, empty: true,
				Message: "no scenario files " + where + " (.cue, .yaml, .yml or .json): name a directory or file that holds scenarios"})
		}
	}
	return units, diags
}

// dirUnits lists the load units of one directory: its CUE package, if it has
// .cue files, and each YAML or JSON file.
func dirUnits(dir string) []unit {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var units []unit
	hasCUE := false
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f := filepath.Join(dir, e.Name())
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".cue":
			hasCUE = true
		case ".yaml", ".yml":
			units = append(units, unit{kind: unitYAML, dir: dir, file: f})
		case ".json":
			units = append(units, unit{kind: unitJSON, dir: dir, file: f})
		}
	}
	if hasCUE {
		units = append([]unit{{kind: unitCUE, dir: dir}}, units...)
	}
	return units
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// moduleRoot finds the CUE module root above dir (the directory holding
// cue.mod/module.cue), or "" when there is none.
func moduleRoot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "cue.mod", "module.cue")); err == nil && !st.IsDir() {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// loadCUE loads a CUE package (or a single .cue file) with the embedded
// schema overlaid under cue.mod/pkg, in one load.Instances call so that the
// schema is loaded once.
func (l *Loader) loadCUE(u unit) ([]*Loaded, Diagnostics) {
	absDir, err := filepath.Abs(u.dir)
	if err != nil {
		return nil, Diagnostics{{File: u.dir, Message: err.Error()}}
	}
	root := moduleRoot(absDir)
	var diags Diagnostics
	if ds := cuePackageProblems(u); len(ds) > 0 {
		return nil, ds
	}
	overlay := map[string]load.Source{}
	if root == "" {
		root = absDir
		overlay[filepath.Join(root, "cue.mod", "module.cue")] = load.FromString("module: \"faultline.local/scenarios@v0\"\nlanguage: version: \"v0.17.0\"\n")
	} else {
		if d := staleVendored(root); d != nil {
			diags = append(diags, *d)
		}
		if mod, ok := moduleWithoutSchemaDep(root); ok {
			overlay[filepath.Join(root, "cue.mod", "module.cue")] = load.FromBytes(mod)
		}
	}
	vendorDir := filepath.Join(root, "cue.mod", "pkg", filepath.FromSlash(ImportPath))
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(files, e.Name())
		overlay[filepath.Join(vendorDir, e.Name())] = load.FromBytes(b)
	}
	cfg := &load.Config{Dir: absDir, ModuleRoot: root, Overlay: overlay}
	arg := "."
	if u.file != "" {
		arg = filepath.Base(u.file)
	}
	insts := load.Instances([]string{arg}, cfg)
	if len(insts) != 1 {
		return nil, append(diags, Diagnostic{File: displayDir(u), Message: "no CUE package found"})
	}
	inst := insts[0]
	if inst.Err != nil {
		return nil, append(diags, loadErrors(inst.Err, displayDir(u))...)
	}
	pf := posFinder{files: userFiles(inst)}
	if ds := unknownSchemaRefs(pf.files); len(ds) > 0 {
		return nil, append(diags, ds...)
	}
	longs, restore := shortenLongLists(pf)
	v := l.ctx.BuildInstance(inst)
	restore() // positions and literals are read from the whole files
	scenarios := v.LookupPath(cue.MakePath(cue.Str("scenarios")))
	def := l.scenarioDef(inst)
	if err := v.Err(); err != nil && !scenarios.Exists() {
		return nil, append(diags, cueDiagnostics(err, pf, nil, "", displayDir(u))...)
	}
	if !scenarios.Exists() {
		return nil, append(diags, Diagnostic{File: displayFile(pf, u), Line: 1, Column: 1,
			Message: `no scenarios: declare them as  scenarios: schema.#Scenarios & {"my-scenario": {...}}  (import "faultline.dev/schema")`})
	}
	// Errors below scenarios are reported per scenario, all of them.
	it, err := scenarios.Fields()
	if err != nil {
		if verr := v.Err(); verr != nil {
			err = verr
		}
		return nil, append(diags, cueDiagnostics(err, pf, nil, "", displayDir(u))...)
	}
	var out []*Loaded
	index := pf.byScenario()
	for it.Next() {
		if it.Selector().LabelType() != cue.StringLabel {
			continue
		}
		name := it.Selector().Unquoted()
		sv := it.Value()
		spf, ok := index[name]
		if !ok {
			spf = pf // declared in a way the index does not follow
		}
		prefix := []string{"scenarios", name}
		if sv.Allows(cue.Str("x-not-in-schema")) {
			// Not constrained by schema.#Scenarios: apply the schema here,
			// so that faultline checks it all the same.
			sv = sv.Unify(def).FillPath(cue.MakePath(cue.Str("name")), name)
		}
		lit, _ := scenarioLiteral(spf, name)
		var patch func(*Scenario) error
		var reqDiags Diagnostics
		if long := longs[name]; long != nil {
			reqDiags = l.checkRequests(long.list, l.schemaDef(inst, "#Request"), spf, prefix, name, relPath(long.list.Lbrack.Filename()), def)
			if lit == nil {
				patch = l.patchRequests(long.list)
			}
		}
		s, ds := l.finishWith(sv, def, spf, prefix, name, patch, lit)
		diags = append(diags, ds...)
		diags = append(diags, reqDiags...)
		if s != nil && len(reqDiags) == 0 {
			out = append(out, s)
		}
	}
	return out, diags
}

// scenarioDef returns #Scenario from the schema package the instance
// imports, or from a fresh build of the embedded schema.
func (l *Loader) scenarioDef(inst *build.Instance) cue.Value {
	return l.schemaDef(inst, "#Scenario")
}

// schemaDef returns a definition of the schema package the instance
// imports, or of the embedded schema.
func (l *Loader) schemaDef(inst *build.Instance, name string) cue.Value {
	for _, imp := range inst.Imports {
		if imp.ImportPath == ImportPath {
			return l.ctx.BuildInstance(imp).LookupPath(cue.ParsePath(name))
		}
	}
	l.embeddedDef()
	if name == "#Request" {
		return l.reqDef
	}
	return l.def
}

// embeddedDef returns #Scenario of the embedded schema, building it once.
func (l *Loader) embeddedDef() cue.Value {
	if !l.def.Exists() {
		sv := l.schemaValue()
		l.def = sv.LookupPath(cue.ParsePath("#Scenario"))
		l.reqDef = sv.LookupPath(cue.ParsePath("#Request"))
	}
	return l.def
}

// schemaValue builds the embedded schema package on its own.
func (l *Loader) schemaValue() cue.Value {
	overlay := map[string]load.Source{}
	const root = "/faultline-schema"
	overlay[root+"/cue.mod/module.cue"] = load.FromString("module: \"" + Module + "\"\nlanguage: version: \"v0.17.0\"\n")
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(files, e.Name())
		overlay[path.Join(root, e.Name())] = load.FromBytes(b)
	}
	insts := load.Instances([]string{"."}, &load.Config{Dir: root, ModuleRoot: root, Overlay: overlay})
	return l.ctx.BuildInstance(insts[0])
}

// userFiles returns the instance's own files (not the schema's).
func userFiles(inst *build.Instance) []*ast.File {
	var out []*ast.File
	for _, f := range inst.Files {
		if !strings.Contains(filepath.ToSlash(f.Filename), "/cue.mod/") {
			out = append(out, f)
		}
	}
	return out
}

func displayDir(u unit) string {
	if u.file != "" {
		return u.file
	}
	return u.dir
}

func displayFile(pf posFinder, u unit) string {
	if len(pf.files) > 0 {
		return relPath(pf.files[0].Filename)
	}
	return displayDir(u)
}

// loadData loads one YAML or JSON scenario file.
func (l *Loader) loadData(u unit) ([]*Loaded, Diagnostics) {
	src, d := readSource(u.file)
	if d != nil {
		return nil, Diagnostics{*d}
	}
	if d := byteProblem(u.file, src); d != nil {
		return nil, Diagnostics{*d}
	}
	var f *ast.File
	if u.kind == unitJSON {
		if len(bytes.TrimSpace(src)) == 0 {
			return nil, Diagnostics{{File: u.file, Line: 1, Column: 1, Message: "empty file: a JSON scenario file holds one scenario as an object (name, version, target, load, ...)"}}
		}
		expr, err := cuejson.Extract(u.file, src)
		if err != nil {
			if d := jsonSyntax(u.file, src); d != nil {
				return nil, Diagnostics{*d}
			}
			return nil, cueDiagnostics(err, posFinder{}, nil, "", u.file)
		}
		f = &ast.File{Filename: u.file, Decls: []ast.Decl{&ast.EmbedDecl{Expr: expr}}}
	} else {
		if d := yamlShape(u.file, src); d != nil {
			return nil, Diagnostics{*d}
		}
		// YAML ends a line at CR, LF or CRLF, and CUE's YAML decoder counts
		// only LF (a lone CR made it index past its line table): give it LF.
		if bytes.IndexByte(src, '\r') >= 0 {
			src = bytes.ReplaceAll(bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
		}
		var err error
		f, err = cueyaml.Extract(u.file, src)
		if err != nil {
			if d := yamlSyntax(u.file, src, err.Error()); d != nil {
				return nil, Diagnostics{*d}
			}
			return nil, cueDiagnostics(err, posFinder{}, nil, "", u.file)
		}
	}
	if ds := duplicateKeys(f); len(ds) > 0 {
		return nil, ds
	}
	pf := posFinder{files: []*ast.File{f}}
	// A long request list is checked element by element: CUE's evaluation
	// of [#Request, ...#Request] is quadratic in its length (50 000
	// requests took over a minute). The scenario is evaluated with the
	// first request only, and each request on its own against #Request.
	var long *ast.ListLit
	reqField := requestsField(f)
	if reqField != nil {
		if ll, ok := reqField.Value.(*ast.ListLit); ok && len(ll.Elts) > longList {
			long = ll
			reqField.Value = &ast.ListLit{Lbrack: ll.Lbrack, Elts: ll.Elts[:1], Rbrack: ll.Rbrack}
		}
	}
	v := l.ctx.BuildFile(f)
	if long != nil {
		reqField.Value = long // positions are looked up in the whole file
	}
	if err := v.Err(); err != nil {
		return nil, cueDiagnostics(err, pf, nil, "", u.file)
	}
	if k := v.IncompleteKind(); k != cue.StructKind {
		return nil, Diagnostics{{File: u.file, Line: 1, Column: 1, Message: fmt.Sprintf("a scenario file holds one scenario as a mapping (name, version, target, load, ...), not a %v", k)}}
	}
	name, _ := v.LookupPath(cue.MakePath(cue.Str("name"))).String()
	def := l.embeddedDef()
	var patch func(*Scenario) error
	var reqDiags Diagnostics
	if long != nil {
		reqDiags = l.checkRequests(long, l.reqDef, pf, nil, name, pf.files[0].Filename, def)
		patch = l.patchRequests(long)
	}
	s, ds := l.finishWith(v.Unify(def), def, pf, nil, name, patch, nil)
	if len(reqDiags) > 0 {
		return nil, append(ds, reqDiags...)
	}
	if s == nil {
		return nil, ds
	}
	return []*Loaded{s}, ds
}

// finish validates one scenario value, decodes it and runs the checks the
// schema cannot express.
func (l *Loader) finish(v, def cue.Value, pf posFinder, prefix []string, name string) (*Loaded, Diagnostics) {
	return l.finishWith(v, def, pf, prefix, name, nil, nil)
}

// finishWith is finish; patch, if set, completes the decoded scenario (the
// requests checked one by one) before the checks run; lit, if set, is the
// scenario as written, plain data, decoded instead of exporting the value
// (the schema has no defaults, so the two are the same: TestLiteralDecode).
func (l *Loader) finishWith(v, def cue.Value, pf posFinder, prefix []string, name string, patch func(*Scenario) error, lit map[string]any) (*Loaded, Diagnostics) {
	file := ""
	if pos, _ := pf.find(prefix); pos.IsValid() {
		file = relPath(pos.Filename())
	}
	if err := v.Validate(cue.Concrete(true), cue.Hidden(true)); err != nil {
		return nil, cueDiagnostics(err, pf, prefix, name, file, v, def)
	}
	// Exporting to JSON and decoding that is several times faster than
	// Value.Decode on large inputs.
	var s Scenario
	var b []byte
	var err error
	if lit != nil {
		lit["name"] = name
		b, err = json.Marshal(lit)
	} else {
		b, err = v.MarshalJSON()
	}
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return nil, cueDiagnostics(err, pf, prefix, name, file)
	}
	if err == nil && patch != nil {
		err = patch(&s)
	}
	if err != nil {
		return nil, cueDiagnostics(err, pf, prefix, name, file)
	}
	ld := &Loaded{Scenario: &s, File: file, Value: v, prefix: prefix, pf: pf}
	if ds := check(ld); len(ds) > 0 {
		return nil, ds
	}
	return ld, nil
}

// relPath shortens an absolute file name to one relative to the working
// directory, as a user typed it.
func relPath(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// diagAt places a diagnostic for a field path (relative to the scenario) in
// the user's files.
func diagAt(pf posFinder, prefix, p []string, scenario, msg string) Diagnostic {
	full := append(slices.Clone(prefix), p...)
	pos, _ := pf.find(full)
	d := Diagnostic{Scenario: scenario, Path: strings.Join(p, "."), Message: msg}
	setPos(&d, pos)
	return d
}

func setPos(d *Diagnostic, pos token.Pos) {
	if pos.IsValid() {
		d.File = relPath(pos.Filename())
		d.Line = pos.Line()
		d.Column = pos.Column()
	}
}

// longList is the length from which a request list is checked element by
// element.
const longList = 64

// requestsField finds load.requests at the top of a data file.
func requestsField(f *ast.File) *ast.Field {
	decls := f.Decls
	if len(decls) == 1 {
		if e, ok := decls[0].(*ast.EmbedDecl); ok {
			if st, ok := e.Expr.(*ast.StructLit); ok {
				decls = st.Elts
			}
		}
	}
	return structField(&ast.StructLit{Elts: decls}, "load", "requests")
}

// patchRequests returns a patch that puts a long request list, evaluated
// one by one, into the decoded scenario.
func (l *Loader) patchRequests(long *ast.ListLit) func(*Scenario) error {
	return func(s *Scenario) error {
		v, ok := literalValue(long)
		var b []byte
		var err error
		if ok {
			b, err = json.Marshal(v)
		} else {
			b, err = l.ctx.BuildExpr(long).MarshalJSON()
		}
		if err != nil {
			return err
		}
		s.Load.Requests = nil
		return json.Unmarshal(b, &s.Load.Requests)
	}
}

// longRequests is a scenario's long literal request list in a CUE file,
// shortened to its first request while CUE evaluates the package.
type longRequests struct {
	field *ast.Field
	list  *ast.ListLit
}

// shortenLongLists finds, in a CUE package, the scenarios declared once
// under scenarios: whose load.requests is a literal list of more than
// longList plain requests, and replaces each such list with its first
// request, as loadData does for YAML and JSON: CUE's evaluation of the
// list is quadratic in its length, and the requests are checked one by one
// against #Request instead (checkRequests). A list that refers to anything
// (a definition, a comprehension, another field) is left to CUE. restore
// puts the full lists back.
func shortenLongLists(pf posFinder) (map[string]*longRequests, func()) {
	count := map[string]int{}
	found := map[string]*longRequests{}
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		switch n := e.(type) {
		case *ast.BinaryExpr:
			if n.Op == token.AND {
				walk(n.X)
				walk(n.Y)
			}
		case *ast.ParenExpr:
			walk(n.X)
		case *ast.StructLit:
			for _, d := range n.Elts {
				fd, ok := d.(*ast.Field)
				if !ok {
					continue
				}
				name, ok := labelName(fd.Label)
				if !ok {
					continue
				}
				count[name]++
				if rf := structField(fd.Value, "load", "requests"); rf != nil {
					if ll, ok := rf.Value.(*ast.ListLit); ok && len(ll.Elts) > longList && plainList(ll) {
						found[name] = &longRequests{field: rf, list: ll}
					}
				}
			}
		}
	}
	for _, f := range pf.files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.Field); ok {
				if k, ok := labelName(fd.Label); ok && k == "scenarios" {
					walk(fd.Value)
				}
			}
		}
	}
	for name, lr := range found {
		if count[name] != 1 {
			delete(found, name) // declared twice: CUE unifies the lists
			continue
		}
		lr.field.Value = &ast.ListLit{Lbrack: lr.list.Lbrack, Elts: lr.list.Elts[:1], Rbrack: lr.list.Rbrack}
	}
	return found, func() {
		for _, lr := range found {
			lr.field.Value = lr.list
		}
	}
}

// structField follows a path of field names through literal structs.
func structField(e ast.Expr, names ...string) *ast.Field {
	var fd *ast.Field
	for _, name := range names {
		st, ok := e.(*ast.StructLit)
		if !ok {
			return nil
		}
		fd = nil
		for _, d := range st.Elts {
			if f, ok := d.(*ast.Field); ok {
				if k, ok := labelName(f.Label); ok && k == name {
					if fd != nil {
						return nil // given twice
					}
					fd = f
				}
			}
		}
		if fd == nil {
			return nil
		}
		e = fd.Value
	}
	return fd
}

// plainList reports whether every element of a list is plain data.
func plainList(ll *ast.ListLit) bool {
	for _, e := range ll.Elts {
		if _, ok := literalValue(e); !ok {
			return false
		}
	}
	return true
}

// checkRequests validates each request of a long list against #Request,
// reporting problems at load.requests.N below prefix, in file.
func (l *Loader) checkRequests(list *ast.ListLit, reqDef cue.Value, pf posFinder, prefix []string, name, file string, def cue.Value) Diagnostics {
	// Most requests are plainly valid: a check in Go (requestOK) clears
	// them; CUE evaluates the rest, for its exact findings.
	var ds Diagnostics
	i := 0
	for _, e := range list.Elts {
		if _, ok := e.(*ast.Ellipsis); ok {
			continue
		}
		if v, ok := literalValue(e); ok && requestOK(v) {
			i++
			continue
		}
		rv := l.ctx.BuildExpr(e).Unify(reqDef)
		if err := rv.Validate(cue.Concrete(true)); err != nil {
			at := append(slices.Clone(prefix), "load", "requests", strconv.Itoa(i))
			var wrapped cueerrors.Error
			for _, ce := range cueerrors.Errors(err) {
				wrapped = cueerrors.Append(wrapped, prefixedErr{ce, at})
			}
			ds = append(ds, cueDiagnostics(wrapped, pf, prefix, name, file, cue.Value{}, def)...)
		}
		i++
	}
	return ds
}

// prefixedErr is a CUE error whose path is placed below a prefix.
type prefixedErr struct {
	inner cueerrors.Error
	at    []string
}

func (e prefixedErr) Path() []string              { return append(slices.Clone(e.at), e.inner.Path()...) }
func (e prefixedErr) Position() token.Pos         { return e.inner.Position() }
func (e prefixedErr) InputPositions() []token.Pos { return e.inner.InputPositions() }
func (e prefixedErr) Error() string               { return e.inner.Error() }
func (e prefixedErr) Msg() (string, []any)        { return e.inner.Msg() }

// scenarioLiteral returns a CUE scenario as plain data when it is written
// once, as one literal struct (no references, comprehensions or CUE-only
// number forms) under scenarios: — the usual case. Otherwise it reports
// false, and the scenario is exported from its value.
func scenarioLiteral(pf posFinder, name string) (map[string]any, bool) {
	var found []ast.Expr
	plain := true
	var collect func(e ast.Expr)
	collect = func(e ast.Expr) {
		switch n := e.(type) {
		case *ast.StructLit:
			for _, d := range n.Elts {
				fd, ok := d.(*ast.Field)
				if !ok {
					plain = false
					continue
				}
				k, ok := labelName(fd.Label)
				if !ok {
					plain = false // a pattern constraint may add fields
					continue
				}
				if k == name {
					found = append(found, fd.Value)
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.AND {
				plain = false
				return
			}
			collect(n.X)
			collect(n.Y)
		case *ast.SelectorExpr:
			if id, ok := n.Sel.(*ast.Ident); !ok || id.Name != "#Scenarios" {
				plain = false
			}
		case *ast.ParenExpr:
			collect(n.X)
		default:
			plain = false
		}
	}
	for _, f := range pf.files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			if k, ok := labelName(fd.Label); ok && k == "scenarios" {
				collect(fd.Value)
			}
		}
	}
	if !plain || len(found) != 1 {
		return nil, false
	}
	v, ok := literalValue(found[0])
	m, isMap := v.(map[string]any)
	return m, ok && isMap
}
