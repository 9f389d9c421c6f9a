package schema

import (
	"embed"
	"io/fs"
)

// Module is the CUE module path of the schema, and ImportPath the package
// path scenarios import it by.
const (
	Module     = "faultline.dev/schema@v0"
	ImportPath = "faultline.dev/schema"
)

//go:embed *.cue
var files embed.FS

// Files returns the schema's CUE files, as embedded in the binary.
func Files() fs.FS { return files }
