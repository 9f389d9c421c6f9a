package schema

import (
	"strconv"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// posFinder finds where a field path is written in the user's own files,
// by walking their syntax trees. CUE's error positions often point into the
// schema (a missing required field points only there), so every diagnostic
// is placed by following its path through the user's source instead.
type posFinder struct {
	files []*ast.File
}

// byScenario indexes the files by the scenario names they declare under
// "scenarios", so that each scenario's lookups walk only its own files.
func (pf posFinder) byScenario() map[string]posFinder {
	out := map[string]posFinder{}
	for _, f := range pf.files {
		seen := map[string]bool{}
		for _, name := range labelsUnder(f, "scenarios") {
			if !seen[name] {
				seen[name] = true
				out[name] = posFinder{files: append(out[name].files, f)}
			}
		}
	}
	return out
}

// labelsUnder lists the field labels of the struct(s) at top-level field
// name in a node.
func labelsUnder(node ast.Node, name string) []string {
	var out []string
	var collect func(n ast.Node, depth int)
	collect = func(n ast.Node, depth int) {
		switch n := n.(type) {
		case *ast.File:
			for _, d := range n.Decls {
				collect(d, depth)
			}
		case *ast.StructLit:
			for _, d := range n.Elts {
				collect(d, depth)
			}
		case *ast.EmbedDecl:
			collect(n.Expr, depth)
		case *ast.ParenExpr:
			collect(n.X, depth)
		case *ast.BinaryExpr:
			if n.Op == token.AND {
				collect(n.X, depth)
				collect(n.Y, depth)
			}
		case *ast.Field:
			if depth == 0 {
				if labelIs(n.Label, name) {
					collect(n.Value, 1)
				}
				return
			}
			switch l := n.Label.(type) {
			case *ast.Ident:
				out = append(out, l.Name)
			case *ast.BasicLit:
				if s, err := literal.Unquote(l.Value); err == nil {
					out = append(out, s)
				}
			}
		}
	}
	collect(node, 0)
	return out
}

// find returns the position of path in the user's files and how many path
// elements matched. With a full match the position is the field's value
// (for scalars) or its label (for structs and lists); with a partial match it
// is the label of the deepest field that exists: where a missing field
// belongs.
func (pf posFinder) find(path []string) (token.Pos, int) {
	return pf.findAt(path, false)
}

// findKey is find, but a full match gives the field's key even for a
// scalar value: where an unknown field is written.
func (pf posFinder) findKey(path []string) (token.Pos, int) {
	return pf.findAt(path, true)
}

func (pf posFinder) findAt(path []string, key bool) (token.Pos, int) {
	best, bestDepth := token.NoPos, -1
	for _, f := range pf.files {
		pos, depth := findIn(f, path, 0, key)
		if depth > bestDepth {
			best, bestDepth = pos, depth
		}
	}
	if bestDepth < 0 && len(pf.files) > 0 {
		return pf.files[0].Pos(), 0
	}
	return best, bestDepth
}

// findIn searches node for path; depth counts the elements matched so far.
func findIn(node ast.Node, path []string, depth int, key bool) (token.Pos, int) {
	best, bestDepth := token.NoPos, -1
	consider := func(p token.Pos, d int) {
		if d > bestDepth && p.IsValid() {
			best, bestDepth = p, d
		}
	}
	switch n := node.(type) {
	case *ast.File:
		for _, d := range n.Decls {
			consider(findIn(d, path, depth, key))
		}
	case *ast.StructLit:
		for _, d := range n.Elts {
			consider(findIn(d, path, depth, key))
		}
		if bestDepth < 0 {
			consider(n.Pos(), depth)
		}
	case *ast.EmbedDecl:
		consider(findIn(n.Expr, path, depth, key))
	case *ast.ParenExpr:
		consider(findIn(n.X, path, depth, key))
	case *ast.BinaryExpr:
		if n.Op == token.AND {
			consider(findIn(n.X, path, depth, key))
			consider(findIn(n.Y, path, depth, key))
		}
	case *ast.Field:
		if len(path) == 0 || !labelIs(n.Label, path[0]) {
			return token.NoPos, -1
		}
		if len(path) == 1 {
			if key {
				return n.Label.Pos(), depth + 1
			}
			switch n.Value.(type) {
			case *ast.StructLit, *ast.ListLit:
				return n.Label.Pos(), depth + 1
			}
			if n.Value != nil && n.Value.Pos().IsValid() {
				return n.Value.Pos(), depth + 1
			}
			return n.Label.Pos(), depth + 1
		}
		consider(n.Label.Pos(), depth+1)
		consider(findIn(n.Value, path[1:], depth+1, key))
	case *ast.ListLit:
		if len(path) == 0 {
			return token.NoPos, -1
		}
		i, err := strconv.Atoi(path[0])
		if err != nil || i < 0 {
			return token.NoPos, -1
		}
		k := 0
		for _, e := range n.Elts {
			if _, ok := e.(*ast.Ellipsis); ok {
				continue
			}
			if k == i {
				if len(path) == 1 {
					return e.Pos(), depth + 1
				}
				consider(e.Pos(), depth+1)
				consider(findIn(e, path[1:], depth+1, key))
				break
			}
			k++
		}
	}
	return best, bestDepth
}

// labelIs reports whether a field label names the path element.
func labelIs(l ast.Label, name string) bool {
	switch l := l.(type) {
	case *ast.Ident:
		return l.Name == name
	case *ast.BasicLit:
		if l.Kind != token.STRING {
			return l.Value == name
		}
		s, err := literal.Unquote(l.Value)
		return err == nil && s == name
	}
	return false
}
