package schema

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cueyaml "cuelang.org/go/encoding/yaml"

	"faultline.dev/faultline/internal/lsptest"
)

const yamlServerInstall = "install the pinned yaml-language-server: (cd schema/editor && npm ci)"

func fileURI(p string) string {
	abs, _ := filepath.Abs(p)
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// editorFiles returns the valid YAML scenarios an editor opens: the
// library's and the tests' YAML files, and the YAML of every CUE library
// and test scenario (as `cue export --out yaml` writes it), copied into dir.
func editorFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	add := func(name string, src []byte) {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, src, 0o644))
		out = append(out, p)
	}
	yamls, _ := filepath.Glob(filepath.Join("..", "scenarios", "*.yaml"))
	yamls = append(yamls, filepath.Join("testdata", "vet", "ok", "scenario.yaml"))
	more, _ := filepath.Glob(filepath.Join("testdata", "editor", "*.yaml"))
	yamls = append(yamls, more...)
	for _, y := range yamls {
		b, err := os.ReadFile(y)
		must(t, err)
		add("file-"+strings.ReplaceAll(filepath.ToSlash(y), "/", "_"), b)
	}
	loaded, diags, err := NewLoader().Load(context.Background(), []string{filepath.Join("..", "scenarios"), filepath.Join("testdata", "vet", "ok", "scenario.cue")})
	// (A stale vendored copy is TestRepoVendoredSchemaFresh's concern.)
	diags = slices.DeleteFunc(diags, func(d Diagnostic) bool { return strings.Contains(d.Message, "vendored schema differs") })
	if err != nil || len(diags) > 0 {
		t.Fatalf("loading the library: %v %v", err, diags)
	}
	for _, l := range loaded {
		if !strings.HasSuffix(l.File, ".cue") {
			continue
		}
		b, err := cueyaml.Encode(l.Value)
		must(t, err)
		add("cue-"+l.Scenario.Name+".yaml", b)
	}
	if len(out) < 10 {
		t.Fatalf("only %d valid scenario files for the editor", len(out))
	}
	return out
}

// TestYAMLLanguageServer opens every shipped and test YAML scenario (and
// the YAML of every CUE one) in the real yaml-language-server, configured
// as VS Code's YAML extension is by the README (yaml.schemas mapping the
// exported JSON Schema to the scenario files): zero diagnostics on each
// valid file; on invalid files, a diagnostic on the line vet names.
func TestYAMLLanguageServer(t *testing.T) {
	server := filepath.Join("editor", "node_modules", "yaml-language-server", "bin", "yaml-language-server")
	lsptest.NeedTool(t, server, yamlServerInstall)
	lsptest.NeedTool(t, "node", "apt-get install -y nodejs")
	server, _ = filepath.Abs(server)

	dir := t.TempDir()
	js, err := NewLoader().JSONSchema()
	must(t, err)
	schemaFile := filepath.Join(dir, "scenario.schema.json")
	must(t, os.WriteFile(schemaFile, js, 0o644))
	docs := filepath.Join(dir, "scenarios")
	must(t, os.MkdirAll(docs, 0o755))
	valid := editorFiles(t, docs)

	// Invalid files, each with what the JSON Schema can see.
	invalid := map[string]string{
		"unknown-field":    "not allowed",
		"wrong-type":       "Incorrect type",
		"out-of-range":     "maximum",
		"kind-value":       "minimum",
		"missing-required": "Missing property",
	}
	var bad []string
	for name := range invalid {
		b, err := os.ReadFile(filepath.Join("testdata", "vet", name, "scenario.yaml"))
		must(t, err)
		p := filepath.Join(docs, "bad-"+name+".yaml")
		must(t, os.WriteFile(p, b, 0o644))
		bad = append(bad, p)
	}
	slices.Sort(bad)

	settings := map[string]any{
		"yaml": map[string]any{
			"validate":    true,
			"hover":       true,
			"completion":  true,
			"schemas":     map[string]any{fileURI(schemaFile): []string{"scenarios/*.yaml"}},
			"schemaStore": map[string]any{"enable": false},
		},
	}
	answers := map[string]func(json.RawMessage) any{
		"workspace/configuration": func(p json.RawMessage) any {
			var req struct {
				Items []struct {
					Section string `json:"section"`
				} `json:"items"`
			}
			_ = json.Unmarshal(p, &req)
			out := make([]any, len(req.Items))
			for i, it := range req.Items {
				switch {
				case it.Section == "yaml":
					out[i] = settings["yaml"]
				case strings.HasPrefix(it.Section, "yaml."):
					out[i] = settings["yaml"].(map[string]any)[strings.TrimPrefix(it.Section, "yaml.")]
				}
			}
			return out
		},
	}
	c := lsptest.Start(t, dir, answers, "node", server, "--stdio")
	c.Call("initialize", map[string]any{
		"processId": os.Getpid(),
		"rootUri":   fileURI(dir),
		"capabilities": map[string]any{
			"workspace":    map[string]any{"configuration": true, "didChangeConfiguration": map[string]any{"dynamicRegistration": true}},
			"textDocument": map[string]any{"publishDiagnostics": map[string]any{}, "hover": map[string]any{"contentFormat": []string{"markdown", "plaintext"}}},
		},
		"initializationOptions": settings,
	})
	c.Notify("initialized", map[string]any{})
	c.Notify("workspace/didChangeConfiguration", map[string]any{"settings": settings})

	var uris []string
	for _, p := range append(slices.Clone(bad), valid...) {
		b, err := os.ReadFile(p)
		must(t, err)
		uri := fileURI(p)
		uris = append(uris, uri)
		c.Notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
			"uri": uri, "languageId": "yaml", "version": 1, "text": string(b),
		}})
	}
	got := c.Diagnostics(uris, 2*time.Second)

	for _, p := range valid {
		// vet agrees that the file is valid (also the YAML made from CUE).
		l, vd, err := NewLoader().Load(context.Background(), []string{p})
		if vd = append(vd, CheckDeploy(l)...); err != nil || len(vd) > 0 {
			t.Errorf("vet %s: %v %v", filepath.Base(p), err, vd)
		}
		if ds := got[fileURI(p)]; len(ds) > 0 {
			var lines []string
			for _, d := range ds {
				lines = append(lines, d.String())
			}
			t.Errorf("%s is valid, but yaml-language-server reports:\n  %s", filepath.Base(p), strings.Join(lines, "\n  "))
		}
	}
	for name, want := range invalid {
		p := filepath.Join(docs, "bad-"+name+".yaml")
		_, vd, _ := NewLoader().Load(context.Background(), []string{p})
		if len(vd) != 1 {
			t.Fatalf("%s: vet reports %v", name, vd)
		}
		ok := false
		var lines []string
		for _, d := range got[fileURI(p)] {
			lines = append(lines, d.String())
			ok = ok || (d.Range.Start.Line+1 == vd[0].Line && strings.Contains(d.Message, want))
		}
		if !ok {
			t.Errorf("%s: want a diagnostic %q on line %d (where vet says %q); yaml-language-server reports:\n  %s",
				name, want, vd[0].Line, vd[0].Message, strings.Join(lines, "\n  "))
		}
	}

	// Hover shows the schema's documentation of a field.
	first := valid[0]
	src, _ := os.ReadFile(first)
	line := slices.IndexFunc(strings.Split(string(src), "\n"), func(l string) bool { return strings.HasPrefix(l, "version:") })
	if line < 0 {
		t.Fatalf("%s has no version line", first)
	}
	h := c.Call("textDocument/hover", map[string]any{
		"textDocument": map[string]any{"uri": fileURI(first)},
		"position":     map[string]any{"line": line, "character": 2},
	})
	if !strings.Contains(string(h), "semantic version") {
		t.Errorf("hover on version shows %s, want the schema's documentation", h)
	}
}
