package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/internal/lsptest"
)

// corpusFiles reads one case of schema/testdata/corpus: its files, and the
// diagnostics `vet .` must print (the "want" section).
func corpusFiles(t *testing.T, path string) (map[string][]byte, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	cur, want := "", ""
	var buf bytes.Buffer
	flush := func() {
		switch cur {
		case "":
		case "want":
			want = buf.String()
		default:
			files[cur] = bytes.Clone(buf.Bytes())
		}
		buf.Reset()
	}
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		s := strings.TrimSuffix(string(line), "\n")
		if strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") && len(s) >= 7 {
			flush()
			cur = strings.TrimSpace(s[3 : len(s)-3])
			continue
		}
		buf.Write(line)
	}
	flush()
	return files, want
}

// TestVetCorpus runs the binary on every bad input of the schema's corpus:
// exit 3 in text and JSON, the same diagnostics in both, JSON that parses,
// and nothing reported as ok from a file with a problem.
func TestVetCorpus(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("..", "..", "schema", "testdata", "corpus", "*.txtar"))
	if err != nil || len(cases) < 100 {
		t.Fatalf("corpus: %d cases (%v), want at least 100", len(cases), err)
	}
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".txtar")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files, want := corpusFiles(t, c)
			dir := t.TempDir()
			for n, src := range files {
				p := filepath.Join(dir, filepath.FromSlash(n))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, src, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			text := exec.Command(binary, "vet", ".")
			text.Dir = dir
			var stdout, stderr bytes.Buffer
			text.Stdout, text.Stderr = &stdout, &stderr
			_ = text.Run()
			if code := text.ProcessState.ExitCode(); code != 3 {
				t.Errorf("vet .: exit %d, want 3\n%s", code, stderr.String())
			}
			got := strings.TrimSuffix(stderr.String(), "\n")
			if i := strings.LastIndex(got, "\n"); i >= 0 && strings.HasSuffix(got, "problem(s)") {
				got = got[:i+1]
			} else {
				got = ""
			}
			if got != want {
				t.Errorf("vet . printed:\n%s\nwant:\n%s", got, want)
			}

			js := exec.Command(binary, "vet", "-o", "json", ".")
			js.Dir = dir
			out, _ := js.Output()
			if code := js.ProcessState.ExitCode(); code != 3 {
				t.Errorf("vet -o json .: exit %d, want 3", code)
			}
			var r vetReport
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("vet -o json is not JSON: %v\n%s", err, out)
			}
			if r.Valid || len(r.Errors) == 0 {
				t.Errorf("vet -o json: valid %v with %d errors", r.Valid, len(r.Errors))
			}
			var lines []string
			for _, d := range r.Errors {
				lines = append(lines, d.String())
				if d.File == "" || d.Message == "" {
					t.Errorf("JSON error without file or message: %+v", d)
				}
				for _, s := range r.Scenarios {
					if s.File == d.File {
						t.Errorf("%s reported ok although %s has a problem", s.Name, d.File)
					}
				}
			}
			if j := strings.Join(lines, "\n") + "\n"; j != want {
				t.Errorf("vet -o json errors:\n%s\nwant:\n%s", j, want)
			}
		})
	}
}

// TestVetAllowEmpty: an empty directory is an error unless --allow-empty.
func TestVetAllowEmpty(t *testing.T) {
	dir := t.TempDir()
	if code, out := runFaultline(t, dir, "vet", "."); code != 3 || !strings.Contains(out, "no scenario files") {
		t.Errorf("vet on an empty directory: exit %d\n%s", code, out)
	}
	if code, out := runFaultline(t, dir, "vet", "--allow-empty", "."); code != 0 {
		t.Errorf("vet --allow-empty on an empty directory: exit %d\n%s", code, out)
	}
}

// TestInitCueLSP: in a repository made by `faultline init`, the pinned
// `cue lsp` (over stdio, as the CUE editor extensions run it) loads the
// scenario with the vendored schema: a syntax error is reported on its
// line, the scenario as init writes it gets no diagnostics, and hover on
// the schema's definitions shows their documentation from the vendored
// copy. (cue lsp v0.17 publishes no evaluation errors — a value the schema
// refuses is reported by faultline vet and cue vet, not in the editor; the
// test logs what it sees for such a value, so a newer cue that reports them
// shows up here.)
func TestInitCueLSP(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chaos")
	if code, out := runFaultline(t, filepath.Dir(dir), "init", dir); code != 0 {
		t.Fatalf("faultline init: exit %d\n%s", code, out)
	}
	file := filepath.Join(dir, filepath.FromSlash(initScenario))
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	good := string(src)
	bad := strings.Replace(good, "owner:       \"team-checkout\"", "owner:       ,", 1)
	if bad == good {
		t.Fatal("the init scenario has no owner line to break")
	}
	badLine := strings.Count(bad[:strings.Index(bad, "owner:       ,")], "\n") + 1

	c := lsptest.Start(t, dir, map[string]func(json.RawMessage) any{
		"workspace/configuration": func(json.RawMessage) any { return []any{map[string]any{}} },
	}, cueTool(t), "lsp")
	root := "file://" + dir
	c.Call("initialize", map[string]any{
		"processId":        os.Getpid(),
		"rootUri":          root,
		"workspaceFolders": []any{map[string]any{"uri": root, "name": "chaos"}},
		"capabilities": map[string]any{
			"textDocument": map[string]any{"publishDiagnostics": map[string]any{}, "hover": map[string]any{"contentFormat": []string{"markdown", "plaintext"}}},
			"workspace":    map[string]any{"configuration": true, "workspaceFolders": true},
		},
	})
	c.Notify("initialized", map[string]any{})
	uri := "file://" + file
	version := 1
	open := func(text string) []lsptest.Diagnostic {
		if version == 1 {
			c.Notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
				"uri": uri, "languageId": "cue", "version": version, "text": text,
			}})
		} else {
			c.Notify("textDocument/didChange", map[string]any{
				"textDocument":   map[string]any{"uri": uri, "version": version},
				"contentChanges": []any{map[string]any{"text": text}},
			})
		}
		version++
		return c.Diagnostics([]string{uri}, 2*time.Second)[uri]
	}

	ok := false
	var lines []string
	for _, d := range open(bad) {
		lines = append(lines, d.String())
		ok = ok || d.Range.Start.Line+1 == badLine
	}
	if !ok {
		t.Errorf("cue lsp: want a diagnostic on line %d (owner: ,); got:\n  %s\nstderr:\n%s", badLine, strings.Join(lines, "\n  "), c.Stderr())
	}
	if ds := open(good); len(ds) > 0 {
		t.Errorf("cue lsp on the scenario as init writes it: %v", ds)
	}

	// Hover on schema.#Scenarios shows the schema's comment.
	for i, l := range strings.Split(good, "\n") {
		if j := strings.Index(l, "#Scenarios"); j >= 0 {
			h := c.Call("textDocument/hover", map[string]any{
				"textDocument": map[string]any{"uri": uri},
				"position":     map[string]any{"line": i, "character": j + 3},
			})
			if !strings.Contains(string(h), "maps scenario names to scenarios") || !strings.Contains(string(h), "cue.mod/pkg/faultline.dev/schema") {
				t.Errorf("hover on schema.#Scenarios: %s, want the vendored schema's documentation", h)
			}
			break
		}
	}

	// What cue lsp says about a value only the schema refuses.
	wrong := strings.Replace(good, "rate:            50", "rate:            0", 1)
	c.Notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": uri, "version": version},
		"contentChanges": []any{map[string]any{"text": wrong}},
	})
	t.Logf("cue lsp on rate: 0 (the schema wants >=1): %v", c.Drain(3 * time.Second)[uri])
}

// TestVetNotes: a partition without direction relies on faultline's default
// ("both"), which differs from Chaos Mesh's ("to"): vet says so in a note at
// the fault, on stderr, and exits 0; -o json lists it under notes with
// severity "note" (errors keep their place, with severity "error"). A
// partition with its direction written out gets no note.
func TestVetNotes(t *testing.T) {
	scenario := func(direction string) string {
		return `name: shop
version: 1.0.0
target:
  url: http://127.0.0.1:8080
  kubernetes: {namespace: shop, selector: {app: shop}}
load: {executor: constant-vus, vus: 1, duration: 60s, requests: [{path: /}]}
faults:
  cut:
    start: 10s
    duration: 10s
    networkPartition: {` + direction + `peer: {selector: {labels: {app: db}}}}
`
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(scenario("")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "vet", "s.yaml")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vet with a note: %v\n%s", err, stderr.String())
	}
	want := `s.yaml:11:5: note: faults.cut.networkPartition: direction is not set, so the partition cuts traffic both ways`
	if !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 || strings.Contains(stderr.String(), "problem") {
		t.Errorf("stderr:\n%s\nwant one line starting %s", stderr.String(), want)
	}
	if !strings.HasPrefix(stdout.String(), "ok  shop@1.0.0") {
		t.Errorf("stdout: %s", stdout.String())
	}

	js := exec.Command(binary, "vet", "-o", "json", "s.yaml")
	js.Dir = dir
	out, err := js.Output()
	if err != nil {
		t.Fatalf("vet -o json: %v", err)
	}
	var r vetReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Valid || len(r.Errors) != 0 || len(r.Notes) != 1 || r.Notes[0].Severity != "note" || r.Notes[0].Line != 11 ||
		r.Notes[0].Path != "faults.cut.networkPartition" || len(r.Scenarios) != 1 {
		t.Errorf("vet -o json: %s", out)
	}

	// An error in JSON carries severity "error".
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(strings.Replace(scenario(""), "vus: 1", "vus: 0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	js = exec.Command(binary, "vet", "-o", "json", "s.yaml")
	js.Dir = dir
	out, _ = js.Output()
	r = vetReport{}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Valid || len(r.Errors) == 0 || r.Errors[0].Severity != "error" || len(r.Notes) != 0 {
		t.Errorf("vet -o json of an invalid scenario: %s", out)
	}

	for _, d := range []string{"direction: both, ", "direction: to, "} {
		if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(scenario(d)), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out := runFaultline(t, dir, "vet", "s.yaml"); code != 0 || strings.Contains(out, "note:") {
			t.Errorf("vet with %q: exit %d\n%s", d, code, out)
		}
	}
}
