package iofs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func mount(t *testing.T) (*FS, string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "before.txt"), []byte("under"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
		if Mounted(f.Dir()) {
			t.Errorf("%s still mounted", f.Dir())
		}
	})
	return f, dir
}

func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

// TestPassthroughFaults: the mount shows the directory's own files; a
// latency on write delays writes only, on the glob's files only; an errno
// fault fails the calls it names with that errno; both switch off without
// a remount; an attribute override changes what stat reports.
func TestPassthroughFaults(t *testing.T) {
	f, dir := mount(t)
	if b, err := os.ReadFile(filepath.Join(dir, "before.txt")); err != nil || string(b) != "under" {
		t.Fatalf("the file under the mount: %q %v", b, err)
	}
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string) func() error {
		return func() error { return os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644) }
	}
	if err := f.Set("slow", Rule{Methods: []string{"write"}, Glob: "db/**/*.wal", Delay: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d, err := timed(write("db/a.wal")); err != nil || d < 50*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("write of db/a.wal under a 50ms write latency took %v (%v)", d, err)
	}
	if d, err := timed(write("db/a.txt")); err != nil || d > 40*time.Millisecond {
		t.Errorf("write of db/a.txt (not in the glob) took %v (%v)", d, err)
	}
	if d, err := timed(func() error { _, err := os.ReadFile(filepath.Join(dir, "db/a.wal")); return err }); err != nil || d > 40*time.Millisecond {
		t.Errorf("read of db/a.wal (write latency only) took %v (%v)", d, err)
	}
	f.Clear("slow")
	if d, err := timed(write("db/a.wal")); err != nil || d > 40*time.Millisecond {
		t.Errorf("write after recovery took %v (%v)", d, err)
	}

	if err := f.Set("full", Rule{Methods: []string{"write", "create"}, Errno: syscall.ENOSPC}); err != nil {
		t.Fatal(err)
	}
	if err := write("db/b.wal")(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("create under an ENOSPC fault: %v", err)
	}
	if err := write("db/a.wal")(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write under an ENOSPC fault: %v", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "before.txt")); err != nil {
		t.Errorf("read under a write/create fault: %v", err)
	}
	f.Clear("full")
	if err := write("db/b.wal")(); err != nil {
		t.Errorf("create after recovery: %v", err)
	}

	perm, size := uint32(0o400), uint64(12345)
	if err := f.Set("attr", Rule{Methods: []string{"getattr", "lookup"}, Glob: "before.txt", Attr: &Attr{Perm: &perm, Size: &size}}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "before.txt"))
	if err != nil || st.Mode().Perm() != 0o400 || st.Size() != 12345 || !st.Mode().IsRegular() {
		t.Errorf("stat under an attribute override: %v %v", st.Mode(), err)
	}
	f.Clear("attr")
	if st, err := os.Stat(filepath.Join(dir, "before.txt")); err != nil || st.Mode().Perm() != 0o644 || st.Size() != 5 {
		t.Errorf("stat after recovery: %v %d %v", st.Mode(), st.Size(), err)
	}
}

// TestPercent: a 50% errno fault fails about half the calls.
func TestPercent(t *testing.T) {
	f, dir := mount(t)
	if err := f.Set("half", Rule{Methods: []string{"open"}, Percent: 50, Errno: syscall.EIO}); err != nil {
		t.Fatal(err)
	}
	failed := 0
	const n = 400
	for range n {
		if _, err := os.ReadFile(filepath.Join(dir, "before.txt")); errors.Is(err, syscall.EIO) {
			failed++
		}
	}
	if failed < n*35/100 || failed > n*65/100 {
		t.Errorf("%d of %d opens failed under a 50%% fault", failed, n)
	}
}

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		glob, rel string
		want      bool
	}{
		{"", "a/b", true}, {"**", "a", true}, {"**/*", "a/b/c", true}, {"*.wal", "a.wal", true}, {"*.wal", "d/a.wal", false},
		{"db/**/*.wal", "db/a.wal", true}, {"db/**/*.wal", "db/x/y/a.wal", true}, {"db/**/*.wal", "other/a.wal", false}, {"db/*", "db", false},
	} {
		if got := MatchGlob(c.glob, c.rel); got != c.want {
			t.Errorf("MatchGlob(%q, %q) = %v", c.glob, c.rel, got)
		}
	}
}
