package local

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"faultline.dev/faultline/schema"
)

// cpuStress runs workers threads that each keep a CPU busy load% of the
// time (in 10ms periods); the returned func stops them.
func cpuStress(workers int, load float64) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	busy := time.Duration(load / 100 * float64(10*time.Millisecond))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				for time.Since(start) < busy {
					x++
				}
				if idle := 10*time.Millisecond - busy; idle > 0 {
					time.Sleep(idle)
				}
			}
		}()
	}
	return func() { close(stop); wg.Wait() }
}

// memoryStress allocates size per worker and touches every page, holding it
// until stopped.
func memoryStress(workers int, size string) (func(), error) {
	n, err := schema.Size(size).Bytes()
	if err != nil {
		if strings.HasSuffix(size, "%") {
			return nil, fmt.Errorf("memoryStress size %s: a percentage needs a container limit; give a size such as 256MB locally", size)
		}
		return nil, err
	}
	held := make([][]byte, workers)
	for i := range held {
		held[i] = make([]byte, n)
		for j := 0; j < len(held[i]); j += 4096 {
			held[i][j] = 1
		}
	}
	return func() {
		clear(held)
		runtime.GC()
	}, nil
}
