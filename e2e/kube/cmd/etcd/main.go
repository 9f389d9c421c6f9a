// Command etcd is etcd v3.7.0 (go.etcd.io/etcd/server/v3, the release
// Kubernetes v1.37.2 pins), built from this wrapper module for faultline's e2e
// harness. It is etcd's own entry point, unchanged.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
