package inject

import (
	"net"
	"syscall"
	"time"
	"unsafe"
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

// waiting reports whether bytes are already waiting to be read on c's
// socket (FIONREAD), without reading them; false when it cannot tell.
func waiting(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		var v int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v))); e == 0 {
			n = int(v)
		}
	})
	return n > 0
}
