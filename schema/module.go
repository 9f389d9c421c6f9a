package schema

import (
	"os"
	"path/filepath"

	"cuelang.org/go/mod/modfile"
)

// ModuleVersion is the version of Module that holds exactly the schema this
// faultline embeds: what `make publish-schema` publishes with `cue mod
// publish` and what `faultline init --registry` depends on. A published
// version is immutable: bump it whenever scenario.cue changes.
const ModuleVersion = "v0.1.0"

// moduleWithoutSchemaDep returns the module file of the CUE module at root
// without its dependency on Module, and true, when the file declares one.
// faultline checks scenarios against the schema it embeds, overlaid under
// cue.mod/pkg, offline: left in, the dependency would make CUE fetch the
// module from CUE_REGISTRY and then find the import path twice.
func moduleWithoutSchemaDep(root string) ([]byte, bool) {
	name := filepath.Join(root, "cue.mod", "module.cue")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, false
	}
	f, err := modfile.ParseNonStrict(data, name)
	if err != nil {
		return nil, false // CUE reports a broken module file itself
	}
	if _, ok := f.Deps[Module]; !ok {
		return nil, false
	}
	delete(f.Deps, Module)
	out, err := modfile.Format(f)
	if err != nil {
		return nil, false
	}
	return out, true
}
