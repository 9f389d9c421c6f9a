package portowner

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// procRoot is /proc; tests point it elsewhere.
var procRoot = "/proc"

// tcpListen is TCP_LISTEN in the st column of /proc/net/tcp.
const tcpListen = 0x0A

func lookup(port int) ([]Socket, error) {
	var socks []Socket
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		f, err := os.Open(filepath.Join(procRoot, name))
		if errors.Is(err, fs.ErrNotExist) && name == "net/tcp6" {
			continue // no IPv6 on this machine
		}
		if err != nil {
			return nil, fmt.Errorf("reading the sockets: %w", err)
		}
		s, err := parseNetTCP(f, port)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(procRoot, name), err)
		}
		socks = append(socks, s...)
	}
	if len(socks) == 0 {
		return nil, nil
	}
	byInode := map[uint64]*Socket{}
	for i := range socks {
		byInode[socks[i].Inode] = &socks[i]
	}
	holders(byInode)
	return socks, nil
}

// parseNetTCP returns the sockets of a /proc/net/tcp or tcp6 table that
// listen on port.
func parseNetTCP(r io.Reader, port int) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 0; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if line == 0 {
			continue // the header
		}
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(f) < 10 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 10", line+1, len(f))
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("line %d: state %q: %w", line+1, f[3], err)
		}
		if st != tcpListen {
			continue
		}
		addr, err := parseAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line+1, err)
		}
		if int(addr.Port()) != port {
			continue
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil {
			return nil, fmt.Errorf("line %d: uid %q: %w", line+1, f[7], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: inode %q: %w", line+1, f[9], err)
		}
		out = append(out, Socket{Addr: addr, UID: uid, Inode: inode})
	}
	return out, sc.Err()
}

// parseAddr decodes "0100007F:1F90" (IPv4) or a 32-digit IPv6 address and
// its port. The kernel prints the address as 32-bit words in the host's
// byte order, the port as a number.
func parseAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", s, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 8 or 32 hex digits", s)
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// holders fills in the processes that hold each socket: every process
// whose open files the caller may read.
func holders(byInode map[uint64]*Socket) {
	procs, err := os.ReadDir(procRoot)
	if err != nil {
		return
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(procRoot, e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or another user's
		}
		var cmd *string
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			s := byInode[inode]
			if s == nil || slices.ContainsFunc(s.Processes, func(p Process) bool { return p.PID == pid }) {
				continue
			}
			if cmd == nil {
				c := command(pid)
				cmd = &c
			}
			s.Processes = append(s.Processes, Process{PID: pid, Command: *cmd})
		}
	}
}

// command is pid's command line, or its name when the command line is
// empty.
func command(pid int) string {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	b, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		b, _ = os.ReadFile(filepath.Join(dir, "comm"))
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return "command unknown"
		}
		return "[" + string(b) + "]"
	}
	// One line: arguments may hold newlines and runs of spaces.
	c := strings.Join(strings.Fields(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))), " ")
	if len(c) > maxCommand {
		c = strings.ToValidUTF8(c[:maxCommand], "") + "..."
	}
	return c
}
