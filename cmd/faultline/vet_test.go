package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
				if err := os.WriteFile(filepath.Join(dir, n), src, 0o644); err != nil {
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
