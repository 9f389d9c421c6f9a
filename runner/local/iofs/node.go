package iofs

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose calls pass the rules first.
type node struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeAccesser       = (*node)(nil)
	_ fs.NodeStatxer        = (*node)(nil)
)

// WrapChild makes every node below the root a node of this file system.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fs: n.fs}
}

// rel is the node's path under the mount.
func (n *node) rel() string { return n.Path(n.Root()) }

// child is the path of the entry name in this directory.
func (n *node) child(name string) string { return filepath.Join(n.rel(), name) }

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if e := n.fs.act(ctx, "lookup", p); e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Lookup(ctx, name, out)
	if e == 0 {
		n.fs.attr("lookup", p, &out.Attr)
	}
	return ch, e
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	p := n.rel()
	if e := n.fs.act(ctx, "getattr", p); e != 0 {
		return e
	}
	if h, ok := f.(*file); ok {
		f = h.FileHandle
	}
	e := n.LoopbackNode.Getattr(ctx, f, out)
	if e == 0 {
		n.fs.attr("getattr", p, &out.Attr)
	}
	return e
}

// Statx is left to getattr (ENOSYS makes the kernel fall back), so that
// getattr's rules see every stat.
func (n *node) Statx(context.Context, fs.FileHandle, uint32, uint32, *fuse.StatxOut) syscall.Errno {
	return syscall.ENOSYS
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.fs.act(ctx, "setattr", n.rel()); e != 0 {
		return e
	}
	if h, ok := f.(*file); ok {
		f = h.FileHandle
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if e := n.fs.act(ctx, "readlink", n.rel()); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Readlink(ctx)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fs.act(ctx, "mknod", n.child(name)); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fs.act(ctx, "mkdir", n.child(name)); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.fs.act(ctx, "unlink", n.child(name)); e != 0 {
		return e
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := n.fs.act(ctx, "rmdir", n.child(name)); e != 0 {
		return e
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fs.act(ctx, "symlink", n.child(name)); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.fs.act(ctx, "rename", n.child(name)); e != 0 {
		return e
	}
	if np, ok := newParent.(*node); ok {
		newParent = np.LoopbackNode
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fs.act(ctx, "link", n.child(name)); e != 0 {
		return nil, e
	}
	if t, ok := target.(*node); ok {
		target = t.LoopbackNode
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p := n.rel()
	if e := n.fs.act(ctx, "open", p); e != 0 {
		return nil, 0, e
	}
	fh, ff, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return &file{FileHandle: fh, fs: n.fs, rel: p}, ff, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := n.child(name)
	if e := n.fs.act(ctx, "create", p); e != 0 {
		return nil, nil, 0, e
	}
	ch, fh, ff, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	return ch, &file{FileHandle: fh, fs: n.fs, rel: p}, ff, 0
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p := n.rel()
	if e := n.fs.act(ctx, "opendir", p); e != 0 {
		return nil, 0, e
	}
	fh, ff, e := n.LoopbackNode.OpendirHandle(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return &dir{FileHandle: fh, fs: n.fs, rel: p}, ff, 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	if e := n.fs.act(ctx, "statfs", n.rel()); e != 0 {
		return e
	}
	return n.LoopbackNode.Statfs(ctx, out)
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if e := n.fs.act(ctx, "getxattr", n.rel()); e != 0 {
		return 0, e
	}
	return n.LoopbackNode.Getxattr(ctx, attr, dest)
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if e := n.fs.act(ctx, "setxattr", n.rel()); e != 0 {
		return e
	}
	return n.LoopbackNode.Setxattr(ctx, attr, data, flags)
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if e := n.fs.act(ctx, "listxattr", n.rel()); e != 0 {
		return 0, e
	}
	return n.LoopbackNode.Listxattr(ctx, dest)
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if e := n.fs.act(ctx, "removexattr", n.rel()); e != 0 {
		return e
	}
	return n.LoopbackNode.Removexattr(ctx, attr)
}

// Access checks the real file's permissions after the rules.
func (n *node) Access(ctx context.Context, mask uint32) syscall.Errno {
	p := n.rel()
	if e := n.fs.act(ctx, "access", p); e != 0 {
		return e
	}
	return fs.ToErrno(syscall.Access(filepath.Join(n.RootData.Path, p), mask))
}

// file is an open file whose calls pass the rules first. It does not
// offer the kernel a passthrough descriptor, so every read and write
// comes through here.
type file struct {
	fs.FileHandle
	fs  *FS
	rel string
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileGetlker   = (*file)(nil)
	_ fs.FileSetlker   = (*file)(nil)
	_ fs.FileSetlkwer  = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
)

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if e := f.fs.act(ctx, "read", f.rel); e != 0 {
		return nil, e
	}
	return f.FileHandle.(fs.FileReader).Read(ctx, dest, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if e := f.fs.act(ctx, "write", f.rel); e != 0 {
		return 0, e
	}
	return f.FileHandle.(fs.FileWriter).Write(ctx, data, off)
}

func (f *file) Flush(ctx context.Context) syscall.Errno {
	if e := f.fs.act(ctx, "flush", f.rel); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileFlusher).Flush(ctx)
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	// The descriptor is closed whatever the rules say: a failed release
	// must not leak it.
	e := f.fs.act(ctx, "release", f.rel)
	if e2 := f.FileHandle.(fs.FileReleaser).Release(ctx); e == 0 {
		e = e2
	}
	return e
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if e := f.fs.act(ctx, "fsync", f.rel); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileFsyncer).Fsync(ctx, flags)
}

func (f *file) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	if e := f.fs.act(ctx, "getlk", f.rel); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileGetlker).Getlk(ctx, owner, lk, flags, out)
}

func (f *file) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	if e := f.fs.act(ctx, "setlk", f.rel); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileSetlker).Setlk(ctx, owner, lk, flags)
}

func (f *file) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	if e := f.fs.act(ctx, "setlk", f.rel); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileSetlkwer).Setlkw(ctx, owner, lk, flags)
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.FileHandle.(fs.FileLseeker).Lseek(ctx, off, whence)
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return f.FileHandle.(fs.FileAllocater).Allocate(ctx, off, size, mode)
}

// dir is an open directory whose reads pass the rules first.
type dir struct {
	fs.FileHandle
	fs  *FS
	rel string
	// listing is set once a listing has passed the rules: a readdir
	// rule acts once per listing, not once per entry.
	listing bool
}

var (
	_ fs.FileReaddirenter = (*dir)(nil)
	_ fs.FileSeekdirer    = (*dir)(nil)
	_ fs.FileReleasedirer = (*dir)(nil)
	_ fs.FileFsyncdirer   = (*dir)(nil)
)

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !d.listing {
		if e := d.fs.act(ctx, "readdir", d.rel); e != 0 {
			return nil, e
		}
		d.listing = true
	}
	return d.FileHandle.(fs.FileReaddirenter).Readdirent(ctx)
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		d.listing = false
	}
	if s, ok := d.FileHandle.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	_ = d.fs.act(ctx, "releasedir", d.rel)
	if r, ok := d.FileHandle.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if e := d.fs.act(ctx, "fsyncdir", d.rel); e != 0 {
		return e
	}
	if s, ok := d.FileHandle.(fs.FileFsyncdirer); ok {
		return s.Fsyncdir(ctx, flags)
	}
	return 0
}
