package local

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/runner/local/iofs"
	"faultline.dev/faultline/schema"
)

// fileCall asks the test target to write and read back a file in its data
// directory, and returns its own timings.
func fileCall(t *testing.T, addr, name string) fileTiming {
	t.Helper()
	var ft fileTiming
	if err := json.Unmarshal([]byte(get(t, "http://"+addr+"/file?name="+name)), &ft); err != nil {
		t.Fatal(err)
	}
	return ft
}

// TestIOFaults: a target writing to its data directory sees an ioLatency
// in its own file timings (writes of the glob's files only), an ioFault's
// errno as the error of its write, and neither once they are recovered;
// the files land in the real directory and cleanup unmounts it.
func TestIOFaults(t *testing.T) {
	if err := iofs.Available(); err != nil {
		t.Skip(err)
	}
	data := t.TempDir()
	faults := map[string]schema.Fault{
		"slow": {IOLatency: &schema.IOLatency{IOTarget: schema.IOTarget{VolumePath: "/var/lib/app", Path: "/var/lib/app/**/*.wal", Methods: []string{"write"}}, Delay: schema.Duration(80 * time.Millisecond)}},
		"full": {IOFault: &schema.IOFault{IOTarget: schema.IOTarget{VolumePath: "/var/lib/app", Methods: []string{"write"}, Percent: 100}, Errno: int(syscall.ENOSPC)}},
	}
	b, p, addr := testBackend(t, faults, nil)
	b.s.Target.Local.DataDir = data
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Prepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if !iofs.Mounted(data) {
		t.Fatalf("%s is not mounted", data)
	}
	if ft := fileCall(t, addr, "a.wal"); ft.Err != "" || ft.WriteMs > 40 {
		t.Errorf("before any fault: %+v", ft)
	}

	if _, err := b.Inject(ctx, plan.Fault{Name: "slow"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if ft := fileCall(t, addr, "a.wal"); ft.Err != "" || ft.WriteMs < 80 || ft.WriteMs > 600 || ft.ReadMs > 40 {
			t.Errorf("under an 80ms write latency on *.wal, the target's own timings: %+v", ft)
		}
	}
	if ft := fileCall(t, addr, "a.txt"); ft.WriteMs > 40 {
		t.Errorf("a.txt is not in the glob: %+v", ft)
	}
	if _, err := b.Recover(ctx, plan.Fault{Name: "slow"}); err != nil {
		t.Fatal(err)
	}
	if ft := fileCall(t, addr, "a.wal"); ft.WriteMs > 40 {
		t.Errorf("after recovery: %+v", ft)
	}

	if _, err := b.Inject(ctx, plan.Fault{Name: "full"}); err != nil {
		t.Fatal(err)
	}
	if ft := fileCall(t, addr, "b.db"); ft.Errno != int(syscall.ENOSPC) || !strings.Contains(ft.Err, "no space left on device") {
		t.Errorf("under an ENOSPC ioFault: %+v", ft)
	}
	if _, err := b.Recover(ctx, plan.Fault{Name: "full"}); err != nil {
		t.Fatal(err)
	}
	if ft := fileCall(t, addr, "b.db"); ft.Err != "" {
		t.Errorf("after recovery: %+v", ft)
	}

	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if iofs.Mounted(data) {
		t.Errorf("%s still mounted after cleanup", data)
	}
	if got, err := os.ReadFile(filepath.Join(data, "b.db")); err != nil || string(got) != "faultline\n" {
		t.Errorf("the file the target wrote, in the real directory: %q %v", got, err)
	}
}

// TestIORefused: IO faults without a data directory, or with a path
// outside their volume, are refused up front, saying why.
func TestIORefused(t *testing.T) {
	lat := func(vol, p string) schema.Fault {
		return schema.Fault{IOLatency: &schema.IOLatency{IOTarget: schema.IOTarget{VolumePath: vol, Path: p}, Delay: schema.Duration(time.Millisecond)}}
	}
	b := New(&schema.Scenario{Target: schema.Target{Local: &schema.LocalTarget{Command: []string{"x"}}}}, "", nil)
	if err := b.Supported(lat("/data", "")); err == nil || !strings.Contains(err.Error(), "target.local.dataDir") {
		t.Errorf("no dataDir: %v", err)
	}
	if iofs.Available() != nil {
		return
	}
	b.s.Target.Local.DataDir = t.TempDir()
	if err := b.Supported(lat("/data", "/elsewhere/*")); err == nil || !strings.Contains(err.Error(), "not under its volumePath") {
		t.Errorf("path outside the volume: %v", err)
	}
	if err := b.Supported(lat("/data", "/data/**/*.db")); err != nil {
		t.Errorf("a path under the volume: %v", err)
	}
}
