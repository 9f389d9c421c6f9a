package local

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"faultline.dev/faultline/runner/local/iofs"
	"faultline.dev/faultline/schema"
)

// IO faults: ioLatency, ioFault and ioAttrOverride act on the target's
// target.local.dataDir through a FUSE passthrough file system (package
// iofs) that Prepare mounts over it before the target starts and Cleanup
// unmounts. Each fault's volumePath stands for the data directory; its
// path glob is read relative to volumePath.

// DataDirEnv names the data directory in the target's environment.
const DataDirEnv = "FAULTLINE_DATA_DIR"

// ioTarget is a fault's IOTarget, or nil when it is no IO fault.
func ioTarget(f schema.Fault) *schema.IOTarget {
	switch {
	case f.IOLatency != nil:
		return &f.IOLatency.IOTarget
	case f.IOFault != nil:
		return &f.IOFault.IOTarget
	case f.IOAttrOverride != nil:
		return &f.IOAttrOverride.IOTarget
	}
	return nil
}

// dataDir is target.local.dataDir made absolute ("" when there is none).
func (b *Backend) dataDir() string {
	l := b.s.Target.Local
	if l == nil || l.DataDir == "" {
		return ""
	}
	abs, err := filepath.Abs(l.DataDir)
	if err != nil {
		return l.DataDir
	}
	return abs
}

// ioRule maps an IO fault to a rule of the file system, or says why it
// cannot run locally.
func (b *Backend) ioRule(f schema.Fault) (iofs.Rule, error) {
	t := ioTarget(f)
	if b.dataDir() == "" {
		return iofs.Rule{}, fmt.Errorf("%s needs target.local.dataDir, the directory the service keeps its files in: faultline mounts a FUSE file system over it", f.Kind())
	}
	if err := iofs.Available(); err != nil {
		return iofs.Rule{}, fmt.Errorf("%s: %w (local IO faults go through a FUSE mount of target.local.dataDir)", f.Kind(), err)
	}
	r := iofs.Rule{Methods: t.Methods, Percent: t.Percent}
	if t.Path != "" {
		vol := strings.TrimSuffix(path.Clean(t.VolumePath), "/")
		p := path.Clean(t.Path)
		rel, ok := strings.CutPrefix(p, vol+"/")
		switch {
		case p == vol:
			rel = ""
		case !ok && strings.HasPrefix(p, "/"):
			return iofs.Rule{}, fmt.Errorf("%s path %s is not under its volumePath %s, which stands for target.local.dataDir locally", f.Kind(), t.Path, t.VolumePath)
		case !ok:
			rel = p // a relative glob: relative to the volume
		}
		r.Glob = rel
	}
	switch {
	case f.IOLatency != nil:
		r.Delay = f.IOLatency.Delay.Std()
	case f.IOFault != nil:
		r.Errno = syscall.Errno(f.IOFault.Errno)
	case f.IOAttrOverride != nil:
		a := f.IOAttrOverride.Attr
		u32 := func(v *int) *uint32 {
			if v == nil {
				return nil
			}
			x := uint32(*v)
			return &x
		}
		r.Attr = &iofs.Attr{Perm: u32(a.Perm), Nlink: u32(a.NLink), UID: u32(a.UID), GID: u32(a.GID)}
		if a.Size != nil {
			s := uint64(*a.Size)
			r.Attr.Size = &s
		}
		if len(r.Methods) == 0 {
			r.Methods = []string{"getattr", "lookup"}
		}
	}
	return r, r.Validate()
}

// mountDataDir mounts the FUSE file system over the data directory when
// the scenario has IO faults (before the target starts).
func (b *Backend) mountDataDir() error {
	need := false
	for _, f := range b.s.Faults {
		need = need || ioTarget(f) != nil
	}
	if !need {
		return nil
	}
	dir := b.dataDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("target.local.dataDir: %w", err)
	}
	m, err := iofs.Mount(dir)
	if err != nil {
		return fmt.Errorf("target.local.dataDir: %w", err)
	}
	b.fuse = m
	if b.s.Target.Local == nil || len(b.s.Target.Local.Command) == 0 {
		b.note(fmt.Sprintf("IO faults act on files the target opens in %s after faultline mounted its FUSE file system there; faultline did not start the target, so files it held open before keep the directory underneath", dir))
	}
	return nil
}

// ioFaulter switches an IO fault's rule on and off.
type ioFaulter struct {
	b *Backend
	r iofs.Rule
}

func (i ioFaulter) inject(_ context.Context, name string) (time.Time, error) {
	if i.b.fuse == nil {
		return time.Time{}, fmt.Errorf("fault %s: the data directory is not mounted", name)
	}
	if err := i.b.fuse.Set(name, i.r); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

func (i ioFaulter) recover(name string) (time.Time, error) {
	if i.b.fuse != nil {
		i.b.fuse.Clear(name)
	}
	return time.Now(), nil
}
