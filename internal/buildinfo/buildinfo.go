// Package buildinfo reports faultline's own version.
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X faultline.dev/faultline/internal/buildinfo.version=v1.2.3".
var version = ""

// Version returns faultline's version: the link-time value, else the module
// version from the build information, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
