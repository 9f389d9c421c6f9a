//go:build !linux

package inject

import "time"

// preciseSleep sleeps d; outside Linux it is time.Sleep (Go's timer
// granularity, up to ~1 ms late when the process is idle).
func preciseSleep(d time.Duration) { time.Sleep(d) }
