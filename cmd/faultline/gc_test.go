package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads the current GOGC setting.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestLessGC(t *testing.T) {
	for _, v := range []string{"GOGC", "GOMEMLIMIT"} {
		if old, ok := os.LookupEnv(v); ok {
			os.Unsetenv(v)
			t.Cleanup(func() { os.Setenv(v, old) })
		}
	}
	before := gcPercent()

	restore := lessGC(context.Background())
	if p := gcPercent(); p != -1 {
		t.Fatalf("collector at GOGC %d while the heap is small, want off", p)
	}
	// A heap past the threshold turns the collector back on.
	big := make([]byte, gcOffBelow*7/8)
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != 400 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p := gcPercent(); p != 400 {
		t.Fatalf("after a %d MB heap the collector is at GOGC %d, want 400", len(big)>>20, p)
	}
	runtime.KeepAlive(big)
	restore()
	if p := gcPercent(); p != before {
		t.Fatalf("restore left GOGC %d, want %d", p, before)
	}

	// The user's GOGC wins.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	restore = lessGC(context.Background())
	if p := gcPercent(); p != 150 {
		t.Fatalf("with GOGC=150 set, lessGC changed it to %d", p)
	}
	restore()
	debug.SetGCPercent(before)
}
