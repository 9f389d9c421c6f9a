package stress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// WorkerConfig is one stress worker process: CPU or memory stress.
type WorkerConfig struct {
	// CPUWorkers threads each keep a CPU busy Load% of the time.
	CPUWorkers int
	Load       float64
	// MemoryWorkers each hold MemoryBytes.
	MemoryWorkers int
	MemoryBytes   int64
}

// Ready is the line a worker prints on stdout once its stress is on.
const Ready = "stress on"

// Worker runs the stress until ctx ends or the process that started it
// goes away (the worker is then orphaned: it checks its parent every
// 100ms), printing Ready on out once the stress is on.
func Worker(ctx context.Context, c WorkerConfig, out io.Writer) error {
	if (c.CPUWorkers > 0) == (c.MemoryWorkers > 0) {
		return errors.New("a stress worker does CPU or memory stress: give --cpu-workers or --memory-workers")
	}
	var stop func()
	if c.CPUWorkers > 0 {
		if c.Load <= 0 || c.Load > 100 {
			return fmt.Errorf("--load %v: a percentage in (0, 100]", c.Load)
		}
		// One P per stressing thread: the kernel, not Go's scheduler, shares
		// the CPUs out, as it does for stress-ng's workers.
		runtime.GOMAXPROCS(c.CPUWorkers + 1)
		stop = CPU(c.CPUWorkers, c.Load)
	} else {
		if c.MemoryBytes <= 0 {
			return errors.New("--memory-bytes must be positive")
		}
		var err error
		if stop, err = Memory(c.MemoryWorkers, c.MemoryBytes); err != nil {
			return fmt.Errorf("allocating %d×%d bytes: %w", c.MemoryWorkers, c.MemoryBytes, err)
		}
	}
	defer stop()
	fmt.Fprintln(out, Ready)
	parent := os.Getppid()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if os.Getppid() != parent {
				return nil
			}
		}
	}
}

// WorkerEnv is set to "1" in a stress worker's environment (a test binary
// standing in for faultline can tell it is one).
const WorkerEnv = "FAULTLINE_STRESS_WORKER"
