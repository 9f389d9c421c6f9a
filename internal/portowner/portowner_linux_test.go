package portowner

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// tcpLine is one row of /proc/net/tcp{,6} as the kernel prints it.
func tcpLine(sl int, local, remote string, st, uid int, inode uint64) string {
	return fmt.Sprintf("%4d: %s %s %02X 00000000:00000000 00:00000000 00000000 %5d        0 %d 1 0000000000000000 100 0 0 10 0\n", sl, local, remote, st, uid, inode)
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestParseNetTCP(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixtures are written as a little-endian kernel prints them")
	}
	tcp := tcpHeader +
		tcpLine(0, "0100007F:1F90", "00000000:0000", 0x0A, 1000, 111) + // 127.0.0.1:8080, listening
		tcpLine(1, "00000000:1F90", "00000000:0000", 0x0A, 0, 222) + // 0.0.0.0:8080, listening
		tcpLine(2, "0100007F:1F90", "0100007F:D431", 0x01, 1000, 333) + // 127.0.0.1:8080, established
		tcpLine(3, "0100007F:1F91", "00000000:0000", 0x0A, 1000, 444) + // 127.0.0.1:8081
		tcpLine(4, "0100007F:1F92", "0100007F:1F90", 0x06, 1000, 0) // TIME_WAIT, no inode
	tcp6 := tcpHeader +
		tcpLine(0, "00000000000000000000000001000000:1F90", "00000000000000000000000000000000:0000", 0x0A, 1000, 555) + // [::1]:8080
		tcpLine(1, "0000000000000000FFFF00000100007F:1F91", "00000000000000000000000000000000:0000", 0x0A, 1000, 666) // [::ffff:127.0.0.1]:8081
	want := func(addr string, uid int, inode uint64) Socket {
		return Socket{Addr: netip.MustParseAddrPort(addr), UID: uid, Inode: inode}
	}
	tests := []struct {
		name, table string
		port        int
		want        []Socket
		wantErr     string
	}{
		{"IPv4, two listeners", tcp, 8080, []Socket{want("127.0.0.1:8080", 1000, 111), want("0.0.0.0:8080", 0, 222)}, ""},
		{"IPv4, one listener", tcp, 8081, []Socket{want("127.0.0.1:8081", 1000, 444)}, ""},
		{"a TIME_WAIT socket is not a listener", tcp, 8082, nil, ""},
		{"nothing on the port", tcp, 9, nil, ""},
		{"IPv6 loopback", tcp6, 8080, []Socket{want("[::1]:8080", 1000, 555)}, ""},
		{"IPv4-mapped IPv6 is unmapped", tcp6, 8081, []Socket{want("127.0.0.1:8081", 1000, 666)}, ""},
		{"header only", tcpHeader, 8080, nil, ""},
		{"short line", tcpHeader + "   0: 0100007F:1F90 00000000:0000 0A\n", 8080, nil, "line 2: 4 fields"},
		{"bad address", tcpHeader + tcpLine(0, "7F:1F90", "00000000:0000", 0x0A, 0, 1), 8080, nil, "not 8 or 32 hex digits"},
		{"bad state", tcpHeader + strings.Replace(tcpLine(0, "0100007F:1F90", "00000000:0000", 0x0A, 0, 1), " 0A ", " ZZ ", 1), 8080, nil, `state "ZZ"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetTCP(strings.NewReader(tt.table), tt.port)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b Socket) bool {
				return a.Addr == b.Addr && a.UID == b.UID && a.Inode == b.Inode
			}) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeProc builds a /proc with the given net/tcp rows and processes (pid
// → open socket inodes, command line) and points procRoot at it.
type fakeProcess struct {
	pid     int
	inodes  []uint64
	cmdline string // NUL-separated, as the kernel writes it
	comm    string
}

func fakeProc(t *testing.T, tcp string, procs []fakeProcess) {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "net"), 0o755))
	must(os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(tcp), 0o644))
	for _, p := range procs {
		dir := filepath.Join(root, fmt.Sprint(p.pid))
		must(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
		must(os.WriteFile(filepath.Join(dir, "cmdline"), []byte(p.cmdline), 0o644))
		must(os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644))
		must(os.Symlink("/dev/null", filepath.Join(dir, "fd", "0")))
		for i, ino := range p.inodes {
			must(os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", fmt.Sprint(3+i))))
		}
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

// TestDescribeFakeProc: what the message says for each shape of /proc.
func TestDescribeFakeProc(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixtures are written as a little-endian kernel prints them")
	}
	listen := func(inode uint64, uid int) string {
		return tcpLine(0, "0100007F:1F90", "00000000:0000", 0x0A, uid, inode) // 127.0.0.1:8080
	}
	long := "java\x00" + strings.Repeat("-Dx=y\x00", 60)
	tests := []struct {
		name  string
		tcp   string
		procs []fakeProcess
		want  string
		// contains: want is a part of the message, not all of it.
		contains bool
	}{
		{
			name:  "one process",
			tcp:   tcpHeader + listen(42, 1000),
			procs: []fakeProcess{{pid: 1234, inodes: []uint64{42}, cmdline: "faultline\x00demo-target\x00--listen\x00127.0.0.1:8080\x00"}, {pid: 99, inodes: []uint64{7}, cmdline: "other\x00"}},
			want:  "pid 1234 (faultline demo-target --listen 127.0.0.1:8080)",
		},
		{
			name:  "a socket two processes share (a fork), in pid order",
			tcp:   tcpHeader + listen(42, 1000),
			procs: []fakeProcess{{pid: 20, inodes: []uint64{42}, cmdline: "worker\x00"}, {pid: 10, inodes: []uint64{42, 42}, cmdline: "master\x00"}},
			want:  "pid 10 (master) and pid 20 (worker)",
		},
		{
			name:  "white space in arguments: one line",
			tcp:   tcpHeader + listen(42, 1000),
			procs: []fakeProcess{{pid: 5, inodes: []uint64{42}, cmdline: "python3\x00-c\x00import os\n\tos.pause()\n\x00"}},
			want:  "pid 5 (python3 -c import os os.pause())",
		},
		{
			name:  "empty command line: the name from comm",
			tcp:   tcpHeader + listen(42, 1000),
			procs: []fakeProcess{{pid: 5, inodes: []uint64{42}, comm: "kworker"}},
			want:  "pid 5 ([kworker])",
		},
		{
			name:  "a long command line is cut",
			tcp:   tcpHeader + listen(42, 1000),
			procs: []fakeProcess{{pid: 5, inodes: []uint64{42}, cmdline: long}},
			want:  "pid 5 (" + strings.ReplaceAll(long, "\x00", " ")[:maxCommand] + "...)",
		},
		{
			name: "root's process, not inspectable",
			tcp:  tcpHeader + listen(42, 0),
			want: "a process of user root (uid 0) that this user may not inspect (sudo ss -ltnp 'sport = :8080' names it)",
		},
		{
			name: "a uid without a name",
			tcp:  tcpHeader + listen(42, 54321),
			want: "a process of uid 54321 that this user may not inspect (sudo ss -ltnp 'sport = :8080' names it)",
		},
		{
			name: "no listener",
			tcp:  tcpHeader + tcpLine(0, "0100007F:1F90", "0100007F:D431", 0x01, 1000, 42),
			want: "an unknown process (no socket listens on port 8080 in /proc/net/tcp or tcp6: one may be bound without listening, or be the local end of a connection)",
		},
		{
			name:     "an unreadable table",
			tcp:      tcpHeader + "garbage\n",
			want:     "/net/tcp: line 2: 1 fields, want at least 10)",
			contains: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeProc(t, tt.tcp, tt.procs)
			got := Describe(8080)
			if tt.contains {
				if !strings.HasPrefix(got, "an unknown process (") || !strings.Contains(got, tt.want) {
					t.Errorf("Describe = %q, want an unknown process and %q", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Describe = %q\n          want %q", got, tt.want)
			}
		})
	}
}

// listenFile opens a listener and returns it with a duplicate of its file.
func listenFile(t *testing.T, network, addr string) (net.Listener, *os.File) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s here: %v", network, addr, err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	return ln, f
}

// TestLookupReal: real listeners this test opens, in this process and in a
// child it hands the socket to.
func TestLookupReal(t *testing.T) {
	self := Process{PID: os.Getpid(), Command: command(os.Getpid())}
	if !strings.Contains(self.Command, filepath.Base(os.Args[0])) {
		t.Fatalf("this process's command %q does not name %s", self.Command, os.Args[0])
	}
	sleep, sleepErr := exec.LookPath("sleep")
	tests := []struct {
		name, network, addr string
		wantAddr            netip.Addr
		child               bool // hand the socket to a child and close it here
	}{
		{"IPv4 loopback", "tcp4", "127.0.0.1:0", netip.MustParseAddr("127.0.0.1"), false},
		{"IPv4 wildcard", "tcp4", "0.0.0.0:0", netip.IPv4Unspecified(), false},
		{"IPv6 loopback", "tcp6", "[::1]:0", netip.IPv6Loopback(), false},
		{"IPv6 wildcard", "tcp6", "[::]:0", netip.IPv6Unspecified(), false},
		{"held by a child process", "tcp4", "127.0.0.1:0", netip.MustParseAddr("127.0.0.1"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, f := listenFile(t, tt.network, tt.addr)
			defer ln.Close()
			defer f.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			want := self
			if tt.child {
				if sleepErr != nil {
					t.Skipf("no sleep command: %v", sleepErr)
				}
				cmd := exec.Command(sleep, "30")
				cmd.Args[0] = "sleep"
				cmd.ExtraFiles = []*os.File{f}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
				ln.Close()
				f.Close()
				want = Process{PID: cmd.Process.Pid, Command: "sleep 30"}
			}
			socks, err := Lookup(port)
			if err != nil {
				t.Fatal(err)
			}
			if len(socks) != 1 {
				t.Fatalf("Lookup(%d) = %+v, want one socket", port, socks)
			}
			s := socks[0]
			if s.Addr != netip.AddrPortFrom(tt.wantAddr, uint16(port)) {
				t.Errorf("address %s, want %s port %d", s.Addr, tt.wantAddr, port)
			}
			if s.UID != os.Getuid() {
				t.Errorf("uid %d, want %d", s.UID, os.Getuid())
			}
			if len(s.Processes) != 1 || s.Processes[0] != want {
				t.Errorf("processes %+v, want [%+v]", s.Processes, want)
			}
			holder, taken := Taken(net.JoinHostPort(tt.wantAddr.String(), fmt.Sprint(port)))
			if !taken || holder != want.String() {
				t.Errorf("Taken = %q, %v; want %q, true", holder, taken, want.String())
			}
		})
	}
}

// TestLookupNotListening: a port nothing listens on, and a port that is
// only the client end of a connection, have no listener.
func TestLookupNotListening(t *testing.T) {
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.DialTimeout("tcp4", srv.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	tests := []struct {
		name string
		port int
	}{
		{"a free port", freePort},
		{"a connection's client end", conn.LocalAddr().(*net.TCPAddr).Port},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socks, err := Lookup(tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if len(socks) != 0 {
				t.Errorf("Lookup(%d) = %+v, want no listener", tt.port, socks)
			}
		})
	}
	if holder, taken := Taken(fmt.Sprintf("127.0.0.1:%d", freePort)); taken {
		t.Errorf("Taken(free port %d) = %q, true", freePort, holder)
	}
	for _, port := range []int{0, -1, 65536} {
		if _, err := Lookup(port); err == nil {
			t.Errorf("Lookup(%d): no error", port)
		}
	}
}
