package schema

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A corpus case is one txtar-like file under testdata/corpus: a comment
// saying what it tries, the files of one directory ("-- name --" then the
// content), and "-- want --": the diagnostics `faultline vet .` prints in that
// directory, one per line, exactly (go test -update rewrites them).

// CorpusCase is one parsed case.
type corpusCase struct {
	Name    string
	Comment string
	Files   map[string][]byte
	Order   []string
	Want    string
}

// parseCorpus reads one case file.
func parseCorpus(path string) (*corpusCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &corpusCase{Name: strings.TrimSuffix(filepath.Base(path), ".txtar"), Files: map[string][]byte{}}
	var cur string
	var buf bytes.Buffer
	flush := func() {
		switch cur {
		case "":
			c.Comment = buf.String()
		case "want":
			c.Want = buf.String()
		default:
			c.Files[cur] = bytes.Clone(buf.Bytes())
			c.Order = append(c.Order, cur)
		}
		buf.Reset()
	}
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if name, ok := corpusMarker(line); ok {
			flush()
			cur = name
			continue
		}
		buf.Write(line)
	}
	flush()
	return c, nil
}

func corpusMarker(line []byte) (string, bool) {
	s := strings.TrimSuffix(string(line), "\n")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	return strings.TrimSpace(s[3 : len(s)-3]), true
}

// format writes the case back, with a new want section.
func (c *corpusCase) format(want string) []byte {
	var b bytes.Buffer
	b.WriteString(c.Comment)
	for _, n := range c.Order {
		b.WriteString("-- " + n + " --\n")
		b.Write(c.Files[n])
	}
	b.WriteString("-- want --\n")
	b.WriteString(want)
	return b.Bytes()
}

// writeTo writes the case's files into dir.
func (c *corpusCase) writeTo(t testing.TB, dir string) {
	for _, n := range c.Order {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, c.Files[n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// corpusCases lists every case.
func corpusCases(t testing.TB) []*corpusCase {
	matches, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.txtar"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no corpus cases (%v)", err)
	}
	var out []*corpusCase
	for _, m := range matches {
		c, err := parseCorpus(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// internals are words of CUE's evaluator and of the schema's source that a
// user never wrote and cannot act on.
var internals = regexp.MustCompile(`strings\.M(ax|in)Runes|list\.M(ax|in)Items|incomplete value|conflicting values|empty disjunction|(?:^|[^.\w])#[A-Z][A-Za-z]+|_\|_|cannot combine|parse error:|incompatible list lengths|mismatched types|undefined field|not a _|=~|!~|_faultKinds|_endNS|_totalNS|_name\b|cue\.mod|/faultline-schema|invalid interpolation|structural cycle|reference .* not found|builtin|(?:^|[^.\w])yaml: |(?:^|[^.\w])json: |\bnull\b.*\bstruct\b|\bbottom\b|MaxItems|MinItems|time\.Duration|time\.ParseDuration`)

// TestVetCorpus loads every corpus case and compares its diagnostics with
// the case's want section; every case is invalid, so each must load nothing,
// report at least one problem with a file, line and column in the user's
// files, and speak no CUE internals.
func TestVetCorpus(t *testing.T) {
	cases := corpusCases(t)
	if len(cases) < 100 {
		t.Errorf("the corpus has %d cases, want at least 100", len(cases))
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			c.writeTo(t, dir)
			t.Chdir(dir)
			loaded, diags, err := NewLoader().Load(context.Background(), []string{"."})
			if err != nil {
				t.Fatal(err)
			}
			diags = append(diags, CheckDeploy(loaded)...).Sort()
			got := ""
			if len(diags) > 0 {
				got = diags.Error() + "\n"
			}
			if *update {
				must(t, os.WriteFile(filepath.Join(root, "testdata", "corpus", c.Name+".txtar"), c.format(got), 0o644))
			} else if got != c.Want {
				t.Errorf("diagnostics differ (go test -update refreshes them):\n--- got\n%s--- want\n%s", got, c.Want)
			}
			if len(diags) == 0 {
				t.Fatalf("nothing reported for a bad input; loaded %d scenario(s)", len(loaded))
			}
			// vet refuses a scenario with a problem in its file.
			bad := map[string]bool{}
			for _, d := range diags {
				bad[d.File] = true
			}
			for _, l := range loaded {
				if !bad[l.File] && !strings.Contains(c.Comment, "partly valid") {
					t.Errorf("%s passes although the input is wrong", l.Scenario.Name)
				}
			}
			for _, d := range diags {
				st, err := os.Stat(d.File)
				switch {
				case err != nil:
					t.Errorf("diagnostic names a file that does not exist: %s", d)
				case !st.IsDir() && (d.Line < 1 || d.Column < 1):
					t.Errorf("diagnostic without line and column: %s", d)
				}
				if m := internals.FindString(d.Message); m != "" {
					t.Errorf("diagnostic speaks CUE's internals (%q): %s", m, d)
				}
				if len(d.String()) > 600 {
					t.Errorf("diagnostic of %d characters: %.200s...", len(d.String()), d)
				}
			}
		})
	}
}
