// Package iofs brings Chaos Mesh's IOChaos (ioLatency, ioFault,
// ioAttrOverride) to a local target: a FUSE passthrough file system
// (github.com/hanwen/go-fuse/v2, loopback) mounted over the target's data
// directory, so the target keeps using the same path, and every file system
// call it makes there goes through faultline, which can delay it, fail it
// with an errno, or change the attributes it reports.
//
// The semantics follow IOChaos (chaos-mesh's toda):
//
//   - methods: the FUSE operations a rule acts on (lookup, getattr, open,
//     read, write, fsync, ... as #IOMethod lists them); none means all.
//     forget and bmap are accepted and never act (forget cannot fail, bmap
//     is for block devices).
//   - path: a glob of the files affected, matched against the file's path
//     under the volume ("**" any number of directories, "*" and "?" within
//     one name, as Chaos Mesh's glob); none means every file. For a call on
//     a name in a directory (lookup, create, mkdir, unlink, rename, ...),
//     the path is the entry's; for the others the file's own.
//   - percent: the share of matching calls affected, each call drawn at
//     random.
//   - ioLatency sleeps before the call; ioFault returns the errno instead
//     of making the call; ioAttrOverride replaces the attributes getattr
//     and lookup report (perm keeps the file type bits).
//
// Several rules may be on at once: every matching latency adds up, the
// first matching errno wins. Rules switch on and off (Set, Clear) without a
// remount; the kernel caches no attribute or entry, so a switch is seen at
// the next call. Unmount always unmounts (lazily if the target still holds
// files open).
package iofs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Rule is one IO fault.
type Rule struct {
	// Methods the rule acts on; empty: all.
	Methods []string
	// Glob is matched against the path relative to the mount ("" or
	// "**": every file).
	Glob string
	// Percent of matching calls affected (0 means 100).
	Percent float64
	// Delay before each affected call (ioLatency).
	Delay time.Duration
	// Errno each affected call returns (ioFault).
	Errno syscall.Errno
	// Attr replaces reported attributes (ioAttrOverride).
	Attr *Attr
}

// Attr are the attributes an ioAttrOverride reports; nil fields keep the
// real value.
type Attr struct {
	Perm, Nlink, UID, GID *uint32
	Size                  *uint64
}

// Methods is every method name a rule may list (#IOMethod).
var Methods = []string{"lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open", "read", "write", "flush", "release", "fsync", "opendir", "readdir", "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr", "access", "create", "getlk", "setlk", "bmap"}

// Validate checks a rule's methods and glob.
func (r Rule) Validate() error {
	for _, m := range r.Methods {
		if !contains(Methods, m) {
			return fmt.Errorf("unknown IO method %q", m)
		}
	}
	if _, err := path.Match(strings.ReplaceAll(r.Glob, "**", "*"), ""); err != nil {
		return fmt.Errorf("path glob %q: %w", r.Glob, err)
	}
	if r.Percent < 0 || r.Percent > 100 {
		return fmt.Errorf("percent %v outside [0, 100]", r.Percent)
	}
	return nil
}

// Available says whether a FUSE file system can be mounted here, and why
// not.
func Available() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("FUSE is not available: opening /dev/fuse: %w", err)
	}
	f.Close()
	if os.Geteuid() != 0 {
		if _, err := lookPath("fusermount3", "fusermount"); err != nil {
			return errors.New("FUSE is not available: faultline is not root and there is no fusermount3 or fusermount to mount as a user")
		}
	}
	return nil
}

// FS is a mounted passthrough file system with its rules.
type FS struct {
	dir    string
	under  *os.File // the directory under the mount, held open
	server *fuse.Server

	mu    sync.Mutex
	named map[string]Rule
	rules atomic.Pointer[[]compiled]
}

type compiled struct {
	Rule
	methods map[string]bool
	segs    []string
}

// Mount mounts the passthrough file system over dir, which must exist.
// The target keeps using dir; the files it reads and writes are dir's own.
func Mount(dir string) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	SweepMount(abs)
	under, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	if st, err := under.Stat(); err != nil || !st.IsDir() {
		under.Close()
		return nil, fmt.Errorf("%s is not a directory", abs)
	}
	f := &FS{dir: abs, under: under, named: map[string]Rule{}}
	f.rules.Store(&[]compiled{})
	// The directory under the mount stays reachable through the open
	// descriptor once the mount hides it.
	underPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), under.Fd())
	rootOps, err := fs.NewLoopbackRoot(underPath)
	if err != nil {
		under.Close()
		return nil, err
	}
	lb := rootOps.(*fs.LoopbackNode)
	root := &node{LoopbackNode: lb, fs: f}
	lb.RootData.RootNode = root
	zero := time.Duration(0)
	opts := &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:      "faultline",
			Name:        "faultline",
			DirectMount: true,
			AllowOther:  os.Geteuid() == 0,
		},
	}
	srv, err := fs.Mount(abs, root, opts)
	if err != nil {
		under.Close()
		return nil, fmt.Errorf("mounting FUSE over %s: %w", abs, err)
	}
	f.server = srv
	return f, nil
}

// Dir is the mount point.
func (f *FS) Dir() string { return f.dir }

// Set switches a named rule on (replacing one of the same name).
func (f *FS) Set(name string, r Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.named[name] = r
	f.publish()
	return nil
}

// Clear switches a named rule off.
func (f *FS) Clear(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.named, name)
	f.publish()
}

// ClearAll switches every rule off.
func (f *FS) ClearAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.named)
	f.publish()
}

func (f *FS) publish() {
	names := make([]string, 0, len(f.named))
	for n := range f.named {
		names = append(names, n)
	}
	sort.Strings(names)
	rs := make([]compiled, 0, len(names))
	for _, n := range names {
		r := f.named[n]
		c := compiled{Rule: r}
		if len(r.Methods) > 0 {
			c.methods = map[string]bool{}
			for _, m := range r.Methods {
				c.methods[m] = true
			}
		}
		if g := strings.Trim(r.Glob, "/"); g != "" && g != "**" {
			c.segs = strings.Split(g, "/")
		}
		rs = append(rs, c)
	}
	f.rules.Store(&rs)
}

// Unmount switches every rule off and unmounts (lazily when the target
// still holds files open), always.
func (f *FS) Unmount() error {
	f.ClearAll()
	var errs []error
	if f.server != nil {
		if err := f.server.Unmount(); err != nil {
			if err2 := syscall.Unmount(f.dir, syscall.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %v; lazily: %w", f.dir, err, err2))
			}
		}
		f.server.Wait()
		f.server = nil
	}
	if f.under != nil {
		f.under.Close()
		f.under = nil
	}
	return errors.Join(errs...)
}

// SweepMount lazily unmounts a faultline FUSE file system left over dir
// by a faultline that died before its cleanup.
func SweepMount(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		// ... mountpoint(4) ... - fstype source ...
		for i, fl := range fields {
			if fl == "-" && i+2 < len(fields) && len(fields) > 4 && fields[4] == dir && strings.HasPrefix(fields[i+1], "fuse") && fields[i+2] == "faultline" {
				_ = syscall.Unmount(dir, syscall.MNT_DETACH)
			}
		}
	}
}

// Mounted says whether a faultline FUSE file system is mounted at dir.
func Mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		for i, fl := range fields {
			if fl == "-" && i+2 < len(fields) && len(fields) > 4 && fields[4] == dir && fields[i+2] == "faultline" {
				return true
			}
		}
	}
	return false
}

// act applies the active rules to one call on rel: the delays, then the
// first errno.
func (f *FS) act(ctx context.Context, method, rel string) syscall.Errno {
	rs := *f.rules.Load()
	if len(rs) == 0 {
		return 0
	}
	var delay time.Duration
	var errno syscall.Errno
	for i := range rs {
		r := &rs[i]
		if (r.Delay == 0 && r.Errno == 0) || !r.matches(method, rel) {
			continue
		}
		delay += r.Delay
		if errno == 0 {
			errno = r.Errno
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return syscall.EINTR
		}
	}
	return errno
}

// attr applies the active attribute overrides to the attributes of rel.
func (f *FS) attr(method, rel string, a *fuse.Attr) {
	rs := *f.rules.Load()
	for i := range rs {
		r := &rs[i]
		if r.Attr == nil || !r.matches(method, rel) {
			continue
		}
		if v := r.Attr.Perm; v != nil {
			a.Mode = a.Mode&syscall.S_IFMT | *v&0o7777
		}
		if v := r.Attr.Size; v != nil {
			a.Size = *v
		}
		if v := r.Attr.Nlink; v != nil {
			a.Nlink = *v
		}
		if v := r.Attr.UID; v != nil {
			a.Uid = *v
		}
		if v := r.Attr.GID; v != nil {
			a.Gid = *v
		}
	}
}

func (r *compiled) matches(method, rel string) bool {
	if r.methods != nil && !r.methods[method] {
		return false
	}
	if r.segs != nil && !matchSegs(r.segs, splitPath(rel)) {
		return false
	}
	return r.Percent == 0 || r.Percent >= 100 || rand.Float64()*100 < r.Percent
}

func splitPath(rel string) []string {
	rel = strings.Trim(rel, "/")
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// matchSegs matches a glob split at "/" ("**" is any number of names).
func matchSegs(glob, name []string) bool {
	for len(glob) > 0 {
		if glob[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegs(glob[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(glob[0], name[0]); !ok {
			return false
		}
		glob, name = glob[1:], name[1:]
	}
	return len(name) == 0
}

// MatchGlob reports whether rel (a path under the mount) matches glob.
func MatchGlob(glob, rel string) bool {
	g := strings.Trim(glob, "/")
	if g == "" || g == "**" {
		return true
	}
	return matchSegs(strings.Split(g, "/"), splitPath(rel))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func lookPath(names ...string) (string, error) {
	for _, n := range names {
		for _, d := range filepath.SplitList(os.Getenv("PATH")) {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	return "", os.ErrNotExist
}
