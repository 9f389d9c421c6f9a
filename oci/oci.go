// Package oci distributes compiled versions (out/<name>/<version>/) through
// OCI registries: push a version as an artifact tagged with its scenario
// version, pull it back by tag or digest, byte for byte, every file checked
// against plan.json.
//
// The artifact is an OCI image manifest (v1.1) of its own artifact type,
// ArtifactType, with the empty config and one layer per file:
//
//	layer            the file's bytes, unchanged; its digest IS the sha256
//	                 plan.json lists for it, so the manifest alone shows
//	                 what a version holds and a registry stores a file that
//	                 did not change between versions once
//	title            org.opencontainers.image.title = the file's path
//	                 (chaos/01-jitter.yaml, k6/script.js, plan.json), as
//	                 `oras pull` expects
//	order            plan.json's artifacts in its order, plan.json last
//
// Files as layers rather than one tar: nothing to normalise (no tar headers,
// times or modes), the digests are the ones plan.json already states, and
// standard tools read it. The manifest carries the annotations
// AnnotationScenario, AnnotationVersion, AnnotationContentHash and
// AnnotationFaultlineVersion, and no creation time: the same compiled
// directory always gives the same manifest digest.
//
// Immutability holds in the registry as on disk: pushing under a tag that
// holds a different scenario content (content hash) is refused with
// ErrVersionExists; the same content is a no-op. A push uploads every blob
// first, then the manifest by digest, then the tag: a registry that fails
// midway leaves no tag pointing at a partial artifact.
package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"faultline.dev/faultline/compiler"
)

// Media types and annotations of a compiled version's artifact.
const (
	// ArtifactType is the manifest's artifactType.
	ArtifactType = "application/vnd.faultline.compiled.v1+json"
	// PlanMediaType is plan.json's layer media type.
	PlanMediaType = "application/vnd.faultline.plan.v1+json"

	AnnotationScenario         = "dev.faultline.scenario"
	AnnotationVersion          = "dev.faultline.version"
	AnnotationContentHash      = "dev.faultline.content-hash"
	AnnotationFaultlineVersion = "dev.faultline.faultline-version"
)

// Limits on what a pull reads from a registry.
const (
	maxManifestBytes = 4 << 20
	maxFileBytes     = 64 << 20
	maxFiles         = 1000
)

// ErrVersionExists is wrapped by the error of pushing different content under
// a tag that already exists (compiler.ErrVersionExists: the same rule).
var ErrVersionExists = compiler.ErrVersionExists

// ErrInvalid is wrapped by errors about content that is not a well-formed
// compiled version: a directory whose files do not match plan.json, or an
// artifact whose layers do not.
var ErrInvalid = errors.New("not a valid compiled version")

// Version is one compiled version in memory.
type Version struct {
	// Plan is plan.json, decoded.
	Plan *compiler.PlanFile
	// Files are every file, plan.json last, in plan.json's order.
	Files []compiler.File
}

// Tag is the registry tag of a scenario version: the version itself, with
// '+' (build metadata, not allowed in a tag) written as '_', as Helm does.
func Tag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// ReadDir reads a compiled version's directory and checks every file listed
// in plan.json against its sha256. Files plan.json does not list (runs/, a
// stray file) are not part of the version; Extra returns them.
func ReadDir(dir string) (*Version, error) {
	planPath := filepath.Join(dir, compiler.PlanFileName)
	data, err := os.ReadFile(planPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s: not a compiled version (compile it first: faultline compile SCENARIO -o out/)", dir, compiler.PlanFileName)
		}
		return nil, err
	}
	pf, err := decodePlan(data, planPath)
	if err != nil {
		return nil, err
	}
	v := &Version{Plan: pf}
	for _, a := range pf.Artifacts {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(a.Path)))
		if err != nil {
			return nil, fmt.Errorf("%s: %s lists %s, which cannot be read (%v): compile the version again into a fresh directory: %w", dir, compiler.PlanFileName, a.Path, unwrapPath(err), ErrInvalid)
		}
		if got := sha(b); got != a.SHA256 {
			return nil, fmt.Errorf("%s: %s has sha256 %s, but %s says %s: the file was changed after compiling; compile again into a fresh directory: %w", dir, a.Path, got, compiler.PlanFileName, a.SHA256, ErrInvalid)
		}
		v.Files = append(v.Files, compiler.File{Path: a.Path, Data: b})
	}
	v.Files = append(v.Files, compiler.File{Path: compiler.PlanFileName, Data: data})
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return v, nil
}

// Extra lists the files under dir that are not part of the compiled version
// (neither plan.json nor listed in it), skipping runs/ (reports of runs).
func Extra(dir string, v *Version) []string {
	known := map[string]bool{}
	for _, f := range v.Files {
		known[f.Path] = true
	}
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "runs" {
				return filepath.SkipDir
			}
			return nil
		}
		if !known[rel] {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func decodePlan(data []byte, where string) (*compiler.PlanFile, error) {
	var pf compiler.PlanFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&pf); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", where, err, ErrInvalid)
	}
	switch {
	case pf.Scenario == "":
		return nil, fmt.Errorf("%s has no scenario: %w", where, ErrInvalid)
	case pf.Version == "":
		return nil, fmt.Errorf("%s has no version: %w", where, ErrInvalid)
	case !strings.HasPrefix(pf.ContentHash, "sha256:"):
		return nil, fmt.Errorf("%s has no sha256 contentHash: %w", where, ErrInvalid)
	}
	return &pf, nil
}

// check verifies what every version must satisfy: clean, unique relative
// paths, each file's sha256 as listed, scenario.json (when there) hashing to
// the content hash.
func (v *Version) check() error {
	if len(v.Plan.Artifacts)+1 != len(v.Files) {
		return fmt.Errorf("%d files for %d artifacts in %s: %w", len(v.Files), len(v.Plan.Artifacts), compiler.PlanFileName, ErrInvalid)
	}
	seen := map[string]bool{}
	for i, a := range v.Plan.Artifacts {
		if err := checkPath(a.Path); err != nil {
			return err
		}
		if seen[a.Path] || a.Path == compiler.PlanFileName {
			return fmt.Errorf("%s lists %s twice: %w", compiler.PlanFileName, a.Path, ErrInvalid)
		}
		seen[a.Path] = true
		f := v.Files[i]
		if f.Path != a.Path || sha(f.Data) != a.SHA256 {
			return fmt.Errorf("%s does not match its sha256 in %s (%s): %w", a.Path, compiler.PlanFileName, a.SHA256, ErrInvalid)
		}
		if a.Path == compiler.ScenarioFileName && a.SHA256 != v.Plan.ContentHash {
			return fmt.Errorf("%s hashes to %s, not to the content hash %s: %w", a.Path, a.SHA256, v.Plan.ContentHash, ErrInvalid)
		}
	}
	return nil
}

// checkPath accepts a clean, relative, slash-separated path inside the
// version directory: file names from a registry are untrusted.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
		return fmt.Errorf("file path %q must be relative, clean and inside the version directory: %w", p, ErrInvalid)
	}
	return nil
}

// Get returns a file's content, or nil.
func (v *Version) Get(p string) []byte {
	for _, f := range v.Files {
		if f.Path == p {
			return f.Data
		}
	}
	return nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// mediaType is a file's layer media type.
func mediaType(p string) string {
	if p == compiler.PlanFileName {
		return PlanMediaType
	}
	switch path.Ext(p) {
	case ".yaml", ".yml":
		return "application/yaml"
	case ".json":
		return "application/json"
	case ".js":
		return "text/javascript"
	}
	return "application/octet-stream"
}

// Manifest builds the artifact's manifest: deterministic bytes and their
// descriptor, and the blobs it references by digest.
func (v *Version) Manifest() ([]byte, ocispec.Descriptor, map[digest.Digest][]byte, error) {
	blobs := map[digest.Digest][]byte{}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       ocispec.DescriptorEmptyJSON,
		Annotations: map[string]string{
			AnnotationScenario:         v.Plan.Scenario,
			AnnotationVersion:          v.Plan.Version,
			AnnotationContentHash:      v.Plan.ContentHash,
			AnnotationFaultlineVersion: v.Plan.Faultline.Version,
		},
	}
	blobs[ocispec.DescriptorEmptyJSON.Digest] = ocispec.DescriptorEmptyJSON.Data
	m.Config.Data = nil // the empty config is pushed, not inlined
	for _, f := range v.Files {
		d := digest.FromBytes(f.Data)
		m.Layers = append(m.Layers, ocispec.Descriptor{
			MediaType:   mediaType(f.Path),
			Digest:      d,
			Size:        int64(len(f.Data)),
			Annotations: map[string]string{ocispec.AnnotationTitle: f.Path},
		})
		blobs[d] = f.Data
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, ocispec.Descriptor{}, nil, err
	}
	desc := ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Digest:       digest.FromBytes(data),
		Size:         int64(len(data)),
		Annotations:  m.Annotations,
	}
	return data, desc, blobs, nil
}

// fromManifest rebuilds a Version from a fetched manifest and a function
// that fetches (and verifies) one layer.
func fromManifest(ctx context.Context, ref string, m *ocispec.Manifest, fetch func(context.Context, ocispec.Descriptor) ([]byte, error)) (*Version, error) {
	if m.ArtifactType != ArtifactType {
		at := m.ArtifactType
		if at == "" {
			at = m.Config.MediaType
		}
		return nil, fmt.Errorf("%s is not a faultline compiled version: its artifact type is %q, want %q (push one with faultline push): %w", ref, at, ArtifactType, ErrInvalid)
	}
	if len(m.Layers) == 0 || len(m.Layers) > maxFiles {
		return nil, fmt.Errorf("%s has %d layers: %w", ref, len(m.Layers), ErrInvalid)
	}
	byTitle := map[string]ocispec.Descriptor{}
	for _, l := range m.Layers {
		t := l.Annotations[ocispec.AnnotationTitle]
		if err := checkPath(t); err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", ref, l.Digest, err)
		}
		if _, dup := byTitle[t]; dup {
			return nil, fmt.Errorf("%s: two layers titled %s: %w", ref, t, ErrInvalid)
		}
		if l.Size < 0 || l.Size > maxFileBytes {
			return nil, fmt.Errorf("%s: %s is %d bytes, more than the %d a compiled file may have: %w", ref, t, l.Size, maxFileBytes, ErrInvalid)
		}
		byTitle[t] = l
	}
	pd, ok := byTitle[compiler.PlanFileName]
	if !ok {
		return nil, fmt.Errorf("%s has no %s layer: %w", ref, compiler.PlanFileName, ErrInvalid)
	}
	planData, err := fetch(ctx, pd)
	if err != nil {
		return nil, fmt.Errorf("fetching %s of %s: %w", compiler.PlanFileName, ref, err)
	}
	pf, err := decodePlan(planData, ref+" "+compiler.PlanFileName)
	if err != nil {
		return nil, err
	}
	for k, want := range map[string]string{AnnotationScenario: pf.Scenario, AnnotationVersion: pf.Version, AnnotationContentHash: pf.ContentHash} {
		if got := m.Annotations[k]; got != want {
			return nil, fmt.Errorf("%s: the manifest's %s is %q but %s says %q: %w", ref, k, got, compiler.PlanFileName, want, ErrInvalid)
		}
	}
	v := &Version{Plan: pf}
	listed := map[string]bool{compiler.PlanFileName: true}
	for _, a := range pf.Artifacts {
		if err := checkPath(a.Path); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", ref, compiler.PlanFileName, err)
		}
		listed[a.Path] = true
		l, ok := byTitle[a.Path]
		if !ok {
			return nil, fmt.Errorf("%s: %s lists %s, which the artifact lacks: %w", ref, compiler.PlanFileName, a.Path, ErrInvalid)
		}
		if l.Digest.String() != a.SHA256 {
			return nil, fmt.Errorf("%s: layer %s is %s, but %s says %s: %w", ref, a.Path, l.Digest, compiler.PlanFileName, a.SHA256, ErrInvalid)
		}
		data, err := fetch(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("fetching %s of %s: %w", a.Path, ref, err)
		}
		if sha(data) != a.SHA256 { // fetch verifies the digest already; say it twice
			return nil, fmt.Errorf("%s: %s does not hash to %s: %w", ref, a.Path, a.SHA256, ErrInvalid)
		}
		v.Files = append(v.Files, compiler.File{Path: a.Path, Data: data})
	}
	for t := range byTitle {
		if !listed[t] {
			return nil, fmt.Errorf("%s: layer %s is not listed in %s: %w", ref, t, compiler.PlanFileName, ErrInvalid)
		}
	}
	v.Files = append(v.Files, compiler.File{Path: compiler.PlanFileName, Data: planData})
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return v, nil
}

// WriteDir writes v into dir: into a temporary directory next to it, then
// renamed, so dir holds all of the version or nothing. A dir that already
// holds the same content is left as it is (unchanged is true); one that
// holds another content of the version, or other files, is an error.
func WriteDir(v *Version, dir string) (unchanged bool, err error) {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		if old, err := ReadDir(dir); err == nil {
			if old.Plan.ContentHash != v.Plan.ContentHash {
				return false, fmt.Errorf("%s already holds %s@%s from different content (%s, pulled %s): a compiled version is immutable; pull into another directory: %w",
					dir, old.Plan.Scenario, old.Plan.Version, old.Plan.ContentHash, v.Plan.ContentHash, ErrVersionExists)
			}
			if equalFiles(old, v) {
				return true, nil
			}
			return false, fmt.Errorf("%s already holds %s@%s compiled from the same scenario by faultline %s, with other bytes: pull into another directory", dir, old.Plan.Scenario, old.Plan.Version, old.Plan.Faultline.Version)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false, err
		}
		if len(entries) > 0 {
			return false, fmt.Errorf("%s is not empty and holds no compiled version: pull into a new or empty directory (-o)", dir)
		}
		if err := os.Remove(dir); err != nil {
			return false, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".pull-")
	if err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return false, err
	}
	for _, f := range v.Files {
		if err := checkPath(f.Path); err != nil {
			return false, err
		}
		name := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(name, f.Data, 0o644); err != nil {
			return false, err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return false, err
	}
	ok = true
	return false, nil
}

func equalFiles(a, b *Version) bool {
	return slices.EqualFunc(a.Files, b.Files, func(x, y compiler.File) bool {
		return x.Path == y.Path && bytes.Equal(x.Data, y.Data)
	})
}
