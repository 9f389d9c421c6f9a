// Command kube-apiserver is Kubernetes' own kube-apiserver (k8s.io/kubernetes
// v1.37.2, cmd/kube-apiserver), built from this wrapper module for faultline's
// e2e harness. Its main is the upstream main: the package main of the
// kubernetes module cannot be built with `go install` because of its replace
// directives.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
