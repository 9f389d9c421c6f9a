package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"faultline.dev/faultline/e2e/harness"
)

// env is the cluster every test of the package shares (started once: a start takes about
// 20 seconds), and the binaries. Tests reset the pods they use and must leave no chaos object.
type env struct {
	bins    *harness.Binaries
	cluster *harness.Cluster
}

var shared *env

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	logf := func(format string, args ...any) { fmt.Printf("e2e: "+format+"\n", args...) }
	bins, err := harness.Build(ctx, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	c, err := harness.Start(ctx, bins, harness.Options{Users: []string{restrictedUser}, Logf: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the cluster:", err)
		return 1
	}
	defer c.Stop()
	shared = &env{bins: bins, cluster: c}
	code := m.Run()
	if err := c.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: after the tests:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// restrictedUser has no permission but what a test grants it with RBAC.
const restrictedUser = "e2e-restricted"
