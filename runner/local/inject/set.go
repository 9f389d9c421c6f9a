package inject

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"faultline.dev/faultline/schema"
)

// Faults is a set of active faults that the runner switches on and off at
// run time. Dial and Middleware apply it to the load engine's own
// connections and requests. The set is immutable snapshots swapped
// atomically: reading it costs an atomic load, nothing more, while no fault
// is active.
type Faults struct {
	cur     atomic.Pointer[faultSet]
	mu      sync.Mutex // serialises Set/Clear
	aborted atomic.Int64
}

// NewFaults returns an empty set.
func NewFaults() *Faults {
	f := &Faults{}
	f.cur.Store(newFaultSet(map[string]*fault{}))
	return f
}

func (f *Faults) load() *faultSet { return f.cur.Load() }

// Set activates fault sf under name, replacing a fault of the same name. It
// returns an error, and changes nothing, when sf is invalid or cannot be
// injected locally (errors.Is(err, ErrUnsupported)).
func (f *Faults) Set(name string, sf schema.Fault) error {
	c, err := compile(name, sf)
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	f.update(func(m map[string]*fault) { m[name] = c })
	return nil
}

// Clear ends the named fault; it reports whether it was active. Data it
// was holding or delaying goes on at once.
func (f *Faults) Clear(name string) bool {
	found := false
	f.update(func(m map[string]*fault) {
		_, found = m[name]
		delete(m, name)
	})
	return found
}

// ClearAll ends every fault.
func (f *Faults) ClearAll() { f.update(func(m map[string]*fault) { clear(m) }) }

// Active lists the names of the active faults, sorted.
func (f *Faults) Active() []string {
	fs := f.load()
	names := make([]string, 0, len(fs.byName))
	for n := range fs.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Aborted counts the requests and responses an httpFault aborted, and the
// gRPC calls a grpcFault aborted.
func (f *Faults) Aborted() int64 { return f.aborted.Load() }

// update applies edit to a copy of the active faults and swaps it in:
// removed faults are marked dead first (so waiting data sees it), then the
// new set is published, then the old set's changed channel wakes waiters.
func (f *Faults) update(edit func(map[string]*fault)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.load()
	m := make(map[string]*fault, len(old.byName)+1)
	for k, v := range old.byName {
		m[k] = v
	}
	edit(m)
	for k, v := range old.byName {
		if m[k] != v {
			v.kill()
		}
	}
	f.cur.Store(newFaultSet(m))
	close(old.changed)
}
