// Package testport picks free loopback ports for servers a test starts in
// another process (a demo target, Prometheus, a kube-apiserver), which
// cannot be handed a listener. It is test support, not part of faultline.
//
// A port asked of the kernel with port 0 comes from its ephemeral range,
// the range every outgoing connection's local port comes from too: between
// the pick and the other process's bind, any connection of the machine
// (the parallel test packages make thousands) may take it. A CI run lost a
// demo target that way ("exit status 7": its listen failed). These ports
// come from below the ephemeral range, where the kernel gives no port
// unasked; only another picker could take one, and it would pick at
// random among about 20 000.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the lowest port picked: above the registered services most
// machines run.
const lowest = 10000

// Pick returns n distinct ports on 127.0.0.1 nothing listens on right now,
// holding every listener until all n are picked (one closed before the next
// is opened can come back twice). Without a range below the ephemeral one
// (ip_local_port_range starting at 11 000 or lower, or not Linux), it asks
// the kernel for port 0.
func Pick(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	hi := ephemeralStart() - 1
	ports := make([]int, 0, n)
	for len(ports) < n {
		var l net.Listener
		var err error
		if hi-lowest < 1000 {
			l, err = net.Listen("tcp", "127.0.0.1:0")
		} else {
			for range 200 {
				if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lowest+rand.IntN(hi-lowest+1))); err == nil {
					break
				}
			}
		}
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Loopback is Pick for a test: it fails the test when no port can be had.
func Loopback(t testing.TB, n int) []int {
	t.Helper()
	ports, err := Pick(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// ephemeralStart is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}
