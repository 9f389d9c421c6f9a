// cputarget is a test target whose requests cost CPU: GET /work hashes
// 256 KiB (about 0.3ms of one CPU here), so its latency follows the share
// of a CPU it gets. Usage: cputarget ADDR.
package main

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
)

func main() {
	buf := make([]byte, 256<<10)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/work", func(w http.ResponseWriter, _ *http.Request) {
		sum := sha256.Sum256(buf)
		fmt.Fprintf(w, "%x\n", sum[:4])
	})
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
