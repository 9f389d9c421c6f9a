// Package k6cmd runs the real k6 command line (go.k6.io/k6/cmd) inside the
// faultline binary, so `faultline k6 ...` and a link named `k6` behave as k6.
//
// k6 has no public in-process entry point that returns: cmd.Execute builds its
// own global state from os.Args and the environment and always ends in
// os.Exit. Main therefore never returns either.
package k6cmd

import (
	"os"

	k6cmd "go.k6.io/k6/cmd"
	"go.k6.io/k6/cmd/state"

	"faultline.dev/faultline/runner/k6out"
)

// Defaults are the environment variables Main sets when the user has not set
// them: no automatic extension resolution (it would download a k6 build from
// the network when a script imports an extension this binary lacks) and no
// usage report (an HTTP request to k6's servers after every `k6 run`).
var Defaults = map[string]string{
	state.AutoExtensionResolution: "false",
	"K6_NO_USAGE_REPORT":          "true",
}

// Name is the program name k6 sees as argv[0].
const Name = "k6"

// Main runs the k6 command line with args (the arguments after "k6", e.g.
// {"run", "script.js"}) and exits the process with k6's exit code. It never
// returns.
//
// Variables in Defaults are set in the process environment unless already
// set, so an explicit K6_AUTO_EXTENSION_RESOLUTION=true or
// K6_NO_USAGE_REPORT=false from the user still wins; the flag
// --no-usage-report works as in k6.
func Main(args []string) {
	Prepare(args)
	k6out.Register() // --out faultline=ADDR: samples to the runner
	k6cmd.Execute()
	// Execute ends in os.Exit; this is a guard should that ever change.
	os.Exit(0)
}

// Prepare sets os.Args and the environment exactly as Main does before it
// hands over to k6. It is exported for tests and for callers that need to
// inspect the resulting environment; most callers want Main.
func Prepare(args []string) {
	os.Args = append([]string{Name}, args...)
	for k, v := range Defaults {
		if _, ok := os.LookupEnv(k); !ok {
			_ = os.Setenv(k, v)
		}
	}
}
