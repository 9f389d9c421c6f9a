package main

import (
	"errors"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/internal/demotarget"
	"faultline.dev/faultline/internal/exitcode"
)

func newDemoTargetCmd() *cobra.Command {
	var cfg demotarget.Config
	cmd := &cobra.Command{
		Use:   "demo-target",
		Short: "Run the demo checkout service the shipped scenarios target locally",
		Long: `demo-target runs a small Go checkout service for trying scenarios on a laptop:
GET /catalog, POST /checkout (pays through a downstream /pay served on a
second listener), GET /healthz, GET /metrics (Go runtime metrics included)
and /debug/pprof/.

It prints "demo-target listening on http://ADDR" on stderr once it accepts
connections, and shuts down gracefully on SIGINT or SIGTERM. Only loopback
addresses are accepted unless --allow-external is given.`,
		Example: `  faultline demo-target
  faultline demo-target --listen 127.0.0.1:18080 --downstream-latency 2ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Log = cmd.ErrOrStderr()
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if err := demotarget.Run(cmd.Context(), cfg); err != nil {
				if errors.Is(err, demotarget.ErrExternalListen) {
					return usageError{err}
				}
				return exitcode.With(exitcode.Infrastructure, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", demotarget.DefaultListen, "address of the service (host:port; port 0 picks a free one)")
	f.StringVar(&cfg.DownstreamListen, "downstream-listen", demotarget.DefaultDownstreamListen, "address of the downstream /pay service")
	f.StringVar(&cfg.GRPCListen, "grpc-listen", "", "address of the gRPC service (faultline.demo.v1.Shop/Checkout, health, reflection); none when empty")
	f.StringVar(&cfg.DownstreamURL, "downstream-url", "", "call the downstream at this base URL instead of --downstream-listen (e.g. a fault injector's proxy)")
	f.DurationVar(&cfg.DownstreamLatency, "downstream-latency", demotarget.DefaultDownstreamLatency, "how long the downstream /pay takes to answer")
	f.DurationVar(&cfg.DownstreamTimeout, "downstream-timeout", demotarget.DefaultDownstreamTimeout, "checkout's deadline for the payment call (503 when exceeded)")
	f.DurationVar(&cfg.AuditTimeout, "audit-timeout", demotarget.DefaultAuditTimeout, "timeout of the detached audit write each checkout leaves running")
	f.BoolVar(&cfg.AllowExternal, "allow-external", false, "allow non-loopback listen addresses")
	return cmd
}
