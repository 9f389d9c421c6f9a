package testport

import (
	"net"
	"strconv"
	"testing"
)

// TestPick: the ports are distinct, below the kernel's ephemeral range
// (when it leaves room), and free: each can be listened on after Pick.
func TestPick(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		ports := Loopback(t, n)
		if len(ports) != n {
			t.Fatalf("Pick(%d): %d ports", n, len(ports))
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if seen[p] {
				t.Errorf("Pick(%d) = %v: %d twice", n, ports, p)
			}
			seen[p] = true
			if lo := ephemeralStart(); lo-1-lowest >= 1000 && (p < lowest || p >= lo) {
				t.Errorf("port %d outside [%d, %d)", p, lowest, lo)
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Errorf("port %d is not free: %v", p, err)
				continue
			}
			l.Close()
		}
	}
}
