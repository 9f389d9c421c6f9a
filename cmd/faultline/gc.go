package main

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcOffBelow is the heap size up to which a short evaluating command runs
// without the collector; beyond it the collector runs at GOGC 400.
const gcOffBelow = 512 << 20

// lessGC trades memory for speed in short commands that evaluate many
// scenarios. CUE allocates a lot and keeps most of it until the end; with
// the default GOGC a fifth of vet's time went to the collector (measured on
// 500 scenarios), and even GOGC 400 left `faultline vet` slower than
// `cue vet`. So the collector is off while the heap is small (500 scenarios
// stay under 200 MB), and a watcher turns it back on at GOGC 400 once the
// heap passes gcOffBelow; a memory limit of the same size makes the runtime
// collect even if the watcher is late. An explicit GOGC or GOMEMLIMIT from
// the user wins. The returned func stops the watcher and restores the
// defaults.
func lessGC(ctx context.Context) (restore func()) {
	_, gogc := os.LookupEnv("GOGC")
	_, limit := os.LookupEnv("GOMEMLIMIT")
	if gogc || limit {
		return func() {}
	}
	oldPercent := debug.SetGCPercent(-1)
	oldLimit := debug.SetMemoryLimit(gcOffBelow)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > gcOffBelow*3/4 {
				debug.SetGCPercent(400)
				debug.SetMemoryLimit(math.MaxInt64)
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	}
}
