package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/format"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// Formats Write can write.
const (
	FormatYAML = "yaml"
	FormatCUE  = "cue"
)

// header says where the scenario came from and what is left to fill in.
func header(r *Result, comment string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s Written by faultline import. target.url and load are placeholders:\n", comment)
	fmt.Fprintf(&b, "%s fill them in (faultline vet names them until you do).\n", comment)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "%s Note: %s\n", comment, n)
	}
	return b.String()
}

// Write renders the imported scenario as a YAML file (one scenario at the
// top level) or a CUE file (package scenarios, under schema.#Scenarios).
func Write(r *Result, format string) ([]byte, error) {
	data, err := json.Marshal(r.Scenario)
	if err != nil {
		return nil, fmt.Errorf("encoding the scenario: %w", err)
	}
	switch format {
	case FormatYAML, "":
		// Through CUE's encoder, which keeps the fields in the schema's
		// order (name, version, target, load, faults).
		v := cuecontext.New().CompileBytes(data)
		if err := v.Err(); err != nil {
			return nil, fmt.Errorf("encoding the scenario: %w", err)
		}
		y, err := cueyaml.Encode(v)
		if err != nil {
			return nil, fmt.Errorf("encoding the scenario: %w", err)
		}
		return append([]byte(header(r, "#")), y...), nil
	case FormatCUE:
		return writeCUE(r, data)
	}
	return nil, fmt.Errorf("unknown format %q: want yaml or cue", format)
}

func writeCUE(r *Result, data []byte) ([]byte, error) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(data)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("encoding the scenario as CUE: %w", err)
	}
	syn := v.Syntax()
	src, err := format.Node(syn, format.Simplify())
	if err != nil {
		return nil, fmt.Errorf("formatting the scenario as CUE: %w", err)
	}
	body := dropName(src)
	var b bytes.Buffer
	b.WriteString(header(r, "//"))
	b.WriteString("package scenarios\n\nimport \"faultline.dev/schema\"\n\n")
	fmt.Fprintf(&b, "scenarios: schema.#Scenarios & {\n\t%q: ", r.Scenario.Name)
	b.WriteString(indent(strings.TrimSpace(string(body))))
	b.WriteString("\n}\n")
	out, err := format.Source(b.Bytes(), format.Simplify())
	if err != nil {
		return nil, fmt.Errorf("formatting the scenario as CUE: %w", err)
	}
	return out, nil
}

// dropName removes the top-level name field: the key under scenarios names
// the scenario.
func dropName(src []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "\tname:") {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n\t") }
