package schema

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// VendorDir is where a user repository keeps the vendored schema, relative
// to its CUE module root: the official cue command finds it there offline.
var VendorDir = filepath.Join("cue.mod", "pkg", filepath.FromSlash(ImportPath))

// defaultModule is the module file written into a repository that has none.
const defaultModule = `module: "example.com/scenarios@v0"
language: version: "v0.17.0"
`

// Vendor writes the schema into root's cue.mod/pkg so that `cue vet -c ./...`
// validates scenarios offline, creating cue.mod/module.cue if it is missing.
// It replaces an earlier vendored copy entirely and returns the files written.
func Vendor(root string) ([]string, error) {
	modFile := filepath.Join(root, "cue.mod", "module.cue")
	var written []string
	if _, err := os.Stat(modFile); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(modFile), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(modFile, []byte(defaultModule), 0o644); err != nil {
			return nil, err
		}
		written = append(written, modFile)
	} else if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, VendorDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("removing the old vendored schema: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, e.Name())
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, err
		}
		written = append(written, dst)
	}
	return written, nil
}

// staleVendored reports a vendored schema under root that differs from the
// embedded one: `cue vet` would check scenarios against an old contract.
func staleVendored(root string) *Diagnostic {
	dir := filepath.Join(root, VendorDir)
	onDisk, err := os.ReadDir(dir)
	if err != nil {
		return nil // nothing vendored: cue vet cannot run, but nothing is stale
	}
	want, _ := fs.ReadDir(files, ".")
	var have, need []string
	for _, e := range onDisk {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".cue" {
			have = append(have, e.Name())
		}
	}
	for _, e := range want {
		need = append(need, e.Name())
	}
	stale := !slices.Equal(have, need)
	for _, n := range need {
		if stale {
			break
		}
		a, _ := os.ReadFile(filepath.Join(dir, n))
		b, _ := fs.ReadFile(files, n)
		stale = !bytes.Equal(a, b)
	}
	if !stale {
		return nil
	}
	return &Diagnostic{File: relPath(dir), Message: fmt.Sprintf(
		"the vendored schema differs from this faultline's schema, so `cue vet` checks against a stale contract: run `faultline schema vendor %s`", relPath(root))}
}
