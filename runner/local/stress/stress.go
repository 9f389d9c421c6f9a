// Package stress burns CPU and holds memory, as Chaos Mesh's StressChaos
// stressors do in a container. The local backend runs it in a process of
// its own (the hidden "faultline stress-worker" command, Worker), placed in
// the target's cgroup, so that the stress competes with the target alone;
// where no cgroup can be made it runs inside faultline as before.
package stress

import (
	"runtime"
	"sync"
	"syscall"
	"time"
)

// period is the CPU stressor's duty cycle.
const period = 10 * time.Millisecond

// CPU runs workers threads that each keep a CPU busy load% of the time
// (in 10ms periods); the returned func stops them.
func CPU(workers int, load float64) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	busy := time.Duration(load / 100 * float64(period))
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
				if idle := period - busy; idle > 0 {
					time.Sleep(idle)
				}
			}
		}()
	}
	return func() { close(stop); wg.Wait() }
}

// Memory maps size bytes per worker and touches every page, holding them
// until the returned func is called.
func Memory(workers int, size int64) (func(), error) {
	var held [][]byte
	release := func() {
		for _, b := range held {
			_ = syscall.Munmap(b)
		}
		held = nil
	}
	page := int64(syscall.Getpagesize())
	for range workers {
		b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, b)
		for j := int64(0); j < size; j += page {
			b[j] = 1
		}
	}
	return release, nil
}
