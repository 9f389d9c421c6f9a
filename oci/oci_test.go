package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/auth"

	"faultline.dev/faultline/compiler"
	"faultline.dev/faultline/internal/registrytest"
	"faultline.dev/faultline/oci"
	"faultline.dev/faultline/schema"
)

// anonymous keeps the tests away from the machine's Docker config.
var anonymous = oci.Options{Credential: func(context.Context, string) (auth.Credential, error) { return auth.EmptyCredential, nil }}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// compileAll compiles the scenario library into a fresh out directory and
// returns the version directories by scenario name.
func compileAll(t *testing.T, paths ...string) map[string]string {
	t.Helper()
	ls, diags, err := schema.NewLoader().Load(context.Background(), paths)
	if err != nil || len(diags) > 0 {
		t.Fatalf("loading %v: %v %v", paths, err, diags)
	}
	out := t.TempDir()
	dirs := map[string]string{}
	for _, l := range ls {
		res, err := compiler.Compile(context.Background(), l, out)
		if err != nil {
			t.Fatalf("compiling %s: %v", l.Scenario.Name, err)
		}
		dirs[l.Scenario.Name] = res.Dir
	}
	return dirs
}

// readTree returns every file under dir by its slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what, want, got string) {
	t.Helper()
	w, g := readTree(t, want), readTree(t, got)
	for p, b := range w {
		if gb, ok := g[p]; !ok {
			t.Errorf("%s: %s missing", what, p)
		} else if !bytes.Equal(b, gb) {
			t.Errorf("%s: %s differs (%d bytes, want %d)", what, p, len(gb), len(b))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: extra file %s", what, p)
		}
	}
	if len(w) < 2 {
		t.Errorf("%s: only %d files compiled", what, len(w))
	}
}

// TestLibraryRoundTrip is the acceptance test: every library scenario,
// compiled, pushed and pulled back by tag and by digest, reproduces every
// file byte for byte.
func TestLibraryRoundTrip(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	dirs := compileAll(t, "../scenarios")
	if len(dirs) < 10 {
		t.Fatalf("only %d library scenarios", len(dirs))
	}
	pulled := t.TempDir()
	for name, dir := range dirs {
		repo := reg.Host + "/library/" + name
		res, err := oci.Push(ctx, dir, repo, anonymous)
		if err != nil {
			t.Fatalf("push %s: %v", name, err)
		}
		if res.Unchanged || res.Uploaded < 3 || !strings.HasPrefix(res.Digest.String(), "sha256:") {
			t.Errorf("push %s: %+v", name, res)
		}
		v, err := oci.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{repo + ":" + oci.Tag(v.Plan.Version), repo + "@" + res.Digest.String()} {
			into := filepath.Join(pulled, strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref))
			pr, err := oci.Pull(ctx, ref, into, anonymous)
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			if pr.Digest != res.Digest || pr.Scenario != name || pr.Unchanged {
				t.Errorf("pull %s: %+v, pushed %s", ref, pr, res.Digest)
			}
			sameTree(t, ref, dir, into)
		}
	}
}

// TestManifest: the artifact's type, annotations, one layer per file titled
// with its path, each layer's digest the sha256 plan.json lists, and the
// same digest for the same directory every time.
func TestManifest(t *testing.T) {
	dir := compileAll(t, "../scenarios/checkout-jitter.cue")["checkout-jitter"]
	v, err := oci.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, desc, blobs, err := v.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	data2, desc2, _, _ := v.Manifest()
	if !bytes.Equal(data, data2) || desc.Digest != desc2.Digest {
		t.Error("two manifests of one directory differ")
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != oci.ArtifactType || m.Config.MediaType != ocispec.MediaTypeEmptyJSON || m.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("artifactType %q, config %q, mediaType %q", m.ArtifactType, m.Config.MediaType, m.MediaType)
	}
	for k, want := range map[string]string{oci.AnnotationScenario: "checkout-jitter", oci.AnnotationVersion: "1.0.0", oci.AnnotationContentHash: v.Plan.ContentHash, oci.AnnotationFaultlineVersion: v.Plan.Faultline.Version} {
		if m.Annotations[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], want)
		}
	}
	if _, ok := m.Annotations[ocispec.AnnotationCreated]; ok {
		t.Error("a creation time makes the digest differ per push")
	}
	if len(m.Layers) != len(v.Plan.Artifacts)+1 {
		t.Fatalf("%d layers for %d artifacts + plan.json", len(m.Layers), len(v.Plan.Artifacts))
	}
	for i, a := range v.Plan.Artifacts {
		l := m.Layers[i]
		if l.Annotations[ocispec.AnnotationTitle] != a.Path || l.Digest.String() != a.SHA256 {
			t.Errorf("layer %d: %s %s, want %s %s", i, l.Annotations[ocispec.AnnotationTitle], l.Digest, a.Path, a.SHA256)
		}
		if !bytes.Equal(blobs[l.Digest], v.Get(a.Path)) {
			t.Errorf("blob of %s differs from the file", a.Path)
		}
	}
	last := m.Layers[len(m.Layers)-1]
	if last.MediaType != oci.PlanMediaType || last.Annotations[ocispec.AnnotationTitle] != compiler.PlanFileName {
		t.Errorf("last layer %+v, want plan.json", last)
	}
	if v.Get(compiler.ScenarioFileName) == nil {
		t.Error("the version carries no scenario.json")
	}
}

// TestImmutable: the same content again is a no-op (also when another
// faultline compiled it: other bytes, same content hash); different content
// under the same version is refused and leaves the tag as it was.
func TestImmutable(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	dir := compileAll(t, "../scenarios/checkout-jitter.cue")["checkout-jitter"]
	repo := reg.Host + "/team/checkout-jitter"
	first, err := oci.Push(ctx, dir, repo, anonymous)
	if err != nil {
		t.Fatal(err)
	}

	again, err := oci.Push(ctx, dir, repo, anonymous)
	if err != nil || !again.Unchanged || again.Digest != first.Digest || again.Uploaded != 0 {
		t.Errorf("same content again: %+v, %v", again, err)
	}

	// Same scenario, compiled by "another faultline": plan.json differs.
	other := copyDir(t, dir)
	rewrite(t, filepath.Join(other, "plan.json"), "\"faultline\": {\n    \"version\": \"", "\"faultline\": {\n    \"version\": \"other-")
	same, err := oci.Push(ctx, other, repo, anonymous)
	if err != nil || !same.Unchanged || same.Digest != first.Digest {
		t.Errorf("same content from another faultline: %+v, %v", same, err)
	}

	// Different content, same version.
	src := t.TempDir()
	b, _ := os.ReadFile("../scenarios/checkout-jitter.cue")
	changed := strings.Replace(string(b), `description: "`, `description: "Changed: `, 1)
	if changed == string(b) {
		t.Fatal("could not change the scenario")
	}
	os.WriteFile(filepath.Join(src, "checkout-jitter.cue"), []byte(changed), 0o644)
	diffDir := compileAll(t, filepath.Join(src, "checkout-jitter.cue"))["checkout-jitter"]
	_, err = oci.Push(ctx, diffDir, repo, anonymous)
	if !errors.Is(err, oci.ErrVersionExists) {
		t.Fatalf("different content under 1.0.0: %v, want ErrVersionExists", err)
	}
	for _, want := range []string{"checkout-jitter@1.0.0", "immutable", "bump the version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	v, d, err := oci.Fetch(ctx, repo+":1.0.0", anonymous)
	if err != nil || d != first.Digest || strings.Contains(string(v.Get("scenario.json")), "Changed") {
		t.Errorf("after the refusal the tag is %s (%v), want %s", d, err, first.Digest)
	}
}

func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(to, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return to
}

func rewrite(t *testing.T, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), old, new, 1)
	if s == string(b) {
		t.Fatalf("%s: %q not found", name, old)
	}
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stopping is a push target that stops the registry during its k-th upload
// (halfway through the body) and counts the uploads.
type stopping struct {
	oci.Target
	k, n int
	stop func()
}

func (s *stopping) Push(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	s.n++
	if s.n == s.k {
		r = &stopHalfway{r: r, left: d.Size / 2, stop: s.stop}
	}
	return s.Target.Push(ctx, d, r)
}

type stopHalfway struct {
	r    io.Reader
	left int64
	stop func()
	done bool
}

func (h *stopHalfway) Read(p []byte) (int, error) {
	if !h.done && h.left <= 0 {
		h.done = true
		h.stop()
	}
	if int64(len(p)) > h.left && h.left > 0 {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	return n, err
}

// TestStoppedMidPush: the registry killed during each upload of a push in
// turn (every blob, the manifest) leaves no tag; restarted, the same push
// completes and the version pulls back whole.
func TestStoppedMidPush(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	dir := compileAll(t, "../scenarios/checkout-jitter.cue")["checkout-jitter"]
	v, err := oci.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	uploads := len(v.Files) + 2 // config, files, manifest
	for k := 1; k <= uploads; k++ {
		repo := reg.Host + "/midpush/k" + string(rune('a'+k-1))
		ref, _ := oci.ParseReference(repo)
		r, err := oci.Repository(ref, anonymous)
		if err != nil {
			t.Fatal(err)
		}
		target := &stopping{Target: r, k: k, stop: reg.Stop}
		_, err = oci.PushTo(ctx, v, target, "1.0.0", anonymous)
		var ie *oci.InfraError
		if !errors.As(err, &ie) {
			t.Fatalf("k=%d: push with the registry stopped: %v, want an infrastructure error", k, err)
		}
		reg.Restart()
		status, body, err := reg.Get(ctx, "/v2/midpush/k"+string(rune('a'+k-1))+"/manifests/1.0.0", ocispec.MediaTypeImageManifest)
		if err != nil || status != 404 {
			t.Fatalf("k=%d: after a push stopped at upload %d of %d, GET the tag: %d %s %v; want 404", k, k, uploads, status, body, err)
		}
		res, err := oci.Push(ctx, dir, repo, anonymous)
		if err != nil || res.Unchanged {
			t.Fatalf("k=%d: push after restart: %+v %v", k, res, err)
		}
		into := filepath.Join(t.TempDir(), "pulled")
		if _, err := oci.Pull(ctx, repo+":1.0.0", into, anonymous); err != nil {
			t.Fatalf("k=%d: pull after restart: %v", k, err)
		}
		sameTree(t, repo, dir, into)
	}
}

// TestPullVerifies: an artifact whose file does not match plan.json, one
// of another type, a missing tag and a bad reference are refused, and
// nothing is written.
func TestPullVerifies(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	dir := compileAll(t, "../scenarios/checkout-jitter.cue")["checkout-jitter"]
	v, err := oci.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A tampered file: the layer is what was pushed, plan.json says otherwise.
	bad := &oci.Version{Plan: v.Plan, Files: append([]compiler.File(nil), v.Files...)}
	bad.Files[0] = compiler.File{Path: bad.Files[0].Path, Data: append([]byte("# tampered\n"), bad.Files[0].Data...)}
	ref, _ := oci.ParseReference(reg.Host + "/bad/tampered")
	r, _ := oci.Repository(ref, anonymous)
	if _, err := oci.PushTo(ctx, bad, r, "1.0.0", anonymous); err != nil {
		t.Fatal(err)
	}
	// Another artifact type: the empty config as an image.
	var m ocispec.Manifest
	data, _, _, _ := v.Manifest()
	json.Unmarshal(data, &m)
	m.ArtifactType = "application/vnd.example.other"
	other, _ := json.Marshal(m)
	r2ref, _ := oci.ParseReference(reg.Host + "/bad/other")
	r2, _ := oci.Repository(r2ref, anonymous)
	if _, err := oci.PushTo(ctx, v, r2, "1.0.0", anonymous); err != nil {
		t.Fatal(err)
	}
	od := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(other), Size: int64(len(other))}
	if err := r2.PushReference(ctx, od, bytes.NewReader(other), "other"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ ref, want string }{
		{reg.Host + "/bad/tampered:1.0.0", "plan.json says"},
		{reg.Host + "/bad/other:other", "not a faultline compiled version"},
		{reg.Host + "/bad/missing:1.0.0", "not found"},
		{reg.Host + "/bad/tampered", "say which version"},
		{"no-registry", "not a registry reference"},
	} {
		into := filepath.Join(t.TempDir(), "x")
		_, err := oci.Pull(ctx, tc.ref, into, anonymous)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pull %s: %v, want an error saying %q", tc.ref, err, tc.want)
		}
		if _, err := os.Stat(into); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pull %s wrote %s", tc.ref, into)
		}
	}
}

// TestPullInto: pulling into a directory that holds the same version is a
// no-op; into one with other files, an error.
func TestPullInto(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	dir := compileAll(t, "../scenarios/baseline.cue")["baseline"]
	repo := reg.Host + "/into/baseline"
	if _, err := oci.Push(ctx, dir, repo, anonymous); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(t.TempDir(), "v")
	if _, err := oci.Pull(ctx, repo+":1.0.0", into, anonymous); err != nil {
		t.Fatal(err)
	}
	if res, err := oci.Pull(ctx, repo+":1.0.0", into, anonymous); err != nil || !res.Unchanged {
		t.Errorf("pull into the same version: %+v %v", res, err)
	}
	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "notes.txt"), []byte("mine"), 0o644)
	if _, err := oci.Pull(ctx, repo+":1.0.0", busy, anonymous); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("pull into a non-empty directory: %v", err)
	}
	empty := t.TempDir()
	if _, err := oci.Pull(ctx, repo+":1.0.0", empty, anonymous); err != nil {
		t.Errorf("pull into an empty directory: %v", err)
	}
	sameTree(t, "empty dir", dir, empty)
}

// TestReadDirRefuses: a changed file or a missing plan.json is not pushed.
func TestReadDirRefuses(t *testing.T) {
	dir := copyDir(t, compileAll(t, "../scenarios/baseline.cue")["baseline"])
	if _, err := oci.ReadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a compiled version") {
		t.Errorf("empty dir: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "runs", "r1"), 0o755)
	os.WriteFile(filepath.Join(dir, "runs", "r1", "results.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	v, err := oci.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := oci.Extra(dir, v); len(got) != 1 || got[0] != "notes.txt" {
		t.Errorf("Extra = %v, want [notes.txt] (runs/ is skipped)", got)
	}
	f := filepath.Join(dir, compiler.ScenarioFileName)
	b, _ := os.ReadFile(f)
	os.WriteFile(f, append(b, ' '), 0o644)
	if _, err := oci.ReadDir(dir); !errors.Is(err, oci.ErrInvalid) || !strings.Contains(err.Error(), "changed after compiling") {
		t.Errorf("changed file: %v", err)
	}
}

func TestReferences(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ref  bool
		tag  string
		repo string
	}{
		{"127.0.0.1:5000/chaos/checkout-jitter:1.0.0", true, "1.0.0", "chaos/checkout-jitter"},
		{"localhost/x@sha256:" + strings.Repeat("a", 64), true, "sha256:" + strings.Repeat("a", 64), "x"},
		{"registry.example.com/x:1.2.3+b5", true, "1.2.3_b5", "x"},
		{"ghcr.io/org/repo", true, "", "org/repo"},
		{"scenarios/checkout-jitter.cue", false, "", ""},
		{"out/checkout-jitter/1.0.0", false, "", ""},
		{"./a.b/c", false, "", ""},
		{"checkout-jitter.cue", false, "", ""},
	} {
		if got := oci.LooksLikeReference(tc.in); got != tc.ref {
			t.Errorf("LooksLikeReference(%q) = %v, want %v", tc.in, got, tc.ref)
		}
		if !tc.ref {
			continue
		}
		r, err := oci.ParseReference(tc.in)
		if err != nil || r.Reference != tc.tag || r.Repository != tc.repo {
			t.Errorf("ParseReference(%q) = %+v %v", tc.in, r, err)
		}
	}
	if got := oci.Tag("1.0.0-rc.1+build.7"); got != "1.0.0-rc.1_build.7" {
		t.Errorf("Tag = %q", got)
	}
}
