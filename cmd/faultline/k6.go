package main

import (
	"github.com/spf13/cobra"

	"faultline.dev/faultline/internal/k6cmd"
)

// newK6Cmd returns `faultline k6 ...`: the real k6 command line, embedded.
// Every argument after "k6" goes to k6 unparsed; k6 exits the process with
// its own exit code (e.g. 99 when thresholds are crossed).
func newK6Cmd() *cobra.Command {
	return &cobra.Command{
		Use:   "k6 [k6 arguments]",
		Short: "Run the embedded k6 (the real k6 command line)",
		Long: `Run the embedded k6 load-testing tool with the given arguments, exactly as the
k6 binary would: "faultline k6 run script.js" is "k6 run script.js". The binary
also behaves as k6 when it is invoked through a link named "k6".

Automatic extension resolution and usage reports are off unless the
environment sets K6_AUTO_EXTENSION_RESOLUTION or K6_NO_USAGE_REPORT.
Exit codes are k6's (99 thresholds crossed, 104 invalid config, 105 external
abort, 107 script error, 108 test.abort()).`,
		DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) {
			k6cmd.Main(args) // never returns
		},
	}
}
