package inject

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d (at most fineWindow) in the kernel. Go's timers
// wait in epoll with millisecond granularity when the process is idle,
// which makes a timer fire up to ~1 ms late; nanosleep is accurate to the
// thread's timer slack (50 µs). It blocks an OS thread for that long, so it
// is used only for the last stretch of a wait.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for ts.Sec > 0 || ts.Nsec > 0 {
		var left syscall.Timespec
		if err := syscall.Nanosleep(&ts, &left); err != syscall.EINTR {
			return
		}
		ts = left
	}
}
