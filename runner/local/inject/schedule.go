package inject

import "time"

const (
	// chunkSize is the most one Read returns or one scheduled piece of a
	// Write holds: the unit faults act on.
	chunkSize = 32 << 10
	// maxQueued bounds the bytes a connection may have waiting in its write
	// delay line; past it Write blocks, like a send buffer that is full.
	maxQueued = 4 << 20
	// fineWindow is the last stretch of a scheduled wait, slept with
	// preciseSleep instead of a Go timer (which can fire up to ~1 ms late).
	fineWindow = 1500 * time.Microsecond
)

// schedule decides when a chunk of n bytes arriving at t leaves on
// direction d: delays, then losses, then bandwidth. hold reports a chunk
// that waits until one of the faults in by is cleared.
func schedule(fs *faultSet, d direction, n int, t time.Time) (release time.Time, hold bool, by []*netFault) {
	if k := len(fs.net[d]); k > 0 {
		by = make([]*netFault, 0, k)
	}
	for _, f := range fs.net[d] {
		f.mu.Lock()
		switch {
		case f.delay != nil:
			t = t.Add(f.delaySample())
		case f.loss != nil:
			stall, h := f.lossStall(n)
			t = t.Add(stall)
			hold = hold || h
		default:
			t = f.shape(t, n)
		}
		f.mu.Unlock()
		by = append(by, f)
	}
	return t, hold, by
}

// chunk is a scheduled piece of a write, waiting in a delay line.
type chunk struct {
	data    []byte
	release time.Time
	hold    bool        // wait until one of by is cleared
	by      []*netFault // the faults that scheduled it
}

// alive reports whether every fault that scheduled the chunk is still
// active.
func (ch *chunk) alive() bool {
	for _, f := range ch.by {
		if !f.live.Load() {
			return false
		}
	}
	return true
}
