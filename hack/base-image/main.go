// Command base-image pushes the base image of faultline's ko image (see
// internal/baseimage): go run ./hack/base-image [--plain-http] REGISTRY/REPO:TAG
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"

	"faultline.dev/faultline/internal/baseimage"
	"faultline.dev/faultline/oci"
)

func main() {
	plain := flag.Bool("plain-http", false, "talk HTTP to the registry (loopback registries always do)")
	arch := flag.String("arch", runtime.GOARCH, "the image's architecture (linux/ARCH)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/base-image [--plain-http] [--arch amd64] REGISTRY/REPO:TAG")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	d, err := baseimage.Push(context.Background(), flag.Arg(0), *arch, oci.Options{PlainHTTP: *plain})
	if err != nil {
		fmt.Fprintln(os.Stderr, "base-image:", err)
		os.Exit(7)
	}
	fmt.Println(d)
}
