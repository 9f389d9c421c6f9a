package schema

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// requestOK reports whether one request, as JSON, certainly satisfies
// #Request: the fast path of checkRequests. It accepts only what the schema
// accepts (TestRequestOKAgreesWithSchema holds it to that); anything else,
// right or wrong, goes to CUE, which has the final word and the message.
func requestOK(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	path, ok := m["path"].(string)
	if !ok || !strings.HasPrefix(path, "/") {
		return false
	}
	for k, v := range m {
		switch k {
		case "path":
		case "name":
			if s, ok := v.(string); !ok || utf8.RuneCountInString(s) < 1 {
				return false
			}
		case "method":
			if !requestMethods[asString(v)] {
				return false
			}
		case "body":
			if _, ok := v.(string); !ok {
				return false
			}
		case "weight":
			if n, ok := asInt(v); !ok || n < 1 {
				return false
			}
		case "headers":
			h, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for name, val := range h {
				if _, ok := val.(string); !ok || !headerNameRE.MatchString(name) {
					return false
				}
			}
		case "expect":
			e, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for ek, ev := range e {
				switch ek {
				case "status":
					if n, ok := asInt(ev); !ok || n < 100 || n > 599 {
						return false
					}
				case "bodyContains":
					list, ok := ev.([]any)
					if !ok {
						return false
					}
					for _, s := range list {
						if str, ok := s.(string); !ok || utf8.RuneCountInString(str) < 1 {
							return false
						}
					}
				default:
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

var (
	requestMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}
	headerNameRE   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// asInt reads an integer written as one (CUE's int: no fraction, no
// exponent).
func asInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

var plainNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// literalValue turns the syntax of a YAML or JSON value (as the decoders
// produce it: literals, mappings, lists) into Go values as encoding/json
// would, numbers as json.Number. It reports false for anything else (a CUE
// expression, a number in another notation): those go to CUE.
func literalValue(e ast.Node) (any, bool) {
	switch n := e.(type) {
	case *ast.BasicLit:
		switch n.Kind {
		case token.STRING:
			if !strings.HasPrefix(n.Value, `"`) {
				return nil, false // bytes ('...', YAML's !!binary) or raw
			}
			s, err := literal.Unquote(n.Value)
			return s, err == nil
		case token.INT, token.FLOAT:
			if !plainNumberRE.MatchString(n.Value) {
				return nil, false
			}
			return json.Number(n.Value), true
		case token.TRUE:
			return true, true
		case token.FALSE:
			return false, true
		case token.NULL:
			return nil, true
		}
	case *ast.StructLit:
		m := make(map[string]any, len(n.Elts))
		for _, d := range n.Elts {
			f, ok := d.(*ast.Field)
			if !ok || f.Constraint != token.ILLEGAL {
				return nil, false
			}
			k, ok := labelName(f.Label)
			if !ok {
				return nil, false
			}
			if _, dup := m[k]; dup {
				return nil, false
			}
			v, ok := literalValue(f.Value)
			if !ok {
				return nil, false
			}
			m[k] = v
		}
		return m, true
	case *ast.ListLit:
		out := make([]any, 0, len(n.Elts))
		for _, x := range n.Elts {
			v, ok := literalValue(x)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case *ast.UnaryExpr:
		if n.Op == token.SUB {
			if b, ok := n.X.(*ast.BasicLit); ok && (b.Kind == token.INT || b.Kind == token.FLOAT) && plainNumberRE.MatchString(b.Value) {
				return json.Number("-" + b.Value), true
			}
		}
	}
	return nil, false
}
