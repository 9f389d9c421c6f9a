// Package portowner tells which process listens on a TCP port, so that an
// error about a port already in use can name the process holding it.
//
// On Linux it reads /proc: the listening sockets of /proc/net/tcp and
// /proc/net/tcp6 (in the caller's network namespace), then the open files
// of every process the caller may inspect (/proc/<pid>/fd), matched by the
// socket's inode. Another user's process is not inspectable without
// privileges: the socket's owner (uid) is still known. Elsewhere the owner
// is unknown and Lookup returns ErrUnsupported.
package portowner

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrUnsupported is returned by Lookup where /proc is not Linux's.
var ErrUnsupported = errors.New("finding the process that holds a port needs Linux's /proc")

// Process is a process that holds a listening socket.
type Process struct {
	PID int
	// Command is its command line on one line: arguments separated by
	// spaces, every run of white space in them one space, cut at
	// maxCommand bytes (its name from /proc/<pid>/comm, in brackets, when
	// the command line is empty).
	Command string
}

// String is "pid 1234 (faultline demo-target --listen 127.0.0.1:18080)".
func (p Process) String() string { return fmt.Sprintf("pid %d (%s)", p.PID, p.Command) }

// Socket is a TCP socket listening on the port.
type Socket struct {
	Addr  netip.AddrPort
	UID   int
	Inode uint64
	// Processes hold the socket; empty when none the caller may inspect
	// does.
	Processes []Process
}

// maxCommand bounds a command line in a message.
const maxCommand = 200

// Lookup returns the sockets listening on TCP port, IPv4 and IPv6, on any
// address, each with the processes that hold it. No socket and no error
// means nothing listens on the port.
func Lookup(port int) ([]Socket, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("port %d is not a TCP port", port)
	}
	return lookup(port)
}

// Describe names what listens on port, for a message such as "port 18080
// is already in use by <Describe>": "pid 1234 (faultline demo-target
// --listen 127.0.0.1:18080)", several such joined with "and", or why the
// process is not known.
func Describe(port int) string {
	socks, err := Lookup(port)
	if err != nil {
		return "an unknown process (" + err.Error() + ")"
	}
	if len(socks) == 0 {
		return fmt.Sprintf("an unknown process (no socket listens on port %d in /proc/net/tcp or tcp6: one may be bound without listening, or be the local end of a connection)", port)
	}
	var procs []Process
	var hidden []int // uids of sockets no inspectable process holds
	for _, s := range socks {
		if len(s.Processes) == 0 {
			if !slices.Contains(hidden, s.UID) {
				hidden = append(hidden, s.UID)
			}
			continue
		}
		for _, p := range s.Processes {
			if !slices.ContainsFunc(procs, func(q Process) bool { return q.PID == p.PID }) {
				procs = append(procs, p)
			}
		}
	}
	if len(procs) > 0 {
		slices.SortFunc(procs, func(a, b Process) int { return a.PID - b.PID })
		names := make([]string, len(procs))
		for i, p := range procs {
			names[i] = p.String()
		}
		return strings.Join(names, " and ")
	}
	users := make([]string, len(hidden))
	for i, uid := range hidden {
		users[i] = userName(uid)
	}
	return fmt.Sprintf("a process of %s that this user may not inspect (sudo ss -ltnp 'sport = :%d' names it)", strings.Join(users, " or "), port)
}

// userName is "user root (uid 0)", or "uid 1234" when the name is unknown.
func userName(uid int) string {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return "user " + u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

// Taken reports whether addr (host:port) is in use, by binding it and
// releasing it at once; when it is, holder is Describe of its port. An
// address that cannot be bound for another reason (a port below 1024
// without the privilege, a host that is not this machine's) is not
// reported as taken: whoever binds it next reports that better.
func Taken(addr string) (holder string, taken bool) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		_ = ln.Close()
		return "", false
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return "", false
	}
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return Describe(port), true
}
