package schema

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/ast/astutil"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/encoding/jsonschema"
)

// JSONSchemaID is the $id of the exported JSON Schema.
const JSONSchemaID = "https://faultline.dev/schema/v0/scenario.json"

// JSONSchema exports #Scenario as JSON Schema (draft 2020-12), for YAML
// editors: yaml-language-server completes and checks scenario files with it.
//
// JSON Schema cannot state the schema's cross-field rules (the parameters
// each executor needs, exactly one kind block per fault, fault windows
// inside the load), and CUE's generator gives up on a struct that holds
// them. So the export is made from the schema with those rules removed — the
// shape of every field stays exact — and `faultline vet` checks the rules.
func (l *Loader) JSONSchema() ([]byte, error) {
	shape, err := l.shapeValue()
	if err != nil {
		return nil, err
	}
	expr, err := jsonschema.Generate(shape.LookupPath(cue.ParsePath("#Scenario")), &jsonschema.GenerateConfig{})
	if err != nil {
		return nil, fmt.Errorf("generating JSON Schema: %w", err)
	}
	src, err := format.Node(expr)
	if err != nil {
		return nil, err
	}
	v := l.ctx.CompileBytes(src)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := v.Decode(&m); err != nil {
		return nil, err
	}
	inlineEmbeds(m, m["$defs"].(map[string]any))
	m["$id"] = JSONSchemaID
	m["title"] = "faultline scenario"
	m["description"] = "A faultline scenario. Cross-field rules (executor parameters, one kind block per fault, fault windows inside the load) are checked by `faultline vet`."
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// shapeValue compiles the schema without its cross-field rules: if-clauses
// and hidden fields are dropped from the syntax tree.
func (l *Loader) shapeValue() (cue.Value, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return cue.Value{}, err
	}
	var parts []string
	for _, e := range entries {
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return cue.Value{}, err
		}
		f, err := parser.ParseFile(e.Name(), b, parser.ParseComments)
		if err != nil {
			return cue.Value{}, err
		}
		stripped := astutil.Apply(f, func(c astutil.Cursor) bool {
			switch n := c.Node().(type) {
			case *ast.Comprehension:
				c.Delete()
				return false
			case *ast.Field:
				if id, ok := n.Label.(*ast.Ident); ok && strings.HasPrefix(id.Name, "_") {
					c.Delete()
					return false
				}
			}
			return true
		}, nil)
		src, err := format.Node(stripped)
		if err != nil {
			return cue.Value{}, err
		}
		// Drop the imports only the removed rules used.
		file := stripped.(*ast.File)
		for _, d := range file.Decls {
			imp, ok := d.(*ast.ImportDecl)
			if !ok {
				continue
			}
			var keep []*ast.ImportSpec
			for _, spec := range imp.Specs {
				path := strings.Trim(spec.Path.Value, `"`)
				if strings.Contains(string(src), path[strings.LastIndex(path, "/")+1:]+".") {
					keep = append(keep, spec)
				}
			}
			imp.Specs = keep
		}
		if src, err = format.Node(stripped); err != nil {
			return cue.Value{}, err
		}
		parts = append(parts, string(src))
	}
	// One package, one file: drop the repeated package clauses and imports
	// by compiling each file and unifying.
	var v cue.Value
	for i, p := range parts {
		pv := l.ctx.CompileString(p, cue.Filename(fmt.Sprintf("shape%d.cue", i)))
		if err := pv.Err(); err != nil {
			return cue.Value{}, fmt.Errorf("compiling the schema's shape: %w", err)
		}
		if i == 0 {
			v = pv
		} else {
			v = v.Unify(pv)
		}
	}
	return v, nil
}

// inlineEmbeds rewrites every object schema that combines a "$ref" with
// its own "properties" (CUE's embedding: recovery SLOs embed #PhaseSLO,
// every IO fault kind embeds #IOTarget) into one object schema holding both
// sets of properties. JSON Schema 2020-12 applies the "$ref" and the local
// "additionalProperties": false independently, so as generated, each side
// rejects the other's fields: yaml-language-server flags valid files.
func inlineEmbeds(node any, defs map[string]any) {
	switch n := node.(type) {
	case []any:
		for _, e := range n {
			inlineEmbeds(e, defs)
		}
	case map[string]any:
		for _, v := range n {
			inlineEmbeds(v, defs)
		}
		ref, _ := n["$ref"].(string)
		props, ok := n["properties"].(map[string]any)
		if ref == "" || !ok {
			return
		}
		target, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		if target == nil {
			return
		}
		inlineEmbeds(target, defs) // an embedding of an embedding
		tprops, _ := target["properties"].(map[string]any)
		if tprops == nil {
			return
		}
		for k, v := range tprops {
			if _, own := props[k]; !own {
				props[k] = v
			}
		}
		var req []any
		seen := map[string]bool{}
		for _, list := range []any{target["required"], n["required"]} {
			l, _ := list.([]any)
			for _, r := range l {
				if s, _ := r.(string); !seen[s] {
					seen[s] = true
					req = append(req, r)
				}
			}
		}
		if len(req) > 0 {
			n["required"] = req
		}
		delete(n, "$ref")
		n["type"] = "object"
		n["additionalProperties"] = false
	}
}
