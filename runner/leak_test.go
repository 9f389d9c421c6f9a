package runner

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

// plantedLeak blocks until release is closed: the goroutines a leak leaves.
func plantedLeak(release <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	<-release
}

func writeGoroutineProfile(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "pprof"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(profilePath(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// TestGoroutineGrowth diffs two real goroutine profiles (this process's,
// in pprof's format, as a Go target serves them): 40 goroutines planted
// between the two are the stack that grew most.
func TestGoroutineGrowth(t *testing.T) {
	dir := t.TempDir()
	if d, err := goroutineGrowth(dir); d != nil || err != nil {
		t.Fatalf("no profiles: %v, %v; want nil, nil", d, err)
	}
	writeGoroutineProfile(t, dir, "fault-start")
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go plantedLeak(release, &wg)
	}
	time.Sleep(50 * time.Millisecond) // let them block
	writeGoroutineProfile(t, dir, "after-load")
	close(release)
	wg.Wait()

	d, err := goroutineGrowth(dir)
	if err != nil || d == nil {
		t.Fatalf("goroutineGrowth: %v, %v", d, err)
	}
	if d.From != "fault-start" || d.To != "after-load" || d.Total[1]-d.Total[0] < 40 {
		t.Errorf("diff %s → %s, totals %v; want fault-start → after-load, +40 at least", d.From, d.To, d.Total)
	}
	if len(d.Stacks) == 0 {
		t.Fatal("no stack grew")
	}
	top := d.Stacks[0]
	if top.After-top.Before != 40 || !strings.Contains(strings.Join(top.Stack, " "), "runner.plantedLeak") {
		t.Errorf("top stack +%d %v; want +40 through plantedLeak", top.After-top.Before, top.Stack)
	}
	if s := d.Summary(); len(s) == 0 || !strings.Contains(s[0], "+40") || !strings.Contains(s[0], "plantedLeak") {
		t.Errorf("summary %q", s)
	}
	// A file that is not a profile is an error, not a silent empty diff.
	if err := os.WriteFile(profilePath(dir, "after-load"), []byte("not a profile"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := goroutineGrowth(dir); err == nil {
		t.Error("a broken profile read as fine")
	}
}
