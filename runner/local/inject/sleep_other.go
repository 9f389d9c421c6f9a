//go:build !linux

package inject

import (
	"net"
	"time"
)

// preciseSleep sleeps d; outside Linux it is time.Sleep (Go's timer
// granularity, up to ~1 ms late when the process is idle).
func preciseSleep(d time.Duration) { time.Sleep(d) }

// waiting reports whether bytes wait on c's socket; outside Linux it
// cannot tell and says no.
func waiting(net.Conn) bool { return false }
