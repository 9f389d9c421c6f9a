package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	typo "faultline.dev/faultline/internal/suggest"
)

// MaxFileSize is the largest scenario file faultline reads: 10 MB holds a
// list of about 150 000 requests, which vets in a few seconds; a larger
// file is refused at once, naming the limit.
const MaxFileSize = 10 << 20

// Checks on the raw bytes of a scenario file, made before any parser sees
// them, so that a problem the parsers report vaguely (no line, a doubled
// file name, one line early) is named exactly.

// byteProblem finds the first byte that is not UTF-8 or is a control
// character a YAML, JSON or CUE file may not hold.
func byteProblem(file string, src []byte) *Diagnostic {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &Diagnostic{File: file, Line: line, Column: col,
				Message: fmt.Sprintf("byte 0x%02x is not UTF-8: save the file as UTF-8", src[i])}
		case r == '\n':
			line, col = line+1, 1
			i += size
			continue
		case r == '\uFEFF' && i == 0:
			// A byte order mark at the start is allowed.
		case r < 0x20 && r != '\t' && r != '\r' || r == 0x7f:
			return &Diagnostic{File: file, Line: line, Column: col,
				Message: fmt.Sprintf("control character U+%04X is not allowed in a scenario file: remove it (write \\u%04X inside a quoted string if you mean it)", r, r)}
		}
		i += size
		col++
	}
	return nil
}

// readSource reads a scenario file, refusing one larger than MaxFileSize.
func readSource(file string) ([]byte, *Diagnostic) {
	f, err := os.Open(file)
	if err != nil {
		return nil, &Diagnostic{File: file, Message: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))}
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Diagnostic{File: file, Message: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))}
	}
	if len(src) > MaxFileSize {
		return nil, &Diagnostic{File: file, Line: 1, Column: 1,
			Message: fmt.Sprintf("the file is larger than %d MB, the most a scenario file may hold: split it, or move large request lists out of it", MaxFileSize>>20)}
	}
	return src, nil
}

// yamlDocRE matches a YAML document marker line.
var yamlDocRE = regexp.MustCompile(`(?m)^---(?:[ \t].*)?\r?$`)

// yamlShape names a YAML file that holds no scenario mapping: empty, only
// comments, or more than one document.
func yamlShape(file string, src []byte) *Diagnostic {
	content := 0 // documents with content
	docStart := []int{0}
	for _, m := range yamlDocRE.FindAllIndex(src, -1) {
		docStart = append(docStart, m[0])
	}
	secondLine := 0
	for i, start := range docStart {
		end := len(src)
		if i+1 < len(docStart) {
			end = docStart[i+1]
		}
		doc := src[start:end]
		if i > 0 {
			doc = doc[3:] // the marker itself
		}
		if hasYAMLContent(doc) {
			content++
			if content == 2 {
				secondLine = bytes.Count(src[:start], []byte("\n")) + 1
			}
		}
	}
	switch {
	case content == 0:
		return &Diagnostic{File: file, Line: 1, Column: 1,
			Message: "the file holds no scenario (it is empty or only comments): write one scenario as a mapping (name, version, target, load, ...)"}
	case content > 1:
		return &Diagnostic{File: file, Line: secondLine, Column: 1,
			Message: "a second YAML document starts here: a scenario file holds exactly one scenario; put each scenario in its own file"}
	}
	return nil
}

func hasYAMLContent(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("...")) && !bytes.HasPrefix(t, []byte("%")) {
			return true
		}
	}
	return false
}

// yamlSyntax places a YAML syntax error the parser reports vaguely: a tab
// in indentation (the parser names the line before), an unclosed flow
// collection or quote (the parser names where it gave up).
func yamlSyntax(file string, src []byte, msg string) *Diagnostic {
	lines := strings.Split(string(src), "\n")
	if strings.Contains(msg, "tab character") {
		for i, l := range lines {
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			if j := strings.IndexByte(indent, '\t'); j >= 0 && strings.TrimSpace(l) != "" {
				return &Diagnostic{File: file, Line: i + 1, Column: j + 1,
					Message: "a tab in the indentation: YAML indents with spaces only; replace the tab with spaces"}
			}
		}
	}
	if open := unclosed(lines, false); open != nil {
		return open.diag(file)
	}
	return nil
}

type opener struct {
	ch        byte
	line, col int
}

func (o *opener) diag(file string) *Diagnostic {
	closing := map[byte]string{'{': "}", '[': "]", '"': `"`, '\'': "'"}[o.ch]
	what := map[byte]string{'{': "mapping", '[': "list", '"': "string", '\'': "string"}[o.ch]
	return &Diagnostic{File: file, Line: o.line, Column: o.col,
		Message: fmt.Sprintf("this %c opens a %s that is never closed: close it with %s", o.ch, what, closing)}
}

// unclosed scans YAML lines for a flow collection or quoted scalar that is
// never closed. It knows YAML well enough for that: quotes, comments, and
// brackets inside plain scalars of block context are not openers.
func unclosed(lines []string, cueSyntax bool) *opener {
	var stack []opener
	var quote *opener
	for i, l := range lines {
		for j := 0; j < len(l); j++ {
			c := l[j]
			if quote != nil {
				switch {
				case quote.ch == '"' && c == '\\':
					j++
				case quote.ch == '\'' && c == '\'' && j+1 < len(l) && l[j+1] == '\'':
					j++
				case c == quote.ch:
					quote = nil
				}
				continue
			}
			switch c {
			case '#':
				if !cueSyntax && (j == 0 || l[j-1] == ' ' || l[j-1] == '\t') {
					j = len(l)
				}
			case '/':
				if cueSyntax && j+1 < len(l) && l[j+1] == '/' {
					j = len(l)
				}
			case '"', '\'':
				// A quote opens a scalar only where a scalar starts.
				if cueSyntax || j == 0 || strings.ContainsRune(" \t[{,:-", rune(l[j-1])) {
					quote = &opener{c, i + 1, j + 1}
				}
			case '{', '[':
				if cueSyntax || len(stack) > 0 || j == 0 || strings.ContainsRune(" \t[{,:-", rune(l[j-1])) {
					stack = append(stack, opener{c, i + 1, j + 1})
				}
			case '}', ']':
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			}
		}
	}
	if quote != nil {
		return quote
	}
	if len(stack) > 0 {
		return &stack[len(stack)-1]
	}
	return nil
}

// jsonSyntax explains a JSON syntax error with encoding/json's words.
func jsonSyntax(file string, src []byte) *Diagnostic {
	var v any
	err := json.Unmarshal(src, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return nil
	}
	line, col := lineCol(src, int(se.Offset))
	return &Diagnostic{File: file, Line: line, Column: col, Message: "invalid JSON: " + se.Error()}
}

func lineCol(src []byte, off int) (int, int) {
	off = min(max(off, 0), len(src))
	before := src[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := off - bytes.LastIndexByte(before, '\n')
	return line, max(col, 1)
}

// duplicateKeys finds keys given twice in one mapping of a YAML or JSON file
// (CUE would unify them: the same value passes, different ones conflict).
func duplicateKeys(f *ast.File) Diagnostics {
	var out Diagnostics
	var walk func(n ast.Node, depth int)
	var fields func(decls []ast.Decl, depth int)
	walk = func(n ast.Node, depth int) {
		if depth > 100000 {
			return
		}
		switch n := n.(type) {
		case *ast.File:
			fields(n.Decls, depth+1)
		case *ast.EmbedDecl:
			walk(n.Expr, depth+1)
		case *ast.ListLit:
			for _, e := range n.Elts {
				walk(e, depth+1)
			}
		case *ast.StructLit:
			fields(n.Elts, depth+1)
		}
	}
	fields = func(decls []ast.Decl, depth int) {
		seen := map[string]token.Pos{}
		for _, d := range decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				walk(d, depth+1)
				continue
			}
			if name, ok := labelName(fd.Label); ok {
				if prev, dup := seen[name]; dup {
					d := Diagnostic{Message: fmt.Sprintf("duplicate key %q: it is also given at line %d; keep one", name, prev.Line())}
					setPos(&d, fd.Label.Pos())
					out = append(out, d)
				} else {
					seen[name] = fd.Label.Pos()
				}
			}
			walk(fd.Value, depth+1)
		}
	}
	walk(f, 0)
	return out
}

func labelName(l ast.Label) (string, bool) {
	switch l := l.(type) {
	case *ast.Ident:
		return l.Name, true
	case *ast.BasicLit:
		if l.Kind == token.STRING {
			s, err := literal.Unquote(l.Value)
			return s, err == nil
		}
		return l.Value, true
	}
	return "", false
}

// cuePackageProblems checks the .cue files of a load unit before CUE loads
// them: bytes, empty files, files without a package clause, and files of
// different packages in one directory.
func cuePackageProblems(u unit) Diagnostics {
	var names []string
	if u.file != "" {
		names = []string{u.file}
	} else {
		entries, err := os.ReadDir(u.dir)
		if err != nil {
			return nil
		}
		for _, e := range entries {
			if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".cue") && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, filepath.Join(u.dir, e.Name()))
			}
		}
	}
	var out Diagnostics
	firstPkg, firstFile := "", ""
	for _, name := range names {
		display := relPath(name)
		src, d := readSource(name)
		if d != nil {
			out = append(out, *d)
			continue
		}
		if d := byteProblem(display, src); d != nil {
			out = append(out, *d)
			continue
		}
		if len(bytes.TrimSpace(src)) == 0 {
			out = append(out, Diagnostic{File: display, Line: 1, Column: 1,
				Message: "empty file: a CUE scenario file starts with a package clause, such as  package scenarios, and declares its scenarios under scenarios:"})
			continue
		}
		f, err := parser.ParseFile(name, src, parser.PackageClauseOnly)
		if err != nil {
			continue // the full load reports syntax errors
		}
		pkg := f.PackageName()
		if pkg == "" {
			out = append(out, Diagnostic{File: display, Line: 1, Column: 1,
				Message: "no package clause: start the file with one, such as  package scenarios  (the same in every .cue file of the directory)"})
			continue
		}
		if firstPkg == "" {
			firstPkg, firstFile = pkg, display
			continue
		}
		if pkg != firstPkg {
			d := Diagnostic{File: display, Line: 1, Column: 1,
				Message: fmt.Sprintf("package %s, but %s is package %s: every .cue file in a directory belongs to one package; rename one of them", pkg, firstFile, firstPkg)}
			for _, dcl := range f.Decls {
				if p, ok := dcl.(*ast.Package); ok {
					setPos(&d, p.Name.Pos())
				}
			}
			out = append(out, d)
		}
	}
	return out
}

// importAt reads the import path written at a position of a CUE file.
func importAt(pos token.Pos) string {
	if !pos.IsValid() {
		return ""
	}
	src, err := os.ReadFile(pos.Filename())
	if err != nil {
		return ""
	}
	lines := strings.Split(string(src), "\n")
	if pos.Line() < 1 || pos.Line() > len(lines) {
		return ""
	}
	l := lines[pos.Line()-1]
	if c := pos.Column() - 1; c >= 0 && c < len(l) {
		l = l[c:]
	}
	if i := strings.IndexByte(l, '"'); i >= 0 {
		if s, err := strconv.QuotedPrefix(l[i:]); err == nil {
			u, _ := strconv.Unquote(s)
			return u
		}
	}
	return ""
}

// loadErrors explains the errors of loading a CUE package: imports that
// cannot be found by name, the rest as CUE says them.
func loadErrors(err error, fallback string) Diagnostics {
	var out Diagnostics
	var rest []error
	badImport := map[int]bool{}
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		pos := token.NoPos
		for _, p := range cueerrors.Positions(e) {
			if p.IsValid() && !strings.Contains(p.Filename(), "/cue.mod/") {
				pos = p
				break
			}
		}
		switch {
		case strings.Contains(msg, "import failed") || strings.HasPrefix(format, "builtin package %q undefined") || strings.Contains(msg, "cannot find package"):
			path := importAt(pos)
			if len(args) > 0 && strings.HasPrefix(format, "builtin package") {
				path = fmt.Sprint(args[0])
			}
			d := Diagnostic{File: fallback, Message: fmt.Sprintf("cannot find package %q: check the import path; the scenario schema is imported as %q", path, ImportPath)}
			if path == "" {
				d.Message = fmt.Sprintf("an import cannot be found: check its path; the scenario schema is imported as %q", ImportPath)
			}
			setPos(&d, pos)
			badImport[d.Line] = true
			out = append(out, d)
		case strings.HasPrefix(msg, "imported and not used"):
			if !badImport[pos.Line()] {
				d := Diagnostic{File: fallback, Message: msg + ": remove the import"}
				setPos(&d, pos)
				out = append(out, d)
			}
		case strings.Contains(msg, "found 'EOF'") && pos.IsValid():
			// The parser names the end of the file; name the opener.
			src, _ := os.ReadFile(pos.Filename())
			if open := unclosed(strings.Split(string(src), "\n"), true); open != nil {
				out = append(out, *open.diag(relPath(pos.Filename())))
			} else {
				rest = append(rest, e)
			}
		default:
			rest = append(rest, e)
		}
	}
	for _, e := range rest {
		out = append(out, cueDiagnostics(e, posFinder{}, nil, "", fallback)...)
	}
	return out
}

// schemaNames lists the top-level names of the embedded schema
// (#Scenarios, #Scenario, #Load, ...).
func schemaNames() map[string]bool {
	names := map[string]bool{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(files, e.Name())
		f, err := parser.ParseFile(e.Name(), b)
		if err != nil {
			continue
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.Field); ok {
				if n, ok := labelName(fd.Label); ok {
					names[n] = true
				}
			}
		}
	}
	return names
}

// unknownSchemaRefs finds references to names the schema does not have,
// such as schema.#Scenaros: CUE would leave such a struct unconstrained.
func unknownSchemaRefs(userFiles []*ast.File) Diagnostics {
	var out Diagnostics
	var names map[string]bool
	for _, f := range userFiles {
		pkg := ""
		for imp := range f.ImportSpecs() {
			if p, err := literal.Unquote(imp.Path.Value); err == nil && p == ImportPath {
				pkg = "schema"
				if imp.Name != nil {
					pkg = imp.Name.Name
				}
			}
		}
		if pkg == "" {
			continue
		}
		ast.Walk(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok || x.Name != pkg {
				return true
			}
			name, ok := labelName(sel.Sel)
			if !ok {
				return true
			}
			if names == nil {
				names = schemaNames()
			}
			if !names[name] {
				msg := fmt.Sprintf("%s.%s is not in the scenario schema: declare scenarios as  scenarios: %s.#Scenarios & {...}", pkg, name, pkg)
				best, bestD := "", 1+len(name)/3
				for k := range names {
					if d := typo.Distance(strings.ToLower(name), strings.ToLower(k)); d < bestD || d == bestD && k < best {
						best, bestD = k, d
					}
				}
				if best != "" {
					msg = fmt.Sprintf("%s.%s is not in the scenario schema: did you mean %s.%s?", pkg, name, pkg, best)
				}
				d := Diagnostic{Message: msg}
				setPos(&d, sel.Sel.Pos())
				out = append(out, d)
			}
			return true
		}, nil)
	}
	return out
}
