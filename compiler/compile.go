// Package compiler compiles a validated scenario into the artifacts the
// engines run, deterministically, into out/<name>/<version>/:
//
//	chaos/<NN>-<fault>.yaml  one Chaos Mesh object per fault, self-expiring
//	workflow.yaml            the same timeline as one Chaos Mesh Workflow
//	k6/...                   the k6 script, its options, the k6-operator TestRun and ConfigMap
//	scenario.json            the scenario itself, canonical JSON: its sha256 is the content hash
//	plan.json                the timeline, phases, SLOs, versions and the sha256 of every file
//
// A compiled version is immutable: compiling different content under an
// existing <name>/<version> fails; compiling the same content again changes
// nothing.
package compiler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/compiler/chaosmesh/crd"
	"faultline.dev/faultline/compiler/k6"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/buildinfo"
	"faultline.dev/faultline/schema"
)

// Chaos Mesh API targeted by the emitted objects.
const (
	// ChaosMeshAPIVersion is the apiVersion of every Chaos Mesh object.
	ChaosMeshAPIVersion = chaosmesh.APIVersion
	// ChaosMeshAPIModule is the Go module whose types, defaults and
	// validation the objects are built and checked with.
	ChaosMeshAPIModule = "github.com/chaos-mesh/chaos-mesh/api"
	// ChaosMeshAPIModuleVersion is its version, as pinned in go.mod
	// (TestChaosMeshModuleVersion keeps the two in step).
	ChaosMeshAPIModuleVersion = "v0.0.0-20260906172039-d70b66ad97ac"
)

// PlanFileName is the name of the plan file in a compiled version's directory.
const PlanFileName = "plan.json"

// ScenarioFileName is the scenario a version was compiled from, as canonical
// JSON (plan.ContentHash hashes exactly these bytes): a version pulled from a
// registry carries what `faultline run` needs, and the schema loader reads it
// back into the same scenario.
const ScenarioFileName = "scenario.json"

// File is one artifact: its path relative to the version directory (with
// '/' separators) and its content.
type File struct {
	Path string
	Data []byte
}

// Emitter produces additional artifacts of a scenario from its plan.
type Emitter func(ctx context.Context, p *plan.Plan, loaded *schema.Loaded) ([]File, error)

// k6Emitter emits the k6 files (package compiler/k6): the script, its
// options, and the k6-operator TestRun with its ConfigMap, under k6/.
// Problems k6 finds in the scenario come back as an *Error pointing into the
// user's file.
var k6Emitter Emitter = func(_ context.Context, _ *plan.Plan, loaded *schema.Loaded) ([]File, error) {
	files, diags, err := k6.EmitLoaded(loaded)
	if len(diags) > 0 {
		return nil, &Error{Diagnostics: diags}
	}
	if err != nil {
		return nil, fmt.Errorf("faultline bug: %w", err)
	}
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = File{Path: f.Path, Data: f.Data}
	}
	return out, nil
}

// Options tune Compile.
type Options struct {
	// Emitters add artifacts next to the Chaos Mesh ones. Nil means the
	// default set: the k6 emitter.
	Emitters []Emitter
	// Validator checks Chaos Mesh objects against the CRDs; nil means a
	// shared one.
	Validator *crd.Validator
}

// Artifact is one file of a compiled version, as listed in plan.json.
type Artifact struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Kind and Name identify a Kubernetes object, when the file is one.
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
	// Fault is the fault the file belongs to, if any.
	Fault string `json:"fault,omitempty"`
}

// PlanFile is the content of plan.json.
type PlanFile struct {
	Scenario    string `json:"scenario"`
	Version     string `json:"version"`
	ContentHash string `json:"contentHash"`
	Faultline   struct {
		Version string `json:"version"`
	} `json:"faultline"`
	ChaosMesh struct {
		APIVersion    string `json:"apiVersion"`
		Module        string `json:"module"`
		ModuleVersion string `json:"moduleVersion"`
	} `json:"chaosMesh"`
	// Timeline is the plan: load end, faults, phases, segments.
	Timeline *plan.Plan   `json:"timeline"`
	SLOs     *schema.SLOs `json:"slos,omitempty"`
	// Artifacts lists every other file of the directory with its sha256.
	Artifacts []Artifact `json:"artifacts"`
}

// Result says what Compile did.
type Result struct {
	// Dir is the version's directory: outDir/<name>/<version>.
	Dir string
	// Unchanged is true when the same content was already compiled there:
	// nothing was written.
	Unchanged bool
	// Plan is the scenario's plan.
	Plan *plan.Plan
	// Files are the artifact paths relative to Dir, plan.json last.
	Files []string
}

// Error is a compile failure that points into the scenario's file. Bug
// marks a failure that is faultline's fault (Chaos Mesh rejects an object
// faultline emitted for a valid scenario).
type Error struct {
	Diagnostics schema.Diagnostics
	Bug         bool
}

func (e *Error) Error() string { return e.Diagnostics.Error() }

// ErrVersionExists is wrapped by the error of compiling different content
// under an already compiled version.
var ErrVersionExists = errors.New("version already compiled with different content")

var (
	sharedValidatorOnce sync.Once
	sharedValidator     *crd.Validator
)

func defaultValidator() *crd.Validator {
	sharedValidatorOnce.Do(func() { sharedValidator = crd.NewValidator() })
	return sharedValidator
}

// Compile compiles one loaded scenario into outDir/<name>/<version>/ with the
// default options.
func Compile(ctx context.Context, loaded *schema.Loaded, outDir string) (*Result, error) {
	return CompileWith(ctx, loaded, outDir, Options{})
}

// CompileWith is Compile with options.
func CompileWith(ctx context.Context, loaded *schema.Loaded, outDir string, opts Options) (*Result, error) {
	s := loaded.Scenario
	p, err := plan.New(s)
	if err != nil {
		return nil, &Error{Diagnostics: schema.Diagnostics{loaded.Pos("faults", err.Error())}}
	}
	dir := filepath.Join(outDir, s.Name, s.Version)
	res := &Result{Dir: dir, Plan: p}

	// Immutability: an existing version must hold the same content.
	if _, err := os.Stat(dir); err == nil {
		old, err := readPlanFile(filepath.Join(dir, PlanFileName))
		if err != nil {
			return nil, fmt.Errorf("%s exists but is not a compiled version (%v): remove it or bump the version of %s", dir, err, s.Name)
		}
		if old.ContentHash != p.ContentHash {
			d := loaded.Pos("version", fmt.Sprintf(
				"%s@%s was already compiled into %s from different content (%s, now %s): a compiled version is immutable; bump the version (`faultline version check OLD NEW` says which bump the change needs)",
				s.Name, s.Version, dir, short(old.ContentHash), short(p.ContentHash)))
			return nil, fmt.Errorf("%s: %w", d.String(), ErrVersionExists)
		}
		res.Unchanged = true
		for _, a := range old.Artifacts {
			res.Files = append(res.Files, a.Path)
		}
		res.Files = append(res.Files, PlanFileName)
		return res, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	files, _, err := Render(ctx, loaded, p, opts)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		res.Files = append(res.Files, f.Path)
	}
	if err := writeAtomic(dir, files); err != nil {
		return nil, err
	}
	return res, nil
}

// Render builds every artifact of a scenario in memory, plan.json last,
// without touching the file system.
func Render(ctx context.Context, loaded *schema.Loaded, p *plan.Plan, opts Options) ([]File, *PlanFile, error) {
	s := loaded.Scenario
	v := opts.Validator
	if v == nil {
		v = defaultValidator()
	}
	pf := &PlanFile{Scenario: s.Name, Version: s.Version, ContentHash: p.ContentHash, Timeline: p, SLOs: s.SLOs}
	pf.Faultline.Version = buildinfo.Version()
	pf.ChaosMesh.APIVersion = ChaosMeshAPIVersion
	pf.ChaosMesh.Module = ChaosMeshAPIModule
	pf.ChaosMesh.ModuleVersion = ChaosMeshAPIModuleVersion
	pf.Artifacts = []Artifact{}

	var files []File
	add := func(f File, a Artifact) {
		sum := sha256.Sum256(f.Data)
		a.Path, a.SHA256 = f.Path, "sha256:"+hex.EncodeToString(sum[:])
		files = append(files, f)
		pf.Artifacts = append(pf.Artifacts, a)
	}

	if len(p.Faults) > 0 {
		m, err := chaosmesh.Emit(p)
		if err != nil {
			return nil, nil, scenarioError(loaded, err)
		}
		if err := m.Validate(ctx, v, s.Name); err != nil {
			return nil, nil, scenarioError(loaded, err)
		}
		for _, c := range m.Chaos {
			data, err := chaosmesh.Marshal(c.Object)
			if err != nil {
				return nil, nil, err
			}
			add(File{Path: "chaos/" + chaosmesh.FileName(c.Fault), Data: data},
				Artifact{Kind: c.Kind, Name: c.Object.GetName(), Fault: c.Fault.Name})
		}
		if m.Workflow != nil {
			data, err := chaosmesh.Marshal(m.Workflow)
			if err != nil {
				return nil, nil, err
			}
			add(File{Path: "workflow.yaml", Data: data}, Artifact{Kind: m.Workflow.Kind, Name: m.Workflow.Name})
		}
	}

	emitters := opts.Emitters
	if emitters == nil {
		emitters = []Emitter{k6Emitter}
	}
	var extra []File
	for _, e := range emitters {
		fs, err := e(ctx, p, loaded)
		if err != nil {
			return nil, nil, err
		}
		extra = append(extra, fs...)
	}
	src, err := json.Marshal(s)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", ScenarioFileName, err)
	}
	extra = append(extra, File{Path: ScenarioFileName, Data: src})
	slices.SortFunc(extra, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	seen := map[string]bool{PlanFileName: true}
	for _, f := range files {
		seen[f.Path] = true
	}
	for _, f := range extra {
		if err := checkRelPath(f.Path); err != nil {
			return nil, nil, err
		}
		if seen[f.Path] {
			return nil, nil, fmt.Errorf("compiler: two artifacts named %s", f.Path)
		}
		seen[f.Path] = true
		add(f, Artifact{})
	}

	data, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", PlanFileName, err)
	}
	files = append(files, File{Path: PlanFileName, Data: append(data, '\n')})
	return files, pf, nil
}

func checkRelPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("compiler: artifact path %q must be relative and clean", p)
	}
	return nil
}

// scenarioError points the emitter's findings at the user's file.
func scenarioError(loaded *schema.Loaded, err error) error {
	var se *chaosmesh.ScenarioError
	if !errors.As(err, &se) {
		return err
	}
	out := &Error{Bug: se.HasBug()}
	for _, f := range se.Findings {
		out.Diagnostics = append(out.Diagnostics, loaded.Pos(f.Path, f.Message))
	}
	return out
}

func short(hash string) string {
	h := strings.TrimPrefix(hash, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return "sha256:" + h
}

func readPlanFile(name string) (*PlanFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var pf PlanFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&pf); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if pf.ContentHash == "" {
		return nil, fmt.Errorf("%s has no contentHash", name)
	}
	return &pf, nil
}

// writeAtomic writes files into a temporary directory next to dir and
// renames it to dir: readers see all of the version or nothing.
func writeAtomic(dir string, files []File) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		name := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, f.Data, 0o644); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			return fmt.Errorf("%s was created by another compile at the same time: compile again", dir)
		}
		return err
	}
	ok = true
	return nil
}
