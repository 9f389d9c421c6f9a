// Command e2e-cluster starts the e2e test cluster (package harness: etcd, kube-apiserver,
// Chaos Mesh's controller-manager with its webhooks, the recording chaos-daemon stand-in) and
// keeps it running until SIGINT or SIGTERM, for trying faultline against it by hand:
//
//	cd e2e && go run ./cmd/e2e-cluster
//	faultline run scenario.cue --backend kubernetes --kubeconfig <printed path>
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"faultline.dev/faultline/e2e/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-cluster:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e-cluster: "+format+"\n", args...) }
	build, cancel := context.WithTimeout(ctx, 45*time.Minute)
	defer cancel()
	bins, err := harness.Build(build, logf)
	if err != nil {
		return err
	}
	c, err := harness.Start(ctx, bins, harness.Options{Logf: logf})
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Printf("kubeconfig: %s\nlogs: %s\n", c.Kubeconfig, c.Dir)
	<-ctx.Done()
	return nil
}
