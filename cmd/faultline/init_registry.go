package main

import (
	"fmt"
	"regexp"
	"strings"

	"faultline.dev/faultline/schema"
)

// cueRegistryRE is one registry in CUE_REGISTRY's syntax:
// host[:port][/prefix][+insecure|+secure].
var cueRegistryRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?(\+insecure|\+secure)?$`)

// initCUERegistry is the CUE_REGISTRY value that sends faultline.dev modules
// to registry and every other module to cue's default.
func initCUERegistry(registry string) string { return "faultline.dev=" + registry }

// initModuleFile is cue.mod/module.cue depending on the schema module, as
// `cue mod tidy` writes it.
func initModuleFile(module string) string {
	return fmt.Sprintf(`module: %q
language: {
	version: "v0.17.0"
}
deps: {
	%q: {
		v:       %q
		default: true
	}
}
`, module, schema.Module, schema.ModuleVersion)
}

// initRegistryFiles turns the vendoring layout of `faultline init` into the
// module one: module.cue depends on the schema module, and the hooks, the
// workflow and the README point cue at the registry instead of cue.mod/pkg.
func initRegistryFiles(files []initFile, module, registry string) []initFile {
	env := initCUERegistry(registry)
	edits := map[string][][2]string{
		".pre-commit-config.yaml": {
			{"# The official cue command against the vendored schema (cue.mod/pkg), offline.",
				"# The official cue command against the schema module " + schema.Module + " from " + registry + "."},
			{"entry: cue vet -c ./scenarios/...", "entry: env CUE_REGISTRY=" + env + " cue vet -c ./scenarios/..."},
		},
		".github/workflows/faultline.yaml": {
			{"CUE_REGISTRY: none", "CUE_REGISTRY: " + env},
		},
		"README.md": {
			{"the CUE module and the vendored faultline schema", "the CUE module; it depends on the faultline schema, the CUE module `" + schema.Module + "` in `" + registry + "`"},
			{"cue vet -c ./...                             # the official cue command ({{cue}}), offline",
				"CUE_REGISTRY=" + env + " cue vet -c ./...  # the official cue command"},
			{"- After upgrading faultline, refresh the vendored schema:\n  `faultline schema vendor .` (`faultline vet` reports a stale copy).",
				"- cue fetches the schema module from `" + registry + "` (set `CUE_REGISTRY=" + env + "`;\n  cue caches it). After upgrading faultline, move to the schema version it\n  embeds: `cue mod get " + schema.ImportPath + "@" + schema.ModuleVersion + "` (the version `faultline init --help` names)."},
			{"`cue.mod/pkg/faultline.dev/schema/scenario.cue`", "`faultline schema print`, or the module's `scenario.cue` in cue's cache"},
		},
	}
	out := make([]initFile, 0, len(files))
	for _, f := range files {
		if f.path == "cue.mod/module.cue" {
			f.body = initModuleFile(module)
		}
		for _, e := range edits[f.path] {
			f.body = strings.Replace(f.body, e[0], e[1], 1)
		}
		out = append(out, f)
	}
	return out
}
