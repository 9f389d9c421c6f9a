// Package importer turns Chaos Mesh manifests into a faultline scenario:
// single chaos objects, multi-document files, and the chaos templates of a
// Workflow or a Schedule. Every field of a chaos object is carried over, or
// the import fails naming the object, the field and its line: after the
// mapping, the scenario is compiled back with faultline's own Chaos Mesh
// emitter and each object's spec is compared with the original's, both with
// Chaos Mesh's defaults filled in (its CRD schema defaults and its mutating
// webhook); whatever differs is reported. Nothing is dropped silently.
//
// The scenario gets a placeholder target and load (see schema.Placeholder*)
// that vet reports until the user fills them in.
package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one thing in a manifest that cannot be carried into a scenario.
type Error struct {
	File   string
	Line   int
	Column int
	// Object is "Kind namespace/name", with the template for a Workflow's
	// ("Workflow shop/wf template delay").
	Object string
	// Field is the field's path in the document ("spec.delay.reorder").
	Field   string
	Message string
}

func (e Error) String() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors lists everything that stops an import; as an error it prints one
// per line.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
	return es
}

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	node *yaml.Node // the document's top-level mapping
}

// maxFileSize bounds one manifest file.
const maxFileSize = 10 << 20

// splitDocs parses a file into its non-empty documents.
func splitDocs(file string, data []byte) ([]doc, error) {
	if len(data) > maxFileSize {
		return nil, Errors{{File: file, Message: fmt.Sprintf("the file has %d bytes; at most %d are imported", len(data), maxFileSize)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []doc
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := 0
			msg := err.Error()
			if i := strings.Index(msg, "line "); i >= 0 {
				rest := msg[i+5:]
				if j := strings.IndexAny(rest, ": "); j > 0 {
					line, _ = strconv.Atoi(rest[:j])
				}
			}
			return nil, Errors{{File: file, Line: line, Column: 1, Message: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
			continue
		}
		top := n.Content[0]
		if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
			continue
		}
		if top.Kind != yaml.MappingNode {
			return nil, Errors{{File: file, Line: top.Line, Column: top.Column, Message: "a document must be a Kubernetes object (a mapping with apiVersion and kind)"}}
		}
		docs = append(docs, doc{file: file, node: top})
	}
	return docs, nil
}

// child returns the value node of key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// keyNode returns the key node of key in a mapping node, or nil.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

func scalar(n *yaml.Node, key string) string {
	if c := child(n, key); c != nil && c.Kind == yaml.ScalarNode {
		return c.Value
	}
	return ""
}

// locate finds the node a field path points at under n ("delay.reorder",
// "templates[2].networkChaos"): the key of the deepest field present, so
// that an error about a field points at its line, and a field the document
// leaves out points at its parent.
func locate(n *yaml.Node, path string) *yaml.Node {
	best := n
	cur := n
	for _, seg := range splitPath(path) {
		if strings.HasPrefix(seg, "[") {
			i, err := strconv.Atoi(strings.Trim(seg, "[]"))
			if err != nil || cur == nil || cur.Kind != yaml.SequenceNode || i < 0 || i >= len(cur.Content) {
				return best
			}
			cur = cur.Content[i]
			best = cur
			continue
		}
		k := keyNode(cur, seg)
		if k == nil {
			return best
		}
		best = k
		cur = child(cur, seg)
	}
	return best
}

func splitPath(p string) []string {
	var segs []string
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case p[0] == '[':
			j := strings.IndexByte(p, ']')
			if j < 0 {
				return append(segs, p)
			}
			segs = append(segs, p[:j+1])
			p = p[j+1:]
		default:
			j := strings.IndexAny(p, ".[")
			if j < 0 {
				return append(segs, p)
			}
			segs = append(segs, p[:j])
			p = p[j:]
		}
	}
	return segs
}

// unknownFields lists the fields under n that type t does not have, as
// paths below prefix: a misspelt or unsupported field is reported, never
// ignored. t is the Go type the node decodes into.
func unknownFields(n *yaml.Node, t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := jsonFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				*out = append(*out, join(prefix, k))
				continue
			}
			unknownFields(n.Content[i+1], ft, join(prefix, k), out)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknownFields(n.Content[i+1], t.Elem(), join(prefix, n.Content[i].Value), out)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode || t.Elem().Kind() == reflect.Uint8 {
			return
		}
		for i, c := range n.Content {
			unknownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i), out)
		}
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// jsonFields maps the JSON names of a struct's fields (through inline
// embedded structs) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
